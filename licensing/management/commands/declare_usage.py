"""File a usage declaration for a licence, in this process, printing progress.

    manage.py declare_usage --licence 12 --period 2026-Q3 --model aleph-7b --model-version 1.0 \
        usage.csv.gz
    manage.py declare_usage --licence 12 --period 2026-Q3 --model aleph-7b --model-version 1.0 \
        --nil

The declaration is recorded like an upload through the API or the page (same checks, same
match report), but runs here rather than on a Celery worker, acting for the licensee. Exits
non-zero when the declaration is rejected, after printing the first errors.
"""

from __future__ import annotations

import os

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Role
from accounts.scoping import Caller
from config.errors import DomainError
from licensing.matching import UNITS
from licensing.models import DeclarationStatus, Licence
from licensing.services import declarations

ERRORS_SHOWN = 20


class Command(BaseCommand):
    help = "File a usage declaration (CSV, optionally gzip, or JSON Lines) for a licence."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="path of the declaration file")
        parser.add_argument("--licence", type=int, required=True, help="the licence's id")
        parser.add_argument("--period", required=True, help="2026-Q3 or 2026-07")
        parser.add_argument("--model", required=True, help="the model's name")
        parser.add_argument("--model-version", required=True, help="the model's version")
        parser.add_argument("--unit", choices=UNITS, help="the unit, if the file has none")
        parser.add_argument("--nil", action="store_true", help="nothing was used in the period")

    def handle(self, *args, **opts):
        licence = Licence.objects.select_related("licensee").filter(pk=opts["licence"]).first()
        if licence is None:
            raise CommandError(f"No licence {opts['licence']}.")
        # An operator at the console acts with the licensee's owner rights.
        caller = Caller(user=None, organisation=licence.licensee, role=Role.OWNER)
        common = {
            "caller": caller,
            "licence": licence,
            "period": opts["period"],
            "model_name": opts["model"],
            "model_version": opts["model_version"],
        }
        if opts["nil"]:
            if opts["file"]:
                raise CommandError("A nil declaration has no file.")
            try:
                declaration = declarations.declaration_nil_file(**common)
            except DomainError as exc:
                raise CommandError(exc.message) from None
            self.stdout.write(f"Declaration {declaration.pk}: {declaration.message}")
            return
        path = opts["file"]
        if not path or not os.path.isfile(path):
            raise CommandError(f"No such file: {path}")
        with open(path, "rb") as handle:
            try:
                declaration = declarations.declaration_file_start(
                    **common,
                    uploaded_file=File(handle, name=os.path.basename(path)),
                    unit=opts["unit"],
                    enqueue=False,
                )
            except DomainError as exc:
                raise CommandError(exc.message) from None
        self.stdout.write(f"Declaration {declaration.pk} of {declaration.original_name}")

        def show(stage: str, percent: int) -> None:
            self.stdout.write(f"  {percent:3d}% {stage}")

        declaration = declarations.declaration_process(
            declaration_id=declaration.pk, on_progress=show
        )
        if declaration is None:
            raise CommandError("Another worker picked the declaration up.")
        self.stdout.write(f"{declaration.status}: {declaration.message}")
        for error in declaration.errors[:ERRORS_SHOWN]:
            self.stdout.write(f"  row {error['row']}, {error['column']}: {error['message']}")
        if declaration.error_count > ERRORS_SHOWN:
            self.stdout.write(f"  ... and {declaration.error_count - ERRORS_SHOWN:,} more")
        if declaration.status != DeclarationStatus.ACCEPTED:
            raise CommandError(f"Declaration {declaration.pk} was rejected.")
