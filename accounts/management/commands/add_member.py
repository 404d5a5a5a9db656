from django.core.management.base import BaseCommand, CommandError

from accounts.errors import AccountsError
from accounts.models import Organisation, Role, User
from accounts.services import membership_add


class Command(BaseCommand):
    help = "Add an existing user to an organisation with a role (or change their role)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="registry code, e.g. RH-000042")
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)

    def handle(self, *args, **opts):
        organisation = Organisation.objects.filter(code=opts["org"].strip().upper()).first()
        if organisation is None:
            raise CommandError(f"No organisation with code {opts['org']!r}.")
        user = User.objects.filter(email__iexact=opts["email"].strip()).first()
        if user is None:
            raise CommandError(f"No user with email {opts['email']!r}: they must sign up first.")
        try:
            membership = membership_add(organisation=organisation, user=user, role=opts["role"])
        except AccountsError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{user.email} is {membership.role} of {organisation.code}")
