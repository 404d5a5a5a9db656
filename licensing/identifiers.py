"""Normalise and validate work identifiers (ISBN, ISSN, DOI, ISRC, ISWC, URL, SHA-256, ISCC).

Pure functions: no Django, no ORM, no settings. Used by catalogue import and usage-declaration
matching (vectorised, millions of rows) and by the API (one value at a time).

Every scheme has one canonical text form, and two spellings of the same identifier normalise to
the same text, so matching is plain string equality. Nothing is guessed or repaired: a value
that does not validate is an error with a short human reason (``IdentifierError.reason``).

Public API:

- ``normalise(scheme, value)`` -> canonical text, or raises ``IdentifierError``.
- ``normalise_many(scheme, values)`` -> ``(canonical, reasons)``, two object Series aligned
  with ``values``; exactly one of the two is ``None`` on every row. Agrees with ``normalise``
  row by row.
- ``parse_prefixed("isbn:978-0-439-02348-1")`` -> ``("isbn", "9780439023481")``.

Rules common to all schemes: surrounding whitespace (including no-break space, zero-width space
and a byte-order mark) is ignored; a missing value (``None``/NaN/NA) or a blank one is
"value is empty"; anything that is not text is "value must be text".
"""

from __future__ import annotations

import base64
import ipaddress
import re
from urllib.parse import unquote, urlsplit

import idna
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import isbn as stdnum_isbn
from stdnum import isrc as stdnum_isrc
from stdnum import issn as stdnum_issn
from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError

__all__ = [
    "SCHEMES",
    "IdentifierError",
    "normalise",
    "normalise_many",
    "parse_prefixed",
]

SCHEMES = ("isbn", "issn", "doi", "isrc", "iswc", "url", "sha256", "iscc")


class IdentifierError(ValueError):
    """A value is not a valid identifier of ``scheme``; ``reason`` says why in one sentence."""

    def __init__(self, scheme: str, value: object, reason: str) -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"invalid {scheme} {shown}: {reason}")
        self.scheme = scheme
        self.value = value
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


