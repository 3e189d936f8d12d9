"""Patient records as the service architecture describes them.

Values are normalised on the way in. A bad value is a validation error naming the field in
strict mode (the default, used by the API), and a missing value plus a `FieldWarning` in
lenient mode (the file CLI). Error messages never carry the value itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from medmatch.data import clinical, names
from medmatch.data.fields import DEMOGRAPHIC_FIELDS, field_normalisers
from medmatch.errors import InvalidFieldError, InvalidValueError

LENIENT = "lenient"
WARNINGS = "warnings"


class FieldWarning(BaseModel):
    """A value dropped in lenient mode: which field and why, never the value."""

    field: str
    reason: str
    record_id: str | None = None


def _normalised(fn: Callable[[Any], Any], value: Any, info: ValidationInfo) -> Any:
    if value is None or (isinstance(value, float) and value != value):  # NaN from pandas
        return None
    try:
        return fn(value)
    except InvalidValueError as exc:
        context = info.context if isinstance(info.context, dict) else {}
        if context.get(LENIENT):
            context.setdefault(WARNINGS, []).append(
                FieldWarning(field=info.field_name or "?", reason=str(exc))
            )
            return None
        raise ValueError(str(exc)) from None


class Demographics(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True, validate_assignment=False)

    name_first: str | None = None
    name_middle: str | None = None
    name_last: str | None = None
    name_suffix: str | None = None
    date_of_birth: date | None = None
    gender: str | None = Field(None, description="administrative sex: M, F, O; None if unknown")
    phone: str | None = Field(None, description="E.164")
    email: str | None = None
    address_line: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    ssn: str | None = None
    mrn: str | None = None

    @field_validator(*DEMOGRAPHIC_FIELDS, mode="before")
    @classmethod
    def _normalise(cls, value: Any, info: ValidationInfo) -> Any:
        # the same normaliser per field as the bulk path (medmatch.data.fields)
        context = info.context if isinstance(info.context, dict) else {}
        normaliser = field_normalisers(context.get("phone_region", "US"))[info.field_name or ""]
        return _normalised(normaliser, value, info)

    @model_validator(mode="after")
    def _split_suffixes(self) -> Demographics:
        # "Smith Jr." in the surname (or "John Jr" in the given name) is a suffix sent in the
        # wrong field: Jr and Sr are different people, so the suffix must be seen.
        for attr in ("name_last", "name_first"):
            base, suffix = names.split_suffix(getattr(self, attr))
            if suffix is not None:
                object.__setattr__(self, attr, base)
                if self.name_suffix is None:
                    object.__setattr__(self, "name_suffix", suffix)
        if self.name_first is None and self.name_last is None:
            raise ValueError("a record needs name_first or name_last")
        return self


class MedicalData(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)

    conditions: list[str] = Field(default_factory=list)
    medications: list[str] = Field(default_factory=list)

    @field_validator("conditions", "medications", mode="before")
    @classmethod
    def _terms(cls, value: Any) -> list[str]:
        if value is None or (isinstance(value, float) and value != value):
            return []
        return clinical.split_terms(value)

    @property
    def is_empty(self) -> bool:
        return not self.conditions and not self.medications


class PatientRecord(BaseModel):
    """One record about a patient, as one source system sent it."""

    model_config = ConfigDict(hide_input_in_errors=True)

    record_id: str | None = None
    source_system: str = Field(..., min_length=1)
    external_id: str | None = None
    demographics: Demographics
    medical_data: MedicalData = Field(default_factory=MedicalData)

    @field_validator("record_id", "external_id", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        if value is None or (isinstance(value, float) and value != value):
            return None
        return str(value).strip() or None

    @property
    def key(self) -> str:
        """The id pairs and clusters use: record_id, else source_system:external_id."""
        if self.record_id:
            return self.record_id
        if self.external_id:
            return f"{self.source_system}:{self.external_id}"
        raise InvalidFieldError("record_id", "a record needs record_id or external_id")


def parse_record(
    data: Mapping[str, Any] | PatientRecord,
    *,
    lenient: bool = False,
    phone_region: str = "US",
) -> tuple[PatientRecord, list[FieldWarning]]:
    """Validate and normalise one record.

    Strict mode raises `InvalidFieldError` naming the first bad field; lenient mode drops bad
    values and returns a warning for each. Either way the record's shape (a name, a source
    system) must be right.
    """
    if isinstance(data, PatientRecord):
        return data, []
    context: dict[str, Any] = {LENIENT: lenient, WARNINGS: [], "phone_region": phone_region}
    try:
        record = PatientRecord.model_validate(data, context=context)
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "record"
        reason = first["msg"].removeprefix("Value error, ")
        raise InvalidFieldError(field, reason) from None
    warnings = context[WARNINGS]
    for warning in warnings:
        warning.record_id = record.record_id or record.external_id
    return record, warnings
