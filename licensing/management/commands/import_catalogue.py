"""Import a catalogue file for an organisation, in this process, printing progress.

    manage.py import_catalogue --org RH-000042 --catalogue "Backlist" works.csv
    manage.py import_catalogue --org RH-000042 --catalogue "New" --create --media-type text \
        --mode valid_only works.xlsx

The job is recorded like an upload through the API or the page (same validation, same error
report), but runs here rather than on a Celery worker. Exits non-zero when the import fails,
after printing the first errors.
"""

from __future__ import annotations

import os

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organisation, Role
from accounts.scoping import Caller
from config.errors import DomainError
from licensing.models import Catalogue, ImportMode, JobStatus, MediaType
from licensing.services import imports, repertoire

ERRORS_SHOWN = 20


class Command(BaseCommand):
    help = "Import a catalogue file (CSV UTF-8 or XLSX) into an organisation's catalogue."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of the .csv or .xlsx file")
        parser.add_argument("--org", required=True, help="registry code, e.g. RH-000042")
        parser.add_argument("--catalogue", required=True, help="the catalogue's name")
        parser.add_argument("--mode", choices=ImportMode.values, default=ImportMode.ALL_OR_NOTHING)
        parser.add_argument(
            "--create", action="store_true", help="create the catalogue if it does not exist"
        )
        parser.add_argument(
            "--media-type", choices=MediaType.values, help="media type of a created catalogue"
        )

    def handle(self, *args, **opts):
        organisation = Organisation.objects.filter(code=opts["org"].strip().upper()).first()
        if organisation is None:
            raise CommandError(f"No organisation with code {opts['org']!r}.")
        # An operator at the console acts with the organisation's owner rights.
        caller = Caller(user=None, organisation=organisation, role=Role.OWNER)
        path = opts["file"]
        if not os.path.isfile(path):
            raise CommandError(f"No such file: {path}")
        catalogue = self._catalogue(caller, organisation, opts)

        with open(path, "rb") as handle:
            try:
                job = imports.catalogue_import_start(
                    caller=caller,
                    catalogue=catalogue,
                    uploaded_file=File(handle, name=os.path.basename(path)),
                    mode=opts["mode"],
                    enqueue=False,
                )
            except DomainError as exc:
                raise CommandError(exc.message) from None
        self.stdout.write(f"Import {job.pk} of {job.original_name} into '{catalogue.name}'")

        last = {"stage": None, "percent": -1}

        def show(stage: str, percent: int, rows_done: int) -> None:
            if stage == last["stage"] and percent - last["percent"] < 5:
                return
            last.update(stage=stage, percent=percent)
            rows = f", {rows_done:,} rows" if rows_done >= 0 else ""
            self.stdout.write(f"  {percent:3d}% {stage}{rows}")

        job = imports.catalogue_import_run(import_id=job.pk, on_progress=show)
        if job is None:
            raise CommandError("Another worker picked the job up; see the import page.")
        self.stdout.write(
            f"{job.status}: {job.message}\n"
            f"rows {job.rows_total:,}; works created {job.works_created:,}, "
            f"updated {job.works_updated:,}, unchanged {job.works_unchanged:,}, "
            f"skipped {job.works_skipped:,}; errors {job.error_count:,}"
        )
        for error in job.errors[:ERRORS_SHOWN]:
            self.stdout.write(f"  row {error['row']}, {error['column']}: {error['message']}")
        if job.error_count > ERRORS_SHOWN:
            self.stdout.write(f"  ... and {job.error_count - ERRORS_SHOWN:,} more")
        if job.error_report:
            self.stdout.write(f"All errors: {job.error_report.name} (in the media storage)")
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Import {job.pk} failed.")

    def _catalogue(self, caller: Caller, organisation: Organisation, opts) -> Catalogue:
        catalogue = Catalogue.objects.filter(owner=organisation, name=opts["catalogue"]).first()
        if catalogue is not None:
            return catalogue
        if not opts["create"]:
            raise CommandError(
                f"{organisation.code} has no catalogue called {opts['catalogue']!r} "
                "(add --create --media-type TYPE to create it)."
            )
        if not opts["media_type"]:
            raise CommandError("--create needs --media-type.")
        try:
            catalogue = repertoire.catalogue_create(
                caller=caller, name=opts["catalogue"], media_type=opts["media_type"]
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Created catalogue '{catalogue.name}' ({catalogue.pk})")
        return catalogue
