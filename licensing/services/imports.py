"""Catalogue bulk import: upload a CSV/XLSX file, validate it, write it set-based.

``catalogue_import_start`` stores the upload and enqueues the job; ``catalogue_import_run``
(the Celery task's body) claims the job, reads and validates the file with the pure
``licensing.importing`` package (reader, validate), and writes the valid works in one
transaction with ``licensing.importing.store`` (staging tables filled by COPY, then set-based
INSERT/UPDATE/DELETE; re-importing the same file changes no row), then opens the conflicts
the import caused. Any failure rolls the whole write back, and the job row says why; every
error goes to a downloadable CSV report.

Progress (stage, percent, rows done) is written to the job row as it goes; during the write,
on PostgreSQL, through a second connection, so pages see it before the commit.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.utils import timezone

from accounts.models import Organisation, OrganisationKind
from accounts.scoping import Caller
from accounts.services import audit_record
from config import failpoints
from licensing.errors import ImportFileError, LicensingError
from licensing.importing.reader import FileProblem, catalogue_file_read, sniff_format
from licensing.importing.report import error_report_csv
from licensing.importing.store import (
    WriteCounts,
    catalogue_works_store,
    claimant_work_ids,
    staging_drop,
)
from licensing.importing.validate import (
    Columns,
    Validation,
    catalogue_rows_validate,
    columns_plan,
    holder_codes_in,
)
from licensing.models import Catalogue, CatalogueImport, ImportMode, JobStatus
from licensing.services.conflicts import conflict_detect
from licensing.services.jobs import jobs_sweep

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
ERRORS_KEPT = 100  # errors kept on the job row for pages; all of them are in the report
PROGRESS_EVERY_SECONDS = 1.0
_HOLDER_LOOKUP_BATCH = 5_000
_CONFLICT_CANDIDATES_MAX = 20_000

ProgressCallback = Callable[[str, int, int], None]


def _max_bytes() -> int:
    return int(getattr(settings, "CATALOGUE_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


def _size_text(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# Start
# --------------------------------------------------------------------------------------------


def catalogue_import_start(
    *,
    caller: Caller,
    catalogue: Catalogue,
    uploaded_file: File,
    mode: str = ImportMode.ALL_OR_NOTHING,
    enqueue: bool = True,
) -> CatalogueImport:
    """Store an uploaded catalogue file and enqueue its import job.

    Only what can be told without reading the file is checked here (role, catalogue, mode,
    extension, size), so an upload of hundreds of MB answers at once; the job reads it.
    ``enqueue=False`` leaves running it to the caller (the management command runs it in
    process).
    """
    caller.require_write()
    if not caller.is_staff and (
        caller.organisation is None or catalogue.owner_id != caller.organisation.pk
    ):
        raise LicensingError("No such catalogue.", code="not_found")
    if mode not in ImportMode.values:
        raise LicensingError(
            f"Unknown import mode {mode!r}.",
            code="invalid",
            details={"mode": [f"Choose one of {', '.join(ImportMode.values)}."]},
        )
    name = os.path.basename(uploaded_file.name or "")
    if sniff_format(name) is None:
        raise ImportFileError(
            f"'{name}' is neither a .csv (UTF-8) nor an .xlsx file.",
            code="unsupported_format",
            details={"file": ["Upload a .csv (UTF-8) or .xlsx file."]},
        )
    size = uploaded_file.size or 0
    limit = _max_bytes()
    if size > limit:
        raise ImportFileError(
            f"The file is {_size_text(size)}; the limit is {_size_text(limit)}. "
            "Split the catalogue into several files.",
            code="file_too_large",
            details={"file": [f"At most {limit} bytes."], "size": size, "limit": limit},
        )
    if size == 0:
        raise ImportFileError(
            "The file is empty.", code="empty_file", details={"file": ["The file is empty."]}
        )

    digest = hashlib.sha256()
    for chunk in uploaded_file.chunks():
        digest.update(chunk)
    uploaded_file.seek(0)

    with transaction.atomic():
        job = CatalogueImport(
            catalogue=catalogue,
            created_by=caller.user,
            original_name=name[:255],
            file_sha256=digest.hexdigest(),
            file_size=size,
            mode=mode,
            stage="queued",
        )
        job.file.save(name, uploaded_file, save=False)
        job.save()
        audit_record(
            action="catalogue_import.start",
            caller=caller,
            organisation=catalogue.owner,
            obj=job,
            details={
                "catalogue_id": catalogue.pk,
                "file": job.original_name,
                "size": size,
                "sha256": job.file_sha256,
                "mode": mode,
            },
        )
        if enqueue:
            from licensing.tasks import catalogue_import_run_task  # the task imports us

            transaction.on_commit(lambda: catalogue_import_run_task.delay(job.pk))
    return job


def catalogue_imports_sweep(
    *,
    now: datetime | None = None,
    pending_after: timedelta | None = None,
    running_after: timedelta | None = None,
) -> int:
    """Re-drive import jobs a lost message or a stopped worker left behind (see
    `licensing.services.jobs`); returns how many were enqueued. The ages default to the
    settings CATALOGUE_IMPORT_PENDING_SECONDS and CATALOGUE_IMPORT_RUNNING_SECONDS."""
    from licensing.tasks import catalogue_import_run_task

    if pending_after is None:
        pending_after = timedelta(seconds=settings.CATALOGUE_IMPORT_PENDING_SECONDS)
    if running_after is None:
        running_after = timedelta(seconds=settings.CATALOGUE_IMPORT_RUNNING_SECONDS)
    return jobs_sweep(
        model=CatalogueImport,
        waiting=JobStatus.PENDING,
        running=JobStatus.RUNNING,
        enqueue=catalogue_import_run_task.delay,
        now=now,
        waiting_after=pending_after,
        running_after=running_after,
    )


# --------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------


class _Progress:
    """Writes stage/percent/rows_done to the job row, at most once a second per stage.

    Outside the write transaction it is a plain UPDATE. Inside it (``writing = True``) the
    main connection must not touch the job row, or the progress would only appear at commit:
    on PostgreSQL a second, autocommit connection writes it (with a short lock timeout, and
    best effort: progress is never worth failing an import for). On SQLite a second writer
    would wait for the first, so progress jumps at the end there.
    """

    def __init__(
        self, job_id: int, on_progress: ProgressCallback | None, claimed_at: datetime | None = None
    ) -> None:
        self.job_id = job_id
        self.on_progress = on_progress
        self.claimed_at = claimed_at
        self.writing = False
        self.stage = ""
        self.stage_started = time.perf_counter()
        self.last_write = 0.0
        self.timings: dict[str, float] = {}
        self._side = None

    def __call__(
        self, stage: str, percent: int, rows_done: int | None = None, *, record: bool = True
    ) -> None:
        """Report a stage. ``record=False`` tells only ``on_progress`` (e.g. once the final
        state is written in the transaction, which a later update must not overwrite)."""
        now = time.perf_counter()
        changed = stage != self.stage
        if changed:
            if self.stage:
                self.timings[self.stage] = now - self.stage_started
            self.stage, self.stage_started = stage, now
        if record and (changed or now - self.last_write >= PROGRESS_EVERY_SECONDS):
            self.last_write = now
            fields = {"stage": stage, "percent": percent}
            if rows_done is not None:
                fields["rows_done"] = rows_done
            if not self.writing:
                rows = CatalogueImport.objects.filter(pk=self.job_id)
                if self.claimed_at is not None:  # a requeued run's progress is not ours
                    rows = rows.filter(started_at=self.claimed_at)
                rows.update(**fields)
            elif connection.vendor == "postgresql":
                self._side_update(fields)
        if self.on_progress is not None:
            self.on_progress(stage, percent, rows_done if rows_done is not None else -1)

    def finish(self) -> None:
        if self.stage:
            self.timings[self.stage] = time.perf_counter() - self.stage_started
            self.stage = ""
        if self._side is not None:
            self._side.close()
            self._side = None

    def _side_update(self, fields: dict) -> None:
        assignments = ", ".join(f"{name} = %s" for name in fields)
        try:
            if self._side is None:
                self._side = connections.create_connection(DEFAULT_DB_ALIAS)
                with self._side.cursor() as cursor:
                    cursor.execute("SET lock_timeout = '2s'")
            with self._side.cursor() as cursor:
                cursor.execute(
                    f"UPDATE licensing_catalogueimport SET {assignments} WHERE id = %s",  # noqa: S608  # nosec B608 - column names: __call__'s literal keys
                    [*fields.values(), self.job_id],
                )
        except DatabaseError:
            logger.warning("catalogue import %s: progress not written", self.job_id, exc_info=True)


# --------------------------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------------------------


class _ClaimLost(Exception):
    """The sweeper gave this run's job to another worker (this one was taken for dead):
    write nothing, record nothing."""


class _Refused(Exception):
    """The job ends as failed with this message (and whatever errors were found)."""

    def __init__(self, message: str, validation: Validation | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.validation = validation


def catalogue_import_run(
    *, import_id: int, on_progress: ProgressCallback | None = None
) -> CatalogueImport | None:
    """Run one import job to the end: succeeded, or failed with a message and the errors.

    Claims the job first (pending -> running in one conditional UPDATE): if another worker
    has it, or it ran already, this returns None and does nothing, so a retried or duplicated
    task is harmless. The claim's time is its token: a worker the sweeper took for dead
    (its job requeued and claimed again) finds the token changed when it comes to write, and
    stops without writing or recording anything. A lost database connection (a restart, a
    fail-over) puts the job back to pending for the sweeper instead of failing it.
    ``on_progress(stage, percent, rows_done)`` is called as it goes.
    """
    failpoints.hit("import.before_claim", import_id)
    claimed_at = timezone.now()
    claimed = CatalogueImport.objects.filter(pk=import_id, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING, started_at=claimed_at, stage="reading", percent=0
    )
    if not claimed:
        logger.info("catalogue import %s: not pending any more, nothing to do", import_id)
        return None
    failpoints.hit("import.after_claim", import_id)
    job = CatalogueImport.objects.select_related("catalogue__owner", "created_by").get(pk=import_id)
    progress = _Progress(job.pk, on_progress, claimed_at)
    try:
        _run(job, progress, claimed_at)
    except _ClaimLost:
        logger.warning("catalogue import %s: requeued while this run was alive; stopped", job.pk)
        return None
    except _Refused as refused:
        _finish_failed(job, refused.message, refused.validation, claimed_at)
    except (OperationalError, InterfaceError):
        logger.warning("catalogue import %s: database connection lost", job.pk, exc_info=True)
        _requeue_after_database_error(job.pk, claimed_at)
        raise
    except Exception:
        logger.exception("catalogue import %s failed unexpectedly", job.pk)
        _finish_failed(
            job,
            "The import failed because of an internal error; nothing was written. "
            "Try again later, or contact the society if it keeps failing.",
            None,
            claimed_at,
        )
        raise
    finally:
        progress.finish()
        logger.info(
            "catalogue import %s timings: %s",
            job.pk,
            ", ".join(f"{stage} {seconds:.2f}s" for stage, seconds in progress.timings.items()),
        )
    try:
        job.refresh_from_db()
    except CatalogueImport.DoesNotExist:  # deleted with its catalogue meanwhile
        return None
    return job


def _requeue_after_database_error(job_id: int, claimed_at: datetime) -> None:
    """Nothing of the run was committed (one write transaction): back to pending, so the
    sweeper runs it again once the database answers. If it still does not, the job stays
    running and the sweeper requeues it after CATALOGUE_IMPORT_RUNNING_SECONDS."""
    if not connection.in_atomic_block:  # (a caller's transaction is the caller's to end)
        connection.close()  # the broken connection; the next query opens a new one
    try:
        CatalogueImport.objects.filter(
            pk=job_id, status=JobStatus.RUNNING, started_at=claimed_at
        ).update(status=JobStatus.PENDING, stage="requeued after a database error", percent=0)
    except DatabaseError:
        logger.warning("catalogue import %s: database still unreachable", job_id)


def _claim_held(job_id: int, claimed_at: datetime) -> bool:
    """Is the job still this run's? Locks its row until the caller's transaction ends, so
    call it last: the progress written meanwhile through the side connection would wait."""
    return bool(
        CatalogueImport.objects.filter(
            pk=job_id, status=JobStatus.RUNNING, started_at=claimed_at
        ).update(stage="finishing")
    )


def _source(job: CatalogueImport):
    try:
        return job.file.path  # local storage: pyarrow reads the path natively, fastest
    except NotImplementedError:
        return job.file.open("rb")


def _run(job: CatalogueImport, progress: _Progress, claimed_at: datetime) -> None:
    catalogue = job.catalogue
    progress("reading", 1)
    if job.file_size > _max_bytes():
        raise _Refused(f"The file is larger than the limit of {_size_text(_max_bytes())}.")
    file_format = sniff_format(job.original_name) or ""
    try:
        header, rows = catalogue_file_read(_source(job), file_format=file_format)
        columns = columns_plan(header)
    except FileProblem as problem:
        raise _Refused(problem.message) from None
    rows_total = len(rows)
    CatalogueImport.objects.filter(pk=job.pk).update(rows_total=rows_total)

    holder_ids = _holder_ids(holder_codes_in(rows, columns))
    progress("validating", 5, 0)
    try:
        validation = catalogue_rows_validate(
            rows,
            columns,
            holder_ids=holder_ids,
            default_holder_id=catalogue.owner_id,
            progress=lambda done: progress(
                "validating", 5 + (40 * done) // max(rows_total, 1), done
            ),
        )
    except FileProblem as problem:
        raise _Refused(problem.message) from None
    del rows  # the cells are not needed any more; the write needs only the clean frames

    mode = job.mode
    if validation.error_count and mode == ImportMode.ALL_OR_NOTHING:
        bad_works = len(validation.skipped)
        raise _Refused(
            f"Nothing was imported: the file has {validation.error_count:,} "
            f"error{'s' if validation.error_count != 1 else ''} in "
            f"{validation.errors['row'].nunique():,} of {validation.rows_total:,} rows "
            f"({bad_works:,} of {validation.works_total:,} works). Download the error report, "
            "fix those rows and upload the file again.",
            validation,
        )
    if validation.works.empty:
        raise _Refused(
            f"Nothing was imported: every one of the {validation.works_total:,} works has "
            "errors. Download the error report, fix those rows and upload the file again.",
            validation,
        )

    failpoints.hit("import.mid", job.pk)
    progress.writing = True
    try:
        with transaction.atomic():
            # Two imports into one catalogue take turns here, the second seeing the first's
            # works.
            locked = Catalogue.objects.select_for_update().filter(pk=catalogue.pk)
            if not list(locked.values_list("pk", flat=True)):
                raise _Refused("The catalogue was deleted while the file was being checked.")
            with connection.cursor() as cursor:
                counts = catalogue_works_store(
                    cursor,
                    postgres=connection.vendor == "postgresql",
                    catalogue_id=catalogue.pk,
                    validation=validation,
                    now=connection.ops.adapt_datetimefield_value(timezone.now()),
                    progress=lambda stage, percent: progress(stage, percent, validation.rows_total),
                )
                progress("checking conflicts", 92, validation.rows_total)
                opened = _conflicts_detect(cursor, catalogue_id=catalogue.pk, counts=counts)
                staging_drop(cursor)
            failpoints.hit("import.after_write", job.pk)  # written, the job not yet succeeded
            if not _claim_held(job.pk, claimed_at):
                raise _ClaimLost  # rolls the write back: the run that has the job writes it
            logger.info(
                "catalogue import %s write steps: %s",
                job.pk,
                ", ".join(f"{step} {seconds:.2f}s" for step, seconds in counts.timings.items()),
            )
            message = _success_message(validation, counts, len(opened), columns)
            _finish_succeeded(job, validation, counts, message)
            # Deferred checks (Django's foreign keys are DEFERRABLE INITIALLY DEFERRED on
            # PostgreSQL) run at commit: a stage of its own for big files.
            progress("committing", 97, validation.rows_total, record=False)
    finally:
        progress.writing = False


def _conflicts_detect(cursor, *, catalogue_id: int, counts: WriteCounts) -> list:
    """Open the conflicts this import may have caused, inside the write transaction.

    Only an identifier carried by two or more works can be over-claimed (one work's shares
    are at most 100%, the database sees to that), and only works whose identifiers or shares
    this import wrote can have started a new over-claim: ``claimant_work_ids`` are those works
    that share an identifier with another work. Checking just them finds the same conflicts as
    ``conflict_detect(catalogue_id=...)`` over the whole catalogue, in a fraction of the time
    (0.6 s instead of 5-9 s after a million-row import); a long list falls back to the whole
    catalogue (one query instead of an enormous IN list).
    """
    if not counts.changed:
        return []
    candidates = claimant_work_ids(
        cursor, postgres=connection.vendor == "postgresql", analyze=counts.created > 0
    )
    if not candidates:
        return []
    if len(candidates) > _CONFLICT_CANDIDATES_MAX:
        return conflict_detect(catalogue_id=catalogue_id)
    return conflict_detect(work_ids=candidates)


def _holder_ids(codes: list[str]) -> dict[str, int]:
    """Registry codes -> organisation ids, for the rights holders among ``codes``.

    On PostgreSQL one query with the codes as one array parameter: tens of thousands of
    codes as separate parameters cost the client more than the query (a third of a
    catalogue import's worker time, in py-spy, for a 62k-row file)."""
    if connection.vendor == "postgresql":
        table = Organisation._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT code, id FROM {table} WHERE kind = %s AND code = ANY(%s)",  # noqa: S608  # nosec B608
                [OrganisationKind.RIGHTS_HOLDER.value, list(codes)],
            )
            return dict(cursor.fetchall())
    found: dict[str, int] = {}
    for start in range(0, len(codes), _HOLDER_LOOKUP_BATCH):
        batch = codes[start : start + _HOLDER_LOOKUP_BATCH]
        found.update(
            Organisation.objects.filter(
                code__in=batch, kind=OrganisationKind.RIGHTS_HOLDER
            ).values_list("code", "id")
        )
    return found


