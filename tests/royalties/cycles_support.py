"""Builders for the payout-cycle tests: a policy, a paid licence with a known term, and usage
declared for a period (through the real services, so the ledger and the matcher apply)."""

from __future__ import annotations

import datetime as dt

from accounts.scoping import Caller
from licensing.models import Licence, LicenceProduct, LicenceStatus
from licensing.services.licences import payment_offline_record
from royalties.models import Cycle
from royalties.services.cycles import (
    cycle_allocate,
    cycle_allocate_run,
    cycle_approve,
    cycle_create,
    policy_publish,
)
from tests.licensing.declarations_support import csv_file, declare
from tests.licensing.factories import caller_of

YEAR_START = dt.date(2026, 7, 1)
YEAR_END = dt.date(2027, 6, 30)


def staff_caller(persona) -> Caller:
    return Caller(user=persona.user, organisation=None)


def policy(operator, **fields):
    fields.setdefault("admin_fee_bp", 1000)
    fields.setdefault("threshold_minor", 0)
    return policy_publish(caller=staff_caller(operator), **fields)


def paid_licence(licensee, operator, *, amount=365_000, code="ai-training", uses=("training",)):
    """An active licence from 2026-07-01 for 365 days, paid offline in full: 1,000 a day."""
    product, _ = LicenceProduct.objects.get_or_create(
        code=code, defaults={"name": f"Product {code}"}
    )
    licence = Licence.objects.create(
        licensee=licensee.organisation,
        product=product,
        status=LicenceStatus.PENDING_PAYMENT,
        amount_minor=amount,
        currency="EUR",
        uses=list(uses),
        territory="WORLD",
    )
    payment_offline_record(
        caller=staff_caller(operator), licence=licence, amount_minor=amount, reference="BANK-1"
    )
    Licence.objects.filter(pk=licence.pk).update(starts_on=YEAR_START, ends_on=YEAR_END)
    licence.refresh_from_db()
    return licence


def usage(licensee, licence, rows, *, period="2026-Q3", model="aleph"):
    """Declare ``rows`` of (scheme, identifier, quantity) for the period (accepted)."""
    return declare(licensee, licence, csv_file(rows), period=period, model=model)


def allocate(operator, period="2026-Q3") -> Cycle:
    cycle = Cycle.objects.filter(period=period).first() or cycle_create(
        caller=staff_caller(operator), period=period
    )
    cycle_allocate(caller=staff_caller(operator), cycle=cycle)
    # The job the Celery task runs (tests run inside a transaction, so on_commit never fires).
    return cycle_allocate_run(cycle_id=cycle.pk)


def approve(approver, cycle) -> Cycle:
    return cycle_approve(caller=staff_caller(approver), cycle=cycle)


__all__ = ["caller_of"]
