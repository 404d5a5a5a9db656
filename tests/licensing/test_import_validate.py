"""The pure reader and validator of catalogue files: no database, no Django settings."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from licensing.importing import reader
from licensing.importing.reader import FileProblem, catalogue_file_read, utf8_check
from licensing.importing.validate import catalogue_rows_validate, columns_plan, holder_codes_in
from tests.licensing.test_import_support import DATA

OWNER, CO, THIRD = 1, 2, 3
CODES = {"RH-000002": CO, "RH-000003": THIRD}


def validate_bytes(content: bytes, *, file_format: str = "csv", **kwargs):
    header, rows = catalogue_file_read(io.BytesIO(content), file_format=file_format)
    return catalogue_rows_validate(
        rows, columns_plan(header), holder_ids=CODES, default_holder_id=OWNER, **kwargs
    )


def validate_text(text: str, **kwargs):
    return validate_bytes(text.encode(), **kwargs)


def errors_of(validation) -> list[tuple[int, str, str]]:
    return list(validation.errors[["row", "column", "message"]].itertuples(index=False, name=None))


def golden(name: str, **codes: str) -> bytes:
    content = (DATA / name).read_bytes()
    for placeholder, code in codes.items():
        content = content.replace(f"{{{placeholder}}}".encode(), code.encode())
    return content


def test_every_row_error_of_the_golden_file_is_reported_with_row_and_column():
    validation = validate_bytes(golden("catalogue_import_errors.csv", CO_HOLDER="RH-000002"))
    with open(DATA / "catalogue_import_errors.expected.csv", newline="") as handle:
        expected = [(int(r["row"]), r["column"], r["message"]) for r in csv.DictReader(handle)]
    assert errors_of(validation) == expected
    assert validation.works["work_ref"].tolist() == ["OK-1"]  # the only work without errors
    assert sorted(validation.skipped["work_ref"]) == [
        "BAD-1",
        "BAD-2",
        "BAD-3",
        "BAD-4",
        "BAD-5",
        "BAD-6",
        "BAD-7",
        "BAD-8",
    ]
    assert validation.rows_total == 13 and validation.works_total == 9


def test_clean_file_gives_works_identifiers_and_exact_shares():
    content = golden("catalogue_import_valid.csv", CO_HOLDER="rh-000002", THIRD_HOLDER="RH-000003")
    validation = validate_bytes(content)
    assert validation.errors.empty
    works = validation.works.set_index("work_ref")
    assert works.loc["NLP-003", "consent"] == "reserved"
    assert works.loc["NLP-001", "consent"] == ""  # inherit the catalogue's default
    assert works.loc["NLP-004", "media_type"] == "dataset"
    identifiers = {
        (validation.works.loc[k, "work_ref"], scheme): value
        for k, scheme, value in validation.identifiers.itertuples(index=False)
    }
    assert identifiers == {
        ("NLP-001", "isbn"): "9780439023481",
        ("NLP-002", "isbn"): "9780306406157",  # ISBN-10 -> ISBN-13
        ("NLP-002", "doi"): "10.1000/xyz123",  # resolver URL stripped, case folded
        ("NLP-003", "isrc"): "GBAYE2400001",
        ("NLP-004", "doi"): "10.5555/quiet.engines",
    }
    shares = validation.shares.merge(validation.works[["k", "work_ref"]], on="k")
    nlp3 = shares[shares["work_ref"] == "NLP-003"]
    assert sorted(zip(nlp3["holder_id"], nlp3["role"], nlp3["share_ppm"], strict=True)) == [
        (OWNER, "performer", 333_333),
        (CO, "producer", 333_333),
        (THIRD, "publisher", 333_334),
    ]
    assert nlp3["share_ppm"].sum() == 1_000_000
    nlp4 = shares[shares["work_ref"] == "NLP-004"]
    assert nlp4[["holder_id", "role", "share_ppm"]].values.tolist() == [
        [OWNER, "author", 1_000_000]  # defaults: the importer, author, 100%
    ]


def test_cells_are_tolerated_with_spaces_case_bom_and_blank_rows():
    content = (
        "\ufeff Work_Ref , TITLE ,Media_Type,ISBN,Holder,Role,Consent,notes\n"
        " W1 ,  A title  , Text , 978-0-439-02348-1 , rh-000002 , PUBLISHER , Licensed,x\n"
        ",,,,,,,\n"
    ).encode()
    validation = validate_bytes(content)
    assert validation.errors.empty
    assert validation.works[["work_ref", "title", "media_type", "consent"]].values.tolist() == [
        ["W1", "A title", "text", "licensed"]
    ]
    assert validation.shares[["holder_id", "role"]].values.tolist() == [[CO, "publisher"]]


def test_later_rows_may_leave_identifiers_blank_but_not_contradict_them():
    validation = validate_text(
        "work_ref,title,media_type,isbn,doi,holder,share\n"
        "W1,T,text,9780439023481,10.1000/a,,50\n"
        "W1,T,text,,10.1000/A,RH-000002,50\n"
    )
    assert validation.errors.empty
    assert len(validation.identifiers) == 2


def test_works_over_one_hundred_percent_are_reported_on_every_row():
    validation = validate_text(
        "work_ref,title,media_type,isbn,holder,share,role\n"
        "W1,T,text,9780439023481,,50,author\n"
        "W1,T,text,9780439023481,RH-000002,30,publisher\n"
        "W1,T,text,9780439023481,RH-000003,20.0001,producer\n"
        "W2,U,text,9780306406157,,100,author\n"
    )
    message = "the shares of work 'W1' add up to 100.0001%, more than 100%"
    assert errors_of(validation) == [
        (2, "share", message),
        (3, "share", message),
        (4, "share", message),
    ]
    assert validation.works["work_ref"].tolist() == ["W2"]


def test_the_same_holder_may_hold_two_roles_but_not_one_role_twice():
    validation = validate_text(
        "work_ref,title,media_type,isbn,holder,share,role\n"
        "W1,T,text,9780439023481,,50,author\n"
        "W1,T,text,9780439023481,,25,publisher\n"
        "W1,T,text,9780439023481,RH-000001-unknown,5,author\n"
        "W1,T,text,9780439023481,,20,author\n"
    )
    assert errors_of(validation) == [
        (4, "holder", "no rights holder has this registry code (e.g. RH-000042)"),
        (5, "holder", "this holder has a share as author on this work already, on row 2"),
    ]


def test_holder_codes_are_listed_normalised_for_lookup():
    header, rows = catalogue_file_read(
        io.BytesIO(b"work_ref,title,media_type,isbn,holder\na,b,text,1, rh-000002\nc,d,text,2,\n"),
        file_format="csv",
    )
    assert holder_codes_in(rows, columns_plan(header)) == ["RH-000002"]


def test_progress_is_reported_chunk_by_chunk():
    lines = ["work_ref,title,media_type,isbn"] + [
        f"W{i},T{i},text,9780439023481" if i % 2 else f"W{i},T{i},text,9780306406157"
        for i in range(10)
    ]
    seen: list[int] = []
    validation = validate_text("\n".join(lines), progress=seen.append, chunk_rows=3)
    assert seen == [3, 6, 9, 10]
    assert validation.errors.empty and len(validation.works) == 10


@pytest.mark.parametrize(
    ("content", "code", "words"),
    [
        (b"", "empty_file", "The file is empty."),
        (b"work_ref,title,media_type,isbn\n", "no_rows", "header but no rows"),
        (b"work_ref,title,media_type,isbn\n,,,\n", "no_rows", "header but no rows"),
        (b"ref,name,isbn\nA,B,9780439023481\n", "missing_columns", "work_ref, title, media_type"),
        (b"work_ref,title,media_type,holder\nA,B,text,\n", "no_identifier_columns", "isbn, issn"),
        (b"work_ref,title,media_type,isbn,ISBN\nA,B,text,1,2\n", "duplicate_column", "'isbn'"),
        (b"work_ref,title,media_type,isbn\nA,B,text,1,extra\n", "not_csv", "5 fields"),
        (b'work_ref,title,media_type,isbn\nA,"B,text,1\n', "not_csv", "not valid CSV"),
        (b"work_ref;title;media_type;isbn\nA;B;text;1\n", "missing_columns", "comma separated"),
    ],
)
def test_whole_file_problems_say_what_is_wrong(content, code, words):
    with pytest.raises(FileProblem) as caught:
        validate_bytes(content)
    assert caught.value.code == code
    assert words in caught.value.message


def test_non_utf8_is_refused_naming_line_and_byte_offset():
    content = (DATA / "catalogue_import_latin1.csv").read_bytes()
    with pytest.raises(FileProblem) as caught:
        utf8_check(io.BytesIO(content))
    offset = content.index(b"\xe9")
    assert caught.value.code == "not_utf8"
    assert f"line 2 (byte offset {offset})" in caught.value.message
    assert "e9" in caught.value.message


def test_utf8_check_carries_characters_split_between_chunks(monkeypatch):
    monkeypatch.setattr(reader, "_CHUNK", 7)
    text = "work_ref,title\nW1,Crème brûlée ☃ 漢字\n" * 5
    utf8_check(io.BytesIO(text.encode()))  # no error: every split character is carried over
    bad = text.encode() + b"W2,\xff\n"
    offset = len(text.encode()) + 3
    with pytest.raises(FileProblem, match=rf"line 11 \(byte offset {offset}\)"):
        utf8_check(io.BytesIO(bad))


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("work_ref,title".encode("utf-16"), "UTF-16"),
        (b"PK\x03\x04rest-of-a-zip", "XLSX"),
    ],
)
def test_common_wrong_files_are_named(content, words):
    with pytest.raises(FileProblem, match=words):
        utf8_check(io.BytesIO(content))


def test_xlsx_cells_are_read_as_text_without_float_damage():
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["work_ref", "title", "media_type", "isbn", "holder", "share", "role"])
    sheet.append(["W1", "Numbers", "text", 9780439023481, None, 33.3333, "author"])
    sheet.append(["W1", "Numbers", "text", "978-0-439-02348-1", "RH-000002", 66.6667, "publisher"])
    sheet.append([None] * 7)
    buffer = io.BytesIO()
    workbook.save(buffer)
    header, rows = catalogue_file_read(io.BytesIO(buffer.getvalue()), file_format="xlsx")
    assert header == ["work_ref", "title", "media_type", "isbn", "holder", "share", "role"]
    assert rows.iloc[0].tolist() == [
        "W1",
        "Numbers",
        "text",
        "9780439023481",
        "",
        "33.3333",
        "author",
    ]
    validation = catalogue_rows_validate(
        rows, columns_plan(header), holder_ids=CODES, default_holder_id=OWNER
    )
    assert validation.errors.empty
    assert validation.shares["share_ppm"].tolist() == [333_333, 666_667]


def test_a_csv_named_xlsx_is_refused():
    with pytest.raises(FileProblem, match="not an XLSX workbook"):
        catalogue_file_read(io.BytesIO(b"work_ref,title\n"), file_format="xlsx")


def test_result_frames_have_stable_columns_when_nothing_is_valid():
    validation = validate_text("work_ref,title,media_type,isbn\nW1,T,text,123\n")
    assert validation.works.empty
    assert list(validation.works.columns) == [
        "k",
        "work_ref",
        "title",
        "media_type",
        "consent",
        "row",
    ]
    assert list(validation.errors.columns) == ["row", "column", "value", "message", "work_ref"]
    assert isinstance(validation.errors, pd.DataFrame)


def test_the_importing_package_imports_no_django():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import licensing.importing.reader, licensing.importing.shares\n"
        "import licensing.importing.validate, licensing.importing.report\n"
        "import licensing.importing.store\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