def _success_message(
    validation: Validation, counts: WriteCounts, conflicts: int, columns: Columns
) -> str:
    works = counts.created + counts.updated + counts.unchanged
    parts = [
        f"Imported {works:,} work{'s' if works != 1 else ''} from "
        f"{validation.rows_total:,} rows: {counts.created:,} created, "
        f"{counts.updated:,} updated, {counts.unchanged:,} unchanged."
    ]
    if len(validation.skipped):
        parts.append(
            f"{len(validation.skipped):,} works with errors were skipped "
            f"({validation.error_count:,} errors; see the error report)."
        )
    if counts.changed:
        parts.append(
            f"{conflicts:,} conflict{'s' if conflicts != 1 else ''} opened with other holders' "
            "claims on the same identifiers."
        )
    else:
        parts.append("Nothing changed, so no new conflicts are possible.")
    if columns.ignored:
        parts.append(f"Ignored unknown columns: {', '.join(columns.ignored)}.")
    return " ".join(parts)


def _errors_kept(validation: Validation | None) -> list[dict]:
    if validation is None or validation.errors.empty:
        return []
    head = validation.errors.head(ERRORS_KEPT)
    return [
        {"row": int(row), "column": str(column), "message": str(message)}
        for row, column, message in zip(head["row"], head["column"], head["message"], strict=True)
    ]


