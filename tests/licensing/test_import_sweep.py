"""Import jobs left behind by a lost message or a stopped worker are re-driven."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from licensing.models import CatalogueImport, Work
from licensing.services.imports import catalogue_import_start, catalogue_imports_sweep
from tests.licensing.factories import caller_of, catalogue_for

pytestmark = pytest.mark.django_db

CSV = b"work_ref,title,media_type,isbn\nW1,One,text,9780439023481\n"


def _upload(persona, catalogue):
    return catalogue_import_start(
        caller=caller_of(persona),
        catalogue=catalogue,
        uploaded_file=ContentFile(CSV, name="c.csv"),
        mode="all_or_nothing",
        enqueue=False,
    )


def test_a_pending_job_whose_message_was_lost_runs_on_the_next_sweep(rights_holder):
    catalogue = catalogue_for(rights_holder)
    job = _upload(rights_holder, catalogue)
    assert catalogue_imports_sweep() == 0  # too young: its message may still be on the way
    later = timezone.now() + timedelta(minutes=11)
    assert catalogue_imports_sweep(now=later) == 1  # eager here: the task runs at once
    job.refresh_from_db()
    assert job.status == "succeeded" and Work.objects.filter(catalogue=catalogue).count() == 1


def test_a_job_running_on_a_stopped_worker_is_requeued_and_finishes(rights_holder):
    catalogue = catalogue_for(rights_holder)
    job = _upload(rights_holder, catalogue)
    CatalogueImport.objects.filter(pk=job.pk).update(
        status="running", started_at=timezone.now() - timedelta(hours=3)
    )
    assert catalogue_imports_sweep(now=timezone.now() + timedelta(minutes=11)) == 1
    job.refresh_from_db()
    assert job.status == "succeeded"


def test_finished_jobs_are_left_alone(rights_holder):
    catalogue = catalogue_for(rights_holder)
    job = _upload(rights_holder, catalogue)
    CatalogueImport.objects.filter(pk=job.pk).update(status="succeeded")
    assert catalogue_imports_sweep(now=timezone.now() + timedelta(days=1)) == 0
