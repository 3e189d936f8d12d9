"""Survivorship: the golden record's values, rebuilt from the source records linked to it.

Per field, the most recent non-empty value from the most trusted source; names by agreement
(the value most sources give, then trust, then recency); every distinct phone and address is
kept besides the one chosen; medical data is the union of all sources, each term with the
records it came from. Pure functions: the services call them inside the transaction that
changed the links, so a golden record never shows a value from a record no longer linked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from medmatch.mpi.domain import StoredRecord

NAME_FIELDS = ("name_first", "name_middle", "name_last", "name_suffix")
MULTI_VALUED = {"phone": "phones", "address_line": "addresses"}
FIELDS = (
    "name_first",
    "name_middle",
    "name_last",
    "name_suffix",
    "date_of_birth",
    "gender",
    "phone",
    "email",
    "address_line",
    "city",
    "state",
    "postal_code",
    "ssn",
    "mrn",
)
DEFAULT_TRUST = 1.0


def _rank(record: StoredRecord, trust: Mapping[str, float]) -> tuple[float, float, int]:
    """Higher is better: trust of the source, then how recent, then the later record id."""
    when = record.updated_at or record.received_at
    seen = when.replace(tzinfo=when.tzinfo or UTC).timestamp() if when else 0.0
    return (trust.get(record.source_system, DEFAULT_TRUST), seen, record.id)


def _present(value: Any) -> bool:
    return value is not None and value != ""


def survive(
    records: Sequence[StoredRecord], trust: Mapping[str, float] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(demographics, medical_data) of the golden record over `records`."""
    trust = trust or {}
    ranked = sorted(records, key=lambda r: _rank(r, trust), reverse=True)
    demographics: dict[str, Any] = {}
    for name in FIELDS:
        values = [r.demographics.get(name) for r in ranked if _present(r.demographics.get(name))]
        if not values:
            continue
        if name in NAME_FIELDS:
            counts = Counter(values)
            best = max(counts.values())
            # agreement first; among equally common values the best-ranked record's
            demographics[name] = next(v for v in values if counts[v] == best)
        else:
            demographics[name] = values[0]
    for name, plural in MULTI_VALUED.items():
        distinct = list(dict.fromkeys(r.demographics.get(name) for r in ranked))
        kept = [v for v in distinct if _present(v)]
        if kept:
            demographics[plural] = kept
    return demographics, _union_medical(ranked)


def _union_medical(records: Sequence[StoredRecord]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("conditions", "medications"):
        sources: dict[str, list[int]] = {}
        for record in sorted(records, key=lambda r: r.id):
            for term in record.medical_data.get(kind) or ():
                sources.setdefault(term, []).append(record.id)
        if sources:
            out[kind] = [{"term": term, "source_record_ids": ids} for term, ids in sources.items()]
    return out


def provenance(
    records: Sequence[StoredRecord],
    demographics: Mapping[str, Any],
    trust: Mapping[str, float] | None = None,
) -> dict[str, list[int]]:
    """Which source records each survivor value came from: for a single value the record
    `survive` took it from (the best-ranked one holding it), for phones and addresses every
    record holding each kept value, in the order of the values."""
    ranked = sorted(records, key=lambda r: _rank(r, trust or {}), reverse=True)
    out: dict[str, list[int]] = {}
    for name in FIELDS:
        value = demographics.get(name)
        # None when no linked record holds the value any more (read while links changed)
        holder = next((r for r in ranked if r.demographics.get(name) == value), None)
        if name in demographics and holder is not None:
            out[name] = [holder.id]
    for name, plural in MULTI_VALUED.items():
        for value in demographics.get(plural, ()):
            holders = [r.id for r in ranked if r.demographics.get(name) == value]
            if holders:
                out.setdefault(plural, []).extend(holders)
    return out
