"""Regime comparison (what-if), for the policy debate: re-run a booked cycle's allocation under
the other consent regime and/or another policy, with no money moving, and compare.

The engine is used as a library: the inputs come from the cycle loader
(`royalties.services.cycles.cycle_inputs_load`) with the suspense releases and payout returns
the real allocation used, and `royalties.engine.allocate.allocate` runs on them in memory.
Nothing is written: no allocation, statement, suspense item, release or ledger entry (the
loader stages the work ids in a temporary table of the session, nothing else).

The two regimes (DESIGN.md), applied to the loaded usage:
- opt-out / extended collective licensing: every work in scope is licensed unless its holder
  reserved it. Usage of works of non-members (identifiers matching no enrolled work) is
  licensed and its money waits in suspense (`unmatched`) for them to claim.
- opt-in: only enrolled, consenting works are licensed. Usage of non-enrolled works is not
  licensed and earns nothing: it carries no weight, so each licence's pool is shared by the
  enrolled licensed works it used (a licence that used only non-enrolled works falls back
  like an undeclared one, by the policy's fallback).
In both, a reserved work never earns: its usage's money is held (`reserved`).
The real allocation's treatment is read from what it did: non-members' usage held in
suspense is opt-out; none held although there was some is opt-in.

Policy changes (fee, threshold, fallback, unmatched weight) apply to the cycle's policy. A
what-if with the real allocation's regime and policy reproduces its checksum exactly when the
repertoire and declarations have not changed since.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
from django.db.models import Sum

from accounts.models import AuditEvent, Organisation
from config.bulk import table_read
from licensing.importing.report import csv_cell_defused
from licensing.models import ConsentRegime, Work
from licensing.services.society import society_settings_get
from royalties.engine.allocate import (
    AllocationError,
    CycleInputs,
    CycleResult,
    PolicyParams,
    allocate,
)
from royalties.errors import RoyaltiesError
from royalties.models import (
    Cycle,
    DistributionPolicy,
    FallbackRule,
    PayoutReturn,
    Statement,
    StatementWorkLine,
    SuspenseItem,
    SuspenseReason,
    SuspenseRelease,
)
from royalties.services.recognition import BOOKED_STATUSES

OPT_IN = ConsentRegime.OPT_IN.value
OPT_OUT = ConsentRegime.OPT_OUT.value
BANDS = 5  # quintiles of actual earnings
TOP = 20
NEW_BAND = "not paid in the cycle"


class WhatIfError(RoyaltiesError):
    code = "whatif_error"


@dataclass(frozen=True)
class Scenario:
    """What to change. ``None``: as in the real allocation."""

    regime: str | None = None
    admin_fee_bp: int | None = None
    threshold_minor: int | None = None
    fallback: str | None = None
    unmatched_weight_bp: int | None = None

    def clean(self) -> Scenario:
        if self.regime not in (None, OPT_IN, OPT_OUT):
            raise WhatIfError(f"Unknown consent regime {self.regime!r}.", code="invalid")
        if self.admin_fee_bp is not None and not 0 <= self.admin_fee_bp <= 10_000:
            raise WhatIfError("The fee is 0 to 10,000 basis points (0-100%).", code="invalid")
        if self.threshold_minor is not None and self.threshold_minor < 0:
            raise WhatIfError("The threshold is not negative.", code="invalid")
        if self.fallback not in (None, *FallbackRule.values):
            raise WhatIfError(f"Unknown fallback {self.fallback!r}.", code="invalid")
        if self.unmatched_weight_bp is not None and self.unmatched_weight_bp < 0:
            raise WhatIfError("The unmatched weight is not negative.", code="invalid")
        return self


@dataclass
class WhatIf:
    cycle: Cycle
    scenario: Scenario
    actual_regime: str
    regime_setting: str
    scenario_regime: str
    params: PolicyParams
    actual_params: PolicyParams
    result: CycleResult
    totals: list[dict] = field(default_factory=list)
    groups: list[dict] = field(default_factory=list)
    bands: list[dict] = field(default_factory=list)
    media: list[dict] = field(default_factory=list)
    gainers: list[dict] = field(default_factory=list)
    losers: list[dict] = field(default_factory=list)
    holders: pd.DataFrame | None = None
    same_checksum: bool = False
    identity_holds: bool = False
    in_equal: bool = False
    non_member_usage: int = 0

    @property
    def changed_holders(self) -> int:
        if self.holders is None:
            return 0
        return int((self.holders["change_minor"] != 0).sum())


# --- inputs ------------------------------------------------------------------------------------


def whatif_cycles():
    """Cycles a what-if can run on: booked (approved, paying, paid, closed)."""
    return (
        Cycle.objects.filter(status__in=BOOKED_STATUSES, current_allocation__isnull=False)
        .select_related("policy", "current_allocation", "current_allocation__policy")
        .order_by("-period_start", "currency")
    )


def policy_params(policy: DistributionPolicy, scenario: Scenario | None = None) -> PolicyParams:
    """The engine's parameters for ``policy``, with the scenario's changes. A changed fee is
    one fee for everything (the per-product and per-media fees are dropped)."""
    scenario = scenario or Scenario()
    fee_by_product = {k: int(v) for k, v in (policy.fee_bp_by_product or {}).items()}
    fee_by_media = {k: int(v) for k, v in (policy.fee_bp_by_media or {}).items()}
    if scenario.admin_fee_bp is not None:
        fee_by_product, fee_by_media = {}, {}
    return PolicyParams(
        admin_fee_bp=policy.admin_fee_bp
        if scenario.admin_fee_bp is None
        else scenario.admin_fee_bp,
        fee_bp_by_product=fee_by_product,
        fee_bp_by_media=fee_by_media,
        media_weight_bp={k: int(v) for k, v in (policy.media_weight_bp or {}).items()},
        unmatched_weight_bp=policy.unmatched_weight_bp
        if scenario.unmatched_weight_bp is None
        else scenario.unmatched_weight_bp,
        threshold_minor=policy.threshold_minor
        if scenario.threshold_minor is None
        else scenario.threshold_minor,
        fallback=policy.fallback if scenario.fallback is None else scenario.fallback,
    )


def whatif_inputs_load(cycle: Cycle) -> CycleInputs:
    """The inputs of the cycle's real allocation, read only: the releases and payout returns
    it paid (not the ones that would be prepared today)."""
    from royalties.services.cycles import cycle_inputs_load

    allocation = cycle.current_allocation
    releases = list(
        SuspenseRelease.objects.filter(pk__in=allocation.releases or [])
        .exclude(kind=SuspenseRelease.Kind.RETAIN)
        .select_related("item")
        .order_by("pk")
    )
    returns = list(PayoutReturn.objects.filter(pk__in=allocation.payout_returns or []))
    inputs, _, _ = cycle_inputs_load(cycle, releases, returns)
    return inputs


def _non_member_rows(usage: pd.DataFrame) -> pd.Series:
    return usage["work_id"].isna() & ~usage["reserved"].astype(bool)


def regime_apply(inputs: CycleInputs, regime: str) -> CycleInputs:
    """The inputs as the regime licenses them (see the module docstring)."""
    if regime == OPT_OUT:
        return inputs
    usage = inputs.usage[~_non_member_rows(inputs.usage)].reset_index(drop=True)
    return CycleInputs(
        licences=inputs.licences,
        usage=usage,
        works=inputs.works,
        shares=inputs.shares,
        holders=inputs.holders,
        releases=inputs.releases,
    )


def regime_setting_at(cycle: Cycle) -> str:
    """The society's regime setting when the cycle's allocation was made (audit trail), or the
    current setting when it never changed."""
    at = cycle.current_allocation.created_at
    events = AuditEvent.objects.filter(action="society.consent_regime")
    before = events.filter(at__lte=at).order_by("-at", "-pk").first()
    if before is not None:
        return str(before.details.get("to") or society_settings_get().consent_regime)
    after = events.filter(at__gt=at).order_by("at", "pk").first()
    if after is not None:
        return str(after.details.get("from") or society_settings_get().consent_regime)
    return society_settings_get().consent_regime


def actual_regime(cycle: Cycle, inputs: CycleInputs) -> str:
    """The treatment the real allocation gave non-members' usage."""
    held = SuspenseItem.objects.filter(
        allocation_id=cycle.current_allocation_id, reason=SuspenseReason.UNMATCHED
    ).exists()
    if held:
        return OPT_OUT
    if _non_member_rows(inputs.usage).any() and cycle.policy.unmatched_weight_bp > 0:
        return OPT_IN
    return regime_setting_at(cycle)


