"""Usage declarations: file one (a file, or nil), process it, keep the newest accepted one.

``declaration_file_start`` checks the licence and the period, streams the file to storage and
enqueues the job (``transaction.on_commit``); ``declaration_process`` (the Celery task's body)
claims it (submitted -> processing), exports the identifier index from the database
(PostgreSQL: ``COPY (SELECT ...) TO STDOUT``), runs the pure matcher
(``licensing.matching``), and writes the aggregates (PostgreSQL: ``COPY ... FROM STDIN``;
SQLite: executemany) and the totals in one transaction. A rejected file writes no aggregate;
its job row says why, with every error in a CSV report. Accepting a declaration supersedes the
accepted one for the same licence, model (name and version) and period.

Periods: "2026-Q3" (a calendar quarter) or "2026-07" (a month). The period must overlap the
licence term; the declaration covers the part of it inside the term (``period_start`` ..
``period_end``). The deadline is ``DECLARATION_DEADLINE_DAYS`` (default 30) after the
period's end; a declaration filed after it is marked late (and still accepted).

Reserved works: a work is reserved for a licence when its consent (or its catalogue's
default) is "reserved" for any of the licence's uses (training when the licence names none).
Registered reservations (``Reservation``) count too: those in force (not withdrawn; a
member's, or a non-member's once its email was verified, as in
``licensing.services.reservations``) whose uses are empty (every use) or include one of the
licence's uses are passed to the matcher, which holds every line they cover (identifier,
URL prefix, or the URL's host or a parent domain). A held line naming a work makes the work's
usage reserved; one naming no work is reserved usage in ``DeclarationReservedIdentifier``,
never in the unmatched pool.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable

import pyarrow as pa
import pyarrow.csv as pa_csv
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.scoping import Caller
from accounts.services import audit_record
from config import failpoints
from config.errors import PermissionError_
from licensing.errors import ImportFileError, LicensingError
from licensing.identifiers import IdentifierError, normalise
from licensing.importing.report import csv_cell_defused
from licensing.matching import (
    RESERVATIONS_SCHEMA,
    WORKS_SCHEMA,
    DeclarationRejected,
    MatchResult,
    declaration_match,
)
from licensing.matching.engine import UNITS
from licensing.models import (
    Consent,
    DeclarationReservedIdentifier,
    DeclarationStatus,
    DeclarationUnmatched,
    DeclarationWorkUsage,
    Licence,
    LicenceStatus,
    Reservation,
    UsageDeclaration,
    Work,
    WorkIdentifier,
)
from licensing.services.conflicts import conflict_detect
from licensing.services.jobs import jobs_sweep
from licensing.services.reservations import reservation_covering
from licensing.services.trueups import trueup_check
from licensing.snapshots import registry_index, registry_version

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 4 * 1024 * 1024 * 1024
DEFAULT_DEADLINE_DAYS = 30
DEFAULT_PARTITION_ROWS = 100_000
ERRORS_KEPT = 100
ERROR_REPORT_COLUMNS = ("row", "column", "value", "message")
UNMATCHED_CSV_COLUMNS = ("scheme", "identifier", "valid", "note", "quantity", "lines", "title")
_COPY_BATCH_ROWS = 200_000
_USES = ("training", "fine_tuning", "rag")
_QUARTER_RE = re.compile(r"(\d{4})-?Q([1-4])", re.IGNORECASE)
_MONTH_RE = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")

ProgressCallback = Callable[[str, int], None]


def declaration_max_inflated_bytes() -> int:
    """The most a gzip declaration may inflate to (DECLARATION_MAX_INFLATED_BYTES, default
    64 GiB: about 2 billion lines)."""
    return int(getattr(settings, "DECLARATION_MAX_INFLATED_BYTES", 64 * 1024**3))


def declaration_max_bytes() -> int:
    """The largest declaration file accepted (setting DECLARATION_MAX_BYTES, default 4 GiB)."""
    return int(getattr(settings, "DECLARATION_MAX_BYTES", DEFAULT_MAX_BYTES))


# --------------------------------------------------------------------------------------------
# Periods
# --------------------------------------------------------------------------------------------


def period_parse(text: str) -> tuple[str, dt.date, dt.date]:
    """ "2026-Q3" -> ("2026-Q3", 2026-07-01, 2026-09-30); "2026-07" -> a month."""
    value = (text or "").strip()
    if match := _QUARTER_RE.fullmatch(value):
        year, quarter = int(match.group(1)), int(match.group(2))
        start = dt.date(year, 3 * quarter - 2, 1)
        end_month = 3 * quarter
        label = f"{year}-Q{quarter}"
    elif match := _MONTH_RE.fullmatch(value):
        year, end_month = int(match.group(1)), int(match.group(2))
        start = dt.date(year, end_month, 1)
        label = f"{year}-{end_month:02d}"
    else:
        raise LicensingError(
            f"{value!r} is not a period; write a quarter such as 2026-Q3 or a month such as "
            "2026-07.",
            code="invalid",
            details={"period": ["A quarter (2026-Q3) or a month (2026-07)."]},
        )
    following = dt.date(year + (end_month == 12), end_month % 12 + 1, 1)
    return label, start, following - dt.timedelta(days=1)


def _licence_period(licence: Licence, period: str) -> tuple[str, dt.date, dt.date]:
    label, start, end = period_parse(period)
    wanted = licence.product.declaration_period
    if ("-Q" in label) != (wanted == "quarter"):
        example = "2026-Q3" if wanted == "quarter" else "2026-07"
        raise LicensingError(
            f"{licence.product.name} is declared by {wanted}: give a period such as {example}, "
            f"not {label}.",
            code="wrong_period",
            details={"period": [f"One {wanted}, e.g. {example}."]},
        )
    if licence.starts_on is None or licence.ends_on is None:
        raise LicensingError("The licence has no term yet.", code="licence_not_active")
    if end < licence.starts_on or start > licence.ends_on:
        raise LicensingError(
            f"{label} ({start:%d %b %Y} - {end:%d %b %Y}) is outside the licence term "
            f"({licence.starts_on:%d %b %Y} - {licence.ends_on:%d %b %Y}).",
            code="period_outside_term",
            details={"period": ["The period must fall within the licence term."]},
        )
    return label, max(start, licence.starts_on), min(end, licence.ends_on)


def _deadline(period_end: dt.date) -> dt.date:
    days = int(getattr(settings, "DECLARATION_DEADLINE_DAYS", DEFAULT_DEADLINE_DAYS))
    return period_end + dt.timedelta(days=days)


def _check_licence(caller: Caller, licence: Licence) -> None:
    caller.require_write()
    if not caller.is_staff and (
        caller.organisation is None or licence.licensee_id != caller.organisation.pk
    ):
        raise LicensingError("No such licence.", code="not_found")
    if licence.status != LicenceStatus.ACTIVE:
        raise LicensingError(
            f"Declarations are filed against an active licence; this one is {licence.status}.",
            code="licence_not_active",
        )


def _check_model(model_name: str, model_version: str) -> tuple[str, str]:
    name, version = (model_name or "").strip(), (model_version or "").strip()
    problems = {}
    if not name:
        problems["model_name"] = ["Name the model the declaration covers."]
    if not version:
        problems["model_version"] = ["Name the model's version."]
    if len(name) > 200 or len(version) > 100:
        problems["model_name"] = ["At most 200 characters (version: 100)."]
    if problems:
        raise LicensingError("The model is not named.", code="invalid", details=problems)
    return name, version


def _check_unit(unit: str | None) -> str | None:
    if unit in (None, ""):
        return None
    if unit not in UNITS:
        raise LicensingError(
            f"Unknown unit {unit!r}.",
            code="invalid",
            details={"unit": [f"One of {', '.join(UNITS)}."]},
        )
    return unit


def _size_text(size: int) -> str:
    return f"{size / (1024 * 1024):,.1f} MiB"


# --------------------------------------------------------------------------------------------
# Filing
# --------------------------------------------------------------------------------------------


def declaration_file_start(
    *,
    caller: Caller,
    licence: Licence,
    period: str,
    model_name: str,
    model_version: str,
    uploaded_file: File,
    unit: str | None = None,
    file_format: str | None = None,
    enqueue: bool = True,
) -> UsageDeclaration:
    """Store a declaration file (CSV, optionally gzip; or JSON Lines) and enqueue its job.

    Only what can be told without reading the file is checked here: the licence (the
    caller's own, active), the period (inside the term), the model, the size. The job reads
    the file. ``enqueue=False`` leaves running it to the caller (the management command).
    """
    _check_licence(caller, licence)
    label, start, end = _licence_period(licence, period)
    name, version = _check_model(model_name, model_version)
    unit = _check_unit(unit)
    original = os.path.basename(uploaded_file.name or "declaration.csv")
    if file_format is None:
        lowered = original.lower()
        file_format = "jsonl" if lowered.endswith((".jsonl", ".ndjson", ".jsonl.gz")) else "csv"
    if file_format not in ("csv", "jsonl"):
        raise ImportFileError(f"Unknown file format {file_format!r}.", code="unsupported_format")
    size, limit = uploaded_file.size or 0, declaration_max_bytes()
    if size > limit:
        raise ImportFileError(
            f"The file is {_size_text(size)}; the limit is {_size_text(limit)}. "
            "Split the declaration into several periods or models.",
            code="file_too_large",
            details={"file": [f"At most {limit} bytes."], "size": size},
        )
    if size == 0:
        raise ImportFileError(
            "The file is empty. If nothing was used, file a nil declaration.",
            code="empty_file",
            details={"file": ["The file is empty."]},
        )
    digest = hashlib.sha256()
    for chunk in uploaded_file.chunks():
        digest.update(chunk)
    uploaded_file.seek(0)

    with transaction.atomic():
        declaration = UsageDeclaration(
            licence=licence,
            period=label,
            period_start=start,
            period_end=end,
            model_name=name,
            model_version=version,
            unit=unit or "",
            status=DeclarationStatus.SUBMITTED,
            deadline=_deadline(end),
            late=timezone.localdate() > _deadline(end),
            stage="queued",
            file_format=file_format,
            original_name=original[:255],
            file_sha256=digest.hexdigest(),
            file_size=size,
            created_by=caller.user,
        )
        declaration.file.save(original, uploaded_file, save=False)
        declaration.save()
        audit_record(
            action="declaration.file",
            caller=caller,
            organisation=licence.licensee,
            obj=declaration,
            details={
                "licence_id": licence.pk,
                "period": label,
                "model": f"{name} {version}",
                "file": declaration.original_name,
                "size": size,
                "sha256": declaration.file_sha256,
            },
        )
        if enqueue:
            from licensing.tasks import declaration_process_task  # the task imports us

            transaction.on_commit(lambda: declaration_process_task.delay(declaration.pk))
    return declaration


def declaration_nil_file(
    *, caller: Caller, licence: Licence, period: str, model_name: str, model_version: str
) -> UsageDeclaration:
    """Declare explicitly that the model used nothing in the period: accepted at once."""
    _check_licence(caller, licence)
    label, start, end = _licence_period(licence, period)
    name, version = _check_model(model_name, model_version)
    now = timezone.now()
    with transaction.atomic():
        Licence.objects.select_for_update().filter(pk=licence.pk).first()
        declaration = UsageDeclaration.objects.create(
            licence=licence,
            period=label,
            period_start=start,
            period_end=end,
            model_name=name,
            model_version=version,
            status=DeclarationStatus.PROCESSING,
            nil=True,
            deadline=_deadline(end),
            late=timezone.localdate() > _deadline(end),
            stage="done",
            percent=100,
            message="Nil declaration: nothing was used in the period.",
            created_by=caller.user,
            started_at=now,
            finished_at=now,
        )
        _accept(declaration)
        audit_record(
            action="declaration.file_nil",
            caller=caller,
            organisation=licence.licensee,
            obj=declaration,
            details={"licence_id": licence.pk, "period": label, "model": f"{name} {version}"},
        )
    return declaration


def _accept(declaration: UsageDeclaration) -> UsageDeclaration | None:
    """Mark ``declaration`` accepted, superseding the accepted one for the same licence, model
    and period (inside the caller's transaction, the licence row locked)."""
    previous = (
        UsageDeclaration.objects.select_for_update()
        .filter(
            licence_id=declaration.licence_id,
            model_name=declaration.model_name,
            model_version=declaration.model_version,
            period_start=declaration.period_start,
            status=DeclarationStatus.ACCEPTED,
        )
        .exclude(pk=declaration.pk)
        .first()
    )
    if previous is not None:
        previous.status = DeclarationStatus.SUPERSEDED
        previous.save(update_fields=["status"])
        declaration.supersedes = previous
    declaration.status = DeclarationStatus.ACCEPTED
    declaration.save()
    return previous


# --------------------------------------------------------------------------------------------
# Processing
# --------------------------------------------------------------------------------------------


def declarations_sweep(
    *,
    now: dt.datetime | None = None,
    submitted_after: dt.timedelta | None = None,
    processing_after: dt.timedelta | None = None,
) -> int:
    """Re-drive declarations a lost message or a stopped worker left behind (see
    `licensing.services.jobs`); returns how many were enqueued. Nil declarations never run.
    The ages default to the settings DECLARATION_SUBMITTED_SECONDS and
    DECLARATION_PROCESSING_SECONDS."""
    from licensing.tasks import declaration_process_task

    if submitted_after is None:
        submitted_after = dt.timedelta(seconds=settings.DECLARATION_SUBMITTED_SECONDS)
    if processing_after is None:
        processing_after = dt.timedelta(seconds=settings.DECLARATION_PROCESSING_SECONDS)

    return jobs_sweep(
        model=UsageDeclaration,
        waiting=DeclarationStatus.SUBMITTED,
        running=DeclarationStatus.PROCESSING,
        enqueue=declaration_process_task.delay,
        now=now,
        waiting_after=submitted_after,
        running_after=processing_after,
        only=Q(nil=False),
    )


class _ClaimLost(Exception):
    """The sweeper gave this run's declaration to another worker (this one was taken for
    dead): write nothing, record nothing."""


class _Progress:
    def __init__(
        self,
        declaration_id: int,
        on_progress: ProgressCallback | None,
        claimed_at: dt.datetime | None = None,
    ) -> None:
        self.declaration_id = declaration_id
        self.on_progress = on_progress
        self.claimed_at = claimed_at
        self.timings: dict[str, float] = {}

    def __call__(self, stage: str, percent: int) -> None:
        rows = UsageDeclaration.objects.filter(pk=self.declaration_id)
        if self.claimed_at is not None:  # a requeued run's progress is not ours
            rows = rows.filter(started_at=self.claimed_at)
        rows.update(stage=stage, percent=percent)
        if self.on_progress is not None:
            self.on_progress(stage, percent)


def declaration_process(
    *, declaration_id: int, on_progress: ProgressCallback | None = None
) -> UsageDeclaration | None:
    """Run one declaration job to the end: accepted, or rejected with a reason and errors.

    Claims it first (submitted -> processing in one conditional UPDATE): if another worker has
    it, or it ran already, returns None and does nothing, so a duplicated task is harmless.
    The claim's time is its token: a worker the sweeper took for dead (the declaration
    requeued and claimed again) finds the token changed when it comes to write, and stops
    without writing or recording anything. A lost database connection (a restart, a
    fail-over) puts the declaration back to submitted for the sweeper instead of rejecting it.
    """
    failpoints.hit("declaration.before_claim", declaration_id)
    claimed_at = timezone.now()
    claimed = UsageDeclaration.objects.filter(
        pk=declaration_id, status=DeclarationStatus.SUBMITTED
    ).update(status=DeclarationStatus.PROCESSING, started_at=claimed_at, stage="reading", percent=0)
    if not claimed:
        logger.info("declaration %s: not submitted any more, nothing to do", declaration_id)
        return None
    failpoints.hit("declaration.after_claim", declaration_id)
    declaration = UsageDeclaration.objects.select_related("licence__licensee").get(
        pk=declaration_id
    )
    progress = _Progress(declaration.pk, on_progress, claimed_at)
    try:
        _process(declaration, progress, claimed_at)
    except _ClaimLost:
        logger.warning("declaration %s: requeued while this run was alive; stopped", declaration.pk)
        return None
    except DeclarationRejected as rejected:
        _finish_rejected(declaration, rejected, claimed_at)
    except (OperationalError, InterfaceError):
        logger.warning("declaration %s: database connection lost", declaration.pk, exc_info=True)
        _requeue_after_database_error(declaration.pk, claimed_at)
        raise
    except Exception:
        logger.exception("declaration %s failed unexpectedly", declaration.pk)
        _finish_rejected(
            declaration,
            DeclarationRejected(
                "The declaration could not be processed because of an internal error; nothing "
                "was recorded. File it again later, or contact the society."
            ),
            claimed_at,
        )
        raise
    declaration.refresh_from_db()
    return declaration


def _requeue_after_database_error(declaration_id: int, claimed_at: dt.datetime) -> None:
    """Nothing of the run was committed (one write transaction): back to submitted, so the
    sweeper processes it again once the database answers. If it still does not, the
    declaration stays processing and the sweeper requeues it after
    DECLARATION_PROCESSING_SECONDS."""
    if not connection.in_atomic_block:  # (a caller's transaction is the caller's to end)
        connection.close()  # the broken connection; the next query opens a new one
    try:
        UsageDeclaration.objects.filter(
            pk=declaration_id, status=DeclarationStatus.PROCESSING, started_at=claimed_at
        ).update(
            status=DeclarationStatus.SUBMITTED,
            stage="requeued after a database error",
            percent=0,
        )
    except DatabaseError:
        logger.warning("declaration %s: database still unreachable", declaration_id)


def _process(declaration: UsageDeclaration, progress: _Progress, claimed_at: dt.datetime) -> None:
    if declaration.file_size > declaration_max_bytes():
        raise DeclarationRejected("The file is larger than the limit.")
    timings: dict[str, float] = {}
    exported: list[tuple[int, int, int]] = []  # the works' fingerprint, once exported
    versions: list[tuple[str, str] | None] = []  # the registry's version before the export

    def registry() -> tuple[pa.Table, pa.Table, pa.Table]:
        # Called by the matcher in this thread (and so on this database connection) while
        # it parses the file in another: the export overlaps the parse.
        started = time.perf_counter()
        versions.append(registry_version())
        index, works = declaration_index_export(licence=declaration.licence)
        reservations = declaration_reservations_export(licence=declaration.licence)
        exported.append(works_fingerprint(works.column("work_id")))
        timings["index"] = time.perf_counter() - started
        return index, works, reservations

    progress("reading", 3)
    # DuckDB spills to its own directory per job (its file names are not unique per process).
    with _local_path(declaration) as path, tempfile.TemporaryDirectory(prefix="decl-") as spill:
        result = declaration_match(
            path,
            registry=registry,
            file_format=declaration.file_format or "csv",
            unit=declaration.unit or None,
            on_stage=progress,
            temp_directory=spill,
            max_inflated_bytes=declaration_max_inflated_bytes(),
        )
    timings.update(result.timings)
    failpoints.hit("declaration.mid", declaration.pk)
    progress("writing", 85)
    started = time.perf_counter()
    with transaction.atomic():
        Licence.objects.select_for_update().filter(pk=declaration.licence_id).first()
        claim_held = (
            UsageDeclaration.objects.select_for_update()
            .filter(pk=declaration.pk, status=DeclarationStatus.PROCESSING, started_at=claimed_at)
            .exists()
        )
        if not claim_held:
            raise _ClaimLost
        with connection.cursor() as cursor:
            declaration_aggregates_store(
                cursor,
                declaration_id=declaration.pk,
                result=result,
                works_exported=exported[0],
                registry_seen=versions[0],
            )
        failpoints.hit("declaration.after_write", declaration.pk)  # not yet accepted
        _finish_accepted(declaration, result, timings)
    timings["write"] = time.perf_counter() - started
    UsageDeclaration.objects.filter(pk=declaration.pk).update(
        timings={name: round(seconds, 3) for name, seconds in timings.items()}
    )


class _local_path:
    """A filesystem path of the stored file (a temporary copy for remote storages)."""

    def __init__(self, declaration: UsageDeclaration) -> None:
        self.declaration = declaration
        self.temporary: str | None = None

    def __enter__(self) -> str:
        try:
            return self.declaration.file.path
        except NotImplementedError:
            handle, self.temporary = tempfile.mkstemp(suffix=".declaration")
            with os.fdopen(handle, "wb") as out, self.declaration.file.open("rb") as source:
                for chunk in source.chunks():
                    out.write(chunk)
            return self.temporary

    def __exit__(self, *exc) -> None:
        if self.temporary:
            os.unlink(self.temporary)


def _licence_uses(uses: Iterable[str] | None) -> list[str]:
    """The uses a licence is checked for: its own, or training when it names none."""
    return [use for use in (uses or []) if use in _USES] or ["training"]


def declaration_index_export(*, licence: Licence) -> tuple[pa.Table, pa.Table]:
    """The identifier index (scheme, value, work_id) and the works (work_id, reserved for any
    of the licence's uses), from this machine's snapshot of the registry's current version
    (``licensing.snapshots``: read from the database once per version)."""
    index, snapshot = registry_index()
    reserved = None
    for use in _licence_uses(licence.uses):
        column = snapshot.column(f"reserved_{use}")
        reserved = column if reserved is None else pa.compute.or_(reserved, column)
    works = pa.table(
        {"work_id": snapshot.column("work_id"), "reserved": reserved}, schema=WORKS_SCHEMA
    )
    return index, works


def declaration_reservations_export(*, licence: Licence) -> pa.Table:
    """The reservations in force for the licence's uses (``RESERVATIONS_SCHEMA``), read
    set-based: not withdrawn, a member's or verified, their uses empty (every use) or sharing
    one with the licence's. COPY TO on PostgreSQL, one query on SQLite."""
    uses = _licence_uses(licence.uses)
    table = Reservation._meta.db_table
    in_force = "withdrawn_at IS NULL AND (organisation_id IS NOT NULL OR verified_at IS NOT NULL)"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            listed = ", ".join(f"'{use}'" for use in uses)  # one of _USES, never user text
            sql = (
                f"SELECT id, kind, scheme, value FROM {table} WHERE {in_force} "  # noqa: S608  # nosec B608
                f"AND (uses = '[]'::jsonb OR uses ?| ARRAY[{listed}]::text[])"
            )
            return _copy_out(cursor, sql, RESERVATIONS_SCHEMA)
        marks = ", ".join(["%s"] * len(uses))
        cursor.execute(
            f"SELECT id, kind, scheme, value FROM {table} WHERE {in_force} "  # noqa: S608  # nosec B608
            f"AND (json_array_length(uses) = 0 OR EXISTS "
            f"(SELECT 1 FROM json_each(uses) WHERE json_each.value IN ({marks})))",
            uses,
        )
        rows = cursor.fetchall()
    return pa.table(
        {name: [row[i] for row in rows] for i, name in enumerate(RESERVATIONS_SCHEMA.names)},
        schema=RESERVATIONS_SCHEMA,
    )


def _copy_out(cursor, sql: str, schema: pa.Schema) -> pa.Table:
    sink = io.BytesIO()
    with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
        for block in copy:
            sink.write(block)
    if not sink.tell():
        return schema.empty_table()
    return pa_csv.read_csv(
        pa.py_buffer(sink.getbuffer()),
        read_options=pa_csv.ReadOptions(column_names=schema.names, block_size=64 << 20),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict(zip(schema.names, schema.types, strict=True)),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def works_fingerprint(work_ids: pa.Array | pa.ChunkedArray) -> tuple[int, int, int]:
    """(highest id, count, sum of ids) of exported works: see ``declaration_aggregates_store``."""
    if not len(work_ids):
        return (0, 0, 0)
    return (
        int(pa.compute.max(work_ids).as_py()),
        len(work_ids),
        int(pa.compute.sum(work_ids).as_py()),
    )


def declaration_aggregates_store(
    cursor,
    *,
    declaration_id: int,
    result: MatchResult,
    works_exported: tuple[int, int, int] | None = None,
    registry_seen: tuple[str, str] | None = None,
) -> None:
    """Write the per-work and unmatched aggregates of one declaration (caller's transaction).

    ``works_exported``: ``works_fingerprint`` of the works the matcher was given. If the
    works up to the highest of those ids still have the same count and sum of ids, none of
    them was deleted since and the matched works all exist: one scan of the ids (0.05 s for
    a million works). (Ids are never reused; a deletion would pass unseen only if works
    committed since with lower ids had exactly the count and the sum of ids of those
    deleted. Nothing deletes works, and the previous check, like this one, could not see a
    deletion between itself and the commit either.) Otherwise, or without it, each matched
    work is looked up (an anti-join, 0.5 s for a million rows).

    ``registry_seen``: ``registry_version()`` read before the works were exported. On
    PostgreSQL every statement that inserts, deletes or truncates works writes the registry's
    change log (``licensing.snapshots``), so the same version now means that no work went
    away since, and neither scan is needed (they were a fixed 0.1 s of every declaration
    against a million works)."""
    declaration = pa.scalar(declaration_id, pa.int64())
    usage = result.work_usage
    usage = usage.add_column(0, "declaration_id", pa.repeat(declaration, len(usage)))
    unmatched = result.unmatched
    unmatched = unmatched.add_column(0, "declaration_id", pa.repeat(declaration, len(unmatched)))
    held = result.reserved_unmatched
    held = held.add_column(0, "declaration_id", pa.repeat(declaration, len(held)))
    # The matcher gives the unmatched rows in the order of the (scheme, identifier) index: the
    # B-tree inserts then walk the index once instead of jumping about it (about 0.5 s less
    # for 0.4M rows; sorting them here took 0.6 s). Pages and exports order these rows by
    # their values, never by id.
    bulk_in = _copy_in if connection.vendor == "postgresql" else _insert_in
    partition = _usage_partition_fill(cursor, declaration_id=declaration_id, usage=usage)
    if partition is None:
        bulk_in(cursor, DeclarationWorkUsage._meta.db_table, usage)
    bulk_in(cursor, DeclarationUnmatched._meta.db_table, unmatched)
    bulk_in(cursor, DeclarationReservedIdentifier._meta.db_table, held)
    if partition is not None:
        _usage_partition_attach(cursor, declaration_id=declaration_id, partition=partition)
    if not len(usage):
        return
    # The foreign key to the work has no database constraint (see DeclarationWorkUsage):
    # check here, set-based, that no work went away since the index was exported.
    if registry_seen is not None and registry_version() == registry_seen:
        return
    work_table = Work._meta.db_table
    if works_exported is not None:
        highest, count, total = works_exported
        cursor.execute(
            f"SELECT count(*), coalesce(sum(id), 0) FROM {work_table} WHERE id <= %s",  # noqa: S608  # nosec B608
            [highest],
        )
        if tuple(int(value) for value in cursor.fetchone()) == (count, total):
            return
    cursor.execute(
        f"SELECT count(*) FROM {DeclarationWorkUsage._meta.db_table} u "  # noqa: S608  # nosec B608
        "WHERE u.declaration_id = %s AND NOT EXISTS "
        f"(SELECT 1 FROM {work_table} w WHERE w.id = u.work_id)",
        [declaration_id],
    )
    (gone,) = cursor.fetchone()
    if gone:
        raise DeclarationRejected(
            f"{gone:,} of the matched works were deleted while the declaration was being "
            "processed; nothing was recorded. File it again."
        )


def declaration_partition_rows() -> int:
    """Matched works from which a declaration's usage gets a partition of its own
    (PostgreSQL; setting DECLARATION_PARTITION_ROWS, default 100,000)."""
    return int(getattr(settings, "DECLARATION_PARTITION_ROWS", DEFAULT_PARTITION_ROWS))


def _usage_partition_fill(cursor, *, declaration_id: int, usage: pa.Table) -> str | None:
    """On PostgreSQL, for a declaration of ``declaration_partition_rows()`` matched works or
    more: its usage rows COPYed into a table of its own, then its primary key and work index
    built in bulk; returns the table's name (attached by ``_usage_partition_attach``). None:
    write the rows through the parent (into its DEFAULT partition).

    ``DeclarationWorkUsage`` is partitioned by declaration (migration 0014). Inserting a
    million rows into the shared indexes cost 1.7-2.2 s of server CPU with four such
    declarations stored, growing with each (every declaration's rows land on every leaf of
    the work index); building the two indexes of a fresh table costs 0.45 s, the COPY into
    it 0.3 s, whatever is stored."""
    if connection.vendor != "postgresql" or len(usage) < max(1, declaration_partition_rows()):
        return None
    parent = DeclarationWorkUsage._meta.db_table
    name = f"{parent}_{int(declaration_id)}"
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)), "
        "to_regclass(%s) IS NOT NULL",
        [parent, name],
    )
    partitioned, exists = cursor.fetchone()
    if not partitioned or exists:
        return None  # (a partition left from a test database whose ids start again)
    # The CHECK is the partition's bound: ATTACH then need not scan the rows for it. (The
    # names are ours, the id an int.)
    cursor.execute(
        f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
        f"CONSTRAINT {name}_declaration CHECK (declaration_id = {int(declaration_id)}))"
    )
    _copy_in(cursor, name, usage)
    cursor.execute(
        f"ALTER TABLE {name} ADD CONSTRAINT {name}_pkey PRIMARY KEY (declaration_id, work_id)"
    )
    cursor.execute(f"CREATE INDEX {name}_work_id ON {name} (work_id)")
    return name


