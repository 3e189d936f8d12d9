"""u estimated in threads, one share of the comparisons each, equals one linker's u."""

import logging

from medmatch.matching.comparisons import default_comparisons
from medmatch.matching.engine import duckdb_api
from medmatch.matching.model import base_settings
from medmatch.matching.training import (
    EM_RULES,
    U_COST,
    _shares,
    estimate_u,
    splink_input,
    u_workers,
)


def _u_values(settings):
    return [
        [level.get("u_probability") for level in c["comparison_levels"]]
        for c in settings["comparisons"]
    ]


def test_threads_estimate_the_u_one_linker_does(features):
    from splink import Linker

    linker = Linker(
        duckdb_api().register(splink_input(features)), base_settings(), log_level=logging.ERROR
    )
    linker.training.estimate_u_using_random_sampling(
        max_pairs=2e5, seed=5, min_count_per_level=None, num_chunks=1
    )
    sequential = linker.misc.save_model_to_json()

    given = base_settings()
    threaded = estimate_u(features, given, max_pairs=2e5, seed=5, workers=3)
    assert _u_values(threaded) == _u_values(sequential)
    # (a level the sample never reaches, as a swapped surname, has no u either way)
    assert sum(u is not None for levels in _u_values(threaded) for u in levels[1:]) > 20
    # the settings passed in are left as they were
    assert given == base_settings()


def test_shares_balance_the_cost_and_cover_every_comparison():
    names = [c["output_column_name"] for c in base_settings()["comparisons"]]
    groups = _shares(names, 2)
    assert sorted(i for g in groups for i in g) == list(range(len(names)))
    costs = [sum(U_COST[names[i]] for i in g) for g in groups]
    assert max(costs) - min(costs) <= U_COST["first_name"] / 2
    assert _shares(names, 1) == [list(range(len(names)))]
    assert len(_shares(names[:2], 8)) == 2  # never more threads than comparisons


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
