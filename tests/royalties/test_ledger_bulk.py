"""The ledger at a cycle's size (issue 10): accounts created and entries posted set-based,
with the same accounts, postings and checks as one by one.

Approving a cycle opens two accounts per holder and posts an entry with a posting per holder.
Two lookups of a posting's account ran once per posting with a plan PostgreSQL had cached
while the accounts table was small (a sequential scan, kept while the table grew inside the
approval's transaction), so approval read every account for every posting: the currency
check (royalties migration 0007 made it one join per INSERT statement) and, on a connection
that had posted before, the deferred foreign key check at commit (creating many accounts
now analyses the table, which makes the cached plans again)."""

from datetime import date

import pytest
from django.db import DatabaseError, connection, transaction

from accounts.models import Organisation
from royalties.errors import LedgerError
from royalties.models import AccountKind, LedgerAccount, Posting
from royalties.services.ledger import (
    Line,
    journal_entry_post,
    ledger_account_get_or_create,
    ledger_accounts_ensure,
    ledger_trial_balance,
)
from tests.conftest import skip_or_fail

TODAY = date(2026, 11, 25)
pytestmark = pytest.mark.django_db


def _post(key, lines):
    return journal_entry_post(
        idempotency_key=key,
        lines=lines,
        source_type="test",
        source_id=1,
        description="test",
        effective_date=TODAY,
    )


def _holders(n):
    Organisation.objects.bulk_create(
        Organisation(
            name=f"Holder {i}", kind="rights_holder", code=f"RH-BULK-{i:04d}", country="FR"
        )
        for i in range(n)
    )
    return list(
        Organisation.objects.filter(code__startswith="RH-BULK-")
        .order_by("code")
        .values_list("pk", "code")
    )


def _specs(holders, currency="EUR"):
    specs = []
    for pk, code in holders:
        specs.append((f"holder:{code}:{currency}", f"Owed to {code}", "liability", currency, pk))
        specs.append(
            (f"holder_payable:{code}:{currency}", f"Payable to {code}", "liability", currency, pk)
        )
    return specs


def test_ensure_creates_the_missing_accounts_in_order_and_returns_the_existing_ones():
    holders = _holders(30)
    specs = _specs(holders)
    existing = ledger_account_get_or_create(
        code=specs[3][0], name=specs[3][1], kind="liability", currency="EUR"
    )
    shared = ("suspense:unclaimed:EUR", "Suspense: unclaimed", AccountKind.LIABILITY, "EUR", None)
    accounts = ledger_accounts_ensure([*specs, shared])

    assert set(accounts) == {spec[0] for spec in specs} | {shared[0]}
    assert accounts[specs[3][0]].pk == existing.pk
    stored = {a.code: a for a in LedgerAccount.objects.all()}
    assert len(stored) == len(specs) + 1
    for code, name, kind, currency, organisation_id in [*specs, shared]:
        if code == existing.code:
            continue
        account = accounts[code]
        assert account.pk == stored[code].pk
        got = (account.name, account.kind, account.currency, account.organisation_id)
        assert got == (name, kind, currency, organisation_id)
        got = (stored[code].name, stored[code].kind, stored[code].currency)
        assert got == (name, kind, currency)
        assert stored[code].organisation_id == organisation_id
        assert account.created_at is not None
    # Created in the order asked for (ids follow the specs), the existing one left alone.
    created = [stored[spec[0]].pk for spec in specs if spec[0] != existing.code]
    assert created == sorted(created)

    # Again: nothing new, the same accounts.
    again = ledger_accounts_ensure(specs)
    assert {code: a.pk for code, a in again.items()} == {
        spec[0]: accounts[spec[0]].pk for spec in specs
    }
    assert LedgerAccount.objects.count() == len(specs) + 1


def test_ensure_refuses_an_existing_account_of_another_kind_or_currency():
    holders = _holders(2)
    specs = _specs(holders)
    ledger_account_get_or_create(code=specs[1][0], name="x", kind="asset", currency="EUR")
    with pytest.raises(LedgerError, match="exists as asset in EUR"):
        ledger_accounts_ensure(specs)


