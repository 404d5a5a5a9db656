"""Registered reservations (opt-outs by identifier, URL prefix or domain) hold declared usage:
the lines they cover count as reserved, whether or not they name a work."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AuditEvent
from licensing.matching import RESERVATIONS_SCHEMA, declaration_match
from licensing.models import DeclarationReservedIdentifier, DeclarationUnmatched
from licensing.services.declarations import declaration_unmatched_match
from licensing.services.reservations import (
    reservation_create,
    reservation_request,
    reservation_token,
    reservation_verify,
    reservation_withdraw,
)
from tests.licensing.declarations_support import (
    ISBN_A,
    ISBN_B,
    ISBN_UNKNOWN,
    active_licence,
    csv_file,
    declare,
    repertoire,
    usage_by_work,
)
from tests.licensing.factories import caller_of
from tests.licensing.test_declarations_engine import _index, _works, _write


def _reservations(rows):
    return pa.table(
        {
            "reservation_id": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "scheme": [r[2] for r in rows],
            "value": [r[3] for r in rows],
        },
        schema=RESERVATIONS_SCHEMA,
    )


def _conserved(result, lines: int, declared: int) -> None:
    assert result.declared_quantity == declared
    assert result.matched_quantity + result.unmatched_quantity + result.reserved_quantity == (
        declared
    )
    assert result.matched_lines + result.unmatched_lines + result.reserved_lines == lines
    usage = result.work_usage.to_pylist()
    assert sum(u["quantity"] for u in usage if not u["reserved"]) == result.matched_quantity
    held = sum(result.reserved_unmatched["quantity"].to_pylist())
    assert sum(u["quantity"] for u in usage if u["reserved"]) + held == result.reserved_quantity
    assert sum(result.unmatched["quantity"].to_pylist()) == result.unmatched_quantity


# --------------------------------------------------------------------------------------------
# The engine (no database)
# --------------------------------------------------------------------------------------------

ENGINE_INDEX = _index(
    [
        ("isbn", "9780439023481", 1),
        ("url", "https://blog.example.com/post/1", 2),
        ("url", "https://example.org/free/1", 3),
        ("isbn", "9780306406157", 4),
    ]
)
ENGINE_WORKS = _works({1: False, 2: False, 3: False, 4: False})
ENGINE_RESERVATIONS = _reservations(
    [
        (10, "identifier", "isbn", "9781861972712"),  # in no catalogue
        (11, "url_prefix", "", "https://example.org/private/"),
        (12, "domain", "", "example.com"),
        (13, "identifier", "isbn", "9780306406157"),  # work 4's ISBN
    ]
)


def test_identifier_prefix_and_domain_reservations_hold_lines_set_based(tmp_path):
    rows = [
        ("isbn", "978-1-86197-271-2", 7),  # identifier reservation 10, no work
        ("isbn", "9780439023481", 5),  # work 1, licensed
        ("isbn", "0306406152", 4),  # work 4 as an ISBN-10: identifier reservation 13
        ("url", "https://EXAMPLE.org/private/a?x=1", 3),  # prefix 11
        ("url", "https://example.org/privateer", 2),  # not under the prefix "/private/"
        ("url", "https://blog.example.com/post/1", 6),  # work 2 on a subdomain of 12
        ("url", "http://example.com:8080/x", 1),  # the domain itself, any port
        ("url", "https://notexample.com/", 8),  # a different domain
        ("url", "https://example.com.evil.net/", 9),  # not a parent domain
    ]
    path = _write(tmp_path, rows)
    result = declaration_match(
        path, index=ENGINE_INDEX, works=ENGINE_WORKS, reservations=ENGINE_RESERVATIONS
    )
    usage = {u["work_id"]: (u["quantity"], u["reserved"]) for u in result.work_usage.to_pylist()}
    assert usage == {1: (5, False), 2: (6, True), 4: (4, True)}
    held = {
        (r["scheme"], r["identifier"]): (r["quantity"], r["reservation_id"])
        for r in result.reserved_unmatched.to_pylist()
    }
    assert held == {
        ("isbn", "9781861972712"): (7, 10),
        ("url", "https://example.org/private/a?x=1"): (3, 11),
        ("url", "http://example.com:8080/x"): (1, 12),
    }
    assert sorted(result.unmatched["identifier"].to_pylist()) == [
        "https://example.com.evil.net/",
        "https://example.org/privateer",
        "https://notexample.com/",
    ]
    assert (result.reserved_quantity, result.reserved_lines) == (7 + 4 + 3 + 6 + 1, 5)
    assert (result.matched_quantity, result.unmatched_quantity) == (5, 2 + 8 + 9)
    _conserved(result, len(rows), sum(q for *_, q in rows))

    plain = declaration_match(path, index=ENGINE_INDEX, works=ENGINE_WORKS)
    assert plain.reserved_quantity == 0 and plain.reserved_unmatched.num_rows == 0


def test_a_held_line_reserves_all_of_its_works_usage(tmp_path):
    """Work 2 named by its URL (held by the domain) and by a work id (not held): the work is
    reserved in the declaration, all of it, so its row and the totals agree."""
    rows = [("url", "https://blog.example.com/post/1", 6), ("work_id", "2", 4)]
    result = declaration_match(
        _write(tmp_path, rows),
        index=ENGINE_INDEX,
        works=ENGINE_WORKS,
        reservations=ENGINE_RESERVATIONS,
    )
    assert result.work_usage.to_pylist() == [
        {"work_id": 2, "quantity": 10, "lines": 2, "reserved": True}
    ]
    assert (result.reserved_quantity, result.reserved_lines, result.matched_quantity) == (10, 2, 0)


POOL = [
    ("isbn", "9780439023481"),
    ("isbn", "9780306406157"),
    ("isbn", "9781861972712"),
    ("isbn", "0-306-40615-2"),
    ("isbn", "12345"),
    ("url", "https://blog.example.com/post/1"),
    ("url", "https://example.com/"),
    ("url", "https://example.org/free/1"),
    ("url", "https://example.org/private/x"),
    ("url", "https://elsewhere.net/a"),
    ("work_id", "3"),
]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(st.sampled_from(POOL), st.integers(0, 10**15)), min_size=1, max_size=40),
    st.sets(st.sampled_from(range(4))),
)
def test_matched_plus_unmatched_plus_reserved_is_declared_with_reservations(
    tmp_path, lines, chosen
):
    rows = [(s, v, q) for (s, v), q in lines]
    reservations = ENGINE_RESERVATIONS.take(pa.array(sorted(chosen), pa.int64()))
    result = declaration_match(
        _write(tmp_path, rows),
        index=ENGINE_INDEX,
        works=ENGINE_WORKS,
        reservations=reservations,
        threads=1,
    )
    _conserved(result, len(rows), sum(q for *_, q in rows))


# --------------------------------------------------------------------------------------------
# The service: which reservations are in force for a licence
# --------------------------------------------------------------------------------------------


@pytest.fixture
def works(rights_holder):
    return repertoire(rights_holder)


@pytest.fixture
def licence(licensee):
    return active_licence(licensee)


def _reserve(holder, kind, value, *, scheme="", uses=None):
    return reservation_create(
        caller=caller_of(holder), kind=kind, scheme=scheme, value=value, uses=uses
    )


@pytest.mark.django_db
def test_an_identifier_reservation_holds_a_line_that_names_no_work(
    licensee, licence, works, rights_holder
):
    reservation = _reserve(rights_holder, "identifier", ISBN_UNKNOWN, scheme="isbn")
    declaration = declare(
        licensee,
        licence,
        csv_file([("isbn", "978-1-86197-271-2", 30), ("isbn", ISBN_A, 5), ("isbn", ISBN_B, 1)]),
    )
    assert declaration.status == "accepted", declaration.message
    assert (declaration.reserved_quantity, declaration.reserved_lines) == (30, 1)
    assert (declaration.unmatched_quantity, declaration.unmatched_lines) == (0, 0)
    assert (declaration.matched_quantity, declaration.matched_lines) == (6, 2)
    assert not DeclarationUnmatched.objects.filter(declaration=declaration).exists()
    row = DeclarationReservedIdentifier.objects.get(declaration=declaration)
    assert (row.scheme, row.identifier, row.quantity, row.lines, row.reservation) == (
        "isbn",
        ISBN_UNKNOWN,
        30,
        1,
        reservation,
    )
    assert "1 reserved (reserved works or registered reservations)" in declaration.message


@pytest.mark.django_db
def test_an_identifier_reservation_on_a_works_identifier_reserves_its_usage(
    licensee, licence, works, rights_holder
):
    _reserve(rights_holder, "identifier", "0-439-02348-3", scheme="isbn")  # ISBN_A as ISBN-10
    declaration = declare(licensee, licence, csv_file([("isbn", ISBN_A, 12), ("isbn", ISBN_B, 3)]))
    assert usage_by_work(declaration) == {
        works["a"].pk: (12, 1, True),
        works["b"].pk: (3, 1, False),
    }
    assert (declaration.reserved_quantity, declaration.matched_quantity) == (12, 3)


@pytest.mark.django_db
def test_url_prefix_and_domain_reservations_hold_urls_under_them(
    licensee, licence, works, rights_holder
):
    _reserve(rights_holder, "url_prefix", "https://news.example.net/archive/")
    _reserve(rights_holder, "domain", "example.com")  # the URL work's domain
    rows = [
        ("url", "https://news.example.net/archive/2020/a.html", 4),
        ("url", "https://news.example.net/today", 5),  # outside the prefix
        ("url", "https://example.com/books/1", 6),  # the URL work, on the domain
        ("url", "https://cdn.eu.example.com/img.png", 7),  # a subdomain
        ("url", "https://example.community/", 8),  # not the domain
    ]
    declaration = declare(licensee, licence, csv_file(rows))
    assert usage_by_work(declaration) == {works["url"].pk: (6, 1, True)}
    held = set(
        DeclarationReservedIdentifier.objects.filter(declaration=declaration).values_list(
            "identifier", "quantity"
        )
    )
    assert held == {
        ("https://news.example.net/archive/2020/a.html", 4),
        ("https://cdn.eu.example.com/img.png", 7),
    }
    assert (declaration.reserved_quantity, declaration.reserved_lines) == (17, 3)
    assert (declaration.unmatched_quantity, declaration.unmatched_lines) == (13, 2)
    assert declaration.matched_quantity == 0
    total = declaration.matched_quantity + declaration.unmatched_quantity
    assert total + declaration.reserved_quantity == declaration.declared_quantity == 30
    lines = declaration.matched_lines + declaration.unmatched_lines + declaration.reserved_lines
    assert lines == declaration.lines == 5


@pytest.mark.django_db
def test_an_unverified_request_holds_nothing_until_its_email_is_confirmed(licensee, licence, works):
    requested = reservation_request(email="author@example.org", kind="domain", value="blog.io")
    upload = [("url", "https://www.blog.io/post", 9)]
    before = declare(licensee, licence, csv_file(upload))
    assert (before.reserved_quantity, before.unmatched_quantity) == (0, 9)

    reservation_verify(token=reservation_token(requested))
    after = declare(licensee, licence, csv_file(upload), model="beth")
    assert (after.reserved_quantity, after.unmatched_quantity) == (9, 0)


@pytest.mark.django_db
def test_a_withdrawn_reservation_holds_nothing(licensee, licence, works, rights_holder):
    reservation = _reserve(rights_holder, "identifier", ISBN_UNKNOWN, scheme="isbn")
    reservation_withdraw(caller=caller_of(rights_holder), reservation=reservation)
    declaration = declare(licensee, licence, csv_file([("isbn", ISBN_UNKNOWN, 11)]))
    assert (declaration.reserved_quantity, declaration.unmatched_quantity) == (0, 11)
    assert not DeclarationReservedIdentifier.objects.exists()


@pytest.mark.django_db
def test_a_reservation_for_another_use_does_not_hold_the_licences_usage(
    licensee, works, rights_holder
):
    _reserve(rights_holder, "identifier", ISBN_UNKNOWN, scheme="isbn", uses=["rag"])
    _reserve(rights_holder, "identifier", ISBN_A, scheme="isbn", uses=["fine_tuning"])
    upload = [("isbn", ISBN_UNKNOWN, 11), ("isbn", ISBN_A, 2)]
    training = declare(licensee, active_licence(licensee), csv_file(upload))
    assert (training.reserved_quantity, training.unmatched_quantity) == (0, 11)
    assert training.matched_quantity == 2

    rag = declare(licensee, active_licence(licensee, uses=("rag",)), csv_file(upload))
    assert (rag.reserved_quantity, rag.unmatched_quantity, rag.matched_quantity) == (11, 0, 2)


@pytest.mark.django_db
def test_a_hand_match_of_an_identifier_reserved_since_moves_the_works_usage_to_reserved(
    licensee, licence, works, rights_holder, operator
):
    declaration = declare(
        licensee, licence, csv_file([("url", "https://example.org/later", 9), ("isbn", ISBN_A, 4)])
    )
    assert (declaration.unmatched_quantity, declaration.matched_quantity) == (9, 4)
    _reserve(rights_holder, "domain", "example.org")

    declaration_unmatched_match(
        caller=caller_of(operator),
        scheme="url",
        identifier="https://example.org/later",
        work=works["a"],
    )
    declaration.refresh_from_db()
    assert usage_by_work(declaration) == {works["a"].pk: (13, 2, True)}
    assert (declaration.reserved_quantity, declaration.reserved_lines) == (13, 2)
    assert (declaration.matched_quantity, declaration.unmatched_quantity) == (0, 0)
    assert AuditEvent.objects.filter(action="declaration.unmatched_match").exists()


@pytest.mark.django_db
def test_the_match_report_lists_identifiers_held_by_a_reservation(
    licensee, licence, works, rights_holder
):
    _reserve(rights_holder, "url_prefix", "https://news.example.net/archive/")
    declaration = declare(
        licensee, licence, csv_file([("url", "https://news.example.net/archive/x", 4)])
    )
    page = licensee.client().get(f"/declarations/{declaration.pk}/").content.decode()
    assert 'id="top-reserved"' in page and "https://news.example.net/archive/x" in page
    assert 'data-testid="reserved-quantity">4<' in page