# --- the run ------------------------------------------------------------------------------------


def whatif_run(*, cycle: Cycle, scenario: Scenario) -> WhatIf:
    """Re-run ``cycle``'s allocation under ``scenario`` in memory and compare it with the real
    one. Writes nothing."""
    scenario = scenario.clean()
    if cycle.status not in BOOKED_STATUSES or cycle.current_allocation_id is None:
        raise WhatIfError(
            f"A what-if runs on an approved, paid or closed cycle, not a {cycle.status} one.",
            code="cycle_not_booked",
        )
    allocation = cycle.current_allocation
    inputs = whatif_inputs_load(cycle)
    actual = actual_regime(cycle, inputs)
    regime = scenario.regime or (OPT_IN if actual == OPT_OUT else OPT_OUT)
    params = policy_params(allocation.policy, scenario)
    try:
        result = allocate(regime_apply(inputs, regime), params)
    except AllocationError as exc:
        raise WhatIfError(
            f"The what-if allocation failed: {exc}", code="allocation_failed"
        ) from exc
    whatif = WhatIf(
        cycle=cycle,
        scenario=scenario,
        actual_regime=actual,
        regime_setting=regime_setting_at(cycle),
        scenario_regime=regime,
        params=params,
        actual_params=policy_params(allocation.policy),
        result=result,
        non_member_usage=int(inputs.usage.loc[_non_member_rows(inputs.usage), "quantity"].sum()),
    )
    _compare(whatif, inputs)
    return whatif