def test_a_large_entry_books_every_posting_on_its_account_in_order_and_balanced():
    holders = _holders(200)
    accounts = ledger_accounts_ensure(_specs(holders))
    pool = ledger_account_get_or_create(
        code="distribution_pool:EUR", name="Pool", kind="liability", currency="EUR"
    )
    owed = [accounts[f"holder:{code}:EUR"] for _, code in holders]
    lines = [Line(account, -(i + 1)) for i, account in enumerate(owed)]
    lines.append(Line(pool, sum(i + 1 for i in range(len(owed)))))
    entry = _post("cycle:1:allocation:1:allocate", lines)

    postings = list(entry.postings.order_by("pk").values_list("account_id", "amount_minor"))
    assert postings == [(line.account.pk, line.amount_minor) for line in lines]
    assert set(entry.postings.values_list("currency", flat=True)) == {"EUR"}
    assert ledger_trial_balance() == {"EUR": 0}
    # Idempotent: the same lines return the entry, different ones are refused.
    assert _post("cycle:1:allocation:1:allocate", list(reversed(lines))).pk == entry.pk
    with pytest.raises(LedgerError, match="different postings"):
        swapped = [Line(lines[1].account, -1), Line(lines[0].account, -2), *lines[2:]]
        _post("cycle:1:allocation:1:allocate", swapped)
    assert Posting.objects.count() == len(lines)


@pytest.mark.services
def test_postgresql_refuses_a_posting_in_another_currency_among_many_in_one_insert():
    if connection.vendor != "postgresql":
        skip_or_fail("the posting currency trigger is PostgreSQL's: set DATABASE_URL")
    eur = ledger_account_get_or_create(code="a:EUR", name="A", kind="asset", currency="EUR")
    usd = ledger_account_get_or_create(code="a:USD", name="A", kind="asset", currency="USD")
    other = ledger_account_get_or_create(code="b:EUR", name="B", kind="liability", currency="EUR")
    entry = _post("payment:1", [Line(eur, 5), Line(other, -5)])
    rows = [(entry.pk, eur.pk, 1, "EUR")] * 50 + [(entry.pk, usd.pk, 1, "EUR")]
    with (
        pytest.raises(DatabaseError, match="posting currency EUR differs from its account's"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO royalties_posting (entry_id, account_id, amount_minor, currency) "
            "VALUES " + ", ".join(["(%s, %s, %s, %s)"] * len(rows)),
            [value for row in rows for value in row],
        )
    assert Posting.objects.count() == 2


@pytest.mark.services
def test_postgresql_checks_posting_currencies_once_per_statement_not_per_posting():
    """Without an index to look accounts up by (here: index scans disabled, as a plan cached
    while the accounts table was small does), a per-row check reads every account for every
    posting; the check per statement reads the accounts once for the whole entry."""
    if connection.vendor != "postgresql":
        skip_or_fail("the posting currency trigger is PostgreSQL's: set DATABASE_URL")
    holders = _holders(300)
    accounts = ledger_accounts_ensure(_specs(holders))
    pool = ledger_account_get_or_create(
        code="distribution_pool:EUR", name="Pool", kind="liability", currency="EUR"
    )
    lines = [Line(accounts[f"holder:{code}:EUR"], -1) for _, code in holders]
    lines.append(Line(pool, len(holders)))
    n_accounts = LedgerAccount.objects.count()

    def accounts_read():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
                "FROM pg_stat_xact_user_tables WHERE relname = 'royalties_ledgeraccount'"
            )
            row = cursor.fetchone()
        return row[0] if row else 0

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
    before = accounts_read()
    _post("cycle:1:allocation:1:allocate", lines)
    assert accounts_read() - before <= 3 * n_accounts  # per row: about 300 x 601
    assert ledger_trial_balance() == {"EUR": 0}


@pytest.mark.services
def test_postgresql_account_checks_at_commit_do_not_scan_every_account_per_posting():
    """A connection that posted before (the web process keeps it, CONN_MAX_AGE) has the
    deferred foreign key check of a posting's account planned while the accounts table was
    small: a sequential scan, kept while a cycle's approval adds its holders' accounts in one
    transaction, so at commit every posting read every account. Creating many accounts
    analyses the table, which makes the cached plans again with its real size."""
    if connection.vendor != "postgresql":
        skip_or_fail("the plans are PostgreSQL's: set DATABASE_URL")
    cash = ledger_account_get_or_create(code="c:EUR", name="C", kind="asset", currency="EUR")
    income = ledger_account_get_or_create(code="i:EUR", name="I", kind="income", currency="EUR")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'royalties_posting'::regclass "
            "AND contype = 'f' AND conname LIKE %s",
            ["%account%"],
        )
        (account_fk,) = cursor.fetchone()

    def checked_now():
        with connection.cursor() as cursor:
            cursor.execute(f'SET CONSTRAINTS "{account_fk}" IMMEDIATE')
            cursor.execute(f'SET CONSTRAINTS "{account_fk}" DEFERRED')

    # The plan of a small table, whatever this test database's size: no index scans while
    # the check is planned (PostgreSQL keeps a generic plan after five executions).
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
    for k in range(8):
        _post(f"sale:{k}", [Line(cash, 10), Line(income, -10)])
        checked_now()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = on")
        cursor.execute("SET LOCAL enable_bitmapscan = on")
    holders = _holders(600)
    accounts = ledger_accounts_ensure(_specs(holders))
    assert len(accounts) >= 1000  # services.ledger.ANALYZE_AFTER
    lines = [Line(accounts[f"holder:{code}:EUR"], -1) for _, code in holders]
    lines.append(Line(cash, len(holders)))
    n_accounts = LedgerAccount.objects.count()

    def accounts_read():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(seq_tup_read, 0) FROM pg_stat_xact_user_tables "
                "WHERE relname = 'royalties_ledgeraccount'"
            )
            row = cursor.fetchone()
        return row[0] if row else 0

    _post("cycle:1:allocation:1:allocate", lines)
    before = accounts_read()
    checked_now()
    assert accounts_read() - before <= 3 * n_accounts  # per posting: about 600 x 1,200