class _Invalid(Exception):
    """Internal: raised by the per-scheme functions, turned into IdentifierError by normalise."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Characters ignored around a value. An explicit set (not str.isspace) so that the scalar path
# and the vectorised path (pyarrow's utf8_trim) strip exactly the same characters.
_WS = " \t\n\r\f\v\u00a0\u200b\ufeff"
# Separators tolerated inside numeric identifiers: space, no-break space, ASCII hyphen and the
# Unicode hyphens/dashes word processors substitute for it.
_SEPARATORS = " \u00a0-\u2010\u2011\u2012\u2013\u2212"
_DROP_SEPARATORS = str.maketrans("", "", _SEPARATORS)
# ASCII-only case mapping: str.upper() would turn "ß" into "SS" and "ſ" into "S".
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

EMPTY = "value is empty"
NOT_TEXT = "value must be text"
SPREADSHEET_SCIENTIFIC = "looks like a number mangled by a spreadsheet (scientific notation)"
SPREADSHEET_DECIMAL = "looks like a number mangled by a spreadsheet (decimal point added)"
SPREADSHEET_THOUSANDS = "looks like a number mangled by a spreadsheet (thousands separators)"

_SCIENTIFIC_RE = re.compile(r"[0-9]+(?:[.,][0-9]+)?[Ee][+-]?[0-9]+")
_DECIMAL_RE = re.compile(r"[0-9]+[.,]0+")
_THOUSANDS_RE = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?:\.[0-9]{3})+")


def _label_pattern(letters: str, numbered: bool = False) -> str:
    """A case-insensitive label such as "ISBN:", "ISBN-13: " or "ISSN " before the number.

    Letters are spelled as explicit classes ([Ii][Ss]...) rather than with a case-insensitive
    flag, because Python's and RE2's case folding differ outside ASCII (e.g. "ı").
    The label ends in a colon or in at least one space, so "ISBN 1300..." keeps its digits.
    """
    word = "".join(f"[{c.upper()}{c.lower()}]" for c in letters)
    if numbered:
        return rf"{word}(?:(?:[- ]?1[03])?[ ]*:|(?:-?1[03])?[ ]+)[ ]*"
    return rf"{word}(?:[ ]*:|[ ]+)[ ]*"


def _strip_label(label_re: re.Pattern[str], text: str) -> str:
    match = label_re.match(text)
    return text[match.end() :] if match else text


def _spreadsheet_reason(text: str) -> str | None:
    if _SCIENTIFIC_RE.fullmatch(text):
        return SPREADSHEET_SCIENTIFIC
    if _DECIMAL_RE.fullmatch(text):
        return SPREADSHEET_DECIMAL
    if _THOUSANDS_RE.fullmatch(text):
        return SPREADSHEET_THOUSANDS
    return None


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.api.types.is_scalar(value) and pd.isna(value))
    except (TypeError, ValueError):
        return False


def _has_space_or_control(text: str) -> bool:
    return any(c.isspace() or c < " " or "\x7f" <= c <= "\x9f" for c in text)


# --------------------------------------------------------------------------------------------
# ISBN
# --------------------------------------------------------------------------------------------

_ISBN_LABEL = _label_pattern("isbn", numbered=True)
_ISBN_LABEL_RE = re.compile(_ISBN_LABEL)
_ISBN_RE = re.compile(r"[0-9]{13}|[0-9]{9}[0-9Xx]")
_ISBN_CHARS_RE = re.compile(r"[0-9Xx]+")


def _normalise_isbn(text: str) -> str:
    """ISBN-10 or ISBN-13 -> the 13 digits of the ISBN-13 (ISBN-10s get the 978 prefix).

    Tolerates a label ("ISBN", "ISBN-13:", "isbn10 "), spaces and hyphens. A 9-digit value
    (an SBN, or an ISBN-10 whose leading zero a spreadsheet dropped) is rejected, not padded.
    """
    body = _strip_label(_ISBN_LABEL_RE, text)
    compact = body.translate(_DROP_SEPARATORS)
    if not _ISBN_RE.fullmatch(compact):
        raise _isbn_format_error(body, compact)
    try:
        stdnum_isbn.validate(compact)
    except InvalidChecksum:
        raise _Invalid("ISBN check digit is wrong") from None
    except InvalidComponent:
        raise _Invalid("ISBN-13 must start with 978 or 979") from None
    except ValidationError:  # pragma: no cover - the regex above already rules these out
        raise _Invalid("not a valid ISBN") from None
    return stdnum_isbn.to_isbn13(compact.upper())


def _isbn_format_error(body: str, compact: str) -> _Invalid:
    spreadsheet = _spreadsheet_reason(body)
    if spreadsheet:
        return _Invalid(spreadsheet)
    if not _ISBN_CHARS_RE.fullmatch(compact):
        return _Invalid("ISBN may contain only digits, hyphens and spaces (and a final X)")
    if len(compact) == 9:
        return _Invalid(
            "ISBN must have 10 or 13 digits; 9 digits usually mean a spreadsheet "
            "dropped a leading zero"
        )
    if len(compact) not in (10, 13):
        return _Invalid("ISBN must have 10 or 13 digits")
    return _Invalid("X is only allowed as the check digit of an ISBN-10")


# --------------------------------------------------------------------------------------------
# ISSN
# --------------------------------------------------------------------------------------------

_ISSN_LABEL_RE = re.compile(_label_pattern("issn"))
_ISSN_RE = re.compile(r"[0-9]{7}[0-9Xx]")
_ISSN_CHARS_RE = re.compile(r"[0-9Xx]+")


def _normalise_issn(text: str) -> str:
    """ISSN -> ``NNNN-NNNC`` with an uppercase X check character."""
    body = _strip_label(_ISSN_LABEL_RE, text)
    compact = body.translate(_DROP_SEPARATORS)
    if not _ISSN_RE.fullmatch(compact):
        spreadsheet = _spreadsheet_reason(body)
        if spreadsheet:
            raise _Invalid(spreadsheet)
        if not _ISSN_CHARS_RE.fullmatch(compact):
            raise _Invalid("ISSN may contain only digits and a hyphen (and a final X)")
        if len(compact) == 7:
            raise _Invalid(
                "ISSN must have 8 characters; 7 digits usually mean a spreadsheet "
                "dropped a leading zero"
            )
        if len(compact) != 8:
            raise _Invalid("ISSN must have 8 characters (NNNN-NNNC)")
        raise _Invalid("X is only allowed as the check digit of an ISSN")
    compact = compact.upper()
    try:
        stdnum_issn.validate(compact)
    except InvalidChecksum:
        raise _Invalid("ISSN check digit is wrong") from None
    except ValidationError:  # pragma: no cover - the regex above already rules these out
        raise _Invalid("not a valid ISSN") from None
    return f"{compact[:4]}-{compact[4:]}"


# --------------------------------------------------------------------------------------------
# DOI
# --------------------------------------------------------------------------------------------

_DOI_URL_PREFIX = (
    r"(?:(?:[Hh][Tt][Tt][Pp][Ss]?://)?(?:(?:[Dd][Xx]|[Ww][Ww][Ww])\.)?[Dd][Oo][Ii]\.[Oo][Rr][Gg]/"
    r"|[Ii][Nn][Ff][Oo]:[Dd][Oo][Ii]/)"
)
_DOI_SCHEME_PREFIX = r"[Dd][Oo][Ii][ ]*:[ ]*"
_DOI_URL_PREFIX_RE = re.compile(_DOI_URL_PREFIX)
_DOI_SCHEME_PREFIX_RE = re.compile(_DOI_SCHEME_PREFIX)
_DOI_RE = re.compile(r"10\.[0-9]{4,}(?:\.[0-9]+)*/.+", re.DOTALL)


def _normalise_doi(text: str) -> str:
    """DOI -> bare ``10.NNNN/suffix`` with ASCII letters lower-cased.

    Accepts ``doi:``, ``info:doi/`` and the resolver URL forms (``https://doi.org/``,
    ``http://dx.doi.org/``, ``doi.org/``...), case-insensitively. Only the URL forms are
    percent-decoded (a bare DOI may legitimately contain "%"). DOIs are case-insensitive for
    ASCII letters only, so only those are lower-cased.
    """
    match = _DOI_URL_PREFIX_RE.match(text)
    if match:
        try:
            doi = unquote(text[match.end() :], errors="strict")
        except UnicodeDecodeError:
            raise _Invalid("not a valid DOI: bad percent-encoding") from None
    else:
        doi = _strip_label(_DOI_SCHEME_PREFIX_RE, text)
    if _has_space_or_control(doi):
        raise _Invalid("not a valid DOI: contains whitespace or control characters")
    if not _DOI_RE.fullmatch(doi):
        raise _Invalid("not a valid DOI: must look like 10.NNNN/suffix")
    return doi.translate(_ASCII_LOWER)


# --------------------------------------------------------------------------------------------
# ISRC
# --------------------------------------------------------------------------------------------

_ISRC_LABEL_RE = re.compile(_label_pattern("isrc"))
_ISRC_RE = re.compile(r"[A-Za-z]{2}[A-Za-z0-9]{3}[0-9]{7}")


def _normalise_isrc(text: str) -> str:
    """ISRC (CC-XXX-YY-NNNNN) -> 12 uppercase characters without hyphens."""
    compact = _strip_label(_ISRC_LABEL_RE, text).translate(_DROP_SEPARATORS)
    if not _ISRC_RE.fullmatch(compact):
        if len(compact) != 12:
            raise _Invalid("ISRC must have 12 characters (CC-XXX-YY-NNNNN)")
        raise _Invalid(
            "ISRC must be a 2-letter country code, 3 letters or digits, then 7 digits "
            "(CC-XXX-YY-NNNNN)"
        )
    compact = compact.translate(_ASCII_UPPER)
    try:
        stdnum_isrc.validate(compact)
    except InvalidComponent:
        raise _Invalid("ISRC country code is unknown") from None
    except ValidationError:  # pragma: no cover - the regex above already rules these out
        raise _Invalid("not a valid ISRC") from None
    return compact


# --------------------------------------------------------------------------------------------
# ISWC
# --------------------------------------------------------------------------------------------

_ISWC_LABEL_RE = re.compile(_label_pattern("iswc"))
_ISWC_RE = re.compile(r"[Tt][0-9]{10}")
_ISWC_DROP = str.maketrans("", "", _SEPARATORS + ".")


def _iswc_check_digit(digits: str) -> int:
    """ISO 15707 check digit: (10 - (1 + sum(i * d_i, i = 1..9)) mod 10) mod 10.

    Verified on the published examples T-034.524.680-1 and T-000.000.001-0 (the first ISWC).
    """
    total = 1 + sum(i * int(d) for i, d in enumerate(digits, start=1))
    return (10 - total % 10) % 10


def _normalise_iswc(text: str) -> str:
    """ISWC (T-DDD.DDD.DDD-C) -> ``T`` and 10 digits, e.g. ``T0345246801``."""
    compact = _strip_label(_ISWC_LABEL_RE, text).translate(_ISWC_DROP)
    if not _ISWC_RE.fullmatch(compact):
        raise _Invalid("ISWC must look like T-DDD.DDD.DDD-C")
    if _iswc_check_digit(compact[1:10]) != int(compact[10]):
        raise _Invalid("ISWC check digit is wrong")
    return "T" + compact[1:]


# --------------------------------------------------------------------------------------------
# URL
# --------------------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_RE = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")


def _normalise_url(text: str) -> str:
    """http(s) URL -> canonical URL.

    Rule: the scheme and host are lower-cased, a non-ASCII host is IDNA-encoded (UTS #46,
    as browsers do), an IPv6 host is written in its compressed form, a default port (80 for
    http, 443 for https) is dropped, the fragment is dropped, an empty path becomes "/".
    The path and query are kept exactly as given: ``https://ex.com/a/`` and ``https://ex.com/a``
    stay distinct, as do ``/%7e`` and ``/~`` (a crawler fetches them as different resources).
    Rejected: other schemes, a missing host, credentials (``user:pass@``), whitespace and
    control characters anywhere, invalid ports and hosts.
    """
    if _has_space_or_control(text):
        raise _Invalid("not a valid URL: contains whitespace or control characters")
    try:
        parts = urlsplit(text)
    except ValueError:
        raise _Invalid("not a valid URL: invalid host") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise _Invalid("not a valid URL: scheme must be http or https")
    if "@" in parts.netloc:
        raise _Invalid("not a valid URL: must not contain credentials (user:password@)")
    if not parts.hostname:
        raise _Invalid("not a valid URL: missing host")
    try:
        port = parts.port
    except ValueError:
        raise _Invalid("not a valid URL: invalid port") from None
    host = _url_host(parts.hostname, bracketed=parts.netloc.startswith("["))
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    url = f"{scheme}://{netloc}{parts.path or '/'}"
    return f"{url}?{parts.query}" if parts.query else url


def _url_host(hostname: str, *, bracketed: bool) -> str:
    invalid = _Invalid("not a valid URL: invalid host")
    if bracketed:
        try:
            return f"[{ipaddress.IPv6Address(hostname).compressed}]"
        except ValueError:
            raise invalid from None
    if not hostname.isascii():
        try:
            hostname = idna.encode(hostname, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise invalid from None
    if not _HOST_RE.fullmatch(hostname):
        raise invalid
    return hostname


# --------------------------------------------------------------------------------------------
# SHA-256
# --------------------------------------------------------------------------------------------

_SHA256_PREFIX = r"[Ss][Hh][Aa]-?256:[ ]*"
_SHA256_PREFIX_RE = re.compile(_SHA256_PREFIX)
_SHA256_RE = re.compile(r"[0-9A-Fa-f]{64}")
_HEX_RE = re.compile(r"[0-9A-Fa-f]*")


def _normalise_sha256(text: str) -> str:
    """SHA-256 digest -> 64 lowercase hex characters (an optional ``sha256:`` prefix is dropped)."""
    digest = _strip_label(_SHA256_PREFIX_RE, text)
    if not _SHA256_RE.fullmatch(digest):
        if _HEX_RE.fullmatch(digest):
            raise _Invalid("SHA-256 must be 64 hexadecimal characters")
        raise _Invalid("SHA-256 may contain only hexadecimal characters (0-9, a-f)")
    return digest.translate(_ASCII_LOWER)


# --------------------------------------------------------------------------------------------
# ISCC
# --------------------------------------------------------------------------------------------

_ISCC_RE = re.compile(r"(?:[Ii][Ss][Cc][Cc]:)?([A-Za-z2-7]+)")
# MainTypes (ISO 24138): 0 META, 1 SEMANTIC, 2 CONTENT, 3 DATA, 4 INSTANCE, 5 ISCC, 6 ID, 7 FLAKE.
_MT_ISCC, _MT_ID = 5, 6
_ISCC_WIDE = 7
# Allowed SubTypes per MainType (and per version for ID).
_SUBTYPES = {0: {0}, 1: set(range(5)), 2: set(range(5)), 3: {0}, 4: {0}, 5: set(range(8)), 7: {0}}
_ID_SUBTYPES = {0: set(range(4)), 1: {0, 1}}
# Number of optional 64-bit units (META/SEMANTIC/CONTENT) an ISCC-CODE carries per length value.
_ISCC_OPTIONAL_UNITS = (0, 1, 1, 2, 1, 2, 2, 3)


def _normalise_iscc(text: str) -> str:
    """ISCC-CODE or ISCC-UNIT -> ``ISCC:`` + uppercase base32.

    Validated here rather than with iscc-core (a heavy dependency for one check): the base32
    must be canonical (RFC 4648, no padding), and the header must decode as ISO 24138
    varnibbles to a known MainType, a SubType allowed for it, version 0 (or 1 for ISCC-IDs),
    and a length field that matches the number of body bits exactly. Sequences of units joined
    with "-" are rejected, not composed. Content (e.g. that a hash was computed correctly)
    cannot be checked.
    """
    match = _ISCC_RE.fullmatch(text)
    if not match:
        raise _Invalid("not a valid ISCC: must be base32 (A-Z, 2-7), optionally after 'ISCC:'")
    code = match.group(1).translate(_ASCII_UPPER)
    if len(code) % 8 in (1, 3, 6):
        raise _Invalid("not a valid ISCC: not a canonical base32 encoding")
    data = base64.b32decode(code + "=" * (-len(code) % 8))
    if base64.b32encode(data).decode("ascii").rstrip("=") != code:
        raise _Invalid("not a valid ISCC: not a canonical base32 encoding")
    _check_iscc_header(data)
    return f"ISCC:{code}"


def _check_iscc_header(data: bytes) -> None:
    bits = int.from_bytes(data, "big")
    nbits = len(data) * 8
    malformed = _Invalid("not a valid ISCC: malformed header")

    def nibbles(pos: int, count: int) -> int:
        if pos + 4 * count > nbits:
            raise malformed
        return (bits >> (nbits - pos - 4 * count)) & ((1 << (4 * count)) - 1)

    fields = []
    pos = 0
    for _ in range(4):
        first = nibbles(pos, 1)
        if first < 0b1000:
            fields.append(first)
            pos += 4
        elif first < 0b1100:
            fields.append((nibbles(pos, 2) & 0x3F) + 8)
            pos += 8
        elif first < 0b1110:
            fields.append((nibbles(pos, 3) & 0x1FF) + 72)
            pos += 12
        elif first < 0b1111:
            fields.append((nibbles(pos, 4) & 0xFFF) + 584)
            pos += 16
        else:
            raise malformed
    if pos % 8:
        if nibbles(pos, 1) != 0:
            raise malformed
        pos += 4
    maintype, subtype, version, length = fields

    if maintype == _MT_ID:
        allowed = _ID_SUBTYPES.get(version)
        if allowed is None:
            raise _Invalid("not a valid ISCC: unknown version")
    else:
        allowed = _SUBTYPES.get(maintype)
        if allowed is None:
            raise _Invalid("not a valid ISCC: unknown main type")
        if version != 0:
            raise _Invalid("not a valid ISCC: unknown version")
    if subtype not in allowed:
        raise _Invalid("not a valid ISCC: unknown subtype")

    body_bits = nbits - pos
    if maintype == _MT_ISCC:
        if subtype == _ISCC_WIDE:
            expected = 256 if length == 0 else None
        else:
            expected = 128 + 64 * _ISCC_OPTIONAL_UNITS[length] if length < 8 else None
    elif maintype == _MT_ID:
        if version == 0:
            expected = 64 + 8 * length if length <= 4 else None
        else:
            expected = 64 if length == 1 else None
    else:
        expected = 32 * (length + 1) if length < 8 else None
    if expected != body_bits:
        raise _Invalid("not a valid ISCC: length does not match its header")


# --------------------------------------------------------------------------------------------
# Scalar entry points
# --------------------------------------------------------------------------------------------


_NORMALISERS = {
    "isbn": _normalise_isbn,
    "issn": _normalise_issn,
    "doi": _normalise_doi,
    "isrc": _normalise_isrc,
    "iswc": _normalise_iswc,
    "url": _normalise_url,
    "sha256": _normalise_sha256,
    "iscc": _normalise_iscc,
}


def _unknown_scheme(scheme: object, value: object) -> IdentifierError:
    return IdentifierError(
        str(scheme),
        value,
        f"unknown identifier scheme {scheme!r}; expected one of {', '.join(SCHEMES)}",
    )


def normalise(scheme: str, value: str) -> str:
    """Return the canonical form of ``value`` as an identifier of ``scheme``.

    Raises IdentifierError (with ``scheme``, ``value`` and a human ``reason``) when the value
    is not valid, and for a scheme not in SCHEMES. ``normalise(s, normalise(s, v))`` equals
    ``normalise(s, v)``. See the ``_normalise_<scheme>`` docstrings for each scheme's rules.
    """
    normaliser = _NORMALISERS.get(scheme)
    if normaliser is None:
        raise _unknown_scheme(scheme, value)
    if not isinstance(value, str):
        reason = EMPTY if _is_missing(value) else NOT_TEXT
        raise IdentifierError(scheme, value, reason)
    text = value.strip(_WS)
    if not text:
        raise IdentifierError(scheme, value, EMPTY)
    try:
        return normaliser(text)
    except _Invalid as exc:
        raise IdentifierError(scheme, value, exc.reason) from None


def parse_prefixed(text: str) -> tuple[str, str]:
    """Split a filter string ``scheme:identifier`` and normalise the identifier.

    ``"isbn:978-0-439-02348-1"`` -> ``("isbn", "9780439023481")``; the scheme is
    case-insensitive (``"ISCC:KAC..."`` works). Raises IdentifierError for a missing or unknown
    scheme, or an invalid identifier.
    """
    if not isinstance(text, str) or ":" not in text:
        raise IdentifierError("", text, "expected scheme:identifier, e.g. isbn:978-0-439-02348-1")
    prefix, _, rest = text.partition(":")
    scheme = prefix.strip(_WS).lower()
    if scheme not in _NORMALISERS:
        raise _unknown_scheme(scheme, text)
    return scheme, normalise(scheme, rest)


# --------------------------------------------------------------------------------------------
# Vectorised entry point
# --------------------------------------------------------------------------------------------

_ARROW_STRING = pd.StringDtype("pyarrow")
_DIGIT_CHARS = np.array(list("0123456789"), dtype=object)


def normalise_many(scheme: str, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Normalise a whole column: ``(canonical, reasons)``, both object Series on ``values.index``.

    On each row exactly one of the two is None: ``canonical`` holds ``normalise(scheme, v)``
    for valid values, ``reasons`` holds the ``IdentifierError.reason`` for invalid ones
    (missing and blank values are "value is empty"; callers for whom a column is optional drop
    those rows first). Raises IdentifierError for an unknown scheme.

    For isbn, issn, doi, isrc, iswc, sha256 and url, values in the usual shape are validated
    and normalised with Arrow string kernels and numpy check-digit arithmetic; only the rows
    that path does not accept (invalid ones, and rare spellings such as Unicode dashes,
    percent-encoded DOI URLs or URLs with a non-default port) go through ``normalise`` one by
    one, so every row gets exactly the scalar result and reason. iscc always goes through
    ``normalise``.
    """
    if scheme not in _NORMALISERS:
        raise _unknown_scheme(scheme, values)
    n = len(values)
    raw = values.to_numpy(dtype=object, na_value=None)
    canonical = np.full(n, None, dtype=object)
    reasons = np.full(n, None, dtype=object)

    text, is_text = _as_arrow_text(values, raw)
    missing = np.fromiter((v is None for v in raw), dtype=bool, count=n)
    reasons[missing] = EMPTY
    pending = ~missing  # rows still without a result

    fast = _FAST_PATHS.get(scheme)
    if fast is not None and text is not None and is_text.any():
        stripped = text.str.strip(_WS)
        blank = _bool(stripped == "")
        reasons[blank] = EMPTY
        pending &= ~blank
        ok, result = fast(stripped.where(pending & is_text))
        canonical[ok] = result
        pending &= ~ok

    for i in np.flatnonzero(pending):
        try:
            canonical[i] = normalise(scheme, raw[i])
        except IdentifierError as exc:
            reasons[i] = exc.reason
    return (
        pd.Series(canonical, index=values.index, dtype=object, name=values.name),
        pd.Series(reasons, index=values.index, dtype=object, name=values.name),
    )


def _as_arrow_text(values: pd.Series, raw: np.ndarray) -> tuple[pd.Series | None, np.ndarray]:
    """The column as Arrow strings (NA where not text) and the mask of rows that are text."""
    if isinstance(values.dtype, pd.StringDtype):
        is_text = ~_bool(values.isna())
        source: object = values.array
    else:
        is_text = np.fromiter((isinstance(v, str) for v in raw), dtype=bool, count=len(raw))
        source = np.where(is_text, raw, None)
    try:
        text = pd.Series(source, dtype=_ARROW_STRING)
    except (pa.ArrowException, UnicodeError):
        # e.g. lone surrogates, which Arrow cannot hold: every row takes the scalar path.
        return None, is_text
    return text, is_text


def _bool(series: pd.Series) -> np.ndarray:
    return series.fillna(False).to_numpy(dtype=bool)


def _match(series: pd.Series, pattern: str) -> np.ndarray:
    return _bool(series.str.fullmatch(pattern))


def _ascii_matrix(series: pd.Series, width: int) -> np.ndarray:
    """Rows of ``series`` (ASCII, exactly ``width`` characters, no NA) as an (n, width) uint8."""
    array = pa.array(series.array).cast(pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n = len(array)
    if n == 0:
        return np.zeros((0, width), dtype=np.uint8)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + n + 1]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    if data.size != n * width:
        raise RuntimeError("identifier fast path expected fixed-width ASCII strings")
    return data.reshape(n, width)


def _fast_isbn(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    compact = text.str.replace("^" + _ISBN_LABEL, "", regex=True).str.replace(
        "[- ]", "", regex=True
    )
    ok = np.zeros(len(text), dtype=bool)
    result = np.full(len(text), None, dtype=object)

    is13 = _match(compact, "[0-9]{13}")
    if is13.any():
        rows = compact[is13]
        digits = _ascii_matrix(rows, 13).astype(np.int64) - ord("0")
        weights = np.array([1, 3] * 6 + [1])
        valid = ((digits @ weights) % 10 == 0) & (digits[:, 0] == 9) & (digits[:, 1] == 7)
        valid &= (digits[:, 2] == 8) | (digits[:, 2] == 9)
        index = np.flatnonzero(is13)[valid]
        ok[index] = True
        result[index] = rows[valid].to_numpy(dtype=object)

    is10 = _match(compact, "[0-9]{9}[0-9Xx]")
    if is10.any():
        rows = compact[is10]
        chars = _ascii_matrix(rows, 10).astype(np.int64)
        digits = chars[:, :9] - ord("0")
        last = np.where((chars[:, 9] == ord("X")) | (chars[:, 9] == ord("x")), 10, chars[:, 9] - 48)
        valid = (digits @ np.arange(1, 10)) % 11 == last
        # ISBN-13 check digit of 978 + the first nine digits (978 weighs 9*1 + 7*3 + 8*1 = 38).
        ean = (10 - (38 + digits @ np.array([3, 1] * 4 + [3])) % 10) % 10
        index = np.flatnonzero(is10)[valid]
        ok[index] = True
        body = rows[valid].str.slice(0, 9)
        check = pd.Series(_DIGIT_CHARS[ean[valid]], index=body.index, dtype=_ARROW_STRING)
        result[index] = ("978" + body + check).to_numpy(dtype=object)
    return ok, result[ok]


def _fast_issn(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    compact = text.str.replace("^" + _label_pattern("issn"), "", regex=True).str.replace(
        "[- ]", "", regex=True
    )
    ok = _match(compact, "[0-9]{7}[0-9Xx]")
    if not ok.any():
        return ok, np.empty(0, dtype=object)
    rows = compact[ok]
    chars = _ascii_matrix(rows, 8).astype(np.int64)
    digits = chars[:, :7] - ord("0")
    last = np.where((chars[:, 7] == ord("X")) | (chars[:, 7] == ord("x")), 10, chars[:, 7] - 48)
    valid = (11 - (digits @ np.arange(8, 1, -1)) % 11) % 11 == last
    ok[np.flatnonzero(ok)[~valid]] = False
    rows = rows[valid].str.upper()
    return ok, (rows.str.slice(0, 4) + "-" + rows.str.slice(4)).to_numpy(dtype=object)


def _fast_doi(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    # Percent signs are left to the scalar path (decoded only in the URL forms there).
    bare = text.str.replace(f"^(?:{_DOI_URL_PREFIX}|{_DOI_SCHEME_PREFIX})", "", regex=True)
    ok = _match(bare, r"10\.[0-9]{4,}(?:\.[0-9]+)*/[!-$&-~]+")
    return ok, bare[ok].str.lower().to_numpy(dtype=object)


def _fast_isrc(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    compact = text.str.replace("^" + _label_pattern("isrc"), "", regex=True).str.replace(
        "[- ]", "", regex=True
    )
    ok = _match(compact, _ISRC_RE.pattern)
    rows = compact[ok].str.upper()
    countries = rows.str.slice(0, 2)
    known = {c for c in countries.unique() if stdnum_isrc.is_valid(f"{c}AAA0000000")}
    valid = countries.isin(sorted(known)).to_numpy(dtype=bool)
    ok[np.flatnonzero(ok)[~valid]] = False
    return ok, rows[valid].to_numpy(dtype=object)


def _fast_iswc(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    compact = text.str.replace("^" + _label_pattern("iswc"), "", regex=True).str.replace(
        "[-. ]", "", regex=True
    )
    ok = _match(compact, _ISWC_RE.pattern)
    if not ok.any():
        return ok, np.empty(0, dtype=object)
    rows = compact[ok]
    digits = _ascii_matrix(rows, 11)[:, 1:].astype(np.int64) - ord("0")
    valid = (10 - (1 + digits[:, :9] @ np.arange(1, 10)) % 10) % 10 == digits[:, 9]
    ok[np.flatnonzero(ok)[~valid]] = False
    return ok, ("T" + rows[valid].str.slice(1)).to_numpy(dtype=object)


def _fast_sha256(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    digest = text.str.replace("^" + _SHA256_PREFIX, "", regex=True)
    ok = _match(digest, _SHA256_RE.pattern)
    return ok, digest[ok].str.lower().to_numpy(dtype=object)


# The usual shape of an http(s) URL, in printable ASCII: scheme, a plain host (no credentials,
# no IPv6 literal, no percent-encoding), no port or the scheme's default one, then the path,
# query and fragment split as ``urlsplit`` splits them (fragment first, then query).
_URL_PRINTABLE = r"[\x21-\x7e]+"
_URL_SHAPE = (
    r"^(?P<scheme>[A-Za-z]+)://(?P<host>[A-Za-z0-9_.-]+)(?P<port>:[0-9]*)?"
    r"(?P<path>/[^?#]*)?(?P<query>\?[^#]*)?(?P<fragment>#.*)?$"
)


def _fast_url(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``_normalise_url`` for URLs of the usual shape (``_URL_SHAPE``), the rest left to it.

    Scheme and host lower-cased (ASCII: what ``str.lower`` does to them), the default port
    dropped, the fragment dropped, an empty path written "/", an empty query dropped; host
    checked against ``_HOST_RE``. Any other port, a ``:`` without digits, non-ASCII text,
    credentials, brackets and percent signs in the host take the scalar path, so both give
    the same answer for every value (property-tested)."""
    array = pa.chunked_array([pa.array(text.array, type=pa.large_string())]).combine_chunks()
    shaped = pc.and_kleene(
        pc.match_substring_regex(array, "^" + _URL_PRINTABLE + "$"),
        pc.match_substring_regex(array, _URL_SHAPE),
    )
    ok = pc.fill_null(shaped, False).to_numpy(zero_copy_only=False)
    if not ok.any():
        return ok, np.empty(0, dtype=object)
    rows = pc.filter(array, pa.array(ok))
    parts = pc.extract_regex(rows, _URL_SHAPE)
    scheme = pc.ascii_lower(parts.field("scheme"))
    host = pc.ascii_lower(parts.field("host"))
    port = parts.field("port")
    https = pc.equal(scheme, "https")
    default = pc.if_else(https, ":443", ":80")
    valid = pc.and_(
        pc.or_(https, pc.equal(scheme, "http")),
        pc.and_(
            pc.match_substring_regex(host, "^" + _HOST_RE.pattern + "$"),
            pc.or_(pc.equal(port, ""), pc.equal(port, default)),
        ),
    )
    path = parts.field("path")
    path = pc.if_else(pc.equal(path, ""), pa.scalar("/", pa.large_string()), path)
    query = parts.field("query")
    query = pc.if_else(pc.equal(query, "?"), pa.scalar("", pa.large_string()), query)
    sep = pa.scalar("://", pa.large_string())
    url = pc.binary_join_element_wise(
        scheme, sep, host, path, query, pa.scalar("", pa.large_string())
    )
    valid = valid.to_numpy(zero_copy_only=False)
    ok[np.flatnonzero(ok)[~valid]] = False
    return ok, pc.filter(url, pa.array(valid)).to_numpy(zero_copy_only=False)


_FAST_PATHS = {
    "isbn": _fast_isbn,
    "issn": _fast_issn,
    "doi": _fast_doi,
    "isrc": _fast_isrc,
    "iswc": _fast_iswc,
    "sha256": _fast_sha256,
    "url": _fast_url,
}