def _usage_partition_attach(cursor, *, declaration_id: int, partition: str) -> None:
    """Attach the filled partition (its indexes become the parent's indexes' partitions, as
    they are). It locks the parent's DEFAULT partition (ACCESS EXCLUSIVE, scanned to check
    that it holds no row of this declaration) until the commit, so it comes last: after it
    only the declaration's own rows are written."""
    parent = DeclarationWorkUsage._meta.db_table
    cursor.execute(
        f"ALTER TABLE {parent} ATTACH PARTITION {partition} FOR VALUES IN ({int(declaration_id)})"
    )


def _copy_in(cursor, table_name: str, table: pa.Table) -> None:
    if not len(table):
        return
    names = ", ".join(table.column_names)
    options = pa_csv.WriteOptions(include_header=False)
    with cursor.copy(f"COPY {table_name} ({names}) FROM STDIN (FORMAT csv)") as copy:
        for batch in table.to_batches(max_chunksize=_COPY_BATCH_ROWS):
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(pa.Table.from_batches([batch]), sink, write_options=options)
            copy.write(memoryview(sink.getvalue()))


def _insert_in(cursor, table_name: str, table: pa.Table) -> None:
    if not len(table):
        return
    names = ", ".join(table.column_names)
    marks = ", ".join(["%s"] * table.num_columns)
    sql = f"INSERT INTO {table_name} ({names}) VALUES ({marks})"  # noqa: S608 - names are ours  # nosec B608
    for batch in table.to_batches(max_chunksize=_COPY_BATCH_ROWS):
        columns = [column.to_pylist() for column in batch.columns]
        cursor.executemany(sql, list(zip(*columns, strict=True)))


