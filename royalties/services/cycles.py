"""Payout cycles: create, allocate (as a job), approve (four eyes), and what they write.

State machine: draft -> allocating -> allocated -> approved -> paying -> paid -> closed, and
failed (from allocating; allocating again is the retry). Re-allocating an allocated cycle
before approval makes a new `Allocation`; the same inputs give the identical result (the
checksum says so). Nothing is booked in the ledger until approval, by a different staff user
than the one who allocated; then statements are published and the money moves in one
transaction (`royalties.services.cycle_ledger`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.scoping import Caller
from accounts.services import audit_record
from config.bulk import table_read, table_write
from config.errors import ConflictError, PermissionError_
from licensing.services.declarations import period_parse
from royalties.engine.allocate import CycleInputs, PolicyParams, allocate
from royalties.errors import RoyaltiesError
from royalties.models import (
    Allocation,
    AllocationResidue,
    Cycle,
    CycleLicence,
    CycleStatus,
    DistributionPolicy,
    PayoutReturn,
    Statement,
    StatementSourceLine,
    StatementWorkLine,
    SuspenseItem,
    SuspenseRelease,
)
from royalties.selectors import cycle_inputs
from royalties.services.payouts import payout_thresholds
from royalties.services.recognition import BOOKED_STATUSES, licence_pools
from royalties.services.suspense import suspense_releases_prepare

logger = logging.getLogger(__name__)

ALLOCATABLE = (CycleStatus.DRAFT, CycleStatus.ALLOCATED, CycleStatus.FAILED)


class CycleError(RoyaltiesError):
    code = "cycle_error"


def _require_staff(caller: Caller, *groups: str, action: str) -> None:
    if not caller.in_staff_group(*groups):
        raise PermissionError_(
            f"Only society staff in the {' or '.join(groups)} group may {action}.",
            code="forbidden_role",
        )


def policy_current() -> DistributionPolicy:
    policy = DistributionPolicy.objects.order_by("-version").first()
    if policy is None:
        raise CycleError(
            "No distribution policy is published yet; publish one first.", code="no_policy"
        )
    return policy


def policy_publish(*, caller: Caller, **fields) -> DistributionPolicy:
    """A new version of the policy (the earlier ones stay, as the cycles that used them)."""
    _require_staff(caller, "operator", "approver", action="change the distribution policy")
    with transaction.atomic():
        latest = DistributionPolicy.objects.select_for_update().order_by("-version").first()
        base = {}
        if latest is not None:
            base = {
                f.name: getattr(latest, f.name)
                for f in DistributionPolicy._meta.concrete_fields
                if f.name not in ("id", "version", "created_by", "created_at", "note")
            }
        base.update(fields)
        policy = DistributionPolicy(
            version=(latest.version + 1) if latest else 1, created_by=caller.user, **base
        )
        policy.full_clean()
        policy.save()
        audit_record(action="policy.publish", caller=caller, obj=policy, details=fields)
    return policy


def cycle_create(
    *, caller: Caller, period: str, currency: str = "EUR", policy: DistributionPolicy | None = None
) -> Cycle:
    _require_staff(caller, "operator", "approver", action="open a payout cycle")
    label, start, end = period_parse(period)
    currency = (currency or "EUR").upper()
    with transaction.atomic():
        if Cycle.objects.filter(period=label, currency=currency).exists():
            raise ConflictError(
                f"A {currency} cycle for {label} exists already.", code="cycle_exists"
            )
        cycle = Cycle.objects.create(
            period=label,
            period_start=start,
            period_end=end,
            currency=currency,
            policy=policy or policy_current(),
            created_by=caller.user,
        )
        audit_record(action="cycle.create", caller=caller, obj=cycle, details={"period": label})
    return cycle


def _previous_cycle(cycle: Cycle) -> Cycle | None:
    return (
        Cycle.objects.filter(currency=cycle.currency, period_end__lt=cycle.period_start)
        .order_by("-period_start")
        .first()
    )


def cycle_allocate(*, caller: Caller, cycle: Cycle) -> Cycle:
    """Queue an allocation (draft, allocated or failed -> allocating). Runs as a Celery job."""
    _require_staff(caller, "operator", "approver", action="allocate a cycle")
    from royalties.tasks import cycle_allocate_task

    with transaction.atomic():
        previous = _previous_cycle(cycle)
        if previous is not None and previous.status not in BOOKED_STATUSES:
            raise ConflictError(
                f"The {previous.period} cycle is {previous.status}; approve it first, as its "
                "carried-forward balances are this cycle's brought-forward.",
                code="previous_cycle_open",
            )
        changed = Cycle.objects.filter(pk=cycle.pk, status__in=ALLOCATABLE).update(
            status=CycleStatus.ALLOCATING,
            stage="queued",
            percent=0,
            message="",
            allocated_by=caller.user,
            updated_at=timezone.now(),
        )
        if not changed:
            cycle.refresh_from_db()
            raise ConflictError(
                f"A {cycle.status} cycle cannot be allocated.", code="cycle_not_allocatable"
            )
        audit_record(action="cycle.allocate", caller=caller, obj=cycle)
        transaction.on_commit(lambda: cycle_allocate_task.delay(cycle.pk))
    cycle.refresh_from_db()
    return cycle


def _progress(cycle_id: int, stage: str, percent: int) -> None:
    Cycle.objects.filter(pk=cycle_id).update(
        stage=stage, percent=percent, updated_at=timezone.now()
    )


def _params(policy: DistributionPolicy) -> PolicyParams:
    return PolicyParams(
        admin_fee_bp=policy.admin_fee_bp,
        fee_bp_by_product={k: int(v) for k, v in policy.fee_bp_by_product.items()},
        fee_bp_by_media={k: int(v) for k, v in policy.fee_bp_by_media.items()},
        media_weight_bp={k: int(v) for k, v in policy.media_weight_bp.items()},
        unmatched_weight_bp=policy.unmatched_weight_bp,
        threshold_minor=policy.threshold_minor,
        fallback=policy.fallback,
    )


def cycle_payout_returns(cycle: Cycle) -> list[PayoutReturn]:
    """Money failed or reversed payouts gave back to holders, not brought forward yet."""
    return list(PayoutReturn.objects.filter(cycle__isnull=True, currency=cycle.currency))


def cycle_inputs_load(
    cycle: Cycle,
    releases: list[SuspenseRelease],
    returns: list[PayoutReturn] | None = None,
    *,
    loaded: tuple[list, dict[int, list[int]]] | None = None,
):
    """Everything the engine needs for ``cycle``: (inputs, licence pools, declarations).
    Each holder's brought-forward balance is the previous statement's carried-forward plus
    the payout ``returns``; its threshold the higher of the policy's and its own; its rounding
    residue the one the previous allocation left it. ``loaded``: `cycle_pools_load`'s answer,
    when the caller has it already."""
    pools, declared = loaded if loaded is not None else cycle_pools_load(cycle)
    usage, works, shares = cycle_usage_load(
        declared, release_work_ids=[r.work_id for r in releases if r.work_id]
    )
    inputs = CycleInputs(
        licences=licences_frame(pools, declared),
        usage=usage,
        works=works,
        shares=shares,
        holders=cycle_holders_frame(
            cycle, returns if returns is not None else cycle_payout_returns(cycle)
        ),
        releases=releases_frame(releases),
    )
    return inputs, pools, declared


def cycle_pools_load(cycle: Cycle) -> tuple[list, dict[int, list[int]]]:
    """The cycle's licence pools (positive ones) and each licence's accepted declarations."""
    pools = licence_pools(
        period_start=cycle.period_start,
        period_end=cycle.period_end,
        currency=cycle.currency,
        exclude_cycle_id=cycle.pk,
    )
    pools = [p for p in pools if p.pool_minor > 0]
    declared = cycle_inputs.declarations_for_cycle(
        licence_ids=[p.licence_id for p in pools],
        period_start=cycle.period_start,
        period_end=cycle.period_end,
    )
    return pools, declared


def cycle_usage_rows(declared: dict[int, list[int]]) -> int:
    """How many usage rows the given licences' declarations stored (what loading them costs)."""
    ids = [pk for pks in declared.values() for pk in pks]
    return sum(cycle_inputs.declaration_rows(declaration_ids=ids).values()) if ids else 0


