"""Share percentages as exact integers: parts per million of the whole (ppm).

A share in the import file is a percent with at most four decimals ("50", "33.3333",
"12.5%"); percent x 10,000 is an integer number of ppm, so 100% is 1,000,000 ppm. The text is
split at the decimal point and both halves are read as integers: no float ever sees a share
(0.1 + 0.2 is not 0.3 in binary floating point, and a royalty split must add up exactly).

Pure functions, no Django: ``share_ppm_parse`` for one value, ``share_ppm_parse_many`` for a
whole column (Arrow string kernels), and ``share_ppm_format`` back to text. The two parsers
agree row by row.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "DEFAULT_SHARE_PPM",
    "FULL_SHARE_PPM",
    "PPM_PER_PERCENT",
    "ShareParseError",
    "share_ppm_format",
    "share_ppm_parse",
    "share_ppm_parse_many",
]

PPM_PER_PERCENT = 10_000
FULL_SHARE_PPM = 100 * PPM_PER_PERCENT  # the same constant as licensing.models.FULL_SHARE_PPM
DEFAULT_SHARE_PPM = FULL_SHARE_PPM  # an empty share cell means the whole work
MAX_DECIMALS = 4

# Surrounding whitespace is ignored; an optional "%" may follow the number.
_WS = " \t\n\r\f\v\u00a0\u200b\ufeff"
# At most 10 integer digits keeps the arithmetic far from int64 overflow; anything longer is
# over 100% anyway and gets the same "at most 100" message through the slow path.
_SHARE_RE = re.compile(r"([0-9]{1,10})(?:\.([0-9]{1,4}))?[ ]*%?")
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[Ee][+-]?[0-9]+)?[ ]*%?")

NOT_A_NUMBER = "share must be a percentage such as 50 or 33.3333"
TOO_MANY_DECIMALS = "share may have at most 4 decimals"
DECIMAL_COMMA = "share must use a point as the decimal separator, e.g. 33.3333"
NOT_POSITIVE = "share must be more than 0"
OVER_FULL = "share must be at most 100"
SCIENTIFIC = "share must be written out, not in scientific notation"


class ShareParseError(ValueError):
    """A share cell is not a percentage in (0, 100] with at most four decimals."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(f"invalid share {value!r}: {reason}")
        self.value = value
        self.reason = reason


def _reason_for_unmatched(text: str) -> str:
    """Why a non-blank text that is not ``digits[.dddd][%]`` was refused."""
    if not _NUMBER_RE.fullmatch(text):
        return NOT_A_NUMBER
    if "e" in text.lower():
        return SCIENTIFIC
    if text.startswith("-"):
        return NOT_POSITIVE
    if "," in text:
        return DECIMAL_COMMA
    if "." in text and len(text.rstrip("% ").partition(".")[2]) > MAX_DECIMALS:
        return TOO_MANY_DECIMALS
    if len(text.rstrip("% ").partition(".")[0].lstrip("+")) > 10:
        return OVER_FULL
    return NOT_A_NUMBER


def share_ppm_parse(value: str | None) -> int:
    """Parse one share cell to ppm. An empty cell is the default, 100%.

    Raises ShareParseError with a one-line ``reason``.
    """
    if value is None:
        return DEFAULT_SHARE_PPM
    if not isinstance(value, str):
        raise ShareParseError(value, NOT_A_NUMBER)
    text = value.strip(_WS)
    if not text:
        return DEFAULT_SHARE_PPM
    match = _SHARE_RE.fullmatch(text)
    if not match:
        raise ShareParseError(value, _reason_for_unmatched(text))
    whole, fraction = match.group(1), match.group(2) or ""
    ppm = int(whole) * PPM_PER_PERCENT + int(fraction.ljust(MAX_DECIMALS, "0"))
    if ppm <= 0:
        raise ShareParseError(value, NOT_POSITIVE)
    if ppm > FULL_SHARE_PPM:
        raise ShareParseError(value, OVER_FULL)
    return ppm


def share_ppm_format(ppm: int) -> str:
    """ppm -> the shortest exact percent text ("50", "33.3333", "12.5")."""
    whole, fraction = divmod(int(ppm), PPM_PER_PERCENT)
    text = f"{fraction:04d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def share_ppm_parse_many(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Parse a column of share cells: ``(ppm, reasons)`` aligned with ``values``.

    ``ppm`` is an int64 array (0 where the row is invalid); ``reasons`` is an object Series
    holding the ShareParseError reason on invalid rows and None elsewhere. Blank cells get the
    default (100%). Valid cells in the usual shape are parsed with Arrow kernels (split at the
    point, right-pad the fraction, cast to integers); only the rest go through
    ``share_ppm_parse`` one by one, so the reasons are exactly the scalar ones.
    """
    n = len(values)
    ppm = np.zeros(n, dtype=np.int64)
    reasons = np.full(n, None, dtype=object)
    if n == 0:
        return ppm, pd.Series(reasons, index=values.index, dtype=object)

    array = pa.array(values.astype("string[pyarrow]").array)
    text = pc.utf8_trim(array, _WS)
    blank = pc.fill_null(pc.equal(text, ""), True).to_numpy(zero_copy_only=False)
    ppm[blank] = DEFAULT_SHARE_PPM

    parts = pc.extract_regex(text, r"^(?P<whole>[0-9]{1,10})(?:\.(?P<fraction>[0-9]{1,4}))?[ ]*%?$")
    matched = pc.fill_null(pc.is_valid(parts), False).to_numpy(zero_copy_only=False) & ~blank
    if matched.any():
        rows = pc.filter(parts, pa.array(matched))
        whole = pc.cast(pc.struct_field(rows, "whole"), pa.int64()).to_numpy()
        fraction = pc.cast(
            pc.utf8_rpad(pc.struct_field(rows, "fraction"), MAX_DECIMALS, "0"), pa.int64()
        ).to_numpy()
        parsed = whole * PPM_PER_PERCENT + fraction
        ppm[matched] = parsed
        index = np.flatnonzero(matched)
        reasons[index[parsed <= 0]] = NOT_POSITIVE
        reasons[index[parsed > FULL_SHARE_PPM]] = OVER_FULL
        ppm[index[(parsed <= 0) | (parsed > FULL_SHARE_PPM)]] = 0

    raw = values.to_numpy(dtype=object, na_value=None)
    for i in np.flatnonzero(~matched & ~blank):
        try:
            ppm[i] = share_ppm_parse(raw[i])
        except ShareParseError as exc:
            reasons[i] = exc.reason
    return ppm, pd.Series(reasons, index=values.index, dtype=object)