def _finish_accepted(
    declaration: UsageDeclaration, result: MatchResult, timings: dict[str, float]
) -> None:
    declaration.refresh_from_db()
    declaration.unit = result.unit
    declaration.lines = result.lines
    declaration.declared_quantity = result.declared_quantity
    declaration.matched_lines = result.matched_lines
    declaration.matched_quantity = result.matched_quantity
    declaration.unmatched_lines = result.unmatched_lines
    declaration.unmatched_quantity = result.unmatched_quantity
    declaration.reserved_lines = result.reserved_lines
    declaration.reserved_quantity = result.reserved_quantity
    declaration.works_matched = len(result.work_usage)
    declaration.rows_total = declaration.rows_done = result.lines
    declaration.stage = "done"
    declaration.percent = 100
    declaration.error_count = 0
    declaration.errors = []
    declaration.finished_at = timezone.now()
    declaration.message = (
        f"Accepted {result.lines:,} lines ({result.declared_quantity:,} {result.unit}): "
        f"{result.matched_lines:,} matched to {len(result.work_usage):,} works, "
        f"{result.unmatched_lines:,} unmatched, {result.reserved_lines:,} reserved "
        "(reserved works or registered reservations)."
    )
    previous = _accept(declaration)
    trueup_check(declaration=declaration)
    audit_record(
        action="declaration.accept",
        actor=declaration.created_by,
        organisation=declaration.licence.licensee,
        obj=declaration,
        details={
            "lines": result.lines,
            "declared_quantity": result.declared_quantity,
            "matched_quantity": result.matched_quantity,
            "unmatched_quantity": result.unmatched_quantity,
            "reserved_quantity": result.reserved_quantity,
            "supersedes": previous.pk if previous is not None else None,
        },
    )


