"""Validation of the party identifiers a collecting society keeps for its members.

Pure functions: each returns the canonical form or raises `ValueError` with a reason a person
can act on. Check digits come from python-stdnum where it has them (ISNI); the IPI name number
(CISAC) is not in stdnum, so its published mod-101 rule is implemented here.
"""

from __future__ import annotations

import re

from stdnum import isni as _isni
from stdnum.exceptions import ValidationError as _StdnumError

_COMPANY_NUMBER = re.compile(r"^[A-Z0-9][A-Z0-9 ./-]{1,38}[A-Z0-9]$")


def normalise_isni(value: str) -> str:
    """ISNI (ISO 27729): 16 characters, ISO 7064 Mod 11-2 check character. Canonical: compact."""
    try:
        return _isni.validate(value)
    except _StdnumError as exc:
        raise ValueError(f"not a valid ISNI: {exc.message.rstrip('.').lower()}") from None


def normalise_ipi_name_number(value: str) -> str:
    """IPI name number: 11 digits, the last two a mod-101 check over the first nine."""
    compact = re.sub(r"[\s.-]", "", value)
    if not compact.isdigit() or not compact.isascii():
        raise ValueError("not a valid IPI name number: digits only")
    compact = compact.zfill(11)
    if len(compact) != 11:
        raise ValueError("not a valid IPI name number: 11 digits expected")
    weights = range(10, 1, -1)
    total = sum(int(d) * w for d, w in zip(compact[:9], weights, strict=True))
    remainder = total % 101
    check = 0 if remainder == 0 else (101 - remainder) % 100
    if check != int(compact[9:]):
        raise ValueError("not a valid IPI name number: check digits are wrong")
    return compact


def normalise_company_number(value: str) -> str:
    """Company register number. Formats differ by country; we keep a strict common shape."""
    compact = re.sub(r"\s+", " ", value.strip().upper())
    if not _COMPANY_NUMBER.match(compact):
        raise ValueError(
            "not a valid company number: 3 to 40 letters, digits, spaces, '.', '/' or '-'"
        )
    return compact
