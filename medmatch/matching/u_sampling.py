"""u by random sampling: Splink's sample and Splink's comparison SQL, counted over values.

Splink's `estimate_u_using_random_sampling` samples ~1,400 records for 1e6 pairs (which
records is a pure function of their ids and the seed) and, one comparison at a time,
evaluates the comparison's CASE on every pair of the sample. Most comparisons read columns
whose values repeat within a sample (first names, surnames, sex, the nulls of every field),
and a comparison's level depends only on the values it reads. So each comparison here
evaluates its CASE once per pair of *distinct values* of its columns, weighted by how many
record pairs hold them: the same counts, on a fraction of the pairs (sex: 6 pairs instead of
1e6). The comparisons run on every core, one DuckDB cursor each, as they are independent.

The result equals Splink's u to the last bit (a test holds it) because the levels are
symmetric (a pair reads the same level either way round), which Splink's comparison
library's levels are; Splink orders each pair by unique id, the count here by value.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from medmatch.matching.engine import duckdb_connection

SAMPLE = "__medmatch_u_sample"


def estimate_u(
    records: pd.DataFrame,
    settings: dict[str, Any],
    *,
    max_pairs: float,
    seed: int,
    workers: int = 1,
) -> dict[str, Any]:
    """`settings` (a Splink settings dict) with every comparison's u estimated from
    `max_pairs` random pairs of `records`, as Splink's random sampling with
    `min_count_per_level=None, num_chunks=1` would. A level no sampled pair reaches keeps
    no u (Splink leaves it out too)."""
    from splink.internals.dialects import SplinkDialect
    from splink.internals.estimate_u import _rows_needed_for_n_pairs
    from splink.internals.settings_creator import SettingsCreator

    dialect = SplinkDialect.from_string("duckdb")
    splink_settings = SettingsCreator.from_path_or_dict(copy.deepcopy(settings)).get_settings(
        dialect.sql_dialect_str
    )
    comparisons = splink_settings.comparisons
    for comparison in comparisons:
        for level in comparison.comparison_levels:
            level._tf_adjustment_column = None  # u ignores term frequencies, as in Splink

    with duckdb_connection() as connection:
        connection.register("__medmatch_u_records", records)
        share = min(1.0, _rows_needed_for_n_pairs(max_pairs) / max(len(records), 1))
        uid_columns = splink_settings.column_info_settings.unique_id_input_columns
        sampled = dialect.proportion_sample_sql(share, uid_columns, seed=seed)
        # a table, not a view: the other cursors see it
        connection.execute(
            f"CREATE TABLE {SAMPLE} AS SELECT * FROM __medmatch_u_records WHERE 1=1 {sampled}"
        )

        def counts(comparison: Any) -> dict[int, int]:
            with connection.cursor() as cursor:
                return dict(cursor.execute(_counts_sql(comparison)).fetchall())

        # costliest first (most levels), so the last comparison to start is a cheap one
        order = sorted(comparisons, key=lambda c: -len(c.comparison_levels))
        with ThreadPoolExecutor(max(1, min(workers, len(order)))) as pool:
            by_name = dict(
                zip((c.output_column_name for c in order), pool.map(counts, order), strict=True)
            )

    out = copy.deepcopy(settings)
    for comparison, spec in zip(comparisons, out["comparisons"], strict=True):
        level_counts = by_name[comparison.output_column_name]
        total = sum(n for gamma, n in level_counts.items() if gamma != -1)
        for level, spec_level in zip(
            comparison.comparison_levels, spec["comparison_levels"], strict=True
        ):
            n = level_counts.get(int(level.comparison_vector_value), 0)
            if not level.is_null_level and n:
                spec_level["u_probability"] = n / total
    return out


def _counts_sql(comparison: Any) -> str:
    """Record pairs of the sample per level of `comparison` (gamma -> pairs), from the
    pairs of distinct values of the columns it reads."""
    columns = ", ".join(c.name for c in comparison._input_columns_used_by_case_statement)
    sides = ", ".join(comparison._columns_to_select_for_blocking())
    case = "\n".join(
        level._when_then_comparison_vector_value_sql for level in comparison.comparison_levels
    )
    return f"""
    WITH v AS (
        SELECT *, row_number() OVER () AS k
        FROM (SELECT {columns}, count(*) AS n FROM {SAMPLE} GROUP BY ALL)
    ),
    pairs AS (
        SELECT {sides},
            CASE WHEN l.k = r.k THEN l.n * (l.n - 1) // 2 ELSE l.n * r.n END AS pairs
        FROM v AS l JOIN v AS r ON l.k <= r.k
    )
    SELECT CASE {case} END AS gamma, sum(pairs) FROM pairs GROUP BY 1
    """
