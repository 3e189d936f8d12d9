"""Batch scoring: Splink's predict on DuckDB over blocked pairs, then rules and decisions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pandas as pd

from medmatch.collector import collector_paused
from medmatch.config import MatchThresholds
from medmatch.data.features import column_values
from medmatch.data.models import FieldWarning
from medmatch.matching.adjudication import Adjudication, Adjudicator, Tally, choose, decide_after
from medmatch.matching.clustering import cluster
from medmatch.matching.decisions import Decision, Stage, decide
from medmatch.matching.engine import duckdb_api
from medmatch.matching.explain import levels_sentence, with_rule
from medmatch.matching.model import MatchModel
from medmatch.matching.realtime import weight_to_probability
from medmatch.matching.rules import CANDIDATE_SQL, RuleKind, evaluate_rules, rule_decision
from medmatch.matching.training import splink_input
from medmatch.parallel import available_cores, can_fork, fork_map

logger = logging.getLogger(__name__)

PAIR_COLUMNS = (
    "record_id_1",
    "record_id_2",
    "confidence",
    "match_weight",
    "match_type",
    "stage",
    "decision",
    "rule",
    "explanation",
)
Progress = Callable[[str, float], None]
# scored pairs: from here on, deciding them on every core saves more than forking costs
# (107K pairs of a 100K-record run: 6.7 -> 3.6 s on two cores)
MIN_PARALLEL_PAIRS = 50_000
DECIDE_CHUNK = 100_000  # scored pairs turned into Python objects at a time


@dataclass
class BatchResult:
    pairs: pd.DataFrame
    clusters: pd.DataFrame
    model: MatchModel
    stats: dict[str, float | int | str] = field(default_factory=dict)
    warnings: list[FieldWarning] = field(default_factory=list)


def predict_pairs(features: pd.DataFrame, model: MatchModel, floor: float) -> pd.DataFrame:
    """Every blocked pair at or above `floor`, with its comparison vector (gamma columns)."""
    from splink import Linker

    db = duckdb_api()
    frame = db.register(splink_input(features), dataset_display_name="records")
    # gamma columns (which level each comparison reached) feed the explanations
    settings = model.splink_settings | {
        "retain_intermediate_calculation_columns": True,
        "retain_matching_columns": True,
        "additional_columns_to_retain": ["name_suffix"],
    }
    linker = Linker(frame, settings, log_level=logging.WARNING)
    predictions = linker.inference.predict(threshold_match_probability=floor)
    wanted = ["unique_id_l", "unique_id_r", "match_weight", "match_probability"] + [
        f"gamma_{c.name}" for c in model.comparisons
    ]
    candidate = f"coalesce({CANDIDATE_SQL}, FALSE) AS rule_candidate"
    sql = f"SELECT {', '.join(wanted)}, {candidate} FROM {predictions.physical_name}"
    return linker.misc.query_sql(sql, output_type="pandas")


class _RowView(Mapping[str, Any]):
    """One record of a column store, read as a mapping, without building a dict per record."""

    __slots__ = ("_columns", "_i")

    def __init__(self, columns: dict[str, list[Any]], i: int) -> None:
        self._columns, self._i = columns, i

    def __getitem__(self, key: str) -> Any:
        return self._columns[key][self._i]

    def get(self, key: str, default: Any = None) -> Any:
        column = self._columns.get(key)
        return default if column is None else column[self._i]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


# what the rules read of a record (blocking-only columns are left out)
RULE_COLUMNS = (
    "unique_id",
    "first_name",
    "first_name_group",
    "middle_name",
    "last_name",
    "name_suffix",
    "dob",
    "sex",
    "phone",
    "address",
    "postal_code",
    "ssn",
    "source_system",
    "external_id",
    "conditions",
    "medications",
)


def feature_rows(
    features: pd.DataFrame, ids: set[str], columns: tuple[str, ...] = RULE_COLUMNS
) -> dict[str, Mapping[str, Any]]:
    """unique_id -> feature row (the given columns), for the given ids only."""
    subset = features.loc[features["unique_id"].isin(ids), list(columns)]
    values = {c: column_values(subset[c]) for c in subset.columns}
    return {rid: _RowView(values, i) for i, rid in enumerate(values["unique_id"])}


def _same_source_record_groups(features: pd.DataFrame) -> list[list[str]]:
    """Groups of records that share source_system and external_id (a record sent again)."""
    keys = ["source_system", "external_id"]
    keyed = features.loc[features["external_id"].notna(), ["unique_id", *keys]]
    resent = keyed[keyed.duplicated(keys, keep=False)]
    return [sorted(group["unique_id"]) for _, group in resent.groupby(keys)]


@collector_paused()  # millions of per-pair objects, no cycles among them
def decide_pairs(
    scored: pd.DataFrame,
    features: pd.DataFrame,
    model: MatchModel,
    thresholds: MatchThresholds,
    adjudicators: Sequence[Adjudicator] = (),
    tally: Tally | None = None,
    workers: int | None = 1,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Apply rules, the adjudicators' evidence and thresholds to every scored pair; returns
    the pairs at or above the floor and the hard negatives. `tally` counts who was asked.
    `workers` > 1 splits the pairs between forked processes (from MIN_PARALLEL_PAIRS, and
    when every adjudicator is forkable); `workers=None`: every core. A worker holds Python
    copies of one chunk's pairs and rows at a time (a 1M run's tree peaked at 4.3 GiB forked
    on two cores, 4.7 GiB in one process)."""
    tally = tally if tally is not None else Tally()
    weights = model.level_weights()
    comps = model.comparisons
    gamma_cols = [f"gamma_{c.name}" for c in comps]
    columns = [
        "unique_id_l",
        "unique_id_r",
        "match_probability",
        "match_weight",
        "rule_candidate",
        *gamma_cols,
    ]
    # pairs sent twice by one source system: every pair within each group, both ways
    resent = {
        (a, b) for group in _same_source_record_groups(features) for a in group for b in group
    }
    resent = {p for p in resent if p[0] != p[1]}
    extra: list[tuple[str, str]] = []
    if resent:
        scored_ids = set(
            zip(scored["unique_id_l"].tolist(), scored["unique_id_r"].tolist(), strict=True)
        )
        extra = sorted(
            p for p in resent if p[0] < p[1] and p not in scored_ids and p[::-1] not in scored_ids
        )
    # per comparison, Splink's gamma value -> (comparison, level label)
    labels = [
        {comp.gamma(i): (comp.name, w.label) for i, w in enumerate(ws)}
        for comp, ws in zip(comps, weights, strict=True)
    ]

    def decide_span(index: int, spans: int = 1) -> tuple[list[list], list[tuple[str, str]], Tally]:
        """One span of the scored pairs: in a forked worker, turning pandas columns into
        Python objects happens there too. The pairs and the feature rows they read become
        Python objects a chunk at a time (a tuple per pair is ~0.4 KB, a record's row ~1 KB:
        a 1M run's rows at once held ~1.5 GB per worker), and columns come back, not rows."""
        size = -(-len(scored) // spans)
        part = scored.iloc[index * size : (index + 1) * size]
        by_column: list[list] = [[] for _ in PAIR_COLUMNS]
        cannot: list[tuple[str, str]] = []
        counts = Tally()
        for start in range(0, len(part), DECIDE_CHUNK):
            chunk = part.iloc[start : start + DECIDE_CHUNK]
            # plain Python lists: iterating pandas (Arrow-backed) columns costs ~30x more
            records = list(zip(*(chunk[c].tolist() for c in columns), strict=True))
            rows = feature_rows(features, _involved(records, bool(adjudicators), resent))
            out = _decide(records, rows, labels, resent, thresholds, adjudicators, cannot, counts)
            for column, values in zip(by_column, zip(*out, strict=True), strict=False):
                column += values  # zip(*out) is empty when the chunk kept no pair
        return by_column, cannot, counts

    if workers is None:
        workers = available_cores()
    workers = min(workers, available_cores())
    if (
        len(scored) >= MIN_PARALLEL_PAIRS
        and can_fork(workers)
        and all(getattr(a, "forkable", False) for a in adjudicators)
    ):
        parts = fork_map(partial(decide_span, spans=workers), workers, workers)
    else:
        parts = [decide_span(0)]
    out: list[list] = [[] for _ in PAIR_COLUMNS]
    cannot: list[tuple[str, str]] = []
    for part_columns, part_cannot, part_tally in parts:  # in the order of `scored`
        for column, values in zip(out, part_columns, strict=True):
            column += values
        cannot += part_cannot
        tally.counts.update(part_tally.counts)
    rows = feature_rows(features, {x for p in extra for x in p})
    for a, b in extra:
        rule = evaluate_rules(rows[a], rows[b])
        row = _decision_row(a, b, 1.0, 0.0, "Sent twice by its source system", rule, thresholds)
        for column, value in zip(out, row, strict=True):
            column.append(value)
    return pd.DataFrame(dict(zip(PAIR_COLUMNS, out, strict=True))), cannot


def _involved(
    records: Sequence[tuple], adjudicated: bool, resent: set[tuple[str, str]]
) -> set[str]:
    """The records whose feature rows `_decide` reads for these scored pairs: every one when
    an adjudicator may be asked, else those of the pairs a rule may fire on."""
    if adjudicated:
        return {x for a, b, *_ in records for x in (a, b)}
    return {
        x for a, b, _, _, candidate, *_ in records if candidate or (a, b) in resent for x in (a, b)
    }


def _decide(
    records: Sequence[tuple],
    rows: Mapping[str, Mapping[str, Any]],
    labels: list[dict[int, tuple[str, str]]],
    resent: set[tuple[str, str]],
    thresholds: MatchThresholds,
    adjudicators: Sequence[Adjudicator],
    cannot: list[tuple[str, str]],
    tally: Tally,
) -> list[tuple]:
    """decide_pairs' loop over some of its scored pairs: the pairs kept; the hard negatives
    go to `cannot`, who was asked to `tally`."""
    out: list[tuple] = []
    sentences: dict[tuple, str] = {}  # per comparison vector: a few hundred of them
    for a, b, probability, mw, candidate, *gammas in records:
        vector = tuple(gammas)
        text = sentences.get(vector)
        if text is None:
            text = sentences[vector] = levels_sentence(
                tuple(lab[int(g)] for lab, g in zip(labels, gammas, strict=True))
            )
        may_fire = candidate or (a, b) in resent
        rule = evaluate_rules(rows[a], rows[b]) if may_fire else None
        verdict = None
        judge = None
        if rule is None and adjudicators:
            judge = choose(adjudicators, decide(probability, thresholds)[0], rows[a], rows[b])
        if judge is not None:
            verdict = judge.adjudicate(rows[a], rows[b])
            tally.asked(judge, verdict)
            if verdict is not None and (verdict.match_weight != 0 or verdict.failed):
                mw += verdict.match_weight
                probability = weight_to_probability(mw)
                text = f"{text}; {verdict.reasoning}"
            else:
                verdict = None  # no evidence either way: the model's decision stands
        if rule is not None and rule.kind is RuleKind.HARD_NEGATIVE:
            cannot.append((a, b))  # kept for clustering even when below the floor
        exact = rule is not None and rule.kind is RuleKind.EXACT
        if probability < thresholds.pair_floor and not exact:
            continue
        out.append(
            _decision_row(a, b, float(probability), float(mw), text, rule, thresholds, verdict)
        )
    return out


def _decision_row(  # type: ignore[no-untyped-def]
    a: str,
    b: str,
    probability: float,
    mw: float,
    text: str,
    rule,
    thresholds: MatchThresholds,
    verdict: Adjudication | None = None,
) -> tuple:
    if rule is not None:
        decision, match_type, certain = rule_decision(rule)
        probability, stage = certain if certain is not None else probability, Stage.RULES
    elif verdict is not None:
        (decision, match_type), stage = decide_after(verdict, probability, thresholds), Stage.AI
    else:
        (decision, match_type), stage = decide(probability, thresholds), Stage.SCORING
    return (
        a,
        b,
        probability,
        mw,
        match_type.value,
        stage.value,
        decision.value,
        rule.rule if rule else "",
        with_rule(text, rule),
    )


def clusters_from_pairs(
    ids: list[str], pairs: pd.DataFrame, cannot: list[tuple[str, str]]
) -> pd.DataFrame:
    auto = pairs[pairs["decision"] == Decision.AUTO_MATCH.value]
    edges = zip(
        auto["record_id_1"].tolist(),
        auto["record_id_2"].tolist(),
        auto["confidence"].tolist(),
        strict=True,
    )
    labels = cluster(ids, edges, cannot)
    return pd.DataFrame({"record_id": ids, "cluster_id": [labels[i] for i in ids]})