def _actual_holders(allocation_id: int) -> pd.DataFrame:
    schema = pa.schema(
        [
            ("holder_id", pa.int64()),
            ("earned_minor", pa.int64()),
            ("payable_minor", pa.int64()),
            ("deductions_minor", pa.int64()),
        ]
    )
    sql = (
        f"SELECT holder_id, earned_minor, payable_minor, deductions_minor "  # noqa: S608  # nosec B608 - model table; the id is a param
        f"FROM {Statement._meta.db_table} WHERE allocation_id = %s"
    )
    return table_read(sql, [allocation_id], schema=schema).to_pandas()


def _actual_media(allocation_id: int) -> dict[str, int]:
    schema = pa.schema([("media_type", pa.string()), ("amount_minor", pa.int64())])
    sql = (
        f"SELECT w.media_type, SUM(l.amount_minor) FROM {StatementWorkLine._meta.db_table} l "  # noqa: S608  # nosec B608 - model tables; the id is a param
        f"JOIN {Statement._meta.db_table} s ON s.id = l.statement_id "
        f"LEFT JOIN {Work._meta.db_table} w ON w.id = l.work_id "
        "WHERE s.allocation_id = %s GROUP BY w.media_type"
    )
    frame = table_read(sql, [allocation_id], schema=schema).to_pandas()
    return {
        (m if isinstance(m, str) and m else "redistribution"): int(a)
        for m, a in zip(frame["media_type"], frame["amount_minor"], strict=True)
    }


def _scenario_media(result: CycleResult, inputs: CycleInputs) -> dict[str, int]:
    lines = result.lines_by_work
    if not len(lines):
        return {}
    media = inputs.works.set_index("work_id")["media_type"]
    keys = lines["work_id"].map(lambda w: media.get(int(w)) if pd.notna(w) else None)
    keys = keys.fillna("redistribution").astype(str)
    return {k: int(v) for k, v in lines["amount_minor"].groupby(keys).sum().items()}


def _suspense_by_reason(frame_reasons, amounts) -> dict[str, int]:
    found: dict[str, int] = {}
    for reason, amount in zip(frame_reasons, amounts, strict=True):
        found[str(reason)] = found.get(str(reason), 0) + int(amount)
    return found


