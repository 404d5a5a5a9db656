from datetime import date

import pytest
from django.db import DatabaseError, connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from royalties.errors import LedgerError
from royalties.models import JournalEntry, Posting
from royalties.services.ledger import (
    Line,
    journal_entry_post,
    journal_entry_reverse,
    ledger_account_balance,
    ledger_account_get_or_create,
    ledger_trial_balance,
)
from tests.conftest import skip_or_fail

TODAY = date(2026, 11, 25)


def _accounts(currency="EUR"):
    cash = ledger_account_get_or_create(
        code=f"cash:{currency}", name="Cash", kind="asset", currency=currency
    )
    deferred = ledger_account_get_or_create(
        code=f"deferred:{currency}", name="Deferred", kind="liability", currency=currency
    )
    fees = ledger_account_get_or_create(
        code=f"fees:{currency}", name="Fees", kind="expense", currency=currency
    )
    return cash, deferred, fees


def _post(key, lines):
    return journal_entry_post(
        idempotency_key=key,
        lines=lines,
        source_type="test",
        source_id=1,
        description="test",
        effective_date=TODAY,
    )


@pytest.mark.django_db
def test_a_payment_with_its_processor_fee_books_balanced():
    cash, deferred, fees = _accounts()
    entry = _post("payment:1", [Line(cash, 98_475), Line(fees, 1_525), Line(deferred, -100_000)])
    assert sorted(entry.postings.values_list("amount_minor", flat=True)) == [
        -100_000,
        1_525,
        98_475,
    ]
    assert ledger_account_balance(account=cash) == 98_475
    assert ledger_trial_balance() == {"EUR": 0}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "amounts, message",
    [([100, -99], "does not balance"), ([100], "at least two"), ([100, 0, -100], "zero posting")],
)
def test_unbalanced_single_or_zero_postings_are_refused(amounts, message):
    cash, deferred, _ = _accounts()
    accounts = [cash, deferred, cash]
    with pytest.raises(LedgerError, match=message):
        _post("bad", [Line(accounts[i], a) for i, a in enumerate(amounts)])
    assert not JournalEntry.objects.exists()


@pytest.mark.django_db
def test_each_currency_must_balance_on_its_own():
    eur_cash, _, _ = _accounts("EUR")
    usd_cash, _, _ = _accounts("USD")
    with pytest.raises(LedgerError, match="does not balance"):
        _post("fx", [Line(eur_cash, 100), Line(usd_cash, -100)])


def test_floats_never_reach_the_ledger():
    with pytest.raises(LedgerError, match="integers"):
        Line(account=None, amount_minor=10.5)


@pytest.mark.django_db
def test_posting_the_same_key_twice_books_once_and_different_lines_are_refused():
    cash, deferred, _ = _accounts()
    first = _post("payment:7", [Line(cash, 500), Line(deferred, -500)])
    again = _post("payment:7", [Line(deferred, -500), Line(cash, 500)])
    assert again.pk == first.pk and JournalEntry.objects.count() == 1
    with pytest.raises(LedgerError, match="different postings"):
        _post("payment:7", [Line(cash, 501), Line(deferred, -501)])


@pytest.mark.django_db
def test_a_reversal_undoes_an_entry_once():
    cash, deferred, _ = _accounts()
    entry = _post("payment:9", [Line(cash, 500), Line(deferred, -500)])
    reversal = journal_entry_reverse(entry=entry, description="refund", effective_date=TODAY)
    assert journal_entry_reverse(entry=entry, description="again", effective_date=TODAY) == reversal
    assert reversal.reverses == entry
    assert ledger_account_balance(account=cash) == 0
    assert Posting.objects.count() == 4