def cycle_usage_load(
    declared: dict[int, list[int]],
    *,
    release_work_ids: list[int] | tuple[int, ...] = (),
    lenders: Collection[Collection[int]] = (),
    catalogue: cycle_inputs.Catalogue | None = None,
    summed: Sequence[pd.DataFrame] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(usage, works, shares) of the given licences' declarations, plus the works (and
    shares) releases name. ``lenders``: groups of licences (the donors of a partition, one
    group per product) that only lend their usage to their product's proxy pool; each
    group's usage is read summed per work and identifier (`cycle_inputs.usage_summed_frame`),
    so that it costs the works used, not the lines; ``summed``: such usage the caller summed
    already (donors not in ``declared``). ``catalogue``: the works and shares read once
    already (`cycle_inputs.catalogue_load`), taken from it instead of read again."""
    summed, lent = list(summed), set()
    for group in lenders:
        ids = sorted({int(lid) for lid in group if declared.get(lid)})
        frame = cycle_inputs.usage_summed_frame(
            declaration_ids=[pk for lid in ids for pk in declared[lid]], licence_ids=ids
        )
        if frame is not None:
            summed.append(frame)
            lent.update(ids)
    declared = {lid: ids for lid, ids in declared.items() if lid not in lent}
    by_declaration = {pk: lid for lid, ids in declared.items() for pk in ids}
    usage = cycle_inputs.usage_frame(declarations=by_declaration)
    if summed:
        usage = pd.concat([usage, *summed] if len(usage) else summed, ignore_index=True)
    work_ids = np.concatenate(
        [
            usage["work_id"].dropna().to_numpy("int64"),
            np.asarray([int(w) for w in release_work_ids], dtype="int64"),
        ]
    )
    if catalogue is not None:
        return usage, catalogue.works(work_ids), catalogue.shares(work_ids)
    works = cycle_inputs.works_frame(work_ids=work_ids)
    shares = cycle_inputs.shares_frame(work_ids=work_ids)
    return usage, works, shares


def cycle_holders_frame(cycle: Cycle, returns: list[PayoutReturn]) -> pd.DataFrame:
    """The engine's holders: brought-forward balances (previous carried-forward plus payout
    returns), thresholds, readiness and the rounding residues the previous allocation left."""
    previous = _previous_cycle(cycle)
    previous_id = previous.current_allocation_id if previous else None
    bf = cycle_inputs.brought_forward_frame(previous_allocation_id=previous_id)
    balances = dict(
        zip(bf["holder_id"].tolist(), bf["brought_forward_minor"].tolist(), strict=True)
    )
    for r in returns:
        balances[r.holder_id] = balances.get(r.holder_id, 0) + r.amount_minor
    residue = cycle_inputs.residues_frame(previous_allocation_id=previous_id)
    residues = dict(
        zip(residue["holder_id"].tolist(), residue["residue_sub"].tolist(), strict=True)
    )
    thresholds = payout_thresholds()
    ids = sorted(set(balances) | set(thresholds) | set(residues))
    return pd.DataFrame(
        {
            "holder_id": pd.Series(ids, dtype="int64"),
            "brought_forward_minor": pd.Series([balances.get(h, 0) for h in ids], dtype="int64"),
            "threshold_minor": pd.Series([thresholds.get(h, 0) for h in ids], dtype="int64"),
            "ready": pd.Series([True] * len(ids), dtype="bool"),
            "residue_sub": pd.Series([residues.get(h, 0) for h in ids], dtype="int64"),
        }
    )


def licences_frame(pools, declared) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "licence_id": pd.Series([p.licence_id for p in pools], dtype="int64"),
            "product": pd.Series([p.product_code for p in pools], dtype="object"),
            "pool_minor": pd.Series([p.pool_minor for p in pools], dtype="int64"),
            "declared": pd.Series([p.licence_id in declared for p in pools], dtype="bool"),
        }
    )


def releases_frame(releases: list[SuspenseRelease]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "release_id": pd.Series([str(r.pk) for r in releases], dtype="object"),
            "amount_minor": pd.Series([r.item.amount_minor for r in releases], dtype="int64"),
            "work_id": pd.array([r.work_id for r in releases], dtype="Int64"),
        }
    )


def cycle_allocate_run(*, cycle_id: int) -> Cycle | None:
    """The allocation job: prepare the releases, then either load, run the engine and store
    the allocation and its statements in one transaction (one partition), or start a run
    fanned out over partitions of the licences (``ROYALTIES_ALLOCATION_PARTITIONS`` > 1, or
    more usage rows than ``ROYALTIES_ALLOCATION_CHUNK_ROWS``, so that no task holds more
    than a chunk of them; ``royalties.services.allocation_runs``), whose last task stores the
    same allocation. Runs only while the cycle is `allocating`; a failure marks it failed
    with the reason and writes nothing else."""
    from royalties.services.allocation_runs import allocation_chunked, allocation_run_start

    cycle = Cycle.objects.select_related("policy").filter(pk=cycle_id).first()
    if cycle is None or cycle.status != CycleStatus.ALLOCATING:
        return cycle
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        _progress(cycle_id, "preparing suspense releases", 5)
        releases = [
            r
            for r in suspense_releases_prepare(cycle=cycle)
            if r.kind != SuspenseRelease.Kind.RETAIN
        ]
        returns = cycle_payout_returns(cycle)
        pools, declared = cycle_pools_load(cycle)
        chunk_rows = settings.ROYALTIES_ALLOCATION_CHUNK_ROWS or None  # 0: no chunks
        chunked = chunk_rows is not None and cycle_usage_rows(declared) > chunk_rows
        if settings.ROYALTIES_ALLOCATION_PARTITIONS == 1 and chunked:
            # One task still, chunk by chunk: the memory of a chunk, no scratch rows.
            allocation_chunked(
                cycle=cycle,
                releases=releases,
                returns=returns,
                chunk_rows=chunk_rows,
                loaded=(pools, declared),
                started=started,
            )
            return Cycle.objects.get(pk=cycle_id)
        if settings.ROYALTIES_ALLOCATION_PARTITIONS > 1:
            allocation_run_start(
                cycle=cycle,
                releases=releases,
                returns=returns,
                partitions=settings.ROYALTIES_ALLOCATION_PARTITIONS,
                chunk_rows=chunk_rows,
                loaded=(pools, declared),
            )
            return Cycle.objects.get(pk=cycle_id)
        _progress(cycle_id, "loading licences and usage", 10)
        t = time.perf_counter()
        inputs, pools, declared = cycle_inputs_load(
            cycle, releases, returns, loaded=(pools, declared)
        )
        timings["load"] = round(time.perf_counter() - t, 3)
        _progress(cycle_id, "allocating", 40)
        t = time.perf_counter()
        result = allocate(inputs, _params(cycle.policy))
        timings["engine"] = round(time.perf_counter() - t, 3)
        cycle_allocation_finish(
            cycle_id=cycle_id,
            result=result,
            pools=pools,
            declared=declared,
            releases=releases,
            returns=returns,
            timings=timings,
            started=started,
        )
    except (OperationalError, InterfaceError):
        # The database went away (a restart, a failover): nothing was stored, the cycle is
        # still allocating, and `allocation_runs_sweep` enqueues this task again once the
        # cycle has made no progress for ALLOCATION_STUCK_SECONDS.
        logger.warning("allocation of cycle %s lost its database connection", cycle_id)
        if not connection.in_atomic_block:
            connection.close()
        return None
    except Exception as exc:
        cycle_allocation_fail(cycle_id=cycle_id, exc=exc)
    return Cycle.objects.get(pk=cycle_id)


def cycle_allocation_finish(
    *, cycle_id: int, result, pools, declared, releases, returns, timings, started: float
) -> Allocation | None:
    """Store an engine result as the cycle's new allocation with its statements, in one
    transaction, if the cycle is still `allocating` (else nothing: someone else finished)."""
    _progress(cycle_id, "writing statements", 85)
    t = time.perf_counter()
    with transaction.atomic():
        locked = Cycle.objects.select_for_update().get(pk=cycle_id)
        if locked.status != CycleStatus.ALLOCATING:
            return None
        allocation = _allocation_store(locked, result, pools, declared, releases, timings)
        Allocation.objects.filter(pk=allocation.pk).update(payout_returns=[r.pk for r in returns])
        timings["write"] = round(time.perf_counter() - t, 3)
        timings["total"] = round(time.perf_counter() - started, 3)
        Allocation.objects.filter(pk=allocation.pk).update(timings=timings)
        Cycle.objects.filter(pk=cycle_id).update(
            status=CycleStatus.ALLOCATED,
            current_allocation=allocation,
            allocated_at=timezone.now(),
            stage="allocated",
            percent=100,
            message=_summary(result.totals, locked.currency),
            updated_at=timezone.now(),
        )
        audit_record(
            action="cycle.allocated",
            actor=locked.allocated_by,
            obj=locked,
            details={"allocation": allocation.number, "checksum": allocation.checksum},
        )
    return allocation


def cycle_allocation_fail(*, cycle_id: int, exc: BaseException) -> None:
    """An allocating cycle -> failed, with the reason (allocating again is the retry)."""
    logger.error("allocation of cycle %s failed", cycle_id, exc_info=exc)
    Cycle.objects.filter(pk=cycle_id, status=CycleStatus.ALLOCATING).update(
        status=CycleStatus.FAILED,
        stage="failed",
        message=f"The allocation failed: {exc}",
        updated_at=timezone.now(),
    )


def _summary(totals: dict, currency: str) -> str:
    return (
        f"Pool {totals['in_minor']:,} = fee {totals['fee_minor']:,} + holders "
        f"{totals['holders_minor']:,} + suspense {totals['suspense_minor']:,} "
        f"({currency} minor units)."
    )


def _allocation_store(cycle, result, pools, declared, releases, timings) -> Allocation:
    number = (cycle.allocations.aggregate(n=Max("number"))["n"] or 0) + 1
    allocation = Allocation.objects.create(
        cycle=cycle,
        number=number,
        policy=cycle.policy,
        checksum=result.checksum,
        totals={k: int(v) for k, v in result.totals.items()},
        releases=[r.pk for r in releases],
        created_by=cycle.allocated_by,
    )
    per_licence = result.licences.set_index("licence_id")
    CycleLicence.objects.bulk_create(
        CycleLicence(
            allocation=allocation,
            licence_id=p.licence_id,
            product_code=p.product_code,
            days_in_period=p.days_in_period,
            term_days=p.term_days,
            collected_minor=p.collected_minor,
            recognised_minor=p.recognised_minor,
            processing_fee_minor=p.processing_fee_minor,
            pool_minor=p.pool_minor,
            fee_minor=int(per_licence.at[p.licence_id, "fee_minor"]),
            holders_minor=int(per_licence.at[p.licence_id, "holders_minor"]),
            suspense_minor=int(per_licence.at[p.licence_id, "suspense_minor"]),
            declared=p.licence_id in declared,
            declarations=declared.get(p.licence_id, []),
        )
        for p in pools
    )
    _statements_store(allocation, result)
    _residues_store(allocation, result)
    suspense = result.suspense[result.suspense["amount_minor"] > 0]
    n = len(suspense)
    table_write(
        SuspenseItem._meta.db_table,
        pa.table(
            {
                "allocation_id": pa.array([allocation.pk] * n, pa.int64()),
                "cycle_id": pa.array([cycle.pk] * n, pa.int64()),
                "currency": pa.array([cycle.currency] * n, pa.string()),
                "reason": pa.array(suspense["reason"].astype(str), pa.string()),
                "ref": pa.array(suspense["ref"].astype(str), pa.string()),
                "amount_minor": pa.array(suspense["amount_minor"].astype("int64")),
            }
        ),
    )
    return allocation


def _statements_store(allocation: Allocation, result) -> None:
    holders = result.holders
    n = len(holders)
    table = pa.table(
        {
            "allocation_id": pa.array([allocation.pk] * n, pa.int64()),
            "cycle_id": pa.array([allocation.cycle_id] * n, pa.int64()),
            "holder_id": pa.array(holders["holder_id"].astype("int64")),
            "currency": pa.array([allocation.cycle.currency] * n, pa.string()),
            "brought_forward_minor": pa.array(holders["brought_forward_minor"].astype("int64")),
            "gross_minor": pa.array(_gross(result).astype("int64")),
            "deductions_minor": pa.array(_deductions(result).astype("int64")),
            "earned_minor": pa.array(holders["earned_minor"].astype("int64")),
            "total_minor": pa.array(holders["total_minor"].astype("int64")),
            "payable_minor": pa.array(holders["payable_minor"].astype("int64")),
            "carried_forward_minor": pa.array(holders["carried_forward_minor"].astype("int64")),
        }
    )
    table_write(Statement._meta.db_table, table)
    ids = table_read(
        f"SELECT holder_id, id FROM {Statement._meta.db_table} WHERE allocation_id = %s",  # noqa: S608  # nosec B608
        [allocation.pk],
        schema=pa.schema([("holder_id", pa.int64()), ("statement_id", pa.int64())]),
    ).to_pandas()
    work_lines = result.lines_by_work.merge(ids, on="holder_id", how="inner")
    table_write(
        StatementWorkLine._meta.db_table,
        pa.table(
            {
                "statement_id": pa.array(work_lines["statement_id"].astype("int64")),
                "work_id": pa.array(work_lines["work_id"].astype("Int64"), pa.int64()),
                "quantity": pa.array(work_lines["quantity"].astype("int64")),
                "amount_minor": pa.array(work_lines["amount_minor"].astype("int64")),
            }
        ),
    )
    # One line per (holder, product) or (holder, release); the per-licence detail is in the
    # allocation's licence breakdown, so licence_id stays NULL.
    source = result.lines_by_source.merge(ids, on="holder_id", how="inner")
    table_write(
        StatementSourceLine._meta.db_table,
        pa.table(
            {
                "statement_id": pa.array(source["statement_id"].astype("int64")),
                "licence_id": pa.nulls(len(source), pa.int64()),
                "product_code": pa.array(source["product"].fillna("").astype(str), pa.string()),
                "release_ref": pa.array(source["release_id"].fillna("").astype(str), pa.string()),
                "amount_minor": pa.array(source["amount_minor"].astype("int64")),
            }
        ),
    )


def _residues_store(allocation: Allocation, result) -> None:
    """Each holder's rounding residue, for the next cycle to carry (COPY, like statements)."""
    residues = result.residues
    n = len(residues)
    table_write(
        AllocationResidue._meta.db_table,
        pa.table(
            {
                "allocation_id": pa.array([allocation.pk] * n, pa.int64()),
                "holder_id": pa.array(residues["holder_id"].astype("int64")),
                "residue_sub": pa.array(residues["residue_sub"].astype("int64")),
            }
        ),
    )