def _compare(w: WhatIf, inputs: CycleInputs) -> None:
    allocation = w.cycle.current_allocation
    result = w.result
    t_actual = {k: int(v) for k, v in (allocation.totals or {}).items()}
    t_what = {k: int(v) for k, v in result.totals.items()}
    w.same_checksum = result.checksum == allocation.checksum
    w.identity_holds = t_what["in_minor"] == (
        t_what["fee_minor"] + t_what["holders_minor"] + t_what["suspense_minor"]
    )
    w.in_equal = t_what["in_minor"] == t_actual.get("in_minor")
    for key, label in (
        ("in_minor", "Money in (pools and releases)"),
        ("fee_minor", "Administration fee"),
        ("holders_minor", "Allocated to rights holders"),
        ("suspense_minor", "Held in suspense"),
        ("payable_minor", "Payable now"),
        ("carried_forward_minor", "Carried forward"),
    ):
        w.totals.append(_pair(key, label, t_actual.get(key, 0), t_what.get(key, 0)))

    # Members, non-members, the society, other suspense.
    actual_susp = dict(
        SuspenseItem.objects.filter(allocation=allocation)
        .values("reason")
        .annotate(t=Sum("amount_minor"))
        .values_list("reason", "t")
    )
    what_susp = _suspense_by_reason(result.suspense["reason"], result.suspense["amount_minor"])
    labels = dict(SuspenseReason.choices)
    w.groups = [
        _pair(
            "members",
            "Members (registered rights holders)",
            t_actual["holders_minor"],
            t_what["holders_minor"],
        ),
        _pair(
            "non_members",
            "Non-members (held for claims: unmatched usage)",
            int(actual_susp.get(SuspenseReason.UNMATCHED, 0)),
            what_susp.get(SuspenseReason.UNMATCHED, 0),
        ),
        _pair(
            "society",
            "The society (administration fee)",
            t_actual["fee_minor"],
            t_what["fee_minor"],
        ),
    ]
    for reason in sorted((set(actual_susp) | set(what_susp)) - {SuspenseReason.UNMATCHED}):
        w.groups.append(
            _pair(
                f"suspense:{reason}",
                f"Held: {labels.get(reason, reason)}",
                int(actual_susp.get(reason, 0)),
                what_susp.get(reason, 0),
            )
        )

    # Per holder, bands by actual earnings.
    actual = _actual_holders(allocation.pk).rename(
        columns={"earned_minor": "actual_minor", "payable_minor": "actual_payable_minor"}
    )[["holder_id", "actual_minor", "actual_payable_minor"]]
    what = result.holders[["holder_id", "earned_minor", "payable_minor"]].rename(
        columns={"earned_minor": "whatif_minor", "payable_minor": "whatif_payable_minor"}
    )
    holders = actual.merge(what, on="holder_id", how="outer").fillna(0)
    for column in ("actual_minor", "actual_payable_minor", "whatif_minor", "whatif_payable_minor"):
        holders[column] = holders[column].astype("int64")
    holders["holder_id"] = holders["holder_id"].astype("int64")
    holders = holders[(holders["actual_minor"] != 0) | (holders["whatif_minor"] != 0)]
    holders["change_minor"] = holders["whatif_minor"] - holders["actual_minor"]
    holders = holders.sort_values(["actual_minor", "holder_id"]).reset_index(drop=True)
    paid = holders["actual_minor"] > 0
    n = int(paid.sum())
    band = pd.Series([NEW_BAND] * len(holders), index=holders.index, dtype="object")
    if n:
        rank = pd.Series(range(n), index=holders.index[paid])
        band.loc[paid] = [f"Q{r * BANDS // n + 1}" for r in rank]
    holders["band"] = band
    w.holders = holders
    names = [f"Q{i}" for i in range(1, BANDS + 1)] + [NEW_BAND]
    for name in names:
        part = holders[holders["band"] == name]
        if not len(part):
            continue
        label = {
            "Q1": "Q1 (smallest 20% of earners)",
            f"Q{BANDS}": f"Q{BANDS} (largest 20% of earners)",
        }.get(name, name)
        row = _pair(name, label, int(part["actual_minor"].sum()), int(part["whatif_minor"].sum()))
        row["holders"] = len(part)
        row["gainers"] = int((part["change_minor"] > 0).sum())
        row["losers"] = int((part["change_minor"] < 0).sum())
        row["range"] = (int(part["actual_minor"].min()), int(part["actual_minor"].max()))
        w.bands.append(row)

    media_actual = _actual_media(allocation.pk)
    media_what = _scenario_media(result, inputs)
    w.media = [
        _pair(m, m, media_actual.get(m, 0), media_what.get(m, 0))
        for m in sorted(set(media_actual) | set(media_what))
    ]

    moved = holders[holders["change_minor"] != 0]
    top_gain = moved.sort_values(["change_minor", "holder_id"], ascending=[False, True]).head(TOP)
    top_loss = moved.sort_values(["change_minor", "holder_id"], ascending=[True, True]).head(TOP)
    ids = set(top_gain["holder_id"]) | set(top_loss["holder_id"])
    orgs = {
        pk: (code, name)
        for pk, code, name in Organisation.objects.filter(pk__in=[int(i) for i in ids]).values_list(
            "pk", "code", "name"
        )
    }
    w.gainers = [_holder_row(r, orgs) for r in top_gain.to_dict("records") if r["change_minor"] > 0]
    w.losers = [_holder_row(r, orgs) for r in top_loss.to_dict("records") if r["change_minor"] < 0]


