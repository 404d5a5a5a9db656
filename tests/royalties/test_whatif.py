"""The regime comparison re-runs a booked cycle in memory: it writes nothing, it conserves
money, the real regime and policy reproduce the real checksum, and opt-in gives non-members'
share to the enrolled works."""

from __future__ import annotations

import csv
import io

import pytest

from accounts.models import AuditEvent
from licensing.models import ConsentRegime, SocietySettings
from royalties.models import (
    Allocation,
    Cycle,
    CycleLicence,
    JournalEntry,
    LedgerAccount,
    Posting,
    Statement,
    StatementSourceLine,
    StatementWorkLine,
    SuspenseItem,
    SuspenseRelease,
)
from royalties.services import whatif
from tests.royalties.test_annual_report import build_year

pytestmark = pytest.mark.django_db

TABLES = (
    JournalEntry,
    Posting,
    LedgerAccount,
    Allocation,
    CycleLicence,
    Statement,
    StatementWorkLine,
    StatementSourceLine,
    SuspenseItem,
    SuspenseRelease,
    AuditEvent,
)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in TABLES}


def _cycle_state() -> list[tuple]:
    return list(Cycle.objects.order_by("pk").values_list("pk", "status", "updated_at", "message"))


@pytest.fixture
def cycles(operator, approver, licensee, rights_holder, co_holder):
    return build_year(operator, approver, licensee, rights_holder, co_holder)


def test_a_what_if_writes_nothing(cycles):
    before, state = _counts(), _cycle_state()
    for cycle in cycles:
        for scenario in (
            whatif.Scenario(),
            whatif.Scenario(regime="opt_in", admin_fee_bp=0, threshold_minor=10_000),
            whatif.Scenario(regime="opt_out", fallback="suspense"),
        ):
            whatif.whatif_run(cycle=cycle, scenario=scenario)
    assert _counts() == before
    assert _cycle_state() == state


def test_the_real_regime_and_policy_reproduce_the_real_checksum(cycles):
    for cycle in cycles:
        w = whatif.whatif_run(cycle=cycle, scenario=whatif.Scenario(regime="opt_out"))
        assert w.actual_regime == "opt_out"  # non-members' usage was held in suspense
        assert w.same_checksum and w.result.checksum == cycle.current_allocation.checksum
        assert w.identity_holds and w.in_equal
        assert all(r["change_minor"] == 0 for r in w.totals + w.groups + w.bands + w.media)
        assert w.changed_holders == 0 and w.gainers == [] and w.losers == []


def test_opt_in_gives_non_members_share_to_enrolled_works_and_conserves_money(cycles):
    q3, _ = cycles
    w = whatif.whatif_run(cycle=q3, scenario=whatif.Scenario())  # default: the other regime
    assert w.scenario_regime == "opt_in" and not w.same_checksum
    totals = {r["key"]: r for r in w.totals}
    # Money in is the same; only where it goes changes, and the identity holds exactly.
    assert totals["in_minor"]["change_minor"] == 0 and w.identity_holds
    assert sum(r["change_minor"] for r in w.groups) == 0
    groups = {r["key"]: r for r in w.groups}
    assert groups["non_members"]["actual_minor"] > 0 and groups["non_members"]["whatif_minor"] == 0
    assert groups["members"]["change_minor"] > 0
    assert sum(r["change_minor"] for r in w.bands) == totals["holders_minor"]["change_minor"]
    assert sum(r["change_minor"] for r in w.media) == totals["holders_minor"]["change_minor"]
    assert sum(r["holders"] for r in w.bands) == len(w.holders)
    assert w.losers == [] and len(w.gainers) == 2
    # The per-holder frame agrees with the real statements and the engine result.
    real = dict(
        Statement.objects.filter(allocation=q3.current_allocation).values_list(
            "holder_id", "earned_minor"
        )
    )
    frame = w.holders.set_index("holder_id")
    assert {int(h): int(v) for h, v in frame["actual_minor"].items()} == real
    assert int(frame["whatif_minor"].sum()) == w.result.totals["holders_minor"]


def test_another_policy_moves_the_fee_to_the_holders(cycles):
    q3, _ = cycles
    w = whatif.whatif_run(cycle=q3, scenario=whatif.Scenario(regime="opt_out", admin_fee_bp=0))
    totals = {r["key"]: r for r in w.totals}
    assert totals["fee_minor"]["whatif_minor"] == 0
    assert (
        totals["holders_minor"]["change_minor"] + totals["suspense_minor"]["change_minor"]
        == (totals["fee_minor"]["actual_minor"])
    )
    assert w.identity_holds and w.in_equal
    w = whatif.whatif_run(
        cycle=q3, scenario=whatif.Scenario(regime="opt_out", threshold_minor=10**9)
    )
    totals = {r["key"]: r for r in w.totals}
    assert totals["payable_minor"]["whatif_minor"] == 0
    assert totals["holders_minor"]["change_minor"] == 0


def test_bad_scenarios_and_unbooked_cycles_are_refused(cycles, operator):
    q3, _ = cycles
    with pytest.raises(whatif.WhatIfError):
        whatif.whatif_run(cycle=q3, scenario=whatif.Scenario(regime="anarchy"))
    with pytest.raises(whatif.WhatIfError):
        whatif.whatif_run(cycle=q3, scenario=whatif.Scenario(admin_fee_bp=20_000))
    Cycle.objects.filter(pk=q3.pk).update(status="allocated")
    q3.refresh_from_db()
    with pytest.raises(whatif.WhatIfError):
        whatif.whatif_run(cycle=q3, scenario=whatif.Scenario())


def test_the_regime_setting_is_read_from_the_audit_trail(cycles, operator):
    from accounts.scoping import Caller
    from licensing.services.society import society_settings_update

    q3, _ = cycles
    SocietySettings.objects.update_or_create(pk=1, defaults={"consent_regime": "opt_in"})
    assert whatif.regime_setting_at(q3) == ConsentRegime.OPT_IN
    society_settings_update(
        caller=Caller(user=operator.user, organisation=None), consent_regime="opt_out"
    )
    # Changed after the allocation: the setting then was the "from" side.
    assert whatif.regime_setting_at(q3) == ConsentRegime.OPT_IN


def test_the_page_and_the_csv_are_for_staff_only(
    cycles, operator, rights_holder, licensee, outsider, client
):
    q3, _ = cycles
    for persona in (rights_holder, licensee, outsider):
        c = persona.client()
        for url in (
            "/staff/whatif/",
            f"/staff/whatif/{q3.pk}/",
            f"/staff/whatif/{q3.pk}/comparison.csv",
        ):
            assert c.get(url).status_code == 404, (persona, url)
    assert client.get(f"/staff/whatif/{q3.pk}/").status_code == 302
    staff = operator.client()
    before = _counts()
    page = staff.get(f"/staff/whatif/{q3.pk}/?regime=opt_in&fee_percent=12.5")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-testid="identity">holds' in body and "1250" in body
    response = staff.get(f"/staff/whatif/{q3.pk}/comparison.csv?regime=opt_in&fee_percent=12.5")
    rows = list(csv.reader(io.StringIO(response.content.decode().lstrip("\ufeff"))))
    holders = [r for r in rows if r[0] == "holder"]
    assert len(holders) == 2
    total = next(r for r in rows if r[0] == "total" and r[1] == "holders_minor")
    assert sum(int(r[4]) for r in holders) == int(total[4])
    assert staff.get(f"/staff/whatif/{q3.pk}/?fee_percent=abc").status_code == 400
    assert _counts() == before
