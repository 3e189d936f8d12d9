"""u counted over distinct values equals Splink's own random sampling; training settings."""

import logging

import pytest

from medmatch.matching.comparisons import default_comparisons
from medmatch.matching.engine import duckdb_api
from medmatch.matching.model import base_settings
from medmatch.matching.training import EM_RULES, splink_input, u_workers
from medmatch.matching.u_sampling import estimate_u


def _u_values(settings):
    return [
        [level.get("u_probability") for level in c["comparison_levels"]]
        for c in settings["comparisons"]
    ]


def _splink_u(records, max_pairs, seed):
    from splink import Linker

    linker = Linker(duckdb_api().register(records), base_settings(), log_level=logging.ERROR)
    linker.training.estimate_u_using_random_sampling(
        max_pairs=max_pairs, seed=seed, min_count_per_level=None, num_chunks=1
    )
    return linker.misc.save_model_to_json()


@pytest.mark.parametrize(
    ("records", "max_pairs", "workers"),
    [
        (None, 2e5, 3),  # a sample of the records, three threads
        (None, 2e5, 1),
        (300, 1e6, 2),  # fewer pairs than asked for: every record is in the sample
    ],
)
def test_u_by_values_is_splinks_u(features, records, max_pairs, workers):
    table = splink_input(features)
    if records is not None:
        table = table.head(records)
    given = base_settings()
    by_values = estimate_u(table, given, max_pairs=max_pairs, seed=5, workers=workers)
    assert _u_values(by_values) == _u_values(_splink_u(table, max_pairs, seed=5))
    # (a level the sample never reaches, as a swapped surname, has no u either way)
    assert sum(u is not None for levels in _u_values(by_values) for u in levels[1:]) > 15
    # the settings passed in are left as they were
    assert given == base_settings()


def test_u_workers_follow_the_setting(monkeypatch):
    from medmatch.config import get_settings

    monkeypatch.setenv("MEDMATCH_TRAINING_U_WORKERS", "3")
    get_settings.cache_clear()
    try:
        assert u_workers() == 3
        monkeypatch.delenv("MEDMATCH_TRAINING_U_WORKERS")
        get_settings.cache_clear()
        assert u_workers() >= 1
    finally:
        get_settings.cache_clear()


def test_the_model_settings_name_only_columns_the_features_have(features, caplog):
    """Training skips Splink's settings validation (it only logs): this holds it instead."""
    from splink import Linker

    with caplog.at_level(logging.WARNING, logger="splink"):
        Linker(
            duckdb_api().register(splink_input(features)),
            base_settings(),
            log_level=logging.WARNING,
            validate_settings=True,
        )
    assert "SETTINGS VALIDATION" not in caplog.text
    broken = base_settings()
    level = broken["comparisons"][0]["comparison_levels"][1]
    level["sql_condition"] = level["sql_condition"].replace("first_name", "no_such_column")
    with caplog.at_level(logging.WARNING, logger="splink"):
        Linker(
            duckdb_api().register(splink_input(features)),
            broken,
            log_level=logging.WARNING,
            validate_settings=True,
        )
    assert "SETTINGS VALIDATION" in caplog.text


def test_every_comparison_is_left_free_by_some_em_session():
    """EM estimates a comparison's m only in a session whose blocking rule leaves it free."""
    for comparison in default_comparisons():
        columns = {level.column for level in comparison.levels if level.column}
        free = [rule for rule in EM_RULES if not any(f"l.{c} " in rule + " " for c in columns)]
        assert free, comparison.name
