from django.core.management.base import BaseCommand, CommandError

from accounts.errors import AccountsError
from accounts.models import OrganisationKind
from accounts.services import organisation_create


class Command(BaseCommand):
    help = "Register an organisation and print its registry code."

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, choices=OrganisationKind.values)
        parser.add_argument("--name", required=True)
        parser.add_argument("--country", default="GB", help="ISO 3166 alpha-2 (default GB)")
        parser.add_argument("--isni", default="")
        parser.add_argument("--ipi", default="", help="IPI name number")
        parser.add_argument("--company-number", default="")

    def handle(self, *args, **opts):
        try:
            organisation = organisation_create(
                creator=None,
                name=opts["name"],
                kind=opts["kind"],
                country=opts["country"],
                isni=opts["isni"],
                ipi_name_number=opts["ipi"],
                company_number=opts["company_number"],
            )
        except AccountsError as exc:
            raise CommandError(f"{exc.message} {exc.details or ''}".strip()) from None
        self.stdout.write(organisation.code)
