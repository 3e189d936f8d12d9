"""Training the Fellegi-Sunter model with Splink on DuckDB.

u comes from random sampling (`u_sampling`: Splink's sample, counted over distinct values,
the comparisons on every core), m from EM over
blocking rules that leave each comparison free in at least one session, and m from labelled
pairs when a reviewer has provided them. Splink is imported here, not at package import:
library mode stays light until training runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pandas as pd

from medmatch.data.features import SPLINK_COLUMNS
from medmatch.matching.comparisons import Comparison, default_comparisons
from medmatch.matching.engine import duckdb_api
from medmatch.matching.model import (
    LEVEL_NOT_OBSERVED,
    NOT_OBSERVED_PROBABILITY,
    MatchModel,
    base_settings,
    stamp,
)
from medmatch.matching.u_sampling import estimate_u

logger = logging.getLogger(__name__)

# The most a disagreement on one field people change may weigh against a match, in bits
# (benchmarks/adjudication.py chose it: see the README there).
DEFAULT_MUTABLE_MAX_BITS = 2.0

TF_COLUMNS = ("first_name", "last_name")
# Deterministic rules that admit almost no false positives, for the prior.
_PRIOR_RULES = (
    "l.first_name = r.first_name AND l.last_name = r.last_name AND l.dob = r.dob",
    "l.ssn = r.ssn AND l.dob = r.dob",
)
# Each EM session fixes the comparisons in its rule and estimates the others: the two leave
# every comparison free in at least one. A third session blocked on phone moved no weight
# but sex's and ssn's disagreement (by 0.7-1 bit) and cost 0.7 s of training at 100K
# records and 8 s at 1M; the pipeline's F1 was the same without it (0.9946, 0.9947 at 10K
# and 100K; 0.9925 against 0.9924 at 1M).
EM_RULES = (
    "l.dob = r.dob",
    "l.first_name = r.first_name AND l.last_name = r.last_name",
)


def splink_input(features: pd.DataFrame) -> pd.DataFrame:
    return features.loc[:, list(SPLINK_COLUMNS)]


def term_frequency_tables(features: pd.DataFrame) -> tuple[dict[str, dict[str, float]], float]:
    """Relative frequencies as Splink computes them (share of non-null values).

    The scorer gives a value training never saw the frequency of a singleton.
    """
    tables: dict[str, dict[str, float]] = {}
    singleton = 1.0
    for column in TF_COLUMNS:
        counts = features[column].dropna().value_counts()
        total = float(counts.sum()) or 1.0
        singleton = min(singleton, 1.0 / total)
        tables[column] = {str(k): float(v) / total for k, v in counts.items()}
    return tables, singleton


def u_workers() -> int:
    """Threads for u: MEDMATCH_TRAINING_U_WORKERS, else every core."""
    from medmatch.config import get_settings
    from medmatch.parallel import available_cores

    return get_settings().training_u_workers or available_cores()


def _linker(features: pd.DataFrame, settings: dict[str, Any]) -> Any:
    """A Splink linker over the records, on a DuckDB connection of its own."""
    from splink import Linker

    frame = duckdb_api().register(splink_input(features), dataset_display_name="records")
    # Splink warns about every level EM cannot see; the metadata lists those instead. Its
    # settings validation only logs warnings, which that level hides, and parses every
    # level's SQL to do so (~0.06 s a linker, three per training, two of them in the u
    # threads under one GIL): skipped, and held by a test instead
    return Linker(frame, settings, log_level=logging.ERROR, validate_settings=False)


def _fill_untrained(settings: dict[str, Any]) -> list[str]:
    """Levels training never saw become neutral (m = u), listed in the model's metadata.

    Values are written as numbers, as Splink reads its own "not observed" text (1e-6), so
    both engines read plain numbers."""
    untrained = []
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            if u is None or u == LEVEL_NOT_OBSERVED:
                level["u_probability"] = u = NOT_OBSERVED_PROBABILITY
            if m is None or m == LEVEL_NOT_OBSERVED:
                level["m_probability"] = u
                untrained.append(f"{comparison['output_column_name']}/{level['label_for_charts']}")
    return untrained


def bound_mutable_disagreement(
    settings: dict[str, Any], comparisons: tuple[Comparison, ...], max_bits: float | None
) -> list[str]:
    """A disagreement on a field people change (surname, address, phone, email) costs at most
    `max_bits`: a move or a marriage must not outweigh an agreeing name, birth date and
    medical history. Stable fields keep their full weight. Returns the levels bounded."""
    if max_bits is None:
        return []
    bounded = []
    for spec, comparison in zip(settings["comparisons"], comparisons, strict=True):
        if not comparison.mutable:
            continue
        for level in spec["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = float(level["m_probability"]), float(level["u_probability"])
            if m < u * 2.0**-max_bits:
                level["m_probability"] = u * 2.0**-max_bits
                bounded.append(f"{spec['output_column_name']}/{level['label_for_charts']}")
    return bounded


def train_model(
    features: pd.DataFrame,
    *,
    labels: Iterable[tuple[str, str]] | None = None,
    seed: int = 42,
    mutable_max_bits: float | None = DEFAULT_MUTABLE_MAX_BITS,
    max_pairs_u: float = 1e6,
    em_max_pairs: float | None = 2e6,
    em_sampling_from: int = 100_000,
) -> MatchModel:
    """Train on a feature table (from `table_features`); labels are known matching pairs.

    u from 1e6 random pairs (Splink's default): at 10K and 100K records the pipeline's F1
    was the same to four places as with 2e6, in half the sampling time."""
    with_u = estimate_u(
        splink_input(features),
        base_settings(),
        max_pairs=max_pairs_u,
        seed=seed,
        workers=u_workers(),
    )
    linker = _linker(features, with_u)
    training = linker.training
    training.estimate_probability_two_random_records_match(list(_PRIOR_RULES), recall=0.7)
    sessions = 0
    for rule in EM_RULES:
        training.estimate_parameters_using_expectation_maximisation(
            rule,
            max_pairs=em_max_pairs if len(features) >= em_sampling_from else None,
            # iterate on the distinct comparison vectors, not on every pair with its term
            # frequencies: EM 2.4 -> 1.5 s at 100K records, the pipeline's F1 the same to
            # four places at 10K and 100K (the scores still use the frequencies)
            estimate_without_term_frequencies=True,
        )
        sessions += 1
    label_pairs = list(labels or [])
    if label_pairs:
        table = pd.DataFrame(
            {
                "source_dataset_l": "records",
                "unique_id_l": [a for a, _ in label_pairs],
                "source_dataset_r": "records",
                "unique_id_r": [b for _, b in label_pairs],
            }
        )
        linker.table_management.register_table(table, "labels", overwrite=True)
        training.estimate_m_from_pairwise_labels("labels")
    settings = linker.misc.save_model_to_json()
    untrained = _fill_untrained(settings)
    bounded = bound_mutable_disagreement(settings, default_comparisons(), mutable_max_bits)
    tables, singleton = term_frequency_tables(features)
    metadata = stamp(
        {
            "records": int(len(features)),
            "em_sessions": sessions,
            "labelled_pairs": len(label_pairs),
            "seed": seed,
            "untrained_levels": untrained,
            "mutable_max_bits": mutable_max_bits,
            "bounded_levels": bounded,
        }
    )
    return MatchModel(settings, tables, unseen_frequency=singleton, metadata=metadata)
