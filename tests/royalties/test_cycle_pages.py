"""The payout cycle pages (staff: list, detail with live progress, allocate, approve, review)
and the holders' statement pages.

The allocations here are stored rows built directly (`stored_allocation`), so the pages are
tested independently of the engine; the browser journey runs the whole thing.
"""

from __future__ import annotations

import json
import re

import pytest
from django.utils import timezone

from royalties.models import (
    Allocation,
    Cycle,
    CycleLicence,
    CycleStatus,
    Statement,
    StatementSourceLine,
    StatementWorkLine,
    SuspenseItem,
)
from royalties.services.cycles import cycle_create
from tests.licensing.declarations_support import active_licence
from tests.licensing.factories import catalogue_for, work_in
from tests.royalties.cycles_support import policy, staff_caller

pytestmark = pytest.mark.django_db

FEE_BP = 1000


def stored_allocation(
    cycle: Cycle,
    *,
    licence,
    holders: dict,
    suspense=(),
    number: int = 1,
    checksum: str = "c1",
    current: bool = True,
) -> Allocation:
    """Store an allocation as the engine would: ``holders`` maps an organisation to its
    [(work, quantity, amount_minor)]; ``suspense`` is [(reason, ref, amount_minor)]. The fee is
    a ninth of the holders' money plus suspense, so pool = fee + holders + suspense exactly."""
    holders_minor = sum(a for lines in holders.values() for _, _, a in lines)
    suspense_minor = sum(a for _, _, a in suspense)
    fee_minor = (holders_minor + suspense_minor) // 9
    pool_minor = fee_minor + holders_minor + suspense_minor
    allocation = Allocation.objects.create(
        cycle=cycle,
        number=number,
        policy=cycle.policy,
        checksum=checksum,
        totals={
            "in_minor": pool_minor,
            "pool_minor": pool_minor,
            "releases_minor": 0,
            "fee_minor": fee_minor,
            "holders_minor": holders_minor,
            "suspense_minor": suspense_minor,
            "payable_minor": holders_minor,
            "carried_forward_minor": 0,
        },
        created_by=cycle.allocated_by,
    )
    CycleLicence.objects.create(
        allocation=allocation,
        licence=licence,
        product_code=licence.product.code,
        days_in_period=92,
        term_days=365,
        collected_minor=pool_minor * 4,
        recognised_minor=pool_minor,
        processing_fee_minor=0,
        pool_minor=pool_minor,
        fee_minor=fee_minor,
        holders_minor=holders_minor,
        suspense_minor=suspense_minor,
        declared=True,
    )
    for organisation, lines in holders.items():
        earned = sum(a for _, _, a in lines)
        statement = Statement.objects.create(
            allocation=allocation,
            cycle=cycle,
            holder=organisation,
            currency=cycle.currency,
            gross_minor=earned + earned // 9,
            deductions_minor=earned // 9,
            earned_minor=earned,
            total_minor=earned,
            payable_minor=earned,
        )
        StatementWorkLine.objects.bulk_create(
            StatementWorkLine(statement=statement, work=work, quantity=q, amount_minor=a)
            for work, q, a in lines
        )
        StatementSourceLine.objects.create(
            statement=statement,
            licence=licence,
            product_code=licence.product.code,
            amount_minor=earned,
        )
    SuspenseItem.objects.bulk_create(
        SuspenseItem(
            allocation=allocation,
            cycle=cycle,
            currency=cycle.currency,
            reason=reason,
            ref=ref,
            amount_minor=amount,
        )
        for reason, ref, amount in suspense
    )
    if current:
        Cycle.objects.filter(pk=cycle.pk).update(
            current_allocation=allocation,
            status=CycleStatus.ALLOCATED,
            stage="allocated",
            percent=100,
        )
        cycle.refresh_from_db()
    return allocation


def open_cycle(operator, period="2026-Q3", allocated_by=None) -> Cycle:
    cycle = cycle_create(caller=staff_caller(operator), period=period)
    Cycle.objects.filter(pk=cycle.pk).update(allocated_by=(allocated_by or operator).user)
    cycle.refresh_from_db()
    return cycle


def publish(cycle: Cycle, approver) -> Cycle:
    """Mark the cycle approved and its current statements published (what approval does,
    without the ledger)."""
    now = timezone.now()
    Statement.objects.filter(allocation=cycle.current_allocation).update(published_at=now)
    Cycle.objects.filter(pk=cycle.pk).update(
        status=CycleStatus.APPROVED, approved_by=approver.user, approved_at=now
    )
    cycle.refresh_from_db()
    return cycle


def holder_works(persona, *refs, catalogue="Statements"):
    cat = catalogue_for(persona, catalogue)
    return [work_in(cat, persona, ref, url=f"https://example.com/{cat.pk}/{ref}") for ref in refs]


