"""Adjudicators for the `ai` stage: offline clinical rules (the default) and Ollama."""

from __future__ import annotations

from medmatch.config import Settings
from medmatch.matching.adjudication import Adjudicator
from medmatch.matching.adjudicators.clinical import ClinicalAdjudicator

KINDS = ("offline", "ollama", "none")


def from_settings(kind: str, settings: Settings) -> tuple[Adjudicator, ...]:
    """The adjudicators a run uses, in order of preference.

    'ollama' puts the LLM in front of the offline adjudicator: it takes the pairs of its own
    pair set (review band, life events) and the offline one weighs in on the rest."""
    if kind not in KINDS:
        raise ValueError(f"adjudicator must be one of {', '.join(KINDS)}")
    if kind == "none":
        return ()
    offline = ClinicalAdjudicator(pairs=settings.adjudication.offline_pairs)
    if kind == "offline":
        return (offline,)
    if not settings.ollama_base_url:
        raise ValueError("the ollama adjudicator needs OLLAMA_BASE_URL")
    from medmatch.matching.adjudicators.ollama import OllamaAdjudicator

    llm = OllamaAdjudicator(
        settings.ollama_base_url,
        model=settings.ollama_model,
        timeout_s=settings.ollama_timeout_s,
        pairs=settings.adjudication.llm_pairs,
    )
    return (llm, offline)


__all__ = ["KINDS", "ClinicalAdjudicator", "from_settings"]
