"""One normaliser per demographic field, shared by the record model and the bulk path."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from medmatch.data import codes, contact, dates, names

Normaliser = Callable[[Any], Any]


@lru_cache(maxsize=16)
def field_normalisers(phone_region: str = "US") -> dict[str, Normaliser]:
    """Field -> function that returns the normalised value or raises InvalidValueError."""
    return {
        "name_first": lambda v: names.clean_display(str(v)),
        "name_middle": lambda v: names.clean_display(str(v)),
        "name_last": lambda v: names.clean_display(str(v)),
        "name_suffix": lambda v: names.normalise_suffix(str(v)),
        "date_of_birth": lambda v: dates.parse_date_of_birth(str(v)),
        "gender": lambda v: codes.normalise_sex(str(v)),
        "phone": lambda v: contact.normalise_phone(str(v), phone_region),
        "email": lambda v: contact.normalise_email(str(v)),
        "address_line": lambda v: names.clean_display(str(v)),
        "city": lambda v: names.clean_display(str(v)),
        "state": lambda v: names.clean_display(str(v).upper()),
        "postal_code": lambda v: contact.normalise_postal_code(str(v)),
        "ssn": lambda v: codes.normalise_ssn(str(v)),
        "mrn": lambda v: codes.normalise_identifier(str(v)),
    }


DEMOGRAPHIC_FIELDS: tuple[str, ...] = tuple(field_normalisers())
