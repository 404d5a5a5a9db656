"""Booking an approved cycle: every movement its allocation decided, as balanced entries.

Accounts (per currency): `deferred_revenue` (licence money not yet earned), `processing_fees`,
`distribution_pool` (a clearing account: what comes in for the cycle goes out again in the same
approval, so it is back to zero afterwards), `admin_fee_income:<product>`,
`suspense:<reason>`, `retained_funds`, and per holder `holder:<code>` (owed, carried forward)
and `holder_payable:<code>` (owed and due in the payout run).

Entries, each idempotent by a key naming the cycle:
1. recognise  Dr deferred_revenue / Cr processing_fees, Cr distribution_pool
2. release    Dr suspense:<reason> / Cr distribution_pool      (money leaving suspense)
3. retain     Dr suspense:<reason> / Cr retained_funds         (held past the policy's hold)
4. fee        Dr distribution_pool / Cr admin_fee_income:<product>
5. suspense   Dr distribution_pool / Cr suspense:<reason>
6. allocate   Dr distribution_pool / Cr holder:<code>          (earned, per holder)
7. payable    Dr holder:<code> / Cr holder_payable:<code>      (what is paid now; the rest of
              the holder's account is what it carries forward)
"""

from __future__ import annotations

from collections import defaultdict

from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Organisation, User
from licensing.services.licences import deferred_revenue_account, fees_account
from royalties.engine.rounding import largest_remainder
from royalties.errors import LedgerError
from royalties.models import (
    AccountKind,
    Cycle,
    CycleLicence,
    LedgerAccount,
    PayoutReturn,
    Statement,
    SuspenseItem,
    SuspenseRelease,
)
from royalties.services.ledger import (
    ANALYZE_AFTER,
    Line,
    _plans_refresh,
    journal_entry_post,
    journal_entry_post_query,
    ledger_account_get_or_create,
    ledger_accounts_ensure,
)


def _account(code: str, name: str, kind: str, currency: str) -> LedgerAccount:
    return ledger_account_get_or_create(
        code=f"{code}:{currency}", name=f"{name} ({currency})", kind=kind, currency=currency
    )


def pool_account(currency: str) -> LedgerAccount:
    return _account("distribution_pool", "Distribution pool", AccountKind.LIABILITY, currency)


def suspense_account(reason: str, currency: str) -> LedgerAccount:
    return _account(f"suspense:{reason}", f"Suspense: {reason}", AccountKind.LIABILITY, currency)


def fee_income_account(product: str, currency: str) -> LedgerAccount:
    return _account(
        f"admin_fee_income:{product}",
        f"Administration fees: {product}",
        AccountKind.INCOME,
        currency,
    )


def retained_account(currency: str) -> LedgerAccount:
    return _account("retained_funds", "Retained funds", AccountKind.EQUITY, currency)


def holder_account_codes(code: str, currency: str) -> tuple[str, str]:
    return f"holder:{code}:{currency}", f"holder_payable:{code}:{currency}"


def fee_income_split(breakdown: dict[str, int], total: int, *, licences: int) -> dict[str, int]:
    """The administration fee income per product, adding up to the allocation's fee total.

    The total comes from the cycle's one rounding over all buckets and is what moves; the
    per-licence breakdown is rounded on its own (for the licence report), so the two can differ
    by up to one minor unit per licence. Then the total is split over the products in
    proportion to the breakdown by largest remainder (exact, deterministic: ties by product
    code). A larger difference is a defect and raises."""
    if sum(breakdown.values()) == total:
        return dict(breakdown)
    if abs(sum(breakdown.values()) - total) > max(licences, 1) or not breakdown:
        raise LedgerError(
            "The per-licence fees are further from the allocation's fee total than rounding "
            f"explains: {sum(breakdown.values())} against {total}."
        )
    products = sorted(breakdown)
    weights = [max(breakdown[p], 0) for p in products]
    if not sum(weights):
        weights = [1] * len(products)
    parts = largest_remainder([w * total for w in weights], sum(weights), total, keys=products)
    return dict(zip(products, parts, strict=True))


