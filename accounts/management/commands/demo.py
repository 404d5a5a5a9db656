"""The main job: a whole demo society, then the site.

Migrates, seeds the society (staff, rights holders, licensees), prints how to log in, and serves
on 127.0.0.1:8000. `--no-serve` does everything else and exits with a summary. Running it twice
is safe: every step finds what the last run made.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from accounts.demo import DEMO_PASSWORD, demo_accounts_seed
from accounts.models import ApiKey, AuditEvent, Organisation, OrganisationKind, User
from licensing.demo import demo_repertoire_seed
from licensing.demo_declarations import demo_declarations_seed
from licensing.demo_licences import (
    demo_licences_seed,
    demo_stripe_start,
    demo_webhooks_deliver,
)
from licensing.templatetags.money import money_text
from royalties.demo import (
    DEMO_UNCONNECTED_HOLDER,
    demo_cycle_run,
    demo_payout_lines,
    demo_payouts_run,
)
from royalties.services.cycles import cycle_summary_lines


class Command(BaseCommand):
    help = "Set up a demo society and serve the site (use --no-serve to just set up)."

    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="set up, summarise, exit")
        parser.add_argument("--addrport", default="127.0.0.1:8000")

    def handle(self, *args, **opts):
        self.stdout.write("Migrating the database…")
        call_command("migrate", interactive=False, verbosity=0)

        self.stdout.write("Seeding the demo society…")
        demo = demo_accounts_seed(society_name=settings.BLANKET_SOCIETY_NAME)

        self.stdout.write("Enrolling the rights holders' catalogues (catalogue files → import)…")
        repertoire = demo_repertoire_seed(organisations=demo.organisations, owners=demo.owners)

        self.stdout.write("Starting the local Stripe and selling licences to the licensees…")
        stripe_server = demo_stripe_start(site_url=f"http://{opts['addrport']}")
        sales = demo_licences_seed(
            staff=demo.staff["operator"],
            licensees={
                name: (demo.organisations[name], demo.owners[name])
                for name in ("Aleph AI Ltd", "Corvid Labs")
            },
            stripe_control=stripe_server.control,
        )

        self.stdout.write("Filing the licensees' usage declarations for this quarter…")
        usage = demo_declarations_seed(licences=sales, owners=demo.owners)

        self.stdout.write(
            "Running this quarter's payout cycle (operator allocates, approver approves)…"
        )
        cycle = demo_cycle_run(operator=demo.staff["operator"], approver=demo.staff["approver"])

        self.stdout.write(
            "Paying it: holders connect Stripe Express accounts, the approver starts the payout "
            "run, the reconciliation closes the cycle…"
        )
        reconciliation = demo_payouts_run(
            cycle=cycle,
            approver=demo.staff["approver"],
            holders={
                name: (organisation, demo.owners[name])
                for name, organisation in demo.organisations.items()
                if organisation.kind == OrganisationKind.RIGHTS_HOLDER
            },
            stripe_control=stripe_server.control,
            webhook_deliver=demo_webhooks_deliver,
            unconnected=DEMO_UNCONNECTED_HOLDER,
        )
        cycle.refresh_from_db()

        self.stdout.write(self.style.SUCCESS("\nBlanket demo society is ready."))
        self.stdout.write(f"  Society:        {demo.society.name} ({demo.society.code})")
        for name, organisation in demo.organisations.items():
            owner = demo.owners[name]
            self.stdout.write(
                f"  {organisation.get_kind_display():<15} {organisation.code}  {name:<24} "
                f"log in as {owner.email}"
            )
        for group, user in demo.staff.items():
            self.stdout.write(f"  Staff {group:<9} {user.email}")
        self.stdout.write(f"  Password for every demo user: {DEMO_PASSWORD}")
        for code, name, status, created, unchanged, errors in repertoire["imports"]:
            self.stdout.write(
                f"  Import {code} {name!r}: {status}, {created} works created, "
                f"{unchanged} unchanged, {errors} errors"
            )
        self.stdout.write(
            f"  Repertoire: {repertoire['works']} works, "
            f"{repertoire['open_conflicts']} open conflict(s) for staff to resolve"
        )
        for licence in sales:
            self.stdout.write(
                f"  Licence {licence.pk} {licence.licensee.name}: {licence.product.name}, "
                f"{licence.status} via {licence.get_payment_method_display().lower()}, "
                f"{money_text(licence.amount_minor, licence.currency)}"
            )
        for declaration in usage:
            self.stdout.write(
                f"  Declaration {declaration.pk} {declaration.licence.licensee.name} "
                f"{declaration.model_name} {declaration.model_version} {declaration.period}: "
                f"{declaration.status}, {declaration.lines:,} lines, "
                f"{declaration.declared_quantity:,} {declaration.unit or 'tokens'} declared: "
                f"{declaration.matched_quantity:,} matched, "
                f"{declaration.unmatched_quantity:,} unmatched, "
                f"{declaration.reserved_quantity:,} reserved"
            )
        for line in cycle_summary_lines(cycle):
            self.stdout.write(f"  {line}")
        for line in demo_payout_lines(cycle, reconciliation):
            self.stdout.write(f"  {line}")
        self.stdout.write(
            f"  Totals: {User.objects.count()} users, {Organisation.objects.count()} "
            f"organisations, {ApiKey.objects.count()} API keys, "
            f"{AuditEvent.objects.count()} audit events"
        )
        if opts["no_serve"]:
            stripe_server.stop()
            return
        stripe_server.control.webhooks_configure(mode="immediate")  # live webhooks from now on
        self.stdout.write(
            f"  Local Stripe (checkout, invoices, Connect) on {settings.STRIPE_API_BASE}\n"
            f"\nServing on http://{opts['addrport']}/  (Ctrl-C to stop)\n"
        )
        try:
            call_command("runserver", opts["addrport"], use_reloader=False)
        finally:
            stripe_server.stop()
