"""The batch survivorship (one DuckDB query) equals survive(), golden record by golden record."""

import json
import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from medmatch.mpi.domain import StoredRecord
from medmatch.mpi.survivorship import FIELDS, RECORD_COLUMNS, survive, survive_many

SYSTEMS = ("LAB", "CLINIC", "HOSPITAL", "O'NEIL")
# few values per field, blanks included: agreements, ties and empties are frequent
VALUES = ("Ann", "Anne", "Zoë", "", None, 'say "x"', "back\\slash")
TERMS = ("asthma", "diabetes", "gout", "")
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def _records(rng: random.Random, goldens: int) -> list[tuple[str, StoredRecord]]:
    out = []
    next_id = 1
    for g in range(goldens):
        for _ in range(rng.choice((1, 1, 2, 3, 5, 8))):
            demo = {f: rng.choice(VALUES) for f in FIELDS if rng.random() < 0.8}
            demo = {k: v for k, v in demo.items() if v is not None or rng.random() < 0.5}
            medical = {
                kind: rng.choices(TERMS, k=rng.randrange(4))
                for kind in ("conditions", "medications")
                if rng.random() < 0.7
            }
            when = BASE + timedelta(seconds=rng.randrange(3))  # equal times are common
            updated = when if rng.random() < 0.8 else None
            record = StoredRecord(
                next_id, rng.choice(SYSTEMS), None, demo, medical, {}, None, when, updated
            )
            out.append((f"GR-{g:04d}", record))
            next_id += rng.randrange(1, 3)
    rng.shuffle(out)
    return out


def _table(rows: list[tuple[str, StoredRecord]]) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in RECORD_COLUMNS}
    for golden, r in rows:
        when = r.updated_at or r.received_at
        columns["golden_id"].append(golden)
        columns["id"].append(r.id)
        columns["source_system"].append(r.source_system)
        columns["seen_us"].append(round(when.timestamp() * 1_000_000) if when else None)
        for name in FIELDS:
            columns[name].append(r.demographics.get(name))
        for kind in ("conditions", "medications"):
            columns[kind].append(r.medical_data.get(kind))
    types = {"id": pa.int64(), "seen_us": pa.int64()}
    types |= {kind: pa.list_(pa.string()) for kind in ("conditions", "medications")}
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in columns.items()})


def test_survive_many_equals_survive_for_every_golden_record():
    rng = random.Random(7)
    rows = _records(rng, 400)
    for trust in ({}, {"LAB": 0.5, "HOSPITAL": 2.0, "O'NEIL": 2.0}):
        result = survive_many(_table(rows), trust).to_pylist()
        by_golden: dict[str, list[StoredRecord]] = {}
        for golden, record in rows:
            by_golden.setdefault(golden, []).append(record)
        assert [r["golden_id"] for r in result] == sorted(by_golden)
        for row in result:
            records = by_golden[row["golden_id"]]
            demographics, medical = survive(records, trust)
            assert json.loads(row["demographics"]) == demographics, row["golden_id"]
            assert json.loads(row["medical_data"]) == medical, row["golden_id"]
            assert row["source_count"] == len(records)


def test_survive_many_of_nothing_is_empty():
    assert survive_many(_table([])).num_rows == 0
