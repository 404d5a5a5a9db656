"""Writes the bad-input corpus (tests/data/bad/catalogue/*, tests/data/bad/declaration/*).

Deterministic: running it again gives the same bytes. The files are committed; large ones
(oversized uploads, bombs) are small on disk and only large once read, or are made by the tests
themselves. Each file's expected outcome lives in `expected.json` beside it, checked by
tests/licensing/test_bad_input_corpus.py.

    .venv/bin/python tests/data/bad/make_corpus.py
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = "work_ref,title,media_type,isbn,doi,isrc,holder,share,role,consent"
GOOD = [
    "BAD-1,The Winter Orchard,text,978-0-439-02348-1,,,,100,author,",
    "BAD-2,Salt and Iron,text,9780306406157,,,,100,author,",
    "BAD-3,Lanterns,text,,10.1000/182,,,100,author,",
]


def lines(*rows: str, end: str = "\n") -> bytes:
    return (end.join(rows) + end).encode("utf-8")


def catalogue_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    files["utf16_bom.csv"] = ("\ufeff" + "\n".join([HEADER, *GOOD]) + "\n").encode("utf-16")
    files["latin1_accents.csv"] = "\n".join(
        [HEADER, "BAD-1,Café Müller,text,9780439023481,,,,100,author,"]
    ).encode("latin-1")
    files["utf8_bom.csv"] = b"\xef\xbb\xbf" + lines(HEADER, *GOOD)
    files["mixed_line_endings.csv"] = f"{HEADER}\r\n{GOOD[0]}\n{GOOD[1]}\r{GOOD[2]}\r\n".encode()
    files["missing_required_columns.csv"] = lines("work_ref,isbn", "BAD-1,9780439023481")
    files["extra_columns.csv"] = lines(
        HEADER + ",shoe_size,notes", *(row + ",44,hello" for row in GOOD)
    )
    files["ragged_rows.csv"] = lines(HEADER, GOOD[0], GOOD[1] + ",surplus,cells", GOOD[2])
    files["quoted_newlines.csv"] = lines(
        HEADER, 'BAD-1,"The Winter\nOrchard",text,9780439023481,,,,100,author,', GOOD[1]
    )
    files["huge_field.csv"] = lines(
        HEADER, "BAD-1," + "A" * 2_000_000 + ",text,9780439023481,,,,100,author,", GOOD[1]
    )
    files["scientific_notation.csv"] = lines(
        HEADER,
        "BAD-1,The Winter Orchard,text,9.78044E+12,,,,100,author,",
        "BAD-2,Salt and Iron,text,9780306406157,,,,1E+2,author,",
    )
    files["negative_and_fractional_shares.csv"] = lines(
        HEADER,
        "BAD-1,The Winter Orchard,text,9780439023481,,,,-10,author,",
        "BAD-2,Salt and Iron,text,9780306406157,,,,33.33333333,author,",
        "BAD-3,Lanterns,text,,10.1000/182,,,abc,author,",
    )
    files["duplicated_rows.csv"] = lines(HEADER, GOOD[0], GOOD[0], GOOD[1])
    files["formula_injection.csv"] = lines(
        HEADER,
        'BAD-1,"=HYPERLINK(""http://evil.example"",""click"")",text,9780439023481,,,,100,author,',
        "BAD-2,+SUM(A1:A9),text,9780306406157,,,,100,author,",
        "@cmd,-2+3,text,,10.1000/182,,,100,author,",
    )
    files["header_only.csv"] = lines(HEADER)
    files["blank_lines_only.csv"] = b"\n\n\r\n\n"
    files["nul_bytes.csv"] = lines(HEADER, "BAD-1,The\x00Orchard,text,9780439023481,,,,100,author,")
    files["binary_png.csv"] = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    files["semicolon_delimited.csv"] = lines(HEADER.replace(",", ";"), GOOD[0].replace(",", ";"))
    files["xlsx_zip_bomb.xlsx"] = _zip_bomb()
    files["not_really.xlsx"] = b"PK\x03\x04" + b"\x00" * 200
    return files


def _entry(name: str) -> zipfile.ZipInfo:
    """A zip member with a fixed timestamp, so the archive's bytes never change."""
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _zip_bomb() -> bytes:
    """A well-formed .xlsx whose one sheet inflates to 1 GiB (about 1 MB on disk): the
    workbook parts are real, the sheet is a valid row padded with a gigabyte of spaces."""
    buffer = io.BytesIO()
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlform'
            'ats-package.relationships+xml"/><Default Extension="xml" ContentType="application/'
            'xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlfo'
            'rmats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksh'
            'eets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spread'
            'sheetml.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/packa'
            'ge/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats'
            '.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadshee'
            'tml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/rela'
            'tionships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbo'
            "ok>"
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/packa'
            'ge/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats'
            '.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>"
        ),
    }
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, text in parts.items():
            zf.writestr(_entry(name), text)
        with zf.open(_entry("xl/worksheets/sheet1.xml"), "w", force_zip64=True) as sheet:
            sheet.write(
                b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                b'spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is>'
                b"<t>work_ref</t></is></c></row>"
            )
            block = b" " * (1 << 20)
            for _ in range(1024):
                sheet.write(block)
            sheet.write(b"</sheetData></worksheet>")
    return buffer.getvalue()


