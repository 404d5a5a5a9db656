"""manage.py import_catalogue: runs the job in process, prints progress and a summary."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from licensing.models import Catalogue, CatalogueImport, JobStatus, Work
from tests.licensing.test_import_support import DATA, data_file

pytest_plugins = ["tests.licensing.test_import_support"]  # its fixtures


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_catalogue", *args, stdout=out)
    return out.getvalue()


def test_command_imports_a_file_and_prints_progress_and_a_summary(
    rights_holder, co_holder, third_holder, catalogue, tmp_path
):
    path = tmp_path / "works.csv"
    path.write_bytes(
        data_file(
            "catalogue_import_valid.csv",
            CO_HOLDER=co_holder.organisation.code,
            THIRD_HOLDER=third_holder.code,
        )
    )
    out = run(
        "--org", rights_holder.organisation.code.lower(), "--catalogue", "Backlist", str(path)
    )
    assert "validating" in out and "writing shares" in out
    assert "succeeded: Imported 4 works from 7 rows: 4 created" in out
    assert Work.objects.filter(catalogue=catalogue).count() == 4
    job = CatalogueImport.objects.get()
    assert job.status == JobStatus.SUCCEEDED and job.original_name == "works.csv"


def test_command_fails_with_the_first_errors(rights_holder, catalogue):
    with pytest.raises(CommandError, match="failed"):
        out = io.StringIO()
        try:
            call_command(
                "import_catalogue",
                "--org",
                rights_holder.organisation.code,
                "--catalogue",
                "Backlist",
                str(DATA / "catalogue_import_errors.csv"),
                stdout=out,
            )
        finally:
            text = out.getvalue()
    assert "row 3, isbn: ISBN check digit is wrong" in text
    assert Work.objects.count() == 0


def test_command_creates_the_catalogue_when_asked(rights_holder, media_root, tmp_path):
    path = tmp_path / "works.csv"
    path.write_bytes(b"work_ref,title,media_type,isbn\nW1,T,text,9780439023481\n")
    args = ["--org", rights_holder.organisation.code, "--catalogue", "Fresh", str(path)]
    with pytest.raises(CommandError, match="no catalogue called 'Fresh'"):
        run(*args)
    out = run(*args, "--create", "--media-type", "text", "--mode", "valid_only")
    assert "Created catalogue 'Fresh'" in out
    catalogue = Catalogue.objects.get(name="Fresh")
    assert catalogue.media_type == "text" and catalogue.works.count() == 1


def test_command_refuses_unknown_organisations_and_files(rights_holder, catalogue, tmp_path):
    with pytest.raises(CommandError, match="No organisation"):
        run("--org", "RH-999999", "--catalogue", "Backlist", str(DATA / "x.csv"))
    with pytest.raises(CommandError, match="No such file"):
        run(
            "--org",
            rights_holder.organisation.code,
            "--catalogue",
            "Backlist",
            str(tmp_path / "missing.csv"),
        )
