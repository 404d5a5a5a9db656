import pytest
from django.db import IntegrityError, connection, transaction
from hypothesis import given
from hypothesis import strategies as st

from accounts.errors import AccountsError
from accounts.models import Membership, Organisation, OrganisationKind, Role, User
from accounts.party_ids import normalise_company_number, normalise_ipi_name_number, normalise_isni
from accounts.services import organisation_create


def _ipi_check(base9: str) -> str:
    total = sum(int(d) * w for d, w in zip(base9, range(10, 1, -1), strict=True))
    r = total % 101
    return f"{0 if r == 0 else (101 - r) % 100:02d}"


def test_a_published_ipi_name_number_validates():
    assert normalise_ipi_name_number("00014107338") == "00014107338"
    assert normalise_ipi_name_number("14107338") == "00014107338"  # leading zeros dropped


@given(st.from_regex(r"[0-9]{9}", fullmatch=True), st.integers(0, 8), st.integers(1, 9))
def test_ipi_check_digits_catch_any_single_digit_change(base9, position, delta):
    valid = base9 + _ipi_check(base9)
    assert normalise_ipi_name_number(valid) == valid
    changed = list(valid)
    changed[position] = str((int(changed[position]) + delta) % 10)
    with pytest.raises(ValueError, match="check digits"):
        normalise_ipi_name_number("".join(changed))


@pytest.mark.parametrize(
    "value, canonical",
    [("0000 0001 2146 438X", "000000012146438X"), ("000000012146438x", "000000012146438X")],
)
def test_isni_is_validated_and_compacted(value, canonical):
    assert normalise_isni(value) == canonical


@pytest.mark.parametrize("value", ["0000000121464381", "12345", "000000012146438Y"])
def test_invalid_isni_is_refused(value):
    with pytest.raises(ValueError, match="ISNI"):
        normalise_isni(value)


def test_company_number_keeps_a_strict_common_shape():
    assert normalise_company_number(" rcs paris 852 379 890 ") == "RCS PARIS 852 379 890"
    for bad in ("", "x", "12;DROP", "A" * 41):
        with pytest.raises(ValueError):
            normalise_company_number(bad)


@pytest.mark.django_db
def test_registry_codes_are_sequential_per_kind_and_human_readable():
    codes = [
        organisation_create(
            creator=None, name=f"H{i}", kind=OrganisationKind.RIGHTS_HOLDER, country="GB"
        ).code
        for i in range(3)
    ]
    licensee = organisation_create(creator=None, name="L", kind="licensee", country="FR")
    assert codes == ["RH-000001", "RH-000002", "RH-000003"]
    assert licensee.code == "LI-000001"


@pytest.mark.django_db
def test_creator_becomes_owner_and_the_creation_is_audited():
    user = User.objects.create_user(email="a@example.test", password="x" * 12)
    organisation = organisation_create(
        creator=user, name="Press", kind="rights_holder", country="gb", isni="0000 0001 2146 438X"
    )
    assert organisation.isni == "000000012146438X"
    assert organisation.country.code == "GB"
    assert Membership.objects.get(user=user, organisation=organisation).role == Role.OWNER
    event = organisation.audit_events.get(action="organisation.create")
    assert event.actor == user
    assert event.details["code"] == organisation.code


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"kind": "rights_holder", "isni": "0000000121464381"}, "isni"),
        ({"kind": "rights_holder", "ipi_name_number": "00014107339"}, "ipi_name_number"),
        ({"kind": "licensee", "isni": "000000012146438X"}, "isni"),
        ({"kind": "rights_holder", "company_number": "14567890"}, "company_number"),
    ],
)
def test_bad_or_misplaced_party_identifiers_are_refused_per_field(kwargs, field):
    with pytest.raises(AccountsError) as caught:
        organisation_create(creator=None, name="X", country="GB", **kwargs)
    assert field in caught.value.details
    assert not Organisation.objects.exists()


@pytest.mark.django_db
def test_an_isni_cannot_be_registered_twice():
    organisation_create(
        creator=None, name="A", kind="rights_holder", country="GB", isni="000000012146438X"
    )
    with pytest.raises(AccountsError, match="Another organisation"):
        organisation_create(
            creator=None, name="B", kind="rights_holder", country="GB", isni="000000012146438X"
        )


@pytest.mark.django_db
def test_unknown_country_is_refused():
    with pytest.raises(AccountsError, match="country"):
        organisation_create(creator=None, name="A", kind="rights_holder", country="XX")


@pytest.mark.django_db
def test_only_staff_may_create_the_society():
    user = User.objects.create_user(email="a@example.test", password="x" * 12)
    with pytest.raises(AccountsError, match="staff"):
        organisation_create(creator=user, name="S", kind="society", country="GB")


@pytest.mark.django_db
def test_database_refuses_a_licensee_with_an_ipi_number_even_bypassing_services():
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_organisation (name, kind, code, country, isni, "
            "ipi_name_number, company_number, contact_email, created_at) VALUES "
            "('L', 'licensee', 'LI-999999', 'GB', '', '00014107338', '', '', %s)",
            ["2026-01-01T00:00:00Z"],
        )
