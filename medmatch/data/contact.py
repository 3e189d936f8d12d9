"""Phones, emails, postcodes and street addresses."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from medmatch.data.names import fold
from medmatch.errors import InvalidValueError

_PHONE_ALLOWED = re.compile(r"^[\d\s().+\-/]+((ext\.?|x)\s*\d+)?$", re.IGNORECASE)
_EXTENSION = re.compile(r"(ext\.?|x)\s*\d+$", re.IGNORECASE)


_NOT_DIGITS = re.compile(r"\D")


def normalise_phone(text: str | None, region: str = "US") -> str | None:
    """E.164 ('+16175550123') via `phonenumbers`; letters or an impossible number are errors."""
    if text is None or not str(text).strip():
        return None
    raw = str(text).strip()
    if not _PHONE_ALLOWED.match(raw):
        raise InvalidValueError("a phone number holds only digits and separators")
    raw = _EXTENSION.sub("", raw).strip()
    # "(617) 555-0123" and "617.555.0123" are one number: parse it once
    digits = ("+" if raw.startswith("+") else "") + _NOT_DIGITS.sub("", raw)
    nanp = _nanp_national(digits, region)
    if nanp is not None:
        if not _nanp_prefix_is_valid(nanp[:6]):
            raise InvalidValueError("not a valid phone number")
        return "+1" + nanp
    return _parse_phone(digits, region)


def _nanp_national(digits: str, region: str) -> str | None:
    """The 10 national digits of a North American number, if that is what this is."""
    if digits.startswith("+1") and len(digits) == 12:
        return digits[2:]
    if region in _NANP_REGIONS and not digits.startswith("+"):
        if len(digits) == 10:
            return digits
        if len(digits) == 11 and digits.startswith("1"):
            return digits[1:]
    return None


_NANP_REGIONS = frozenset({"US", "CA"})


_NUMBER_TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)


@lru_cache(maxsize=1)
def _nanp_patterns() -> tuple[re.Pattern[str], ...]:
    """phonenumbers' own national-number patterns of every +1 region, compiled once."""
    patterns = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        for kind in _NUMBER_TYPES:
            desc = getattr(meta, kind, None)
            if desc is not None and desc.national_number_pattern:
                patterns.append(re.compile(desc.national_number_pattern))
    return tuple(patterns)


@lru_cache(maxsize=100_000)
def _nanp_prefix_is_valid(npa_nxx: str) -> bool:
    """What phonenumbers.is_valid_number answers for a +1 number, from the same metadata
    without building a number object per call: a NANP number is valid when it fits a
    number type of one of the +1 regions. The line digits are free in every +1 pattern,
    so the answer is kept per area code and exchange. A test holds this equal to
    phonenumbers on random numbers."""
    national = npa_nxx + "0000"
    return any(p.fullmatch(national) for p in _nanp_patterns())


@lru_cache(maxsize=1_000_000)
def _parse_phone(digits: str, region: str) -> str:
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        raise InvalidValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_EMAIL = re.compile(r"^[a-z0-9._%+\-']+@[a-z0-9.\-]+\.[a-z]{2,}$")


@lru_cache(maxsize=500_000)
def normalise_email(text: str | None) -> str | None:
    if text is None or not str(text).strip():
        return None
    email = str(text).strip().lower()
    if not _EMAIL.match(email) or ".." in email:
        raise InvalidValueError("not an email address")
    return email


_POSTAL_CHARS = re.compile(r"[\s\-]")
_POSTAL_VALID = re.compile(r"^[A-Z0-9]{3,10}$")


@lru_cache(maxsize=200_000)
def normalise_postal_code(text: str | int | None) -> str | None:
    """Any country's postcode: upper-cased, spaces and hyphens dropped ('sw1a 1aa' -> 'SW1A1AA').

    A nine-digit code is read as a US ZIP+4 and cut to the ZIP, which is what other systems send.
    """
    if text is None:
        return None
    raw = _POSTAL_CHARS.sub("", str(text).strip().upper())
    if not raw:
        return None
    if not _POSTAL_VALID.match(raw):
        raise InvalidValueError("a postcode holds 3 to 10 letters or digits")
    if raw.isdigit() and len(raw) == 9:
        return raw[:5]
    return raw


# USPS street suffix and unit abbreviations (Publication 28), the forms systems disagree on.
_ADDRESS_WORDS = {
    "street": "st",
    "str": "st",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "boulevard": "blvd",
    "place": "pl",
    "terrace": "ter",
    "circle": "cir",
    "parkway": "pkwy",
    "highway": "hwy",
    "square": "sq",
    "trail": "trl",
    "way": "way",
    "apartment": "apt",
    "suite": "ste",
    "unit": "unit",
    "number": "no",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}


@lru_cache(maxsize=500_000)
def normalise_address(text: str | None) -> str | None:
    folded = fold(text.replace("#", " apt ") if text else text)
    if folded is None:
        return None
    return " ".join(_ADDRESS_WORDS.get(tok, tok) for tok in folded.split(" "))
