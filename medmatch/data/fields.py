"""One normaliser per demographic field, shared by the record model and the bulk path."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

from medmatch.data import codes, contact, dates, names

Normaliser = Callable[[Any], Any]


def _display(value: Any) -> str | None:
    return names.clean_display(str(value))


def _upper_display(value: Any) -> str | None:
    return names.clean_display(str(value).upper())


def _on_text(fn: Callable[[str], Any]) -> Normaliser:
    return partial(_call_on_text, fn)


def _call_on_text(fn: Callable[[str], Any], value: Any) -> Any:
    return fn(str(value))


def _phone(region: str, value: Any) -> str | None:
    return contact.normalise_phone(str(value), region)


@lru_cache(maxsize=16)
def field_normalisers(phone_region: str = "US") -> dict[str, Normaliser]:
    """Field -> function that returns the normalised value or raises InvalidValueError.
    Module functions and partials, not lambdas: the bulk path sends them to worker
    processes (`medmatch.data.distinct`)."""
    return {
        "name_first": _display,
        "name_middle": _display,
        "name_last": _display,
        "name_suffix": _on_text(names.normalise_suffix),
        "date_of_birth": _on_text(dates.parse_date_of_birth),
        "gender": _on_text(codes.normalise_sex),
        "phone": partial(_phone, phone_region),
        "email": _on_text(contact.normalise_email),
        "address_line": _display,
        "city": _display,
        "state": _upper_display,
        "postal_code": _on_text(contact.normalise_postal_code),
        "ssn": _on_text(codes.normalise_ssn),
        "mrn": _on_text(codes.normalise_identifier),
    }


DEMOGRAPHIC_FIELDS: tuple[str, ...] = tuple(field_normalisers())