def _gross(result) -> pd.Series:
    if "gross_minor" in result.holders:
        return result.holders["gross_minor"]
    return result.holders["earned_minor"]


def _deductions(result) -> pd.Series:
    if "deductions_minor" in result.holders:
        return result.holders["deductions_minor"]
    return pd.Series([0] * len(result.holders), dtype="int64")


def cycle_approve(*, caller: Caller, cycle: Cycle) -> Cycle:
    """allocated -> approved, by an approver who did not allocate it (four eyes). Books the
    allocation in the ledger and publishes the statements, in one transaction."""
    from licensing.services.disclosures import disclosure_digest_enqueue
    from royalties.services.cycle_ledger import cycle_book

    _require_staff(caller, "approver", action="approve a cycle")
    with transaction.atomic():
        locked = Cycle.objects.select_for_update().get(pk=cycle.pk)
        if locked.status != CycleStatus.ALLOCATED:
            raise ConflictError(
                f"A {locked.status} cycle cannot be approved.", code="cycle_not_approvable"
            )
        if caller.user is None or caller.user.pk == locked.allocated_by_id:
            raise PermissionError_(
                "Four eyes: the cycle must be approved by a different person than the one "
                "who allocated it.",
                code="four_eyes",
            )
        now = timezone.now()
        cycle_book(cycle=locked, approved_by=caller.user)
        Statement.objects.filter(allocation_id=locked.current_allocation_id).update(
            published_at=now
        )
        transaction.on_commit(lambda: disclosure_digest_enqueue(cycle_id=locked.pk))
        Cycle.objects.filter(pk=locked.pk).update(
            status=CycleStatus.APPROVED,
            approved_by=caller.user,
            approved_at=now,
            stage="approved",
            updated_at=now,
        )
        audit_record(
            action="cycle.approve",
            caller=caller,
            obj=locked,
            details={"allocation": locked.current_allocation.number},
        )
    cycle.refresh_from_db()
    return cycle


