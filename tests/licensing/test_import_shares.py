"""Share cells -> exact integer ppm (percent x 10,000): no float anywhere, nothing guessed."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from licensing.importing.shares import (
    DEFAULT_SHARE_PPM,
    FULL_SHARE_PPM,
    ShareParseError,
    share_ppm_format,
    share_ppm_parse,
    share_ppm_parse_many,
)

VALID_PPM = st.integers(min_value=1, max_value=FULL_SHARE_PPM)


@pytest.mark.parametrize(
    ("text", "ppm"),
    [
        ("50", 500_000),
        ("33.3333", 333_333),
        ("33.3334", 333_334),
        ("12.5", 125_000),
        ("12.5%", 125_000),
        (" 100 ", 1_000_000),
        ("100.0000", 1_000_000),
        ("0.0001", 1),
        ("007", 70_000),
        ("", DEFAULT_SHARE_PPM),
        (None, DEFAULT_SHARE_PPM),
    ],
)
def test_share_cells_parse_to_exact_ppm(text, ppm):
    assert share_ppm_parse(text) == ppm
    many, reasons = share_ppm_parse_many(pd.Series([text], dtype=object))
    assert many.tolist() == [ppm] and reasons.tolist() == [None]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", "share must be more than 0"),
        ("0.0000", "share must be more than 0"),
        ("-5", "share must be more than 0"),
        ("100.0001", "share must be at most 100"),
        ("250", "share must be at most 100"),
        ("33.33333", "share may have at most 4 decimals"),
        ("50.00000", "share may have at most 4 decimals"),
        ("12,5", "share must use a point as the decimal separator, e.g. 33.3333"),
        ("1e2", "share must be written out, not in scientific notation"),
        ("fifty", "share must be a percentage such as 50 or 33.3333"),
        ("1/3", "share must be a percentage such as 50 or 33.3333"),
        ("NaN", "share must be a percentage such as 50 or 33.3333"),
        ("Infinity", "share must be a percentage such as 50 or 33.3333"),
        ("99999999999999999999", "share must be at most 100"),
    ],
)
def test_bad_share_cells_are_refused_with_a_reason(text, reason):
    with pytest.raises(ShareParseError) as caught:
        share_ppm_parse(text)
    assert caught.value.reason == reason
    many, reasons = share_ppm_parse_many(pd.Series([text], dtype=object))
    assert many.tolist() == [0] and reasons.tolist() == [reason]


@given(VALID_PPM)
def test_ppm_formatted_as_percent_parses_back_exactly(ppm):
    text = share_ppm_format(ppm)
    assert share_ppm_parse(text) == ppm
    assert Decimal(text) * 10_000 == ppm


@given(VALID_PPM, st.booleans(), st.integers(min_value=0, max_value=2), st.booleans())
def test_any_spelling_with_at_most_four_decimals_is_exact(ppm, padded, leading, percent_sign):
    whole, fraction = divmod(ppm, 10_000)
    text = "0" * leading + f"{whole}.{fraction:04d}"
    if not padded:
        text = text.rstrip("0").rstrip(".")
    text += "%" if percent_sign else ""
    assert share_ppm_parse(text) == ppm
    assert share_ppm_parse_many(pd.Series([text]))[0].tolist() == [ppm]


@given(st.text(max_size=12))
def test_anything_else_is_refused_and_the_two_parsers_agree(text):
    """The oracle: Decimal reading of digits[.dddd][%], 0 < value <= 100."""
    body = text.strip(" \t\n\r\f\v\u00a0\u200b\ufeff")
    number = body.removesuffix("%").rstrip(" ")
    whole, _, fraction = number.partition(".")
    well_formed = (
        whole.isascii()
        and whole.isdigit()
        and len(whole) <= 10
        and (not _ or (fraction.isascii() and fraction.isdigit() and len(fraction) <= 4))
    )
    expected = None
    if body == "":
        expected = DEFAULT_SHARE_PPM
    elif well_formed:
        ppm = int(Decimal(number) * 10_000)
        expected = ppm if 0 < ppm <= FULL_SHARE_PPM else None
    try:
        scalar = share_ppm_parse(text)
    except ShareParseError:
        scalar = None
    assert scalar == expected
    many, reasons = share_ppm_parse_many(pd.Series([text], dtype=object))
    assert (int(many[0]) if reasons[0] is None else None) == expected


@given(st.lists(st.one_of(st.none(), st.text(max_size=10), VALID_PPM.map(share_ppm_format))))
def test_vectorised_parser_agrees_with_the_scalar_one_row_by_row(cells):
    many, reasons = share_ppm_parse_many(pd.Series(cells, dtype=object))
    for cell, ppm, reason in zip(cells, many, reasons, strict=True):
        try:
            assert (ppm, reason) == (share_ppm_parse(cell), None)
        except ShareParseError as exc:
            assert (ppm, reason) == (0, exc.reason)