def _error_report(rejected: DeclarationRejected) -> bytes:
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ERROR_REPORT_COLUMNS)
    errors = rejected.errors
    writer.writerows(
        zip(
            errors["row"].tolist(),
            errors["column"].tolist(),
            map(csv_cell_defused, errors["value"].tolist()),
            errors["message"].tolist(),
            strict=True,
        )
    )
    return buffer.getvalue().encode("utf-8")


def _finish_rejected(
    declaration: UsageDeclaration,
    rejected: DeclarationRejected,
    claimed_at: dt.datetime | None = None,
) -> None:
    """Record the rejection (outside any rolled-back transaction); no aggregate exists. Only
    if the declaration is still this run's (``claimed_at``: its claim)."""
    with transaction.atomic():
        declaration.refresh_from_db()
        if claimed_at is not None and (
            declaration.status != DeclarationStatus.PROCESSING
            or declaration.started_at != claimed_at
        ):
            return  # requeued and claimed by another run meanwhile: its outcome, not ours
        if len(rejected.errors):
            declaration.error_report.save(
                f"declaration-{declaration.pk}-errors.csv",
                ContentFile(_error_report(rejected)),
                save=False,
            )
        head = rejected.errors.head(ERRORS_KEPT)
        declaration.errors = [
            {"row": int(row), "column": str(column), "message": str(message)}
            for row, column, message in zip(
                head["row"], head["column"], head["message"], strict=True
            )
        ]
        declaration.error_count = rejected.error_count
        declaration.status = DeclarationStatus.REJECTED
        declaration.stage = "rejected"
        declaration.percent = 100
        declaration.message = rejected.message
        declaration.finished_at = timezone.now()
        declaration.save()
        audit_record(
            action="declaration.reject",
            actor=declaration.created_by,
            organisation=declaration.licence.licensee,
            obj=declaration,
            details={"errors": rejected.error_count, "message": rejected.message[:500]},
        )


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def declaration_unmatched_csv_chunks(*, declaration: UsageDeclaration) -> Iterable[bytes]:
    """The unmatched pool of a declaration as CSV, streamed in chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(UNMATCHED_CSV_COLUMNS)
    rows = (
        DeclarationUnmatched.objects.filter(declaration=declaration)
        .order_by("-quantity", "scheme", "identifier")
        .values_list(*UNMATCHED_CSV_COLUMNS)
    )
    for count, row in enumerate(rows.iterator(chunk_size=5000), start=1):
        scheme, identifier, valid, note, quantity, lines, title = row
        writer.writerow(
            [
                scheme,
                csv_cell_defused(identifier),
                "yes" if valid else "no",
                note,
                quantity,
                lines,
                csv_cell_defused(title),
            ]
        )
        if count % 5000 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


# --------------------------------------------------------------------------------------------
# The unmatched pool
# --------------------------------------------------------------------------------------------


def declaration_unmatched_match(
    *, caller: Caller, scheme: str, identifier: str, work: Work
) -> list[int]:
    """Staff: the unmatched identifier is ``work``'s. Adds it to the work's identifiers (and
    opens a conflict if that over-claims it), then re-matches the accepted declarations that
    hold it unmatched: its usage moves, exactly, from their unmatched pool to the work (as
    reserved usage if the work is reserved for the licence's uses, or if a reservation in
    force for them now covers the identifier - then the work's earlier usage in that
    declaration becomes reserved too). Returns their ids."""
    if not caller.is_staff:
        raise PermissionError_("Only society staff match unmatched usage by hand.")
    try:
        value = normalise(scheme, identifier)
    except IdentifierError as exc:
        raise LicensingError(
            f"{identifier!r} is not a valid {scheme}: {exc.reason}.",
            code="invalid",
            details={"identifier": [exc.reason]},
        ) from None
    with transaction.atomic():
        _, created = WorkIdentifier.objects.get_or_create(work=work, scheme=scheme, value=value)
        if created:
            conflict_detect(work_ids=[work.pk])
        rows = list(
            DeclarationUnmatched.objects.select_for_update()
            .filter(
                scheme=scheme,
                identifier=value,
                valid=True,
                declaration__status=DeclarationStatus.ACCEPTED,
            )
            .select_related("declaration__licence")
        )
        moved = []
        held: dict[tuple[str, ...], bool] = {}
        for row in rows:
            declaration = row.declaration
            uses = _licence_uses(declaration.licence.uses)
            if tuple(uses) not in held:
                held[tuple(uses)] = (
                    reservation_covering(scheme=scheme, value=value, uses=uses) is not None
                )
            reserved = held[tuple(uses)] or any(
                work.consent_for(use) == Consent.RESERVED for use in uses
            )
            usage, _ = DeclarationWorkUsage.objects.get_or_create(
                declaration=declaration,
                work=work,
                defaults={"quantity": 0, "lines": 0, "reserved": reserved},
            )
            if reserved and not usage.reserved:
                # A reservation now covers the identifier: the work is reserved in this
                # declaration, so its usage so far moves from matched to reserved, exactly.
                DeclarationWorkUsage.objects.filter(declaration=declaration, work=work).update(
                    reserved=True
                )
                UsageDeclaration.objects.filter(pk=declaration.pk).update(
                    matched_quantity=F("matched_quantity") - usage.quantity,
                    matched_lines=F("matched_lines") - usage.lines,
                    reserved_quantity=F("reserved_quantity") + usage.quantity,
                    reserved_lines=F("reserved_lines") + usage.lines,
                )
                usage.reserved = True
            DeclarationWorkUsage.objects.filter(declaration=declaration, work=work).update(
                quantity=F("quantity") + row.quantity, lines=F("lines") + row.lines
            )
            bucket = "reserved" if usage.reserved else "matched"
            UsageDeclaration.objects.filter(pk=declaration.pk).update(
                unmatched_quantity=F("unmatched_quantity") - row.quantity,
                unmatched_lines=F("unmatched_lines") - row.lines,
                **{
                    f"{bucket}_quantity": F(f"{bucket}_quantity") + row.quantity,
                    f"{bucket}_lines": F(f"{bucket}_lines") + row.lines,
                },
                works_matched=DeclarationWorkUsage.objects.filter(declaration=declaration).count(),
            )
            row.delete()
            moved.append(declaration.pk)
        audit_record(
            action="declaration.unmatched_match",
            caller=caller,
            obj=work,
            details={
                "scheme": scheme,
                "identifier": value,
                "identifier_added": created,
                "declarations": moved,
            },
        )
    return moved