@pytest.fixture
def setup(operator, approver, rights_holder, co_holder, licensee):
    """Q2 approved; Q3 allocated twice (allocation 2 current): the rights holder earns
    10,000 -> 12,000 (allocation 1: 11,000), the co-holder 100 -> 5,000 (over tenfold)."""
    policy(operator, admin_fee_bp=FEE_BP)
    licence = active_licence(licensee)
    a, b = holder_works(rights_holder, "A", "B")
    (c,) = holder_works(co_holder, "C")
    q2 = open_cycle(operator, "2026-Q2")
    stored_allocation(
        q2,
        licence=licence,
        holders={
            rights_holder.organisation: [(a, 60, 10_000)],
            co_holder.organisation: [(c, 1, 100)],
        },
    )
    publish(q2, approver)
    q3 = open_cycle(operator, "2026-Q3")
    stored_allocation(
        q3,
        licence=licence,
        holders={
            rights_holder.organisation: [(a, 50, 7_000), (b, 30, 4_000)],
            co_holder.organisation: [(c, 10, 5_000)],
        },
        suspense=[("unmatched", "isbn:9781861972712", 900)],
        number=1,
        checksum="first",
        current=False,
    )
    stored_allocation(
        q3,
        licence=licence,
        holders={
            rights_holder.organisation: [(a, 50, 8_000), (b, 30, 4_000)],
            co_holder.organisation: [(c, 10, 5_000)],
        },
        suspense=[("unmatched", "isbn:9781861972712", 900), ("disputed", "77", 100)],
        number=2,
        checksum="second",
    )
    return {"q2": q2, "q3": q3, "licence": licence, "works": (a, b, c)}


def test_cycle_pages_are_404_for_everyone_but_staff(
    setup, rights_holder, co_holder, licensee, outsider
):
    cycle = setup["q3"]
    for persona in (rights_holder, co_holder, licensee, outsider):
        client = persona.client()
        for url in (
            "/cycles/",
            f"/cycles/{cycle.pk}/",
            f"/cycles/{cycle.pk}/progress/",
            f"/cycles/{cycle.pk}/review/",
        ):
            assert client.get(url).status_code == 404, (persona.organisation.kind, url)
        for url in (f"/cycles/{cycle.pk}/allocate/", f"/cycles/{cycle.pk}/approve/", "/cycles/"):
            assert client.post(url, {"period": "2026-Q4"}).status_code == 404, url
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.ALLOCATED
    assert not Cycle.objects.filter(period="2026-Q4").exists()


def test_the_cycle_list_shows_status_and_totals_and_opens_a_cycle(setup, operator):
    client = operator.client()
    html = client.get("/cycles/").content.decode()
    assert f'data-cycle="{setup["q3"].pk}"' in html and "Allocated" in html
    assert "170.00 EUR" in html  # Q3's holders: 8,000 + 4,000 + 5,000 minor units
    response = client.post("/cycles/", {"period": "2026-Q4", "currency": "EUR"})
    cycle = Cycle.objects.get(period="2026-Q4")
    assert response.status_code == 302 and response["Location"] == f"/cycles/{cycle.pk}/"
    assert cycle.status == CycleStatus.DRAFT
    again = client.post("/cycles/", {"period": "2026-Q4", "currency": "EUR"})
    assert again.status_code == 400 and b"exists already" in again.content


def test_the_detail_polls_while_allocating_and_shows_the_identity_after(setup, operator):
    cycle = setup["q3"]
    Cycle.objects.filter(pk=cycle.pk).update(
        status=CycleStatus.ALLOCATING, stage="loading licences and usage", percent=10
    )
    client = operator.client()
    for url in (f"/cycles/{cycle.pk}/", f"/cycles/{cycle.pk}/progress/"):
        html = client.get(url).content.decode()
        assert f'hx-get="/cycles/{cycle.pk}/progress/"' in html
        assert 'aria-valuenow="10"' in html and "Loading licences and usage" in html
        assert 'id="identity"' not in html and 'id="allocate"' not in html
    Cycle.objects.filter(pk=cycle.pk).update(
        status=CycleStatus.ALLOCATED, stage="allocated", percent=100
    )
    html = client.get(f"/cycles/{cycle.pk}/progress/").content.decode()
    assert "hx-get" not in html and 'aria-valuenow="100"' in html
    assert 'data-holds="true"' in html and "✓ pool = fee + holders + suspense" in html
    assert 'id="allocate"' in html and 'id="approve"' not in html  # an operator cannot approve


def test_an_operator_queues_an_allocation_from_the_page(
    operator, approver, licensee, django_capture_on_commit_callbacks
):
    policy(operator)
    cycle = cycle_create(caller=staff_caller(operator), period="2026-Q3")
    client = operator.client()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(f"/cycles/{cycle.pk}/allocate/")
    assert response.status_code == 302 and len(queued) == 1
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.ALLOCATING and cycle.allocated_by == operator.user
    html = client.get(f"/cycles/{cycle.pk}/").content.decode()
    assert "Allocation of 2026-Q3 queued." in html and "hx-trigger" in html