def cycle_book(*, cycle: Cycle, approved_by: User) -> None:
    """Post the approved allocation of ``cycle`` (inside the approval's transaction)."""
    allocation = cycle.current_allocation
    currency = cycle.currency
    key = f"cycle:{cycle.pk}:allocation:{allocation.number}"
    day = cycle.period_end
    common = {
        "source_type": "cycle",
        "source_id": cycle.pk,
        "effective_date": day,
        "created_by": approved_by,
    }
    pool = pool_account(currency)

    def post(
        name: str,
        lines: list[Line],
        description: str,
        rows: tuple[str, list] | None = None,
    ) -> None:
        lines = [line for line in lines if line.amount_minor != 0]
        if rows is not None:  # postings from a query (PostgreSQL), then ``lines``
            journal_entry_post_query(
                idempotency_key=f"{key}:{name}",
                rows_sql=rows[0],
                rows_params=rows[1],
                lines=lines,
                description=f"{cycle.period} {description}",
                **common,
            )
        elif lines:
            journal_entry_post(
                idempotency_key=f"{key}:{name}",
                lines=lines,
                description=f"{cycle.period} {description}",
                **common,
            )

    licences = CycleLicence.objects.filter(allocation=allocation)
    recognised = sum(cl.recognised_minor for cl in licences)
    processing = sum(cl.processing_fee_minor for cl in licences)
    post(
        "recognise",
        [
            Line(deferred_revenue_account(currency=currency), recognised),
            Line(fees_account(currency=currency), -processing),
            Line(pool, -(recognised - processing)),
        ],
        "licence revenue recognised, net of processing fees",
    )

    releases = list(
        SuspenseRelease.objects.filter(pk__in=allocation.releases).select_related("item")
    )
    retained = list(
        SuspenseRelease.objects.filter(
            cycle__isnull=True, kind=SuspenseRelease.Kind.RETAIN, item__currency=currency
        ).select_related("item")
    )
    for name, group, counter in (
        ("release", releases, pool),
        ("retain", retained, retained_account(currency) if retained else None),
    ):
        by_reason: dict[str, int] = defaultdict(int)
        for release in group:
            by_reason[release.item.reason] += release.item.amount_minor
        total = sum(by_reason.values())
        post(
            name,
            [Line(suspense_account(r, currency), amount) for r, amount in sorted(by_reason.items())]
            + ([Line(counter, -total)] if total else []),
            f"suspense {name}d",
        )
    SuspenseRelease.objects.filter(pk__in=[r.pk for r in releases + retained]).update(cycle=cycle)
    # Payout returns brought forward: already credited to holder:<code> when they happened.
    PayoutReturn.objects.filter(pk__in=allocation.payout_returns, cycle__isnull=True).update(
        cycle=cycle
    )

    totals = allocation.totals
    breakdown: dict[str, int] = defaultdict(int)
    for cl in licences:
        breakdown[cl.product_code] += cl.fee_minor
    fees = fee_income_split(breakdown, totals["fee_minor"], licences=len(licences))
    post(
        "fee",
        [Line(fee_income_account(p, currency), -a) for p, a in sorted(fees.items())]
        + [Line(pool, totals["fee_minor"])],
        "administration fee",
    )

    by_reason = defaultdict(int)
    for reason, amount in SuspenseItem.objects.filter(allocation=allocation).values_list(
        "reason", "amount_minor"
    ):
        by_reason[reason] += amount
    post(
        "suspense",
        [Line(suspense_account(r, currency), -a) for r, a in sorted(by_reason.items())]
        + [Line(pool, sum(by_reason.values()))],
        "held in suspense",
    )

    if connection.vendor == "postgresql":
        _holders_book_sql(allocation_id=allocation.pk, currency=currency, pool=pool, post=post)
        return
    statements = list(
        Statement.objects.filter(allocation=allocation).values_list(
            "holder_id", "earned_minor", "payable_minor"
        )
    )
    codes = dict(
        Organisation.objects.filter(pk__in=[s[0] for s in statements]).values_list("pk", "code")
    )
    specs = []
    for holder_id, _, _ in statements:
        owed, payable = holder_account_codes(codes[holder_id], currency)
        specs.append(
            (owed, f"Owed to {codes[holder_id]}", AccountKind.LIABILITY, currency, holder_id)
        )
        specs.append(
            (payable, f"Payable to {codes[holder_id]}", AccountKind.LIABILITY, currency, holder_id)
        )
    accounts = ledger_accounts_ensure(specs)
    earned_lines, payable_lines = [], []
    for holder_id, earned, payable in statements:
        owed, due = holder_account_codes(codes[holder_id], currency)
        if earned:
            earned_lines.append(Line(accounts[owed], -earned))
        if payable:
            payable_lines.append(Line(accounts[owed], payable))
            payable_lines.append(Line(accounts[due], -payable))
    post(
        "allocate",
        [*earned_lines, Line(pool, sum(-line.amount_minor for line in earned_lines))],
        "allocated to rights holders",
    )
    post("payable", payable_lines, "payable in the payout run; the rest is carried forward")


