"""Posting to the double-entry ledger.

`journal_entry_post` is the only way money is written: it checks the entry balances per
currency before writing (the PostgreSQL trigger checks again at commit), and an idempotency
key means the same business event can never be booked twice. Corrections are reversals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import Sum

from accounts.models import Organisation, User
from royalties.errors import LedgerError
from royalties.models import AccountKind, JournalEntry, LedgerAccount, Posting


@dataclass(frozen=True)
class Line:
    account: LedgerAccount
    amount_minor: int  # debit positive, credit negative

    def __post_init__(self):
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise LedgerError(f"Amounts are integers in minor units, not {self.amount_minor!r}.")


def ledger_account_get_or_create(
    *, code: str, name: str, kind: str, currency: str, organisation: Organisation | None = None
) -> LedgerAccount:
    account, created = LedgerAccount.objects.get_or_create(
        code=code,
        defaults={"name": name, "kind": kind, "currency": currency, "organisation": organisation},
    )
    if not created and (account.kind, account.currency) != (kind, currency):
        raise LedgerError(f"Account {code} exists as {account.kind} in {account.currency}.")
    return account


def _lines_check(lines: Sequence[Line]) -> None:
    if len(lines) < 2:
        raise LedgerError("A journal entry needs at least two postings.")
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.amount_minor == 0:
            raise LedgerError(f"A zero posting to {line.account.code} means nothing; drop it.")
        totals[line.account.currency] += line.amount_minor
    unbalanced = {currency: total for currency, total in totals.items() if total != 0}
    if unbalanced:
        raise LedgerError(
            f"The entry does not balance: {unbalanced}.", details={"unbalanced": unbalanced}
        )


def _same_lines(entry: JournalEntry, lines: Sequence[Line]) -> bool:
    stored = sorted(entry.postings.values_list("account_id", "amount_minor"))
    return stored == sorted((line.account.pk, line.amount_minor) for line in lines)


def journal_entry_post(
    *,
    idempotency_key: str,
    lines: Sequence[Line],
    source_type: str,
    source_id: str | int,
    description: str,
    effective_date: date,
    created_by: User | None = None,
    reverses: JournalEntry | None = None,
) -> JournalEntry:
    """Book one balanced entry. Posting the same key again returns the first entry when the
    lines are the same and refuses when they differ (a bug, never a second booking)."""
    _lines_check(lines)
    existing = JournalEntry.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if not _same_lines(existing, lines):
            raise LedgerError(
                f"Entry {idempotency_key} was booked with different postings.",
                code="idempotency_mismatch",
            )
        return existing
    try:
        with transaction.atomic():
            entry = JournalEntry.objects.create(
                idempotency_key=idempotency_key,
                source_type=source_type,
                source_id=str(source_id),
                description=description[:300],
                effective_date=effective_date,
                created_by=created_by,
                reverses=reverses,
            )
            Posting.objects.bulk_create(
                Posting(
                    entry=entry,
                    account=line.account,
                    amount_minor=line.amount_minor,
                    currency=line.account.currency,
                )
                for line in lines
            )
    except IntegrityError:
        # A concurrent poster won the race on the idempotency key: theirs is the booking.
        existing = JournalEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None or not _same_lines(existing, lines):
            raise
        return existing
    return entry


def journal_entry_reverse(
    *,
    entry: JournalEntry,
    description: str,
    effective_date: date,
    created_by: User | None = None,
) -> JournalEntry:
    """Undo `entry` with an opposite entry (once: a second reversal returns the first)."""
    lines = [Line(p.account, -p.amount_minor) for p in entry.postings.select_related("account")]
    return journal_entry_post(
        idempotency_key=f"reversal:{entry.idempotency_key}",
        lines=lines,
        source_type=entry.source_type,
        source_id=entry.source_id,
        description=description,
        effective_date=effective_date,
        created_by=created_by,
        reverses=entry,
    )


def ledger_account_balance(*, account: LedgerAccount) -> int:
    """Debit-positive balance in minor units, derived from postings."""
    return account.postings.aggregate(total=Sum("amount_minor"))["total"] or 0


def ledger_trial_balance() -> dict[str, int]:
    """Sum of all postings per currency: zero in every currency, or the ledger is broken."""
    rows = Posting.objects.values("currency").annotate(total=Sum("amount_minor"))
    return {row["currency"]: row["total"] for row in rows}


NORMAL_CREDIT = {AccountKind.LIABILITY, AccountKind.INCOME, AccountKind.EQUITY}


def ledger_accounts_ensure(
    specs: Sequence[tuple[str, str, str, str, int | None]],
) -> dict[str, LedgerAccount]:
    """Many accounts at once, set-based: ``(code, name, kind, currency, organisation_id)`` ->
    the account by code, creating the missing ones (a cycle opens one per new holder)."""
    wanted = {code: (name, kind, currency, org) for code, name, kind, currency, org in specs}
    found: dict[str, LedgerAccount] = {}
    codes = list(wanted)
    for start in range(0, len(codes), 5000):
        chunk = codes[start : start + 5000]
        found.update({a.code: a for a in LedgerAccount.objects.filter(code__in=chunk)})
    missing = [code for code in codes if code not in found]
    if missing:
        LedgerAccount.objects.bulk_create(
            [
                LedgerAccount(
                    code=code,
                    name=wanted[code][0],
                    kind=wanted[code][1],
                    currency=wanted[code][2],
                    organisation_id=wanted[code][3],
                )
                for code in missing
            ],
            batch_size=5000,
            ignore_conflicts=True,
        )
        for start in range(0, len(missing), 5000):
            chunk = missing[start : start + 5000]
            found.update({a.code: a for a in LedgerAccount.objects.filter(code__in=chunk)})
    for code, account in found.items():
        if (account.kind, account.currency) != wanted[code][1:3]:
            raise LedgerError(f"Account {code} exists as {account.kind} in {account.currency}.")
    return found