@pytest.mark.django_db
def test_posted_rows_cannot_be_updated_or_deleted_bypassing_the_orm():
    cash, deferred, _ = _accounts()
    entry = _post("payment:3", [Line(cash, 500), Line(deferred, -500)])
    for statement in (
        "UPDATE royalties_posting SET amount_minor = 600 WHERE entry_id = %s",
        "DELETE FROM royalties_posting WHERE entry_id = %s",
        "UPDATE royalties_journalentry SET description = 'x' WHERE id = %s",
        "DELETE FROM royalties_journalentry WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="immutable"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [entry.pk])
    assert ledger_account_balance(account=cash) == 500


@pytest.mark.services
@pytest.mark.django_db
def test_postgresql_checks_an_entry_again_when_a_posting_is_added_after_its_check():
    """The trigger checks each entry once (migration 0006) and remembers the highest posting
    it summed: a posting added to the same entry later in the transaction is checked again
    with all of them, so the entry cannot be unbalanced after its first check."""
    if connection.vendor != "postgresql":
        skip_or_fail("the deferred balance trigger is PostgreSQL's: set DATABASE_URL")
    cash, deferred, _ = _accounts()
    with (
        pytest.raises(DatabaseError, match="does not balance in EUR \\(off by 7\\)"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO royalties_journalentry (idempotency_key, source_type, source_id, "
            "description, effective_date, posted_at) VALUES ('raw-twice', 'test', '1', 'raw', "
            "'2026-11-25', now()) RETURNING id"
        )
        raw_id = cursor.fetchone()[0]
        values = ", ".join(["(%s, %s, 1, 'EUR'), (%s, %s, -1, 'EUR')"] * 500)
        cursor.execute(
            "INSERT INTO royalties_posting (entry_id, account_id, amount_minor, currency) "
            f"VALUES {values}",
            [raw_id, cash.pk, raw_id, deferred.pk] * 500,
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # 1,000 postings: balanced, checked
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute(
            "INSERT INTO royalties_posting (entry_id, account_id, amount_minor, currency) "
            "VALUES (%s, %s, 7, 'EUR')",
            [raw_id, cash.pk],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what COMMIT would do


@pytest.mark.services
@pytest.mark.django_db
def test_postgresql_refuses_an_unbalanced_entry_written_by_raw_sql():
    if connection.vendor != "postgresql":
        skip_or_fail("the deferred balance trigger is PostgreSQL's: set DATABASE_URL")
    cash, deferred, _ = _accounts()
    usd_cash, _, _ = _accounts("USD")
    entry = _post("payment:4", [Line(cash, 500), Line(deferred, -500)])
    with (
        pytest.raises(DatabaseError, match="does not balance"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO royalties_journalentry (idempotency_key, source_type, source_id, "
            "description, effective_date, posted_at) VALUES ('raw', 'test', '1', 'raw', "
            "'2026-11-25', now()) RETURNING id"
        )
        raw_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO royalties_posting (entry_id, account_id, amount_minor, currency) "
            "VALUES (%s, %s, 100, 'EUR'), (%s, %s, -99, 'EUR')",
            [raw_id, cash.pk, raw_id, deferred.pk],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what COMMIT would do
    with (
        pytest.raises(DatabaseError, match="differs from its account"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO royalties_posting (entry_id, account_id, amount_minor, currency) "
            "VALUES (%s, %s, 100, 'EUR')",
            [entry.pk, usd_cash.pk],
        )
    assert ledger_trial_balance() == {"EUR": 0}


class TestLedgerProperties(TestCase):
    @settings(max_examples=30, deadline=None)
    @given(
        st.lists(
            st.lists(
                st.integers(min_value=-(10**15), max_value=10**15).filter(bool),
                min_size=1,
                max_size=5,
            ),
            min_size=1,
            max_size=6,
        )
    )
    def test_any_sequence_of_balanced_entries_keeps_the_trial_balance_at_zero(self, entries):
        accounts = _accounts()
        for index, debits in enumerate(entries):
            lines = [Line(accounts[i % 2], amount) for i, amount in enumerate(debits)]
            if sum(debits):
                lines.append(Line(accounts[2], -sum(debits)))
            if len(lines) >= 2:
                _post(f"p:{index}", lines)
        assert ledger_trial_balance() in ({"EUR": 0}, {})
        total = sum(ledger_account_balance(account=a) for a in accounts)
        assert total == 0