def cycle_pay(*, caller: Caller, cycle: Cycle) -> Cycle:
    """approved -> paying: a payout run (royalties.services.payouts), approvers only."""
    from royalties.services.payouts import payout_run_start

    payout_run_start(caller=caller, cycle=cycle)
    cycle.refresh_from_db()
    return cycle


def cycle_default_period(today: date | None = None) -> str:
    """The last complete quarter before ``today``."""
    today = today or timezone.localdate()
    first_of_quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    last = first_of_quarter - timedelta(days=1)
    return f"{last.year}-Q{(last.month - 1) // 3 + 1}"


def cycle_summary_lines(cycle: Cycle) -> list[str]:
    """The totals identity and the main figures of the cycle's current allocation, for people."""
    allocation = cycle.current_allocation
    if allocation is None:
        return [f"Cycle {cycle.period} {cycle.currency}: {cycle.status}, not allocated."]
    t = allocation.totals
    statements = allocation.statements
    return [
        f"Cycle {cycle.period} {cycle.currency}: {cycle.status} "
        f"(allocation {allocation.number}, policy v{allocation.policy.version})",
        f"  licences: {allocation.licences.count():,}  holders: {statements.count():,}",
        f"  in:        {t['in_minor']:>15,}  (pools {t['pool_minor']:,} + releases "
        f"{t['releases_minor']:,})",
        f"  fee:       {t['fee_minor']:>15,}",
        f"  holders:   {t['holders_minor']:>15,}",
        f"  suspense:  {t['suspense_minor']:>15,}",
        f"  identity:  in = fee + holders + suspense -> "
        f"{t['in_minor'] == t['fee_minor'] + t['holders_minor'] + t['suspense_minor']}",
        f"  payable now: {t['payable_minor']:,}  carried forward: {t['carried_forward_minor']:,}",
        f"  checksum: {allocation.checksum}",
    ]
