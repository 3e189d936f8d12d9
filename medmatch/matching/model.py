"""The trained match model as data: Splink settings with m/u, term frequencies, a version.

One JSON file is read by both engines: Splink (batch) takes `splink_settings`, and the
real-time scorer reads the same m and u values and term frequencies. Every match result
records `version`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from medmatch.errors import ModelError
from medmatch.matching.blocking import splink_blocking_rules
from medmatch.matching.comparisons import Comparison, default_comparisons

FORMAT = "medmatch-model/1"
# Splink writes this text for a level never seen in training, and scores it as 1e-6.
LEVEL_NOT_OBSERVED = "level not observed in training dataset"
NOT_OBSERVED_PROBABILITY = 1e-6
M_U_CLAMP_MIN = 1e-300


def base_settings(comparisons: tuple[Comparison, ...] | None = None) -> dict[str, Any]:
    """An untrained Splink settings dict for MedMatch's comparisons and blocking rules."""
    comparisons = comparisons or default_comparisons()
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "unique_id",
        "probability_two_random_records_match": 1e-4,
        "comparisons": [c.to_splink() for c in comparisons],
        "blocking_rules_to_generate_predictions": splink_blocking_rules(),
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": False,
    }


def _probability(value: Any) -> float | None:
    if value == LEVEL_NOT_OBSERVED:
        return NOT_OBSERVED_PROBABILITY
    return None if value is None else float(value)


@dataclass(frozen=True)
class LevelWeights:
    """A level's parameters as the scorer needs them (a null level has weight 0)."""

    label: str
    match_weight: float
    u_probability: float | None
    tf_column: str | None
    tf_weight: float
    tf_minimum_u: float


@dataclass
class MatchModel:
    splink_settings: dict[str, Any]
    term_frequencies: dict[str, dict[str, float]] = field(default_factory=dict)
    # Frequency used for a value training never saw (a singleton in a population of N).
    unseen_frequency: float = 1e-6
    metadata: dict[str, Any] = field(default_factory=dict)
    comparisons: tuple[Comparison, ...] = field(default_factory=default_comparisons)

    def __post_init__(self) -> None:
        names = [c["output_column_name"] for c in self.splink_settings.get("comparisons", [])]
        expected = [c.name for c in self.comparisons]
        if names != expected:
            raise ModelError(f"model comparisons {names} do not match this MedMatch {expected}")
        for spec, comparison in zip(
            self.splink_settings["comparisons"], self.comparisons, strict=True
        ):
            # the model's levels must be ours, condition for condition: the scorer relies on it
            stored = [
                (lvl.get("label_for_charts"), lvl.get("sql_condition"))
                for lvl in spec["comparison_levels"]
            ]
            if stored != [(lvl.label, lvl.sql_condition) for lvl in comparison.levels]:
                raise ModelError(f"model levels of {comparison.name} do not match this MedMatch")

    @cached_property
    def version(self) -> str:
        """Content hash of the parameters: the same model always has the same version.

        Cached: a model's parameters are not changed after it is built (`to_dict` copies)."""
        blob = json.dumps(
            {"s": self.splink_settings, "tf": self.term_frequencies}, sort_keys=True
        ).encode()
        return "mm-" + hashlib.sha256(blob).hexdigest()[:12]

    @property
    def prior(self) -> float:
        return float(self.splink_settings["probability_two_random_records_match"])

    def level_weights(self) -> list[list[LevelWeights]]:
        """Per comparison, per level: the match weight Splink's predict SQL would use."""
        out: list[list[LevelWeights]] = []
        for spec in self.splink_settings["comparisons"]:
            row: list[LevelWeights] = []
            for level in spec["comparison_levels"]:
                if level.get("is_null_level"):
                    row.append(LevelWeights(level["label_for_charts"], 0.0, None, None, 0.0, 0.0))
                    continue
                m = _probability(level.get("m_probability"))
                u = _probability(level.get("u_probability"))
                if m is None or u is None:
                    raise ModelError(f"{spec['output_column_name']}: level without m or u")
                weight = math.log2(max(m, M_U_CLAMP_MIN) / max(u, M_U_CLAMP_MIN))
                row.append(
                    LevelWeights(
                        label=level["label_for_charts"],
                        match_weight=weight,
                        u_probability=u,
                        tf_column=level.get("tf_adjustment_column"),
                        tf_weight=float(level.get("tf_adjustment_weight", 1.0)),
                        tf_minimum_u=float(level.get("tf_minimum_u_value", 0.0)),
                    )
                )
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A deep copy: changing it never changes this model."""
        return copy.deepcopy(
            {
                "format": FORMAT,
                "version": self.version,
                "metadata": self.metadata,
                "unseen_frequency": self.unseen_frequency,
                "splink_settings": self.splink_settings,
                "term_frequencies": self.term_frequencies,
            }
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchModel:
        if data.get("format") != FORMAT:
            raise ModelError(f"not a MedMatch model file (expected format {FORMAT})")
        return cls(
            splink_settings=data["splink_settings"],
            term_frequencies=data.get("term_frequencies", {}),
            unseen_frequency=float(data.get("unseen_frequency", 1e-6)),
            metadata=data.get("metadata", {}),
        )

    @classmethod
    def load(cls, path: str | Path) -> MatchModel:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ModelError(f"model file not found: {path}") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"model file unreadable: {path} ({type(exc).__name__})") from None
        return cls.from_dict(data)

    @classmethod
    def default(cls) -> MatchModel:
        """The model shipped with the package, trained on synthetic data."""
        text = resources.files("medmatch.matching").joinpath("resources/default_model.json")
        return cls.from_dict(json.loads(text.read_text()))


def stamp(metadata: dict[str, Any]) -> dict[str, Any]:
    return {"trained_at": datetime.now(UTC).isoformat(timespec="seconds")} | metadata
