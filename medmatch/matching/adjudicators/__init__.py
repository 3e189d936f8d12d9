"""Adjudicators for the `ai` stage: offline clinical rules (default) and, later, Ollama."""

from medmatch.matching.adjudicators.clinical import ClinicalAdjudicator

__all__ = ["ClinicalAdjudicator"]
