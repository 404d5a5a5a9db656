"""Shared fixtures and helpers of the catalogue import tests (imported by test_import_*.py),
and the check that the pure validator's enums are the models' choices."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import OrganisationKind
from accounts.scoping import Caller
from licensing.importing import shares, validate
from licensing.models import (
    FULL_SHARE_PPM,
    Catalogue,
    CatalogueImport,
    Consent,
    ImportMode,
    MediaType,
    Share,
    ShareRole,
    Work,
    WorkIdentifier,
)
from licensing.services import imports
from tests.factories import OrganisationFactory

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def media_root(settings, tmp_path):
    """Uploads and error reports go to a temporary MEDIA_ROOT, not the project's var/."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def catalogue(rights_holder, media_root) -> Catalogue:
    return Catalogue.objects.create(
        owner=rights_holder.organisation, name="Backlist", media_type=MediaType.TEXT
    )


@pytest.fixture
def third_holder(db):
    return OrganisationFactory(kind=OrganisationKind.RIGHTS_HOLDER, name="Lantern Agency")


def caller_of(persona) -> Caller:
    return Caller(user=persona.user, organisation=persona.organisation, role=persona.role)


def data_file(name: str, **codes: str) -> bytes:
    """A golden file from tests/data, with {CO_HOLDER}-style placeholders filled in."""
    text = (DATA / name).read_bytes()
    for placeholder, code in codes.items():
        text = text.replace(f"{{{placeholder}}}".encode(), code.encode())
    return text


def holder_codes(co_holder, third_holder=None) -> dict[str, str]:
    codes = {"CO_HOLDER": co_holder.organisation.code}
    if third_holder is not None:
        codes["THIRD_HOLDER"] = third_holder.code
    return codes


def upload(content: bytes, name: str = "catalogue.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def run_import(
    persona,
    catalogue: Catalogue,
    content: bytes,
    *,
    name: str = "catalogue.csv",
    mode: str = ImportMode.ALL_OR_NOTHING,
    on_progress=None,
) -> CatalogueImport:
    """Start and run an import in process, as the Celery task would."""
    job = imports.catalogue_import_start(
        caller=caller_of(persona),
        catalogue=catalogue,
        uploaded_file=upload(content, name),
        mode=mode,
        enqueue=False,
    )
    result = imports.catalogue_import_run(import_id=job.pk, on_progress=on_progress)
    assert result is not None
    return result


def repertoire_counts() -> tuple[int, int, int]:
    return Work.objects.count(), WorkIdentifier.objects.count(), Share.objects.count()


def repertoire_snapshot(catalogue: Catalogue) -> dict:
    """Every stored field of the catalogue's works, identifiers and shares."""
    works = Work.objects.filter(catalogue=catalogue)
    return {
        "works": sorted(works.values_list()),
        "identifiers": sorted(
            WorkIdentifier.objects.filter(work__catalogue=catalogue).values_list()
        ),
        "shares": sorted(Share.objects.filter(work__catalogue=catalogue).values_list()),
    }


def test_validator_enums_are_the_models_choices():
    assert tuple(MediaType.values) == validate.MEDIA_TYPES
    assert tuple(ShareRole.values) == validate.ROLES
    assert tuple(Consent.values) == validate.CONSENTS
    assert Share._meta.get_field("role").default == validate.DEFAULT_ROLE
    assert Work._meta.get_field("work_ref").max_length == validate.MAX_WORK_REF
    assert Work._meta.get_field("title").max_length == validate.MAX_TITLE
    assert WorkIdentifier._meta.get_field("value").max_length == validate.MAX_IDENTIFIER
    assert shares.FULL_SHARE_PPM == FULL_SHARE_PPM
