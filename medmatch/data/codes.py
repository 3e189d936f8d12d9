"""Coded values: administrative sex and national identifiers."""

from __future__ import annotations

import re
from functools import lru_cache

from medmatch.errors import InvalidValueError

# HL7 v2 administrative sex (table 0001) plus the spellings source systems send.
_SEX = {
    "m": "M",
    "male": "M",
    "man": "M",
    "1": "M",
    "f": "F",
    "female": "F",
    "woman": "F",
    "2": "F",
    "o": "O",
    "other": "O",
    "x": "O",
    "a": "O",
    "nonbinary": "O",
    "non-binary": "O",
    "u": None,
    "unknown": None,
    "n": None,
    "0": None,
    "9": None,
    "": None,
}


@lru_cache(maxsize=1024)
def normalise_sex(text: str | None) -> str | None:
    """'M', 'F', 'O' or None for unknown; anything else is an error."""
    if text is None:
        return None
    key = str(text).strip().lower()
    if key not in _SEX:
        raise InvalidValueError("not a recognised sex code")
    return _SEX[key]


_SSN_DIGITS = re.compile(r"[\s\-]")


@lru_cache(maxsize=500_000)
def normalise_ssn(text: str | None) -> str | None:
    """Nine digits, with the area numbers the SSA never issues rejected."""
    if text is None:
        return None
    raw = _SSN_DIGITS.sub("", str(text).strip())
    if not raw:
        return None
    if not (raw.isdigit() and len(raw) == 9):
        raise InvalidValueError("an SSN has nine digits")
    if raw[:3] in ("000", "666") or raw[0] == "9" or raw[3:5] == "00" or raw[5:] == "0000":
        raise InvalidValueError("not an issuable SSN")
    return raw


def normalise_identifier(text: str | None) -> str | None:
    """Local identifiers such as an MRN: trimmed and upper-cased, otherwise as sent."""
    if text is None:
        return None
    raw = str(text).strip().upper()
    return raw or None
