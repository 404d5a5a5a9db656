"""The declaration matcher alone: no database, no Django."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import isbn as stdnum_isbn

from licensing.identifiers import IdentifierError, normalise
from licensing.matching import (
    INDEX_SCHEMA,
    WORKS_SCHEMA,
    DeclarationRejected,
    declaration_match,
    normalise_declared,
)
from licensing.matching.engine import _fast_sql

ROOT = Path(__file__).resolve().parents[2]
BASE_ISBNS = ["9780439023481", "9780306406157", "9781861972712", "9780140449136"]
BASE_DOIS = ["10.1000/xyz123", "10.1038/nphys1170"]
BASE_URLS = ["https://example.com/a/b", "http://example.org/x?q=1"]


def _index(rows):
    return pa.table(
        {
            "scheme": [r[0] for r in rows],
            "value": [r[1] for r in rows],
            "work_id": [r[2] for r in rows],
        },
        schema=INDEX_SCHEMA,
    )


def _works(reserved: dict[int, bool]):
    return pa.table(
        {"work_id": list(reserved), "reserved": list(reserved.values())}, schema=WORKS_SCHEMA
    )


def _write(tmp_path, lines, header="scheme,identifier,quantity", name="d.csv") -> str:
    path = tmp_path / name
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(header + "\n")
        for line in lines:
            out.write(",".join(_cell(v) for v in line) + "\n")
    return str(path)


def _cell(value) -> str:
    text = str(value)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def test_the_engine_imports_no_django():
    code = (
        "import sys, licensing.matching; "
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


# --- normalisation parity -------------------------------------------------------------------


@st.composite
def spellings(draw):
    scheme = draw(st.sampled_from(["isbn", "doi", "url", "issn", "work_id", "isbn"]))
    if draw(st.integers(0, 9)) == 0:
        return scheme, draw(
            # blank after the engine's whitespace is a row error, not a spelling, and a bare
            # carriage return refuses the whole file (tests/data/bad): neither is drawn here
            st.text(min_size=1, max_size=20).filter(
                lambda t: (
                    t.strip(" \t\n\r\f\v\u00a0\u200b\ufeff") and "\x00" not in t and "\r" not in t
                )
            )
        )
    pad = draw(st.sampled_from(["", " ", "\u00a0", "  "]))
    if scheme == "isbn":
        value = draw(st.sampled_from(BASE_ISBNS))
        form = draw(st.sampled_from(["plain", "hyphen", "isbn10", "isbn10-hyphen", "label"]))
        if form == "hyphen":
            value = stdnum_isbn.format(value)
        elif form.startswith("isbn10"):
            value = stdnum_isbn.to_isbn10(value)
            if form.endswith("hyphen"):
                value = stdnum_isbn.format(value)
            value = value.lower() if draw(st.booleans()) else value
        elif form == "label":
            value = "ISBN " + value
    elif scheme == "doi":
        value = draw(st.sampled_from(BASE_DOIS))
        prefix = draw(st.sampled_from(["", "doi:", "https://doi.org/", "http://dx.doi.org/"]))
        value = prefix + (value.upper() if draw(st.booleans()) else value)
    elif scheme == "url":
        value = draw(st.sampled_from(BASE_URLS))
        if draw(st.booleans()):
            value = value.replace("example", "EXAMPLE").replace("https:", "HTTPS:")
        if draw(st.booleans()):
            value += "#section"
    elif scheme == "issn":
        value = draw(st.sampled_from(["0317-8471", "03178471", "ISSN 0317-8471", "0317-8472"]))
    else:
        value = draw(st.sampled_from(["1", "0002", "3", "x4", "-5", "99"]))
    return scheme, pad + value + pad


def _scalar(scheme: str, value: str) -> str | None:
    if scheme == "work_id":
        text = value.strip(" \t\n\r\f\v\u00a0\u200b\ufeff")
        return str(int(text)) if text.isascii() and text.isdigit() and int(text) > 0 else None
    try:
        return normalise(scheme, value)
    except IdentifierError:
        return None


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(spellings(), min_size=1, max_size=40))
def test_a_declared_spelling_matches_exactly_when_normalise_says_so(tmp_path, declared):
    stored = {
        ("isbn", BASE_ISBNS[0]): 1,
        ("isbn", BASE_ISBNS[1]): 2,
        ("doi", BASE_DOIS[0]): 3,
        ("url", normalise("url", BASE_URLS[0])): 4,
        ("issn", "0317-8471"): 5,
    }
    index = _index([(s, v, w) for (s, v), w in stored.items()])
    works = _works({1: False, 2: False, 3: False, 4: False, 5: False, 99: False})
    path = _write(tmp_path, [(s, v, 1) for s, v in declared])
    result = declaration_match(path, index=index, works=works, threads=1)

    expected: dict[int, int] = {}
    for scheme, value in declared:
        canonical = _scalar(scheme, value)
        work = stored.get((scheme, canonical))
        if scheme == "work_id" and canonical in {"1", "2", "3", "4", "5", "99"}:
            work = int(canonical)
        if work is not None:
            expected[work] = expected.get(work, 0) + 1
    got = dict(
        zip(*(result.work_usage[c].to_pylist() for c in ("work_id", "quantity")), strict=True)
    )
    assert got == expected
    assert result.unmatched_quantity == len(declared) - sum(expected.values())


@given(st.lists(spellings(), min_size=1, max_size=30))
@settings(max_examples=40, deadline=None)
def test_normalise_declared_agrees_with_normalise_value_by_value(declared):
    for scheme in {s for s, _ in declared}:
        values = [v for s, v in declared if s == scheme]
        canonical, _ = normalise_declared(scheme, pd.Series(values, dtype=object))
        assert canonical.tolist() == [_scalar(scheme, v) for v in values]


# --- accounting ---------------------------------------------------------------------------

POOL = [
    ("isbn", "9780439023481"),  # work 1
    ("isbn", "0-439-02348-3"),  # work 1, as ISBN-10
    ("isbn", "9780306406157"),  # works 2 and 3 (co-claimed), 3 reserved
    ("isbn", "9780140449136"),  # work 4, reserved
    ("isbn", "9781861972712"),  # no work
    ("isbn", "12345"),  # invalid
    ("work_id", "1"),
    ("work_id", "77"),  # no such work
    ("doi", "10.1000/xyz123"),  # works 5, 6, 7 (three claimants)
]
ACCOUNTING_INDEX = _index(
    [
        ("isbn", "9780439023481", 1),
        ("isbn", "9780306406157", 2),
        ("isbn", "9780306406157", 3),
        ("isbn", "9780140449136", 4),
        ("doi", "10.1000/xyz123", 5),
        ("doi", "10.1000/xyz123", 6),
        ("doi", "10.1000/xyz123", 7),
    ]
)
ACCOUNTING_WORKS = _works({1: False, 2: False, 3: True, 4: True, 5: False, 6: True, 7: False})

lines_strategy = st.lists(
    st.tuples(st.sampled_from(POOL), st.integers(0, 10**15)), min_size=1, max_size=60
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines_strategy, st.randoms())
def test_matched_plus_unmatched_plus_reserved_is_the_declared_quantity(tmp_path, lines, rnd):
    rows = [(s, v, q) for (s, v), q in lines]
    result = declaration_match(
        _write(tmp_path, rows), index=ACCOUNTING_INDEX, works=ACCOUNTING_WORKS, threads=1
    )
    declared = sum(q for _, _, q in rows)
    assert result.declared_quantity == declared
    assert result.matched_quantity + result.unmatched_quantity + result.reserved_quantity == (
        declared
    )
    assert result.matched_lines + result.unmatched_lines + result.reserved_lines == len(rows)
    usage = result.work_usage.to_pylist()
    assert sum(u["quantity"] for u in usage if not u["reserved"]) == result.matched_quantity
    assert sum(u["quantity"] for u in usage if u["reserved"]) == result.reserved_quantity
    assert sum(result.unmatched["quantity"].to_pylist()) == result.unmatched_quantity
    assert all(u["quantity"] >= 0 for u in usage)

    shuffled = rows[:]
    rnd.shuffle(shuffled)
    again = declaration_match(
        _write(tmp_path, shuffled, name="e.csv"),
        index=ACCOUNTING_INDEX,
        works=ACCOUNTING_WORKS,
        threads=1,
    )
    assert again.work_usage.to_pylist() == usage  # order independent and deterministic


def test_a_co_claimed_identifier_is_split_exactly_lowest_work_first(tmp_path):
    path = _write(
        tmp_path, [("doi", "https://doi.org/10.1000/XYZ123", 10), ("doi", "10.1000/xyz123", 1)]
    )
    result = declaration_match(path, index=ACCOUNTING_INDEX, works=ACCOUNTING_WORKS)
    usage = {
        u["work_id"]: (u["quantity"], u["lines"], u["reserved"])
        for u in result.work_usage.to_pylist()
    }
    assert usage == {5: (4, 2, False), 6: (4, 2, True), 7: (3, 2, False)}
    assert (result.matched_quantity, result.reserved_quantity) == (7, 4)
    assert (result.matched_lines, result.reserved_lines) == (2, 0)


def test_gzip_and_json_lines_read_like_csv(tmp_path):
    plain = _write(tmp_path, [("isbn", "978-0-439-02348-1", 5), ("work_id", "1", 2)])
    gz = tmp_path / "d.csv.gz"
    gz.write_bytes(gzip.compress(Path(plain).read_bytes()))
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(
        json.dumps({"scheme": "isbn", "identifier": "978-0-439-02348-1", "quantity": 5})
        + "\n"
        + json.dumps({"scheme": "work_id", "identifier": "1", "quantity": "2"})
        + "\n"
    )
    for path, fmt in ((plain, "csv"), (str(gz), "csv"), (str(jsonl), "jsonl")):
        result = declaration_match(
            path, index=ACCOUNTING_INDEX, works=ACCOUNTING_WORKS, file_format=fmt
        )
        assert result.work_usage.to_pylist() == [
            {"work_id": 1, "quantity": 7, "lines": 2, "reserved": False}
        ]


# --- rejections -----------------------------------------------------------------------------


def _rejected(path, **kwargs) -> DeclarationRejected:
    with pytest.raises(DeclarationRejected) as caught:
        declaration_match(path, index=ACCOUNTING_INDEX, works=ACCOUNTING_WORKS, **kwargs)
    return caught.value


def _errors(rejected: DeclarationRejected) -> list[tuple]:
    return list(rejected.errors[["row", "column", "message"]].itertuples(index=False, name=None))


def test_bad_quantities_are_named_by_row_and_reason(tmp_path):
    path = _write(
        tmp_path,
        [
            ("isbn", "9780439023481", "5"),
            ("isbn", "9780439023481", "-3"),
            ("isbn", "9780439023481", "1.5"),
            ("isbn", "9780439023481", ""),
            ("isbn", "9780439023481", "12abc"),
            ("isbn", "9780439023481", "1e3"),
            ("isbn", "9780439023481", "99999999999999999999"),
        ],
    )
    assert _errors(_rejected(path)) == [
        (3, "quantity", "quantity must not be negative"),
        (4, "quantity", "quantity must be a whole number"),
        (5, "quantity", "quantity is empty"),
        (6, "quantity", "quantity must be a non-negative whole number"),
        (7, "quantity", "quantity must be a whole number"),
        (8, "quantity", "quantity is too large"),
    ]


def test_unknown_scheme_and_empty_identifier_are_row_errors(tmp_path):
    path = _write(tmp_path, [("isbn", "9780439023481", 1), ("ean", "123", 1), ("isbn", "", 1)])
    rejected = _rejected(path)
    assert [(r, c) for r, c, _ in _errors(rejected)] == [(3, "scheme"), (4, "identifier")]
    assert "unknown scheme" in rejected.errors["message"][0]


def test_a_file_mixing_units_is_rejected(tmp_path):
    path = _write(
        tmp_path,
        [("isbn", "9780439023481", 1, "tokens"), ("isbn", "9780439023481", 1, "items")],
        header="scheme,identifier,quantity,unit",
    )
    rejected = _rejected(path)
    assert "mixes units" in rejected.message
    assert _errors(rejected) == [
        (3, "unit", "one unit per declaration: this declaration is in tokens")
    ]


def test_missing_columns_non_utf8_and_empty_files_are_refused_clearly(tmp_path):
    assert (
        "no quantity column"
        in _rejected(_write(tmp_path, [("isbn", "1")], header="scheme,identifier")).message
    )
    latin = tmp_path / "latin.csv"
    latin.write_bytes("scheme,identifier,quantity,title\nisbn,1,1,caf\xe9\n".encode("latin-1"))
    assert "not UTF-8" in _rejected(str(latin)).message
    assert "no lines" in _rejected(_write(tmp_path, [])).message


@given(spellings())
@settings(max_examples=60, deadline=None)
def test_stored_values_normalise_to_themselves(declared):
    """The matcher skips normalising a declared identifier equal to a stored value; that is
    the same result only because a normalised value normalises to itself."""
    scheme, value = declared
    canonical = _scalar(scheme, value)
    if canonical is not None:
        assert _scalar(scheme, canonical) == canonical


# --- the SQL fast path and the single-scheme parse: the same results as normalising every
# --- declared value ------------------------------------------------------------------------


def _isbn13(stem: str) -> str:
    return stem + stdnum_isbn.ean.calc_check_digit(stem)


@st.composite
def isbn_spellings(draw):
    """ISBN-like text: valid ISBN-13s (978/979) and ISBN-10s (X, x) as written (hyphens and
    spaces anywhere), and the near misses: a wrong check digit, another prefix, a digit too
    many or too few, an X inside, other characters, whitespace around."""
    kind = draw(st.sampled_from(["13", "13", "10", "10", "chars"]))
    if kind == "chars":
        return draw(st.text(alphabet="0123456789 -Xx\u2010\u00a0a:", min_size=1, max_size=16))
    if kind == "13":
        prefix = draw(st.sampled_from(["978", "979", "978", "977"]))
        value = _isbn13(prefix + draw(st.text(alphabet="0123456789", min_size=9, max_size=9)))
    else:
        body = draw(st.text(alphabet="0123456789", min_size=9, max_size=9))
        value = body + stdnum_isbn._calc_isbn10_check_digit(body)
        if value.endswith("X") and draw(st.booleans()):
            value = value[:-1] + "x"
    damage = draw(st.sampled_from(["none", "none", "none", "digit", "extra", "drop", "x"]))
    if damage == "digit":
        i = draw(st.integers(0, len(value) - 1))
        digit = ("0123456789Xx".index(value[i]) + 1) % 10
        value = value[:i] + str(digit) + value[i + 1 :]
    elif damage == "extra":
        value += draw(st.sampled_from("0123456789"))
    elif damage == "drop":
        value = value[1:]
    elif damage == "x":
        i = draw(st.integers(0, len(value) - 1))
        value = value[:i] + "X" + value[i + 1 :]
    cuts = sorted(draw(st.sets(st.integers(1, len(value) - 1), max_size=4)))
    separator = draw(st.sampled_from(["-", " ", "-", "--"]))
    parts = [value[a:b] for a, b in zip([0, *cuts], [*cuts, len(value)], strict=True)]
    pad = draw(st.sampled_from(["", "", " ", "\u00a0"]))
    return pad + separator.join(parts) + pad


work_id_spellings = st.one_of(
    st.integers(0, 10**19).map(str),
    st.text(alphabet="0123456789 +-x", min_size=1, max_size=21),
    st.integers(0, 999).map(lambda n: f"{n:05d}"),
)


@given(st.lists(isbn_spellings(), min_size=1, max_size=50), st.lists(work_id_spellings, max_size=8))
@settings(max_examples=150, deadline=None)
def test_the_sql_fast_path_agrees_with_normalise_declared(isbns, work_ids):
    """What the SQL decides is exactly ``normalise_declared``'s result; what it leaves to
    ``normalise_declared`` is only what is outside the usual shapes."""
    rows = [("isbn", v) for v in isbns] + [("work_id", v) for v in work_ids]
    db = duckdb.connect()
    db.register(
        "raw_in", pa.table({"scheme": [s for s, _ in rows], "identifier": [v for _, v in rows]})
    )
    fast = db.execute(
        f"SELECT scheme, identifier, canonical FROM ({_fast_sql('raw_in')})"
    ).fetchall()
    db.close()
    assert sorted((s, v) for s, v, _ in fast) == sorted(rows)
    usual = {"isbn": r"[0-9][0-9 -]*[0-9Xx]", "work_id": r"[0-9]{1,18}"}
    for scheme, value, canonical in fast:
        expected, _ = normalise_declared(scheme, pd.Series([value], dtype=object))
        if canonical is not None:
            assert canonical == expected[0], (scheme, value)
        elif expected[0] is not None:
            assert not re.fullmatch(usual[scheme], value), (scheme, value)


def _reference(rows, index_rows, works):
    """What the matcher must give, normalising every declared value in Python: {work: q},
    {(scheme, identifier, valid): q} (no co-claimed identifiers, no reservations)."""
    stored = {(s, v): w for s, v, w in index_rows}
    stored.update({("work_id", str(w)): w for w in works})
    usage: dict[int, int] = {}
    unmatched: dict[tuple, int] = {}
    for scheme, value, quantity in rows:
        canonical, _ = normalise_declared(scheme.strip().lower(), pd.Series([value], dtype=object))
        scheme = scheme.strip().lower()
        work = stored.get((scheme, canonical[0])) if canonical[0] is not None else None
        if work is not None:
            usage[work] = usage.get(work, 0) + quantity
        else:
            # An invalid value is kept as declared, trimmed the way DuckDB trims.
            text = canonical[0] or duckdb.execute("SELECT trim(?)", [value]).fetchall()[0][0]
            key = (scheme, text, canonical[0] is not None)
            unmatched[key] = unmatched.get(key, 0) + quantity
    return usage, unmatched


def _got(result):
    usage = dict(
        zip(*(result.work_usage[c].to_pylist() for c in ("work_id", "quantity")), strict=True)
    )
    unmatched = {
        (r["scheme"], r["identifier"], r["valid"]): r["quantity"]
        for r in result.unmatched.to_pylist()
    }
    return usage, unmatched


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["isbn", "isbn", "isbn", "work_id", "ISBN", " isbn", "doi"]),
            st.one_of(isbn_spellings(), work_id_spellings, st.sampled_from(BASE_DOIS)),
            st.integers(0, 10**6),
        ),
        min_size=1,
        max_size=40,
    ),
    st.data(),
)
def test_the_matcher_gives_what_normalising_every_value_gives(tmp_path, rows, data):
    # Identifiers DuckDB trims to nothing are row errors of the file: not drawn here.
    rows = [(s, v, q) for s, v, q in rows if duckdb.execute("SELECT trim(?)", [v]).fetchall()[0][0]]
    if not rows:
        return
    # The index holds some of the declared ISBNs' canonical forms (and a DOI).
    canonical = {
        normalise_declared("isbn", pd.Series([v], dtype=object))[0][0]
        for s, v, _ in rows
        if s.strip().lower() == "isbn"
    } - {None}
    chosen = data.draw(st.sets(st.sampled_from(sorted(canonical)))) if canonical else set()
    index_rows = [("isbn", v, 10 + i) for i, v in enumerate(sorted(chosen))]
    index_rows.append(("doi", BASE_DOIS[0], 2))
    works = [1, 2, 3, *(w for _, _, w in index_rows)]
    result = declaration_match(
        _write(tmp_path, rows),
        index=_index(index_rows),
        works=_works(dict.fromkeys(works, False)),
        threads=1,
    )
    assert _got(result) == _reference(rows, index_rows, works)


def test_a_file_naming_one_scheme_first_and_another_later_is_grouped_by_both(tmp_path):
    """The parse samples the first lines: a single scheme there, another after, is read again
    and grouped by scheme and identifier."""
    rows = [("isbn", "9780439023481", 1)] * 12_000 + [
        ("doi", "9780439023481", 5),
        ("ISBN ", "0-439-02348-3", 7),
        ("work_id", "1", 2),
    ]
    index = _index([("isbn", "9780439023481", 1), ("doi", "9780439023481", 2)])
    result = declaration_match(
        _write(tmp_path, rows), index=index, works=_works({1: False, 2: False})
    )
    assert result.work_usage.to_pylist() == [
        {"work_id": 1, "quantity": 12_009, "lines": 12_002, "reserved": False},
        {"work_id": 2, "quantity": 5, "lines": 1, "reserved": False},
    ]
    assert result.lines == result.matched_lines == 12_003


def test_the_registry_can_be_read_while_the_file_is_parsed(tmp_path):
    rows = [(s, v, q) for (s, v), q in zip(POOL, range(1, 100), strict=False)]
    path = _write(tmp_path, rows)
    direct = declaration_match(path, index=ACCOUNTING_INDEX, works=ACCOUNTING_WORKS)
    stages = []
    overlapped = declaration_match(
        path,
        registry=lambda: (ACCOUNTING_INDEX, ACCOUNTING_WORKS, None),
        on_stage=lambda name, percent: stages.append(name),
    )
    assert overlapped.work_usage == direct.work_usage
    assert overlapped.unmatched == direct.unmatched
    assert stages == ["parsing", "validating", "normalising", "matching", "aggregating"]

    def broken():
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="went away"):
        declaration_match(path, registry=broken)
    bad = _write(tmp_path, [("isbn", "9780439023481", "-1")], name="bad.csv")
    with pytest.raises(DeclarationRejected):
        declaration_match(bad, registry=lambda: (ACCOUNTING_INDEX, ACCOUNTING_WORKS, None))
