from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from hypothesis import given
from hypothesis import strategies as st

from licensing.errors import LicensingError, ShareError
from licensing.models import Share, Work
from licensing.services.repertoire import (
    share_percent_from_ppm,
    share_ppm_from_percent,
    work_consent_set,
    work_shares_set,
)
from tests.licensing.factories import caller_of, catalogue_for, work_in


@given(st.integers(min_value=1, max_value=1_000_000))
def test_share_percent_and_ppm_round_trip_exactly(ppm):
    assert share_ppm_from_percent(str(share_percent_from_ppm(ppm))) == ppm


@given(st.decimals(min_value=Decimal("0.00001"), max_value=100, places=5))
def test_shares_with_a_fifth_decimal_are_refused_not_rounded(value):
    if value == value.quantize(Decimal("0.0001")):
        return  # trailing zero: really four decimals
    with pytest.raises(ShareError, match="four decimals"):
        share_ppm_from_percent(str(value))


@pytest.mark.parametrize("bad", ["0", "-5", "100.0001", "abc", "", "NaN", "Infinity", "1e400"])
def test_out_of_range_or_non_numeric_shares_are_refused(bad):
    with pytest.raises(ShareError):
        share_ppm_from_percent(bad)


def test_thirds_are_stored_exactly():
    assert [share_ppm_from_percent(s) for s in ("33.3333", "33.3333", "33.3334")] == [
        333_333,
        333_333,
        333_334,
    ]


@pytest.mark.django_db
def test_a_work_is_enrolled_with_normalised_identifiers_and_exact_shares(rights_holder, co_holder):
    catalogue = catalogue_for(rights_holder)
    work = work_in(
        catalogue,
        rights_holder,
        "W1",
        isbn="0-439-02348-3",
        doi="https://doi.org/10.1000/ABC",
        shares=[
            {"share": "60"},
            {"holder": co_holder.organisation.code, "share": "40", "role": "publisher"},
        ],
    )
    assert {(i.scheme, i.value) for i in work.identifiers.all()} == {
        ("isbn", "9780439023481"),
        ("doi", "10.1000/abc"),
    }
    assert sorted(work.shares.values_list("holder__code", "share_ppm")) == sorted(
        [
            (rights_holder.organisation.code, 600_000),
            (co_holder.organisation.code, 400_000),
        ]
    )
    assert work.consent_for("training") == "licensed"  # inherits the catalogue default


@pytest.mark.django_db
def test_shares_over_100_percent_are_refused_by_the_service(rights_holder, co_holder):
    catalogue = catalogue_for(rights_holder)
    with pytest.raises(ShareError, match="more than 100%"):
        work_in(
            catalogue,
            rights_holder,
            "W1",
            isbn="9780439023481",
            shares=[{"share": "60"}, {"holder": co_holder.organisation.code, "share": "40.0001"}],
        )
    assert not Work.objects.exists()


@pytest.mark.django_db
def test_the_database_refuses_shares_over_100_percent_written_by_raw_sql(rights_holder, co_holder):
    catalogue = catalogue_for(rights_holder)
    work = work_in(catalogue, rights_holder, "W1", isbn="9780439023481", shares=[{"share": "70"}])
    refused = (IntegrityError, DatabaseError)
    with pytest.raises(refused), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO licensing_share (work_id, holder_id, role, share_ppm) "
            "VALUES (%s, %s, 'publisher', 300001)",
            [work.pk, co_holder.organisation.pk],
        )
    with transaction.atomic(), connection.cursor() as cursor:  # exactly 100% is fine
        cursor.execute(
            "INSERT INTO licensing_share (work_id, holder_id, role, share_ppm) "
            "VALUES (%s, %s, 'publisher', 300000)",
            [work.pk, co_holder.organisation.pk],
        )
    # each row stays within its own 0-100% check; only the sum is wrong
    with pytest.raises(refused), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE licensing_share SET share_ppm = share_ppm + 1 WHERE work_id = %s "
            "AND role = 'author'",
            [work.pk],
        )
    assert sum(Share.objects.filter(work=work).values_list("share_ppm", flat=True)) == 1_000_000


@pytest.mark.django_db
def test_replacing_shares_is_audited_and_keeps_the_invariant(rights_holder, co_holder):
    catalogue = catalogue_for(rights_holder)
    work = work_in(catalogue, rights_holder, "W1", isbn="9780439023481")
    work_shares_set(
        caller=caller_of(rights_holder),
        work=work,
        shares=[
            {"share": "50"},
            {"holder": co_holder.organisation.code, "share": "50"},
        ],
    )
    assert sorted(work.shares.values_list("share_ppm", flat=True)) == [500_000, 500_000]
    from accounts.models import AuditEvent

    event = AuditEvent.objects.get(action="work.shares_set")
    assert event.details["before"] == [[rights_holder.organisation.code, "author", 1_000_000]]


@pytest.mark.django_db
def test_unknown_holder_codes_are_named_in_the_error(rights_holder):
    catalogue = catalogue_for(rights_holder)
    with pytest.raises(ShareError) as caught:
        work_in(
            catalogue,
            rights_holder,
            "W1",
            isbn="9780439023481",
            shares=[{"holder": "RH-999999", "share": "10"}],
        )
    assert "RH-999999" in str(caught.value.details)


@pytest.mark.django_db
def test_bulk_consent_changes_only_the_callers_works(rights_holder, outsider):
    mine = catalogue_for(rights_holder)
    theirs = catalogue_for(outsider)
    w1 = work_in(mine, rights_holder, "A", isbn="9780439023481")
    w2 = work_in(mine, rights_holder, "B", isbn="9780306406157")
    other = work_in(theirs, outsider, "C", isbn="9781861972712")
    changed = work_consent_set(
        caller=caller_of(rights_holder),
        works=Work.objects.all(),
        consent="reserved",
        uses=["training"],
    )
    assert changed == 2
    for work in (w1, w2):
        work.refresh_from_db()
        assert work.consent_for("training") == "reserved"
        assert work.consent_for("rag") == "licensed"
    other.refresh_from_db()
    assert other.consent_for("training") == "licensed"
    # setting it again changes nothing
    assert (
        work_consent_set(
            caller=caller_of(rights_holder),
            works=Work.objects.all(),
            consent="reserved",
            uses=["training"],
        )
        == 0
    )


@pytest.mark.django_db
def test_licensees_cannot_enrol_catalogues(licensee):
    with pytest.raises(LicensingError, match="Only rights holders"):
        catalogue_for(licensee)


@pytest.mark.django_db
def test_duplicate_work_ref_in_a_catalogue_is_refused(rights_holder):
    catalogue = catalogue_for(rights_holder)
    work_in(catalogue, rights_holder, "W1", isbn="9780439023481")
    with pytest.raises(LicensingError, match="has a work 'W1' already"):
        work_in(catalogue, rights_holder, "W1", isbn="9780306406157")