def _pair(key: str, label: str, actual: int, whatif: int) -> dict:
    return {
        "key": key,
        "label": label,
        "actual_minor": int(actual),
        "whatif_minor": int(whatif),
        "change_minor": int(whatif) - int(actual),
    }


def _holder_row(row: dict, orgs: dict) -> dict:
    code, name = orgs.get(int(row["holder_id"]), ("", ""))
    return {
        "holder_id": int(row["holder_id"]),
        "code": code,
        "name": name,
        "band": row["band"],
        "actual_minor": int(row["actual_minor"]),
        "whatif_minor": int(row["whatif_minor"]),
        "change_minor": int(row["change_minor"]),
    }


# --- exports ---------------------------------------------------------------------------------


def _cell(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return csv_cell_defused(value)


def whatif_csv(w: WhatIf) -> str:
    """The comparison as CSV: the scenario, the totals and groups, the bands, media types, and
    one row per holder whose earnings exist in either run (integer minor units)."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\n")

    def row(*cells):
        writer.writerow([_cell(c) for c in cells])

    row("section", "key", "label", "actual_minor", "whatif_minor", "change_minor", "extra")
    row("scenario", "cycle", w.cycle.period, "", "", "", w.cycle.currency)
    row("scenario", "regime", f"{w.actual_regime} -> {w.scenario_regime}", "", "", "", "")
    row(
        "scenario",
        "admin_fee_bp",
        "",
        w.actual_params.admin_fee_bp,
        w.params.admin_fee_bp,
        w.params.admin_fee_bp - w.actual_params.admin_fee_bp,
        "",
    )
    row(
        "scenario",
        "threshold_minor",
        "",
        w.actual_params.threshold_minor,
        w.params.threshold_minor,
        w.params.threshold_minor - w.actual_params.threshold_minor,
        "",
    )
    row(
        "scenario", "fallback", f"{w.actual_params.fallback} -> {w.params.fallback}", "", "", "", ""
    )
    row(
        "scenario",
        "checksum",
        w.result.checksum,
        "",
        "",
        "",
        "same as actual" if w.same_checksum else "differs",
    )
    for section, rows in (("total", w.totals), ("group", w.groups), ("media_type", w.media)):
        for r in rows:
            row(
                section,
                r["key"],
                r["label"],
                r["actual_minor"],
                r["whatif_minor"],
                r["change_minor"],
                "",
            )
    for r in w.bands:
        row(
            "band",
            r["key"],
            r["label"],
            r["actual_minor"],
            r["whatif_minor"],
            r["change_minor"],
            f"{r['holders']} holders, {r['gainers']} gain, {r['losers']} lose",
        )
    holders = w.holders if w.holders is not None else pd.DataFrame()
    if len(holders):
        codes = dict(
            Organisation.objects.filter(
                pk__in=holders["holder_id"].astype(int).tolist()
            ).values_list("pk", "code")
        )
        for r in holders.sort_values(["change_minor", "holder_id"]).to_dict("records"):
            row(
                "holder",
                codes.get(int(r["holder_id"]), int(r["holder_id"])),
                r["band"],
                int(r["actual_minor"]),
                int(r["whatif_minor"]),
                int(r["change_minor"]),
                f"payable {int(r['actual_payable_minor'])} -> {int(r['whatif_payable_minor'])}",
            )
    return buffer.getvalue()


def whatif_chart_data(w: WhatIf) -> dict:
    """JSON for the charts, in major units (display only)."""
    from licensing.templatetags.money import ZERO_DECIMAL

    unit = 1 if w.cycle.currency.upper() in ZERO_DECIMAL else 100

    def series(rows):
        return {
            "labels": [r["label"] for r in rows],
            "actual": [r["actual_minor"] / unit for r in rows],
            "whatif": [r["whatif_minor"] / unit for r in rows],
        }

    return {
        "currency": w.cycle.currency,
        "bands": series(w.bands),
        "media": series(w.media),
        "groups": series(w.groups),
    }