def _report_save(job: CatalogueImport, validation: Validation | None) -> None:
    if validation is None or validation.errors.empty:
        return
    job.error_report.save(
        f"import-{job.pk}-errors.csv",
        ContentFile(error_report_csv(validation, skipped=job.mode == ImportMode.VALID_ONLY)),
        save=False,
    )


def _finish_succeeded(
    job: CatalogueImport, validation: Validation, counts: WriteCounts, message: str
) -> None:
    _report_save(job, validation)
    job.status = JobStatus.SUCCEEDED
    job.stage = "done"
    job.percent = 100
    job.rows_total = validation.rows_total
    job.rows_done = validation.rows_total
    job.works_created = counts.created
    job.works_updated = counts.updated
    job.works_unchanged = counts.unchanged
    job.works_skipped = len(validation.skipped)
    job.error_count = validation.error_count
    job.errors = _errors_kept(validation)
    job.message = message
    job.finished_at = timezone.now()
    job.save()
    audit_record(
        action="catalogue_import.succeed",
        actor=job.created_by,
        organisation=job.catalogue.owner,
        obj=job,
        details={
            "catalogue_id": job.catalogue_id,
            "created": counts.created,
            "updated": counts.updated,
            "unchanged": counts.unchanged,
            "skipped": job.works_skipped,
        },
    )