def declaration_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    head = "scheme,identifier,quantity,unit,title"
    good = [
        "isbn,9780439023481,1000,tokens,The Winter Orchard",
        "isbn,9780306406157,500,tokens,Salt and Iron",
    ]
    files["utf16_bom.csv"] = ("\ufeff" + "\n".join([head, *good]) + "\n").encode("utf-16")
    files["utf8_bom.csv"] = b"\xef\xbb\xbf" + lines(head, *good)
    files["mixed_line_endings.csv"] = f"{head}\r\n{good[0]}\r{good[1]}\n".encode()
    files["missing_columns.csv"] = lines("identifier,title", "9780439023481,The Winter Orchard")
    files["extra_columns.csv"] = lines(head + ",model", *(row + ",x" for row in good))
    files["quoted_newlines.csv"] = lines(
        head, 'isbn,9780439023481,1000,tokens,"The Winter\nOrchard"', good[1]
    )
    files["huge_field.csv"] = lines(head, "isbn,9780439023481,1000,tokens," + "A" * 3_000_000)
    files["scientific_notation.csv"] = lines(head, "isbn,9780439023481,1e6,tokens,T")
    files["negative_quantity.csv"] = lines(head, good[0], "isbn,9780306406157,-5,tokens,T")
    files["fractional_quantity.csv"] = lines(head, good[0], "isbn,9780306406157,2.5,tokens,T")
    files["duplicated_rows.csv"] = lines(head, good[0], good[0], good[1])
    files["formula_injection.csv"] = lines(
        head, good[0], 'url,"=HYPERLINK(""http://evil.example"")",10,tokens,=cmd|calc'
    )
    files["mixed_units.csv"] = lines(head, good[0], "isbn,9780306406157,5,items,T")
    files["unknown_scheme.csv"] = lines(head, good[0], "shoe,42,5,tokens,T")
    files["header_only.csv"] = lines(head)
    files["binary_garbage.csv"] = bytes(range(256)) * 16
    # 10 MB of one repeated valid line compresses to ~10 KB and inflates to ~280,000 lines;
    # the bomb proper (below) inflates without bound in lines.
    files["gzip_bomb.csv.gz"] = gzip.compress(
        lines(head) + b"isbn,9780439023481,1,tokens,T\n" * 4_000_000, compresslevel=9, mtime=0
    )
    files["gzip_truncated.csv.gz"] = gzip.compress(lines(head, *good), mtime=0)[:-12]
    return files


def main() -> None:
    for folder, files in (("catalogue", catalogue_files()), ("declaration", declaration_files())):
        target = HERE / folder
        target.mkdir(exist_ok=True)
        for name, content in files.items():
            if name.startswith("huge_"):
                continue  # megabytes of one letter: the tests make these themselves
            (target / name).write_bytes(content)
        print(f"{folder}: {len(files)} files")


if __name__ == "__main__":
    main()