# The holders' side of an approval on PostgreSQL, set-based: two accounts per holder and a
# posting per holder (or two) come from the statements in the database, joined to the accounts
# by code, never through Python objects (200,000 holders: 400,000 accounts, 200,000 postings
# and more). Same accounts, codes, names, entries and postings as the Python path above
# ``cycle_book`` uses elsewhere (SQLite), and the same checks.

_FROM_STATEMENTS = "FROM royalties_statement s JOIN accounts_organisation o ON o.id = s.holder_id "
# Account codes from the organisation (alias o) and a currency param, as holder_account_codes.
_OWED = "'holder:' || o.code || ':' || %s"
_DUE = "'holder_payable:' || o.code || ':' || %s"
# The allocate entry's postings: Cr holder:<code> the holder's earnings; params currency,
# allocation.
_ALLOCATE_ROWS = (
    "SELECT a.id AS account_id, -s.earned_minor AS amount_minor, a.currency AS currency "
    f"{_FROM_STATEMENTS}JOIN royalties_ledgeraccount a ON a.code = {_OWED} "
    "WHERE s.allocation_id = %s AND s.earned_minor <> 0 ORDER BY s.holder_id"
)
# The payable entry's postings: Dr holder:<code> / Cr holder_payable:<code> what is paid now;
# params currency, currency, allocation.
_PAYABLE_ROWS = (
    "SELECT a.id AS account_id, v.amount_minor, a.currency AS currency "
    f"{_FROM_STATEMENTS}CROSS JOIN LATERAL (VALUES (1, {_OWED}, s.payable_minor), "
    f"(2, {_DUE}, -s.payable_minor)) v(k, code, amount_minor) "
    "JOIN royalties_ledgeraccount a ON a.code = v.code "
    "WHERE s.allocation_id = %s AND s.payable_minor <> 0 ORDER BY s.holder_id, v.k"
)
# Both accounts of every statement's holder; params currency, allocation, currency, allocation.
_HOLDER_ACCOUNTS = (
    f"SELECT {_OWED} AS code, 'Owed to ' || o.code AS name, o.id AS organisation_id "
    f"{_FROM_STATEMENTS}WHERE s.allocation_id = %s UNION ALL "
    f"SELECT {_DUE}, 'Payable to ' || o.code, o.id {_FROM_STATEMENTS}WHERE s.allocation_id = %s"
)


def _holder_accounts_ensure_sql(*, allocation_id: int, currency: str) -> None:
    """holder:<code> and holder_payable:<code> for every statement's holder, the missing ones
    created in one ``INSERT ... SELECT`` in code order (the unique index is filled in order),
    then every one checked to be a liability in ``currency`` (as ``ledger_accounts_ensure``)."""
    wanted = _HOLDER_ACCOUNTS
    wanted_params = [currency, allocation_id, currency, allocation_id]
    table = connection.ops.quote_name(LedgerAccount._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (code, name, kind, currency, organisation_id, created_at) "  # noqa: S608  # nosec B608 - model table and constant SQL; values are params
            f"SELECT w.code, w.name, %s, %s, w.organisation_id, %s FROM ({wanted}) w "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} a WHERE a.code = w.code) "
            "ORDER BY w.code ON CONFLICT (code) DO NOTHING",
            [str(AccountKind.LIABILITY), currency, timezone.now(), *wanted_params],
        )
        created = cursor.rowcount
        cursor.execute(
            f"SELECT a.code, a.kind, a.currency FROM ({wanted}) w "  # noqa: S608  # nosec B608 - model table and constant SQL; values are params
            f"JOIN {table} a ON a.code = w.code WHERE a.kind <> %s OR a.currency <> %s LIMIT 1",
            [*wanted_params, str(AccountKind.LIABILITY), currency],
        )
        wrong = cursor.fetchone()
    if wrong is not None:
        raise LedgerError(f"Account {wrong[0]} exists as {wrong[1]} in {wrong[2]}.")
    if created >= ANALYZE_AFTER:
        _plans_refresh(table)


def _holders_book_sql(*, allocation_id: int, currency: str, pool: LedgerAccount, post) -> None:
    """Entries 6 (allocate) and 7 (payable) of ``cycle_book``, from the statements."""
    _holder_accounts_ensure_sql(allocation_id=allocation_id, currency=currency)
    earned = (
        Statement.objects.filter(allocation_id=allocation_id)
        .exclude(earned_minor=0)
        .aggregate(total=Sum("earned_minor"))["total"]
        or 0
    )
    post(
        "allocate",
        [Line(pool, earned)],
        "allocated to rights holders",
        rows=(_ALLOCATE_ROWS, [currency, allocation_id]),
    )
    post(
        "payable",
        [],
        "payable in the payout run; the rest is carried forward",
        rows=(_PAYABLE_ROWS, [currency, currency, allocation_id]),
    )
