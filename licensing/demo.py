"""The demo society's catalogues, as the catalogue files their holders would upload.

Deterministic: the same files every run, so re-running the demo re-imports identical files and
changes nothing. One ISBN is claimed by two holders on purpose, so the demo has a conflict.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random

ADJECTIVES = (
    "Silent",
    "Northern",
    "Hidden",
    "Salt",
    "Iron",
    "Paper",
    "Winter",
    "Copper",
    "Lantern",
    "Quiet",
    "Amber",
    "Glass",
    "Distant",
    "Wild",
    "Last",
)
NOUNS = (
    "Harbour",
    "Orchard",
    "Atlas",
    "River",
    "Garden",
    "Lighthouse",
    "Meridian",
    "Archive",
    "Tide",
    "Forest",
    "Signal",
    "Cartographer",
    "Letters",
    "Island",
    "Season",
)
COLUMNS = [
    "work_ref",
    "title",
    "media_type",
    "isbn",
    "issn",
    "doi",
    "isrc",
    "iswc",
    "url",
    "sha256",
    "iscc",
    "holder",
    "share",
    "role",
    "consent",
]
SHARED_ISBN_NUMBER = 7  # the Press's book no. 7 is also claimed by the photo agency


def isbn13(number: int) -> str:
    body = f"978{number:09d}"
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def iswc(number: int) -> str:
    digits = f"{number:09d}"
    check = (10 - (1 + sum(i * int(d) for i, d in enumerate(digits, 1))) % 10) % 10
    return f"T-{digits[:3]}.{digits[3:6]}.{digits[6:]}-{check}"


def _title(rng: random.Random) -> str:
    return f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"


def _csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({column: row.get(column, "") for column in COLUMNS})
    return buffer.getvalue().encode()


def press_books(*, press_code: str, label_code: str, count: int = 60) -> bytes:
    """Books: ISBN, some with a DOI; a few co-published with the record label (audiobooks);
    every tenth reserved by its author."""
    rng = random.Random("press")  # noqa: S311  # nosec B311 - seeded, deterministic demo data, not secrets
    rows = []
    for i in range(1, count + 1):
        base = {
            "work_ref": f"NLP-{i:04d}",
            "title": _title(rng),
            "media_type": "text",
            "isbn": isbn13(100_000 + i),
            "doi": f"10.5555/nlp.{i}" if i % 3 == 0 else "",
            "consent": "reserved" if i % 10 == 0 else "",
        }
        if i % 8 == 0:
            rows.append({**base, "holder": press_code, "share": "70", "role": "publisher"})
            rows.append({**base, "holder": label_code, "share": "30", "role": "producer"})
        else:
            rows.append({**base, "holder": press_code, "share": "100", "role": "publisher"})
    return _csv(rows)


def label_recordings(*, label_code: str, count: int = 40) -> bytes:
    """Recordings with their ISRC and the musical work's ISWC, all the label's own."""
    rng = random.Random("label")  # noqa: S311  # nosec B311 - seeded, deterministic demo data, not secrets
    rows = []
    for i in range(1, count + 1):
        rows.append(
            {
                "work_ref": f"HR-{i:04d}",
                "title": f"{_title(rng)} (Live)",
                "media_type": "audio",
                "isrc": f"IEHRB26{i:05d}",
                "iswc": iswc(345_000_000 + i),
                "holder": label_code,
                "share": "100",
                "role": "producer",
            }
        )
    return _csv(rows)


def agency_photos(*, agency_code: str, count: int = 50) -> bytes:
    """Photographs identified by URL and content hash; one photo book shares an ISBN with the
    press (the conflict the demo shows staff)."""
    rng = random.Random("agency")  # noqa: S311  # nosec B311 - seeded, deterministic demo data, not secrets
    rows = []
    for i in range(1, count + 1):
        rows.append(
            {
                "work_ref": f"FPA-{i:05d}",
                "title": f"{_title(rng)}, photograph",
                "media_type": "image",
                "url": f"https://fjordphoto.example/photos/{i}",
                "sha256": hashlib.sha256(f"fjord-photo-{i}".encode()).hexdigest(),
                "holder": agency_code,
                "share": "100",
                "role": "author",
                "consent": "reserved" if i % 7 == 0 else "",
            }
        )
    rows.append(
        {
            "work_ref": "FPA-BOOK-1",
            "title": "Fjords: a photo book",
            "media_type": "text",
            "isbn": isbn13(100_000 + SHARED_ISBN_NUMBER),
            "holder": agency_code,
            "share": "100",
            "role": "author",
        }
    )
    return _csv(rows)


def demo_repertoire_seed(*, organisations: dict, owners: dict) -> dict:
    """Each demo rights holder uploads its catalogue file through the real import service.
    Returns counts for the demo's summary. Re-running imports the same files: nothing changes."""
    from django.core.files.base import ContentFile

    from accounts.scoping import caller_for_user
    from licensing.models import Catalogue, CatalogueImport, Conflict, Work
    from licensing.services.imports import catalogue_import_run, catalogue_import_start
    from licensing.services.repertoire import catalogue_create

    press = organisations["Northern Lights Press"]
    label = organisations["Harbour Records"]
    agency = organisations["Fjord Photo Agency"]
    plan = (
        (press, "Backlist", "text", press_books(press_code=press.code, label_code=label.code)),
        (label, "Live recordings", "audio", label_recordings(label_code=label.code)),
        (agency, "Archive", "image", agency_photos(agency_code=agency.code)),
    )
    jobs = []
    for organisation, name, media_type, content in plan:
        caller = caller_for_user(owners[organisation.name], organisation)
        catalogue = Catalogue.objects.filter(owner=organisation, name=name).first()
        if catalogue is None:
            catalogue = catalogue_create(caller=caller, name=name, media_type=media_type)
        job = catalogue_import_start(
            caller=caller,
            catalogue=catalogue,
            uploaded_file=ContentFile(content, name=f"{name.lower().replace(' ', '-')}.csv"),
            mode="all_or_nothing",
            enqueue=False,
        )
        catalogue_import_run(import_id=job.pk)
        jobs.append(CatalogueImport.objects.get(pk=job.pk))
    return {
        "imports": [
            (
                j.catalogue.owner.code,
                j.catalogue.name,
                j.status,
                j.works_created,
                j.works_unchanged,
                j.error_count,
            )
            for j in jobs
        ],
        "works": Work.objects.count(),
        "open_conflicts": Conflict.objects.filter(status="open").count(),
    }
