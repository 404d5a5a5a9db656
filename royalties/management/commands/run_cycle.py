"""Run a payout cycle from the command line: open it if needed, allocate, optionally approve.

    manage.py run_cycle --period 2026-Q3 --allocate-as operator@example.org
    manage.py run_cycle --period 2026-Q3 --approve-as approver@example.org

The allocation runs in this process (the same job a Celery worker runs; if a worker takes it
first, this one finds it done). Prints the totals identity and where the money went.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.scoping import Caller
from config.errors import DomainError
from royalties.models import Cycle, CycleStatus
from royalties.services.cycles import (
    cycle_allocate,
    cycle_allocate_run,
    cycle_approve,
    cycle_create,
    cycle_default_period,
    cycle_summary_lines,
)


class Command(BaseCommand):
    help = "Open, allocate and (optionally) approve a payout cycle."

    def add_arguments(self, parser):
        parser.add_argument("--period", help="e.g. 2026-Q3 (default: the last full quarter)")
        parser.add_argument("--currency", default="EUR")
        parser.add_argument("--allocate-as", help="Email of the staff user who allocates")
        parser.add_argument("--approve-as", help="Email of a different staff user who approves")

    def _caller(self, email: str) -> Caller:
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {email}.")
        return Caller(user=user, organisation=None)

    def handle(
        self, *args, period=None, currency="EUR", allocate_as=None, approve_as=None, **options
    ):
        period = period or cycle_default_period()
        if not allocate_as and not approve_as:
            raise CommandError("Say --allocate-as EMAIL, --approve-as EMAIL, or both.")
        try:
            cycle = Cycle.objects.filter(period=period, currency=currency.upper()).first()
            if allocate_as:
                caller = self._caller(allocate_as)
                if cycle is None:
                    cycle = cycle_create(caller=caller, period=period, currency=currency)
                cycle = cycle_allocate(caller=caller, cycle=cycle)
                if cycle.status == CycleStatus.ALLOCATING:
                    cycle = cycle_allocate_run(cycle_id=cycle.pk)
                if cycle.status != CycleStatus.ALLOCATED:
                    raise CommandError(f"Cycle {cycle.period}: {cycle.status}. {cycle.message}")
                for line in cycle_summary_lines(cycle):
                    self.stdout.write(line)
            if approve_as:
                if cycle is None:
                    raise CommandError(f"No {currency} cycle for {period}.")
                cycle = cycle_approve(caller=self._caller(approve_as), cycle=cycle)
                self.stdout.write(f"Cycle {cycle.period} approved; statements published.")
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
