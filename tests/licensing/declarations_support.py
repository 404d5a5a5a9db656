"""Builders for the usage-declaration tests: an active licence without the payment path, a
small repertoire, and declaration files."""

from __future__ import annotations

import datetime as dt
import gzip

from django.core.files.base import ContentFile

from licensing.models import Licence, LicenceProduct, LicenceStatus, UsageDeclaration
from licensing.services.declarations import declaration_file_start, declaration_process
from tests.licensing.factories import caller_of, catalogue_for, work_in

ISBN_A = "9780439023481"  # also 0-439-02348-3 as an ISBN-10
ISBN_B = "9780306406157"
ISBN_UNKNOWN = "9781861972712"


def active_licence(persona, *, uses=("training",), starts=dt.date(2026, 1, 1), months=12):
    product, _ = LicenceProduct.objects.get_or_create(
        code="decl-test", defaults={"name": "Declaration test licence"}
    )
    ends = dt.date(starts.year + months // 12, starts.month, starts.day) - dt.timedelta(days=1)
    return Licence.objects.create(
        licensee=persona.organisation,
        product=product,
        status=LicenceStatus.ACTIVE,
        amount_minor=100_000,
        currency="EUR",
        uses=list(uses),
        territory="WORLD",
        starts_on=starts,
        ends_on=ends,
    )


def repertoire(holder):
    """Works with one identifier of every scheme, one reserved work, and one ISBN co-claimed
    by two works. Returns {name: work}."""
    catalogue = catalogue_for(holder, "Declared")
    works = {
        "a": work_in(catalogue, holder, "A", isbn=ISBN_A),
        "b": work_in(catalogue, holder, "B", isbn=ISBN_B),
        "issn": work_in(catalogue, holder, "ISSN", issn="0317-8471"),
        "doi": work_in(catalogue, holder, "DOI", doi="10.1000/Journal.Abc"),
        "isrc": work_in(catalogue, holder, "ISRC", isrc="USRC17607839"),
        "iswc": work_in(catalogue, holder, "ISWC", iswc="T-034.524.680-1"),
        "url": work_in(catalogue, holder, "URL", url="https://example.com/books/1"),
        "sha256": work_in(catalogue, holder, "SHA", sha256="ab" * 32),
        "iscc": work_in(catalogue, holder, "ISCC", iscc="ISCC:KUAFVC5DMJJGYKZ4MQV6B6THIBBUG"),
        "reserved": work_in(catalogue, holder, "R", isbn="9780140449136", consent="reserved"),
    }
    return works


def csv_file(rows, *, header="scheme,identifier,quantity", name="usage.csv", gz=False):
    text = header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows)
    data = text.encode("utf-8")
    if gz:
        data, name = gzip.compress(data), name + ".gz"
    return ContentFile(data, name=name)


def declare(persona, licence, upload, *, period="2026-Q3", model="aleph", version="1", **kw):
    declaration = declaration_file_start(
        caller=caller_of(persona),
        licence=licence,
        period=period,
        model_name=model,
        model_version=version,
        uploaded_file=upload,
        enqueue=False,
        **kw,
    )
    declaration_process(declaration_id=declaration.pk)
    return UsageDeclaration.objects.get(pk=declaration.pk)


def usage_by_work(declaration) -> dict[int, tuple[int, int, bool]]:
    return {u.work_id: (u.quantity, u.lines, u.reserved) for u in declaration.work_usage.all()}
