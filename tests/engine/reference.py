"""A slow, obviously-correct reference for the allocation engine, in exact rationals.

It follows the algorithm of `royalties.engine.allocate` step by step, but with
`fractions.Fraction` and no scale, no floors and no rounding: every bucket (fee per product,
holder, suspense reason/ref) gets its exact rational amount, e.g. a holder gets
Σ pool × u / W × (1 − bp / 10000) × ppm / 10⁶ over the rows of its works. The engine must land
every bucket within one minor unit of these amounts.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import pandas as pd

from royalties.engine.allocate import BP, PPM, CycleInputs, PolicyParams

Key = tuple  # ("fee", product) | ("holder", holder_id) | ("suspense", reason, ref)


def exact_buckets(
    inputs: CycleInputs, policy: PolicyParams, earnings: dict[int, Fraction] | None = None
) -> dict[Key, Fraction]:
    """Exact amount per bucket; `earnings`, if given, receives each holder's licence earnings
    (steps 3-5, before releases: what pro-rata releases are split by)."""
    works = {
        int(r.work_id): (str(r.media_type), bool(r.disputed)) for r in inputs.works.itertuples()
    }
    shares: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for r in inputs.shares.itertuples():
        shares[int(r.work_id)].append((int(r.holder_id), int(r.share_ppm)))

    def weight_bp(work_id: int | None) -> int:
        if work_id is None:
            return policy.unmatched_weight_bp
        return policy.media_weight_bp.get(works[work_id][0], BP)

    # Usage per licence, keyed by (work_id or None, ref, reserved).
    own: dict[int, dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
    for r in inputs.usage.itertuples():
        work_id = None if pd.isna(r.work_id) else int(r.work_id)
        key = (work_id, str(r.ref) if work_id is None else "", bool(r.reserved))
        own[int(r.licence_id)][key] += int(r.quantity)

    def total_weight(rows: dict[tuple, int]) -> int:
        return sum(q * weight_bp(k[0]) for k, q in rows.items())

    licences = list(inputs.licences.itertuples())
    direct = {
        int(lic.licence_id): bool(lic.declared) and total_weight(own[int(lic.licence_id)]) > 0
        for lic in licences
    }
    donors: dict[str, dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
    for lic in licences:
        if direct[int(lic.licence_id)]:
            for key, q in own[int(lic.licence_id)].items():
                if q * weight_bp(key[0]) > 0:
                    donors[str(lic.product)][key] += q

    out: dict[Key, Fraction] = defaultdict(Fraction)
    earned: dict[int, Fraction] = defaultdict(Fraction)
    for lic in licences:
        licence_id, product, pool = int(lic.licence_id), str(lic.product), int(lic.pool_minor)
        if direct[licence_id]:
            rows = own[licence_id]
        elif policy.fallback == "proxy":
            rows = donors.get(product, {})
        else:  # "suspense": the whole pool waits for a declaration
            rows = {}
        W = total_weight(rows)
        if W == 0:
            out[("suspense", "no_usage", str(licence_id))] += pool
            continue
        for (work_id, ref, reserved), q in rows.items():
            part = Fraction(pool * q * weight_bp(work_id), W)
            if work_id is not None and works[work_id][0] in policy.fee_bp_by_media:
                bp = policy.fee_bp_by_media[works[work_id][0]]
            else:
                bp = policy.fee_bp_by_product.get(product, policy.admin_fee_bp)
            fee = part * bp / BP
            out[("fee", product)] += fee
            net = part - fee
            if work_id is None:
                # An identifier held by a registered reservation (no work) is held as such.
                out[("suspense", "reserved" if reserved else "unmatched", ref)] += net
            elif reserved:
                out[("suspense", "reserved", str(work_id))] += net
            elif works[work_id][1]:
                out[("suspense", "disputed", str(work_id))] += net
            else:
                for holder_id, ppm in shares.get(work_id, []):
                    earned[holder_id] += net * ppm / PPM
                rest = net * (PPM - sum(p for _, p in shares.get(work_id, []))) / PPM
                if rest:
                    out[("suspense", "unassigned_share", str(work_id))] += rest
    for holder_id, amount in earned.items():
        out[("holder", holder_id)] += amount
    if earnings is not None:
        earnings.update(earned)

    earned_total = sum(earned.values(), Fraction(0))
    for r in inputs.releases.itertuples():
        amount = int(r.amount_minor)
        if not pd.isna(r.work_id):
            work_id = int(r.work_id)
            for holder_id, ppm in shares.get(work_id, []):
                out[("holder", holder_id)] += Fraction(amount * ppm, PPM)
            rest = Fraction(amount * (PPM - sum(p for _, p in shares.get(work_id, []))), PPM)
            if rest:
                out[("suspense", "unassigned_share", str(work_id))] += rest
        elif earned_total == 0:
            out[("suspense", "undistributable", str(r.release_id))] += amount
        else:
            for holder_id, e in earned.items():
                out[("holder", holder_id)] += amount * e / earned_total
    return {k: v for k, v in out.items() if v}


def result_buckets(result) -> dict[Key, int]:
    """The engine's rounded buckets, keyed like `exact_buckets`."""
    out: dict[Key, int] = {}
    for r in result.fees.itertuples():
        out[("fee", r.product)] = int(r.amount_minor)
    for r in result.holders.itertuples():
        if r.earned_minor:
            out[("holder", int(r.holder_id))] = int(r.earned_minor)
    for r in result.suspense.itertuples():
        out[("suspense", r.reason, r.ref)] = int(r.amount_minor)
    return out
