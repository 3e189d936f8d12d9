"""Comparison features: the normalised, derived columns both scoring engines read.

A record becomes one flat row (folded names, nickname group, soundex, ISO date, E.164 phone,
...). Splink reads these rows in DuckDB; the real-time scorer reads the same rows as dicts.
Single records go through `record_features`; whole tables through `table_features`, which
applies the same field normalisers column by column, once per distinct value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pandas as pd
import pyarrow as pa

from medmatch.collector import collector_paused
from medmatch.data import clinical, contact, names
from medmatch.data.distinct import Column, map_distinct
from medmatch.data.fields import field_normalisers
from medmatch.data.models import FieldWarning, PatientRecord

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
    row["middle_name"] = _first_token(names.fold(d.name_middle))
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
    # every demographic field normalised (names without a suffix sent inside them), in
    # input order: what the bulk load stores
    fields: dict[str, Column] = field(default_factory=dict)


def column_values(series: pd.Series) -> Column:
    """A column's values as plain Python objects, None for missing (whatever the dtype)."""
    if isinstance(series.dtype, pd.ArrowDtype):
        return series.array.__arrow_array__().to_pylist()
    return [
        None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v
        for v in series.tolist()
    ]


def clean_column(table: pd.DataFrame, name: str) -> Column:
    """A column as plain Python values: stripped strings, None for missing or empty."""
    if name not in table.columns:
        return [None] * len(table)
    text = table[name].astype("string").str.strip()
    text = text.mask(text == "")
    return text.to_numpy(dtype=object, na_value=None).tolist()


def _map_unique(values: Column, fn: Any) -> Column:
    """fn once per distinct non-null value, here (too little work to send to workers)."""
    return map_distinct({"": (values, fn)}, workers=1)[""][0]


def _name_group(value: str) -> list[str] | None:
    return list(names.name_group(value) or ()) or None


def _middle_name(value: str) -> str | None:
    return _first_token(names.fold(value))


def _concepts(to_concepts: Any, text: str) -> list[str]:
    return sorted(to_concepts(clinical.split_terms(text)))


@collector_paused()  # a column of Python objects per field, no cycles among them
def table_features(
    table: pd.DataFrame,
    medical: pd.DataFrame | None = None,
    *,
    phone_region: str = "US",
    max_warnings: int = 50,
    workers: int | None = None,
) -> TableFeatures:
    """Normalise a whole demographics table (lenient: a bad value is a warning). Big tables
    are normalised on every core (`workers`, default all; `medmatch.data.distinct`)."""
    out = TableFeatures(frame=pd.DataFrame())
    ids = [str(v) for v in table["record_id"].tolist()]
    raw = {name: clean_column(table, name) for name in field_normalisers(phone_region)}
    normalised = map_distinct(
        {name: (raw[name], fn) for name, fn in field_normalisers(phone_region).items()},
        workers=workers,
    )
    norm: dict[str, Column] = {}
    for fieldname, (values, bad) in normalised.items():
        norm[fieldname] = values
        if bad:
            bad_ids = [rid for rid, v in zip(ids, raw[fieldname], strict=True) if v in bad]
            out.warning_counts[fieldname] = len(bad_ids)
            out.warnings += [
                FieldWarning(field=fieldname, reason="invalid value dropped", record_id=rid)
                for rid in bad_ids[:max_warnings]
            ]
    # Suffixes sent inside the name fields ("Smith Jr.") are split off, as the model does.
    for namecol in ("name_last", "name_first"):
        split = _map_unique(norm[namecol], names.split_suffix)
        for i, parts in enumerate(split):
            if parts is not None and parts[1] is not None:
                norm[namecol][i] = parts[0]
                if norm["name_suffix"][i] is None:
                    norm["name_suffix"][i] = parts[1]
    derived = {
        name: column
        for name, (column, _) in map_distinct(
            {
                "first_name": (norm["name_first"], names.fold),
                "first_name_group": (norm["name_first"], _name_group),
                "last_name": (norm["name_last"], names.fold),
                "last_soundex": (norm["name_last"], names.soundex),
                "address": (norm["address_line"], contact.normalise_address),
                "middle_name": (norm["name_middle"], _middle_name),
            },
            workers=workers,
        ).items()
    }
    dob = [d.isoformat() if d is not None else None for d in norm["date_of_birth"]]
    first = derived["first_name"]
    columns: dict[str, Column] = {
        "unique_id": ids,
        "first_name": first,
        "first_name_group": derived["first_name_group"],
        "first_initial": [f[0] if f else None for f in first],
        "last_name": derived["last_name"],
        "last_soundex": derived["last_soundex"],
        "name_suffix": norm["name_suffix"],
        "dob": dob,
        "birth_year": [d[:4] if d else None for d in dob],
        "sex": norm["gender"],
        "phone": norm["phone"],
        "email": norm["email"],
        "address": derived["address"],
        "postal_code": norm["postal_code"],
        "ssn": norm["ssn"],
        "source_system": [str(v) for v in table["source_system"].tolist()],
        "external_id": clean_column(table, "external_id"),
        "middle_name": derived["middle_name"],
    }
    columns["conditions"], columns["medications"] = _medical_columns(ids, medical, workers)
    out.frame = _arrow_frame(columns)
    out.fields = norm
    return out


LIST_COLUMNS = frozenset({"first_name_group", "conditions", "medications"})


def _arrow_frame(columns: dict[str, Column]) -> pd.DataFrame:
    """Arrow-backed columns: a tenth of the memory of Python objects, and DuckDB reads them
    without conversion. Read values back with `column_values`."""
    data = {}
    for name, values in columns.items():
        kind = pa.list_(pa.string()) if name in LIST_COLUMNS else pa.string()
        data[name] = pd.Series(pd.arrays.ArrowExtensionArray(pa.array(values, type=kind)))
    return pd.DataFrame(data)


def _medical_columns(
    ids: list[str], medical: pd.DataFrame | None, workers: int | None
) -> tuple[list, list]:
    if medical is None or medical.empty:
        return [[] for _ in ids], [[] for _ in ids]
    med_ids = [str(v) for v in medical["record_id"].tolist()]
    mapped = map_distinct(
        {
            "conditions": (
                clean_column(medical, "conditions"),
                partial(_concepts, clinical.condition_concepts),
            ),
            "medications": (
                clean_column(medical, "medications"),
                partial(_concepts, clinical.drug_concepts),
            ),
        },
        workers=workers,
    )
    by_record = {
        kind: {rid: m for rid, m in zip(med_ids, column, strict=True) if m}
        for kind, (column, _) in mapped.items()
    }
    return (
        [by_record["conditions"].get(i, []) for i in ids],
        [by_record["medications"].get(i, []) for i in ids],
    )
