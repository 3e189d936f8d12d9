"""Comparison features: the normalised, derived columns both scoring engines read.

A record becomes one flat row (folded names, nickname group, soundex, ISO date, E.164 phone,
...). Splink reads these rows in DuckDB; the real-time scorer reads the same rows as dicts.
Single records go through `record_features`; whole tables through `table_features`, which
applies the same field normalisers column by column, once per distinct value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from medmatch.data import clinical, contact, names
from medmatch.data.fields import field_normalisers
from medmatch.data.models import FieldWarning, PatientRecord
from medmatch.errors import InvalidValueError

# Columns the model compares (and blocking keys read).
SPLINK_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "first_name",
    "first_name_group",
    "first_initial",
    "last_name",
    "last_soundex",
    "name_suffix",
    "dob",
    "birth_year",
    "sex",
    "phone",
    "email",
    "address",
    "postal_code",
    "ssn",
)
# Carried beside the model's columns, for rules and adjudication.
CONTEXT_COLUMNS: tuple[str, ...] = ("source_system", "external_id", "conditions", "medications")


def _first_token(folded: str | None) -> str | None:
    return folded.split(" ")[0] if folded else None


def _derive(
    first: str | None,
    last: str | None,
    suffix: str | None,
    dob: str | None,
    sex: str | None,
    phone: str | None,
    email: str | None,
    address: str | None,
    postal: str | None,
    ssn: str | None,
) -> dict[str, Any]:
    folded_first = names.fold(first)
    group = names.name_group(first)
    folded_last = names.fold(last)
    return {
        "first_name": folded_first,
        "first_name_group": list(group) if group else None,
        "first_initial": folded_first[0] if folded_first else None,
        "last_name": folded_last,
        "last_soundex": names.soundex(last),
        "name_suffix": suffix,
        "dob": dob,
        "birth_year": dob[:4] if dob else None,
        "sex": sex,
        "phone": phone,
        "email": email,
        "address": contact.normalise_address(address),
        "postal_code": postal,
        "ssn": ssn,
    }


def record_features(record: PatientRecord) -> dict[str, Any]:
    """The comparison row of one validated record."""
    d = record.demographics
    row = {"unique_id": record.key}
    row |= _derive(
        d.name_first,
        d.name_last,
        d.name_suffix,
        d.date_of_birth.isoformat() if d.date_of_birth else None,
        d.gender,
        d.phone,
        d.email,
        d.address_line,
        d.postal_code,
        d.ssn,
    )
    row["source_system"] = record.source_system
    row["external_id"] = record.external_id
    row["conditions"] = sorted(clinical.condition_concepts(record.medical_data.conditions))
    row["medications"] = sorted(clinical.drug_concepts(record.medical_data.medications))
    return row


@dataclass
class TableFeatures:
    frame: pd.DataFrame
    warnings: list[FieldWarning] = field(default_factory=list)
    warning_counts: dict[str, int] = field(default_factory=dict)


def _map_unique(series: pd.Series, fn: Any) -> pd.Series:
    """Apply fn once per distinct non-null value; the mapping keeps memory and time small."""
    uniques = series.dropna().unique()
    lookup = {value: fn(value) for value in uniques}
    return series.map(lookup)


def table_features(
    table: pd.DataFrame,
    medical: pd.DataFrame | None = None,
    *,
    phone_region: str = "US",
    max_warnings: int = 50,
) -> TableFeatures:
    """Normalise a whole demographics table (lenient: a bad value is a warning)."""
    out = TableFeatures(frame=pd.DataFrame())
    norm = pd.DataFrame(index=table.index)
    for fieldname, fn in field_normalisers(phone_region).items():
        if fieldname not in table.columns:
            norm[fieldname] = None
            continue
        column = table[fieldname].astype("string").str.strip().replace("", pd.NA)
        bad: set[Any] = set()

        def safe(value: Any, fn: Any = fn, bad: set[Any] = bad) -> Any:
            try:
                return fn(value)
            except InvalidValueError:
                bad.add(value)
                return None

        norm[fieldname] = _map_unique(column, safe).astype(object).where(column.notna(), None)
        if bad:
            bad_rows = column.isin(list(bad))
            out.warning_counts[fieldname] = int(bad_rows.sum())
            for rid in table.loc[bad_rows, "record_id"].head(max_warnings):
                out.warnings.append(
                    FieldWarning(field=fieldname, reason="invalid value dropped", record_id=str(rid))
                )
    # Suffixes sent inside the name fields ("Smith Jr.")
    for namecol in ("name_last", "name_first"):
        split = _map_unique(norm[namecol], names.split_suffix)
        has = split.notna()
        norm.loc[has, namecol] = split[has].map(lambda t: t[0])
        found = split[has].map(lambda t: t[1])
        fill = has & norm["name_suffix"].isna() & found.reindex(norm.index).notna()
        norm.loc[fill, "name_suffix"] = found[fill]
    dob = norm["date_of_birth"].map(lambda d: d.isoformat() if d is not None else None)

    frame = pd.DataFrame({"unique_id": table["record_id"].astype(str).values}, index=table.index)
    frame["first_name"] = _map_unique(norm["name_first"], names.fold)
    frame["first_name_group"] = _map_unique(
        norm["name_first"], lambda v: list(names.name_group(v) or ()) or None
    )
    frame["first_initial"] = frame["first_name"].str[0]
    frame["last_name"] = _map_unique(norm["name_last"], names.fold)
    frame["last_soundex"] = _map_unique(norm["name_last"], names.soundex)
    frame["name_suffix"] = norm["name_suffix"]
    frame["dob"] = dob
    frame["birth_year"] = dob.str[:4]
    frame["sex"] = norm["gender"]
    frame["phone"] = norm["phone"]
    frame["email"] = norm["email"]
    frame["address"] = _map_unique(norm["address_line"], contact.normalise_address)
    frame["postal_code"] = norm["postal_code"]
    frame["ssn"] = norm["ssn"]
    frame = frame.astype(object).where(frame.notna(), None)
    frame["source_system"] = table["source_system"].astype(str).values
    frame["external_id"] = (
        table["external_id"].astype("string").values if "external_id" in table else None
    )
    frame["conditions"], frame["medications"] = _medical_columns(frame["unique_id"], medical)
    out.frame = frame.reset_index(drop=True)
    return out


def _medical_columns(ids: pd.Series, medical: pd.DataFrame | None) -> tuple[list, list]:
    if medical is None or medical.empty:
        return [[] for _ in range(len(ids))], [[] for _ in range(len(ids))]
    med = medical.assign(record_id=medical["record_id"].astype(str)).set_index("record_id")
    cond = {
        rid: sorted(clinical.condition_concepts(clinical.split_terms(v)))
        for rid, v in med.get("conditions", pd.Series(dtype=object)).dropna().items()
    }
    meds = {
        rid: sorted(clinical.drug_concepts(clinical.split_terms(v)))
        for rid, v in med.get("medications", pd.Series(dtype=object)).dropna().items()
    }
    return [cond.get(i, []) for i in ids], [meds.get(i, []) for i in ids]