def _finish_failed(
    job: CatalogueImport,
    message: str,
    validation: Validation | None,
    claimed_at: datetime | None = None,
) -> None:
    """Record the failure (outside any rolled-back transaction), if the job is still this
    run's (``claimed_at``: its claim)."""
    with transaction.atomic():
        try:
            job.refresh_from_db()
        except CatalogueImport.DoesNotExist:  # its catalogue was deleted meanwhile
            return
        if claimed_at is not None and (
            job.status != JobStatus.RUNNING or job.started_at != claimed_at
        ):
            return  # requeued and claimed by another run meanwhile: its outcome, not ours
        _report_save(job, validation)
        job.status = JobStatus.FAILED
        job.stage = "failed"
        job.percent = 100
        if validation is not None:
            job.rows_total = validation.rows_total
            job.rows_done = validation.rows_total
            job.works_skipped = len(validation.skipped)
        job.works_created = job.works_updated = job.works_unchanged = 0
        job.error_count = validation.error_count if validation is not None else 0
        job.errors = _errors_kept(validation)
        job.message = message
        job.finished_at = timezone.now()
        job.save()
        audit_record(
            action="catalogue_import.fail",
            actor=job.created_by,
            organisation=job.catalogue.owner,
            obj=job,
            details={"catalogue_id": job.catalogue_id, "errors": job.error_count},
        )
