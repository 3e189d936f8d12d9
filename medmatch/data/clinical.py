"""Clinical vocabulary: conditions and drugs written many ways, mapped to one concept each.

The vocabulary ships with the package (`resources/clinical_vocabulary.json`); it is small on
purpose and covers the chronic conditions and long-term drugs that identify a person.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_SEPARATORS = re.compile(r"\s*[;|]\s*")
_NOISE = re.compile(
    r"\b\d+(\.\d+)?\s*(mg|mcg|units?|ml|g)\b|\b(tablet|tab|capsule|cap|daily|bid|tid|qd|po)\b"
)


@dataclass(frozen=True)
class ClinicalVocabulary:
    condition_terms: dict[str, str]  # term -> condition concept
    drug_terms: dict[str, str]  # name (generic or brand) -> drug concept
    drug_indications: dict[str, tuple[str, ...]]  # drug concept -> conditions it treats
    condition_names: dict[str, tuple[str, ...]]  # concept -> its ways of being written
    drug_names: dict[str, tuple[str, ...]]

    def condition(self, term: str) -> str | None:
        return self.condition_terms.get(_clean(term))

    def drug(self, term: str) -> str | None:
        cleaned = _NOISE.sub(" ", _clean(term))
        return self.drug_terms.get(" ".join(cleaned.split()))


def _clean(term: str) -> str:
    return " ".join(term.strip().lower().replace(",", " ").split())


@cache
def vocabulary() -> ClinicalVocabulary:
    raw = json.loads(
        resources.files("medmatch.data").joinpath("resources/clinical_vocabulary.json").read_text()
    )
    conditions = {c: tuple(names) for c, names in raw["conditions"].items()}
    drugs = {d: tuple(spec["names"]) for d, spec in raw["drugs"].items()}
    return ClinicalVocabulary(
        condition_terms={_clean(n): c for c, names in conditions.items() for n in names}
        | {c.replace("_", " "): c for c in conditions},
        drug_terms={_clean(n): d for d, names in drugs.items() for n in names},
        drug_indications={d: tuple(spec["treats"]) for d, spec in raw["drugs"].items()},
        condition_names=conditions,
        drug_names=drugs,
    )


def split_terms(text: str | list[str] | None) -> list[str]:
    """'T2DM; HTN' -> ['T2DM', 'HTN']; lists pass through, trimmed."""
    if text is None:
        return []
    items = text if isinstance(text, list) else _SEPARATORS.split(str(text))
    return [item.strip() for item in items if item and item.strip()]


def condition_concepts(terms: list[str]) -> frozenset[str]:
    """Concepts of the conditions named; unknown terms are kept as their cleaned text."""
    vocab = vocabulary()
    return frozenset(vocab.condition(t) or _clean(t) for t in terms)


def drug_concepts(terms: list[str]) -> frozenset[str]:
    vocab = vocabulary()
    return frozenset(vocab.drug(t) or _clean(t) for t in terms)


def implied_conditions(drugs: frozenset[str]) -> frozenset[str]:
    """Conditions a drug list implies (metformin -> type 2 diabetes)."""
    vocab = vocabulary()
    return frozenset(c for d in drugs for c in vocab.drug_indications.get(d, ()))