def test_approval_by_the_allocator_is_refused_with_the_services_message(
    operator, approver, licensee, rights_holder
):
    policy(operator)
    (work,) = holder_works(rights_holder, "A")
    cycle = open_cycle(operator, allocated_by=approver)  # the approver allocated it
    stored_allocation(
        cycle,
        licence=active_licence(licensee),
        holders={rights_holder.organisation: [(work, 1, 900)]},
    )
    client = approver.client()
    assert 'id="approve"' in client.get(f"/cycles/{cycle.pk}/").content.decode()
    page = client.post(f"/cycles/{cycle.pk}/approve/", follow=True).content.decode()
    assert "Four eyes: the cycle must be approved by a different person" in page
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.ALLOCATED and cycle.approved_by is None


def test_an_operator_cannot_approve(setup, operator):
    cycle = setup["q3"]
    page = operator.client().post(f"/cycles/{cycle.pk}/approve/", follow=True)
    assert "approver group may approve a cycle" in page.content.decode()
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.ALLOCATED


def _row(html: str, table_id: str, key: str) -> str:
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert table, f"no table {table_id}"
    row = re.search(rf"<tr[^>]*{key}.*?</tr>", table.group(0), re.S)
    assert row, f"no row {key} in {table_id}"
    return re.sub(r"<[^>]+>", " ", row.group(0))


def test_the_review_page_shows_identity_products_suspense_changes_and_diff(
    setup, approver, rights_holder, co_holder
):
    cycle = setup["q3"]
    html = approver.client().get(f"/cycles/{cycle.pk}/review/").content.decode()
    # pool 20,000 = fee 2,000 + holders 17,000 + suspense 1,000 (minor units)
    assert 'data-holds="true"' in html
    assert 'data-testid="identity-in">200.00 EUR' in html
    assert 'data-testid="identity-fee">20.00 EUR' in html
    assert 'data-testid="identity-holders">170.00 EUR' in html
    assert 'data-testid="identity-suspense">10.00 EUR' in html
    product = _row(html, "products", 'data-product="decl-test"')
    assert "200.00 EUR" in product and "20.00 EUR" in product and "170.00 EUR" in product
    assert "9.00 EUR" in _row(html, "suspense", 'data-reason="unmatched"')
    assert "1.00 EUR" in _row(html, "suspense", 'data-reason="disputed"')
    holder = _row(html, "largest-changes", f'data-holder="{rights_holder.organisation.code}"')
    assert "100.00 EUR" in holder and "120.00 EUR" in holder and "20.00 EUR" in holder
    tenfold = _row(html, "tenfold", f'data-holder="{co_holder.organisation.code}"')
    assert "1.00 EUR" in tenfold and "50.00 EUR" in tenfold
    assert rights_holder.organisation.code not in re.search(
        r'id="tenfold".*?</table>', html, re.S
    ).group(0)
    # Default diff: allocation 1 against 2; only the rights holder's earnings differ.
    assert 'data-testid="checksums">differ' in html
    assert 'data-testid="differing">1<' in html
    diff = _row(html, "diff", f'data-holder="{rights_holder.organisation.code}"')
    assert "110.00 EUR" in diff and "120.00 EUR" in diff and "10.00 EUR" in diff
    same = approver.client().get(f"/cycles/{cycle.pk}/review/?a=2&b=2").content.decode()
    assert 'data-testid="checksums">equal' in same and 'data-testid="differing">0<' in same


def test_review_ageing_counts_cycles_since_the_money_arose(setup, operator):
    q2 = setup["q2"]
    SuspenseItem.objects.create(
        allocation=q2.current_allocation,
        cycle=q2,
        currency="EUR",
        reason="unmatched",
        ref="isbn:9780306406157",
        amount_minor=4_200,
    )
    html = operator.client().get(f"/cycles/{setup['q3'].pk}/review/").content.decode()
    row = _row(html, "ageing", 'data-reason="unmatched"')
    assert "2026-Q2" in row and " 1 " in row and "42.00 EUR" in row


def test_the_review_page_aggregates_in_a_bounded_number_of_queries(
    setup, approver, django_assert_max_num_queries
):
    client = approver.client()
    with django_assert_max_num_queries(40):
        assert client.get(f"/cycles/{setup['q3'].pk}/review/?a=1&b=2").status_code == 200


# --- statements --------------------------------------------------------------------------


