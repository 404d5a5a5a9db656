"""Posting to the double-entry ledger.

`journal_entry_post` is the only way money is written: it checks the entry balances per
currency before writing (the PostgreSQL trigger checks again at commit), and an idempotency
key means the same business event can never be booked twice. Corrections are reversals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

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
    return _entry_book(
        idempotency_key=idempotency_key,
        same=lambda entry: _same_lines(entry, lines),
        postings_write=lambda entry: _postings_insert(entry, lines),
        source_type=source_type,
        source_id=str(source_id),
        description=description[:300],
        effective_date=effective_date,
        created_by=created_by,
        reverses=reverses,
    )


def _entry_book(
    *,
    idempotency_key: str,
    same: Callable[[JournalEntry], bool],
    postings_write: Callable[[JournalEntry], None],
    **fields,
) -> JournalEntry:
    """The entry under ``idempotency_key`` (its postings written by ``postings_write``), or
    the one booked before under that key when ``same`` finds its postings equal; different
    postings under a booked key are refused (a bug, never a second booking)."""
    existing = JournalEntry.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if not same(existing):
            raise LedgerError(
                f"Entry {idempotency_key} was booked with different postings.",
                code="idempotency_mismatch",
            )
        return existing
    try:
        with transaction.atomic():
            entry = JournalEntry.objects.create(idempotency_key=idempotency_key, **fields)
            postings_write(entry)
    except IntegrityError:
        # A concurrent poster won the race on the idempotency key: theirs is the booking.
        existing = JournalEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None or not same(existing):
            raise
        return existing
    return entry


def _postings_insert(entry: JournalEntry, lines: Sequence[Line]) -> None:
    """The entry's postings, in the order of ``lines``: on PostgreSQL one ``INSERT ... SELECT
    FROM unnest(...)`` (an allocation entry has a posting per holder: no model instance per
    row, and the currency trigger runs once for the statement), ``bulk_create`` elsewhere."""
    if connection.vendor != "postgresql":
        Posting.objects.bulk_create(
            Posting(
                entry=entry,
                account=line.account,
                amount_minor=line.amount_minor,
                currency=line.account.currency,
            )
            for line in lines
        )
        return
    if any(line.account.pk is None for line in lines):
        raise ValueError(
            "save() prohibited to prevent data loss due to unsaved related object 'account'."
        )
    table = connection.ops.quote_name(Posting._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (entry_id, account_id, amount_minor, currency) "  # noqa: S608  # nosec B608 - model table; values are params
            "SELECT %s, t.account_id, t.amount_minor, t.currency "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) WITH ORDINALITY "
            "AS t(account_id, amount_minor, currency, n) ORDER BY t.n",
            [
                entry.pk,
                [line.account.pk for line in lines],
                [line.amount_minor for line in lines],
                [str(line.account.currency) for line in lines],
            ],
        )


def journal_entry_post_query(
    *,
    idempotency_key: str,
    rows_sql: str,
    rows_params: Sequence,
    lines: Sequence[Line] = (),
    source_type: str,
    source_id: str | int,
    description: str,
    effective_date: date,
    created_by: User | None = None,
) -> JournalEntry | None:
    """``journal_entry_post`` for an entry whose postings a query yields (PostgreSQL): an
    approval's entries have a posting per holder, 10^5 and more, which this writes with one
    ``INSERT ... SELECT`` and checks with one aggregate, without a Python object per posting.

    ``rows_sql`` (with ``rows_params``) is a SELECT of ``account_id, amount_minor, currency``
    (the account's currency), in posting order; ``lines`` are further postings written after
    them (a clearing account's total). The same rules as ``journal_entry_post``: at least two
    postings, none zero, balanced per currency (LedgerError otherwise, before anything is
    written), and the key books once: posting it again returns the first entry when the
    postings are the same and refuses when they differ. No postings at all: nothing is booked
    and None is returned (as callers that drop zero lines and skip an empty entry do)."""
    totals: dict[str, int] = defaultdict(int)
    count = 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.currency, SUM(t.amount_minor), COUNT(*), "  # noqa: S608  # nosec B608 - rows_sql is the caller's constant SQL; values are params
            f"COUNT(*) FILTER (WHERE t.amount_minor = 0) FROM ({rows_sql}) t GROUP BY t.currency",
            list(rows_params),
        )
        for currency, total, n, zeros in cursor.fetchall():
            if zeros:
                raise LedgerError("A zero posting means nothing; drop it.")
            totals[currency] += int(total)
            count += n
    if not count and not lines:
        return None
    for line in lines:
        if line.amount_minor == 0:
            raise LedgerError(f"A zero posting to {line.account.code} means nothing; drop it.")
        totals[line.account.currency] += line.amount_minor
    if count + len(lines) < 2:
        raise LedgerError("A journal entry needs at least two postings.")
    unbalanced = {currency: total for currency, total in totals.items() if total != 0}
    if unbalanced:
        raise LedgerError(
            f"The entry does not balance: {unbalanced}.", details={"unbalanced": unbalanced}
        )

    def same(entry: JournalEntry) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT t.account_id, t.amount_minor FROM ({rows_sql}) t",  # noqa: S608  # nosec B608 - rows_sql is the caller's constant SQL; values are params
                list(rows_params),
            )
            expected = [tuple(row) for row in cursor.fetchall()]
        expected += [(line.account.pk, line.amount_minor) for line in lines]
        stored = sorted(entry.postings.values_list("account_id", "amount_minor"))
        return stored == sorted(expected)

    table = connection.ops.quote_name(Posting._meta.db_table)

    def postings_write(entry: JournalEntry) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (entry_id, account_id, amount_minor, currency) "  # noqa: S608  # nosec B608 - model table; rows_sql is the caller's constant SQL
                f"SELECT %s, t.account_id, t.amount_minor, t.currency FROM ({rows_sql}) t",
                [entry.pk, *rows_params],
            )
        if lines:
            _postings_insert(entry, lines)

    return _entry_book(
        idempotency_key=idempotency_key,
        same=same,
        postings_write=postings_write,
        source_type=source_type,
        source_id=str(source_id),
        description=description[:300],
        effective_date=effective_date,
        created_by=created_by,
    )


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
    the account by code, creating the missing ones (a cycle opens one per new holder).

    A few statements whatever the number of accounts: the existing ones are read as rows
    (``_accounts_by_code``), the missing ones inserted in one ``INSERT ... SELECT FROM
    unnest(...) ON CONFLICT (code) DO NOTHING`` on PostgreSQL (``bulk_create`` elsewhere), in
    the order of ``specs``; an account a concurrent transaction created first is read back
    and checked like any existing one."""
    wanted = {code: (name, kind, currency, org) for code, name, kind, currency, org in specs}
    found = _accounts_by_code(list(wanted))
    missing = [code for code in wanted if code not in found]
    if missing:
        now = timezone.now()
        if connection.vendor == "postgresql":
            fields = [f.attname for f in LedgerAccount._meta.concrete_fields]
            table = connection.ops.quote_name(LedgerAccount._meta.db_table)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} (code, name, kind, currency, organisation_id, "  # noqa: S608  # nosec B608 - model table; values are params
                    "created_at) SELECT t.code, t.name, t.kind, t.currency, t.organisation_id, "
                    "%s FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
                    "%s::bigint[]) WITH ORDINALITY "
                    "AS t(code, name, kind, currency, organisation_id, n) "
                    "ORDER BY t.n ON CONFLICT (code) DO NOTHING RETURNING id, code",
                    [
                        now,
                        missing,
                        [str(wanted[code][0]) for code in missing],
                        [str(wanted[code][1]) for code in missing],
                        [str(wanted[code][2]) for code in missing],
                        [wanted[code][3] for code in missing],
                    ],
                )
                created = cursor.fetchall()
            db = LedgerAccount.objects.db
            values = {"created_at": now}
            for pk, code in created:
                name, kind, currency, organisation_id = wanted[code]
                values.update(
                    id=pk,
                    code=code,
                    name=str(name),
                    kind=str(kind),
                    currency=str(currency),
                    organisation_id=organisation_id,
                )
                found[code] = LedgerAccount.from_db(db, fields, [values[f] for f in fields])
            # Created meanwhile by a concurrent transaction: read back and checked below.
            missing = [code for code in missing if code not in found]
            if len(created) >= ANALYZE_AFTER:
                _plans_refresh(table)
        else:
            LedgerAccount.objects.bulk_create(
                [
                    LedgerAccount(
                        code=code,
                        name=wanted[code][0],
                        kind=wanted[code][1],
                        currency=wanted[code][2],
                        organisation_id=wanted[code][3],
                        created_at=now,
                    )
                    for code in missing
                ],
                batch_size=5000,
                ignore_conflicts=True,
            )
        if missing:
            found.update(_accounts_by_code(missing))
    for code, account in found.items():
        if (account.kind, account.currency) != wanted[code][1:3]:
            raise LedgerError(f"Account {code} exists as {account.kind} in {account.currency}.")
    return found


ANALYZE_AFTER = 1000  # accounts created at once


def _plans_refresh(table: str) -> None:
    """``ANALYZE`` the accounts table after creating many accounts in this transaction.

    A plan cached earlier in the session while the table was small (the deferred foreign
    key check of ``royalties_posting.account_id``, made when this connection first posted)
    is a sequential scan, and PostgreSQL keeps it while the table grows inside one
    transaction: the approval's commit would then read every account for every posting
    (20,000 holders, on a connection that had posted before: 38 s at commit instead of
    0.7 s; quadratic, so hours for 200,000). ANALYZE counts this transaction's own new
    rows, and its new statistics invalidate the cached plans, which are made again with the
    table's real size. It takes tens of milliseconds (a sample); without the owner's rights
    PostgreSQL skips it with a warning."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")


def _accounts_by_code(codes: list[str], chunk: int = 5000) -> dict[str, LedgerAccount]:
    """The accounts with these codes, read as rows and made into instances directly (the
    ORM's per-row and per-parameter work, not a query per account, is what costs at 10^5
    accounts): one ``code = ANY(array)`` query on PostgreSQL, ``IN`` chunks elsewhere."""
    fields = [f.attname for f in LedgerAccount._meta.concrete_fields]
    code_at = fields.index("code")
    db = LedgerAccount.objects.db
    if connection.vendor == "postgresql":
        columns = ", ".join(
            connection.ops.quote_name(f.column) for f in LedgerAccount._meta.concrete_fields
        )
        table = connection.ops.quote_name(LedgerAccount._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {columns} FROM {table} WHERE code = ANY(%s::text[])",  # noqa: S608  # nosec B608 - model table and columns; codes are a param
                [list(codes)],
            )
            rows = cursor.fetchall()
    else:
        rows = []
        for start in range(0, len(codes), chunk):
            rows += (
                LedgerAccount.objects.filter(code__in=codes[start : start + chunk])
                .order_by()
                .values_list(*fields)
            )
    return {row[code_at]: LedgerAccount.from_db(db, fields, row) for row in rows}
