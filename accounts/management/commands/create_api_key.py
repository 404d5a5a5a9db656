from django.core.management.base import BaseCommand, CommandError

from accounts.errors import AccountsError
from accounts.models import Organisation
from accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an organisation and print it (shown once, stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="registry code, e.g. RH-000042")
        parser.add_argument("--name", default="script")

    def handle(self, *args, **opts):
        organisation = Organisation.objects.filter(code=opts["org"].strip().upper()).first()
        if organisation is None:
            raise CommandError(f"No organisation with code {opts['org']!r}.")
        try:
            _, raw_key = api_key_create(organisation=organisation, name=opts["name"])
        except AccountsError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(raw_key)