def test_a_holder_lists_only_its_published_current_statements(setup, approver, rights_holder):
    client = rights_holder.client()
    html = client.get("/statements/").content.decode()
    mine = Statement.objects.filter(holder=rights_holder.organisation)
    q2 = mine.get(cycle=setup["q2"])
    drafts = mine.filter(cycle=setup["q3"])
    assert f'data-statement="{q2.pk}"' in html
    for draft in drafts:  # Q3 is allocated but not approved: nothing published yet
        assert f'data-statement="{draft.pk}"' not in html
        assert client.get(f"/statements/{draft.pk}/").status_code == 404
    publish(setup["q3"], approver)
    html = client.get("/statements/").content.decode()
    current = drafts.get(allocation=setup["q3"].current_allocation)
    stale = drafts.exclude(pk=current.pk).get()
    assert f'data-statement="{current.pk}"' in html
    assert client.get(f"/statements/{stale.pk}/").status_code == 404  # not the current one


def test_the_statement_page_shows_lines_and_chart_data(setup, approver, rights_holder):
    publish(setup["q3"], approver)
    statement = Statement.objects.get(
        holder=rights_holder.organisation, allocation=setup["q3"].current_allocation
    )
    html = rights_holder.client().get(f"/statements/{statement.pk}/").content.decode()
    assert 'data-testid="earned">120.00 EUR' in html
    assert 'data-testid="payable">120.00 EUR' in html
    assert "Licence " in _row(html, "sources", "") and "decl-test" in html
    works = re.search(r'id="works".*?</table>', html, re.S).group(0)
    assert works.index("Work A") < works.index("Work B")  # largest first
    data = json.loads(
        re.search(
            r'<script id="statement-charts" type="application/json">(.*?)</script>', html, re.S
        ).group(1)
    )
    assert data["cycles"]["labels"] == ["2026-Q2", "2026-Q3"]
    assert data["cycles"]["earned"] == [100.0, 120.0]
    assert data["works"] == {"labels": ["Work A", "Work B"], "amounts": [80.0, 40.0]}
    assert "vendor/chartjs/chart.umd.min.js" in html and 'href="/statements/' in html


def test_statement_pages_and_api_are_404_for_outsiders(setup, approver, rights_holder, outsider):
    publish(setup["q3"], approver)
    statement = Statement.objects.get(
        holder=rights_holder.organisation, allocation=setup["q3"].current_allocation
    )
    client = outsider.client()
    for url in (
        f"/statements/{statement.pk}/",
        f"/statements/{statement.pk}/statement.csv",
        f"/statements/{statement.pk}/statement.pdf",
        f"/api/v1/statements/{statement.pk}/",
        f"/api/v1/statements/{statement.pk}/statement.csv/",
        f"/api/v1/statements/{statement.pk}/statement.pdf/",
    ):
        assert client.get(url).status_code == 404, url
    assert f'data-statement="{statement.pk}"' not in client.get("/statements/").content.decode()


def test_allocating_twice_from_the_pages_gives_an_identical_diff_and_then_approval(
    operator, approver, rights_holder, licensee, django_capture_on_commit_callbacks
):
    """The whole path through the real engine: allocate (the Celery job runs eagerly on
    commit), allocate again, the review's diff shows equal checksums, a second person approves,
    and the holder's CSV adds up to its statement."""
    from tests.licensing.declarations_support import ISBN_A, ISBN_B, ISBN_UNKNOWN, repertoire
    from tests.royalties.cycles_support import paid_licence, usage

    policy(operator, admin_fee_bp=FEE_BP)
    repertoire(rights_holder)
    licence = paid_licence(licensee, operator)
    usage(
        licensee, licence, [("isbn", ISBN_A, 60), ("isbn", ISBN_B, 30), ("isbn", ISBN_UNKNOWN, 10)]
    )
    cycle = cycle_create(caller=staff_caller(operator), period="2026-Q3")
    staff = operator.client()
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            staff.post(f"/cycles/{cycle.pk}/allocate/")
        cycle.refresh_from_db()
        assert cycle.status == CycleStatus.ALLOCATED, cycle.message
    assert cycle.current_allocation.number == 2
    review = approver.client().get(f"/cycles/{cycle.pk}/review/").content.decode()
    assert 'data-holds="true"' in review
    assert 'data-testid="checksums">equal' in review and 'data-testid="differing">0<' in review
    assert 'data-product="ai-training"' in review
    approver.client().post(f"/cycles/{cycle.pk}/approve/")
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.APPROVED
    statement = Statement.objects.get(
        holder=rights_holder.organisation, allocation=cycle.current_allocation
    )
    body = rights_holder.client().get(f"/statements/{statement.pk}/statement.csv")
    text = b"".join(body.streaming_content).decode("utf-8-sig")
    works = [line for line in text.splitlines() if line.startswith("work,")]
    assert sum(int(line.rsplit(",", 1)[1]) for line in works) == statement.earned_minor > 0
