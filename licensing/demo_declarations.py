"""The demo's usage declarations: each demo licensee files one for the current quarter.

The files are built from the demo repertoire (``licensing.demo``) and are deterministic: the
same licence gets the same file every run. They are messy on purpose, the way real usage logs
are: ISBNs written as hyphenated ISBN-10s, DOIs as resolver links, URLs in upper case; some
identifiers the society does not represent (unmatched); and usage of reserved works (every
tenth press book), which is counted apart and flagged for compliance.

Everything goes through the real services (``declaration_file_start`` without enqueueing, then
``declaration_process`` in this process). Safe to run again: a licence that already has an
accepted declaration for the model and period files nothing new.

From `manage.py demo`, after the licences are sold:

    declarations = demo_declarations_seed(licences=sales, owners=demo.owners)
"""

from __future__ import annotations

import csv
import io

from django.core.files.base import ContentFile
from django.utils import timezone
from stdnum import isbn as stdnum_isbn

from accounts.models import User
from accounts.scoping import caller_for_user
from licensing.demo import isbn13
from licensing.models import DeclarationStatus, Licence, LicenceStatus, UsageDeclaration
from licensing.services.declarations import (
    declaration_file_start,
    declaration_process,
    period_parse,
)

DECLARATION_COLUMNS = ("scheme", "identifier", "quantity", "unit", "title")
UNIT = "tokens"
# licensee name -> (model name, model version); other licensees use a generic model
MODELS = {
    "Aleph AI Ltd": ("aleph-large", "2026.4"),
    "Corvid Labs": ("corvid-rag", "1.2"),
}
PRESS_BOOKS, LABEL_RECORDINGS, AGENCY_PHOTOS = 60, 40, 50
UNKNOWN_ISBNS = (isbn13(900_001), isbn13(900_002), isbn13(900_003))  # no demo holder's books


def current_quarter(today=None) -> str:
    today = today or timezone.localdate()
    return f"{today.year}-Q{(today.month - 1) // 3 + 1}"


def _isbn10_hyphenated(isbn: str) -> str:
    return stdnum_isbn.format(stdnum_isbn.to_isbn10(isbn))


def demo_declaration_csv(*, seed: int, audio: bool = True) -> bytes:
    """One licensee's usage file. ``seed`` varies the quantities between licensees; ``audio``
    adds the record label's recordings (a training licence uses every medium)."""
    rows: list[tuple[str, str, int, str]] = []  # scheme, identifier, quantity, title
    for i in range(1, PRESS_BOOKS + 1):
        quantity = 1_000 * ((i * 7 + seed) % 13 + 1)
        isbn = isbn13(100_000 + i)
        if i % 7 == 0:  # the same book, written as a hyphenated ISBN-10
            rows.append(("isbn", _isbn10_hyphenated(isbn), quantity, ""))
        elif i % 3 == 0:  # books with a DOI, cited by their resolver link
            rows.append(("doi", f"https://doi.org/10.5555/NLP.{i}", quantity, ""))
        else:
            rows.append(("isbn", isbn, quantity, ""))
    if audio:
        for i in range(1, LABEL_RECORDINGS + 1, 2):
            rows.append(("isrc", f"IE-HRB-26-{i:05d}", 500 * ((i + seed) % 5 + 1), ""))
    for i in range(1, AGENCY_PHOTOS + 1, 3):
        url = f"https://fjordphoto.example/photos/{i}"
        if i % 2 == 0:
            url = url.replace("https://fjordphoto.example", "HTTPS://FJORDPHOTO.EXAMPLE")
        rows.append(("url", url, 200 * ((i + seed) % 4 + 1), ""))
    # What the society does not represent: a staff member may match these later.
    for n, isbn in enumerate(UNKNOWN_ISBNS, 1):
        rows.append(("isbn", isbn, 2_500 * n + seed, f"Unlisted novel {n}"))
    rows.append(("url", "https://unknown-stock.example/img/42", 750 + seed, "Stock image 42"))
    rows.append(("doi", "10.9999/not.in.registry", 300 + seed, "A journal article"))

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(DECLARATION_COLUMNS)
    for scheme, identifier, quantity, title in rows:
        writer.writerow((scheme, identifier, quantity, UNIT, title))
    return buffer.getvalue().encode("utf-8")


def demo_declarations_seed(
    *, licences: list[Licence], owners: dict[str, User]
) -> list[UsageDeclaration]:
    """For each active licence, the accepted declaration of the current quarter (clipped to
    the licence term): the one from an earlier run, or a new one filed and processed now."""
    period = current_quarter()
    _, quarter_start, quarter_end = period_parse(period)
    declared = []
    for seed, licence in enumerate(licences):
        if licence.status != LicenceStatus.ACTIVE or licence.starts_on is None:
            continue
        if licence.ends_on is None or quarter_end < licence.starts_on:
            continue
        if quarter_start > licence.ends_on:
            continue
        organisation = licence.licensee
        model_name, model_version = MODELS.get(organisation.name, ("demo-model", "1"))
        existing = (
            UsageDeclaration.objects.filter(
                licence=licence,
                model_name=model_name,
                model_version=model_version,
                period=period,
                status=DeclarationStatus.ACCEPTED,
            )
            .order_by("-pk")
            .first()
        )
        if existing is not None:
            declared.append(existing)
            continue
        caller = caller_for_user(owners[organisation.name], organisation)
        upload = ContentFile(
            demo_declaration_csv(seed=seed, audio="training" in (licence.uses or [])),
            name=f"{model_name}-{period}.csv",
        )
        declaration = declaration_file_start(
            caller=caller,
            licence=licence,
            period=period,
            model_name=model_name,
            model_version=model_version,
            uploaded_file=upload,
            unit=UNIT,
            enqueue=False,
        )
        declaration_process(declaration_id=declaration.pk)
        declared.append(UsageDeclaration.objects.get(pk=declaration.pk))
    return declared