def _rows_sql():
    # Cr each holder's account 10, in code order; params: currency, code prefix
    return (
        "SELECT a.id AS account_id, -10 AS amount_minor, a.currency AS currency "
        "FROM royalties_ledgeraccount a WHERE a.currency = %s AND a.code LIKE %s ORDER BY a.code"
    )


def _post_query(key, params, lines):
    from royalties.services.ledger import journal_entry_post_query

    return journal_entry_post_query(
        idempotency_key=key,
        rows_sql=_rows_sql(),
        rows_params=params,
        lines=lines,
        source_type="test",
        source_id=1,
        description="test",
        effective_date=TODAY,
    )


@pytest.mark.services
def test_postgresql_an_entry_from_a_query_books_once_and_checks_as_journal_entry_post():
    if connection.vendor != "postgresql":
        skip_or_fail("postings from a query are PostgreSQL's: set DATABASE_URL")
    ledger_accounts_ensure(_specs(_holders(20)))
    pool = ledger_account_get_or_create(code="pool:EUR", name="P", kind="liability", currency="EUR")
    params = ["EUR", "holder:%"]

    entry = _post_query("cycle:1:allocate", params, [Line(pool, 200)])
    postings = list(entry.postings.order_by("pk").values_list("account__code", "amount_minor"))
    assert len(postings) == 21 and postings[-1] == ("pool:EUR", 200)
    assert [code for code, _ in postings[:-1]] == sorted(code for code, _ in postings[:-1])
    assert ledger_trial_balance() == {"EUR": 0}
    # The same key again: the first entry, nothing booked twice; other postings: refused.
    assert _post_query("cycle:1:allocate", params, [Line(pool, 200)]).pk == entry.pk
    assert Posting.objects.count() == 21
    with pytest.raises(LedgerError) as refused:
        _post_query("cycle:1:allocate", ["EUR", "holder_payable:%"], [Line(pool, 200)])
    assert refused.value.code == "idempotency_mismatch"
    # Unbalanced, too few postings, or nothing at all.
    with pytest.raises(LedgerError, match="does not balance"):
        _post_query("cycle:2:allocate", params, [Line(pool, 199)])
    with pytest.raises(LedgerError, match="at least two postings"):
        _post_query("cycle:3:allocate", ["EUR", "holder:RH-BULK-0000:%"], [])
    assert _post_query("cycle:4:allocate", ["EUR", "nothing:%"], []) is None
    assert Posting.objects.count() == 21


@pytest.mark.services
def test_postgresql_approval_refuses_a_holder_account_of_another_kind():
    if connection.vendor != "postgresql":
        skip_or_fail("the set-based approval is PostgreSQL's: set DATABASE_URL")
    from royalties.services.cycle_ledger import _holder_accounts_ensure_sql

    ((pk, code),) = _holders(1)
    ledger_account_get_or_create(
        code=f"holder_payable:{code}:EUR", name="Wrong", kind="asset", currency="EUR"
    )
    # A statement of this holder without a whole cycle (rolled back with the refusal, before
    # its foreign keys are checked).
    with (
        pytest.raises(LedgerError, match=f"holder_payable:{code}:EUR exists as asset in EUR"),
        transaction.atomic(),
    ):
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO royalties_statement (currency, brought_forward_minor, gross_minor, "
                "deductions_minor, earned_minor, total_minor, payable_minor, "
                "carried_forward_minor, allocation_id, cycle_id, holder_id) "
                "VALUES ('EUR', 0, 0, 0, 0, 0, 0, 0, -1, -1, %s)",
                [pk],
            )
        _holder_accounts_ensure_sql(allocation_id=-1, currency="EUR")
    assert not LedgerAccount.objects.filter(code=f"holder:{code}:EUR").exists()
