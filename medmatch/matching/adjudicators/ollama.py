"""The LLM adjudicator: a local Ollama (MedGemma by default) compares two medical histories.

Only the two histories are sent (conditions and medications, no names, dates or ids), with
a JSON schema for the answer. An answer that is not valid JSON, misses a field or is out of
range is rejected, never trusted. A slow, failing or nonsensical service never fails a run:
the verdict comes back `failed`, with the reason, and the matcher sends the pair to review.
Answers are cached by the content of the question, so a re-run never asks twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, ValidationError

from medmatch.matching.adjudication import Adjudication, PairSet, Verdict, has_history

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "medgemma"
DEFAULT_WEIGHTS: dict[Verdict, float] = {
    Verdict.SAME: 5.0,
    Verdict.DIFFERENT: -8.0,
    Verdict.UNSURE: 0.0,
}

SYSTEM_PROMPT = (
    "You compare the medical histories of two patient records and judge whether they can "
    "belong to the same person. Chronic conditions and long-term medications that agree are "
    "evidence of one person; contradictory ones of two. Answer only with the JSON object asked for."
)


class LLMAnswer(BaseModel):
    """What the model must answer; anything else is rejected."""

    verdict: Literal["same", "different", "unsure"]
    medical_similarity: float = Field(ge=0.0, le=1.0)
    reasoning: str = Field(min_length=1, max_length=400)


ANSWER_SCHEMA = LLMAnswer.model_json_schema()


class AnswerCache(Protocol):
    """Validated answers by question key (model + histories): a re-run never asks twice.
    In memory by default; the MPI keeps them in PostgreSQL."""

    def get(self, key: str) -> LLMAnswer | None: ...

    def put(self, key: str, answer: LLMAnswer) -> None: ...


class MemoryAnswerCache:
    def __init__(self) -> None:
        self._answers: dict[str, LLMAnswer] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> LLMAnswer | None:
        return self._answers.get(key)

    def put(self, key: str, answer: LLMAnswer) -> None:
        with self._lock:
            self._answers[key] = answer


def question(left: Mapping[str, Any], right: Mapping[str, Any]) -> str:
    """The user message: the two histories only."""

    def side(row: Mapping[str, Any]) -> dict[str, list[str]]:
        return {
            "conditions": sorted(row.get("conditions") or ()),
            "medications": sorted(row.get("medications") or ()),
        }

    return json.dumps({"record_a": side(left), "record_b": side(right)}, sort_keys=True)


class OllamaAdjudicator:
    name = "ollama"

    def __init__(
        self,
        host: str,
        *,
        model: str = DEFAULT_MODEL,
        timeout_s: float = 20.0,
        retries: int = 1,
        max_concurrent: int = 2,
        weights: Mapping[Verdict, float] | None = None,
        pairs: Iterable[PairSet] = (PairSet.REVIEW_BAND, PairSet.LIFE_EVENTS),
        cache: AnswerCache | None = None,
    ) -> None:
        import ollama  # the optional `ai` extra

        self._client = ollama.Client(host=host, timeout=timeout_s)
        self._errors: tuple[type[BaseException], ...] = (
            ollama.ResponseError,
            ConnectionError,
            OSError,
            TimeoutError,
        )
        try:
            import httpx

            self._errors += (httpx.HTTPError,)
        except ImportError:  # pragma: no cover - ollama depends on httpx
            pass
        self.model = model
        self.retries = retries
        self.weights = dict(weights or DEFAULT_WEIGHTS)
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self.pairs = frozenset(PairSet(p) for p in pairs)
        self.cache: AnswerCache = cache if cache is not None else MemoryAnswerCache()
        self.calls = 0

    @staticmethod
    def cache_key(model: str, text: str) -> str:
        return hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()

    def adjudicate(self, left: Mapping[str, Any], right: Mapping[str, Any]) -> Adjudication | None:
        if not (has_history(left) and has_history(right)):
            return None
        text = question(left, right)
        key = self.cache_key(self.model, text)
        cached = self.cache.get(key)
        if cached is not None:
            return self._adjudication(cached)
        reason = "no answer"
        for _attempt in range(self.retries + 1):
            try:
                with self._slots:
                    self.calls += 1
                    response = self._client.chat(
                        model=self.model,
                        messages=[
                            {"role": "system", "content": SYSTEM_PROMPT},
                            {"role": "user", "content": text},
                        ],
                        format=ANSWER_SCHEMA,
                        options={"temperature": 0},
                    )
                answer = LLMAnswer.model_validate_json(response.message.content or "")
            except ValidationError:
                reason = "answer rejected: not the JSON asked for"
                continue
            except self._errors as exc:
                reason = f"service unavailable ({type(exc).__name__})"
                continue
            self.cache.put(key, answer)
            return self._adjudication(answer)
        logger.warning("ollama adjudication failed: %s", reason)  # no patient data here
        return Adjudication(
            Verdict.UNSURE, 0.0, f"AI adjudication failed: {reason}", 0.0, self.name, failed=True
        )

    def _adjudication(self, answer: LLMAnswer) -> Adjudication:
        # weights are applied on read: a re-calibration also counts for cached answers
        verdict = Verdict(answer.verdict)
        return Adjudication(
            verdict, answer.medical_similarity, answer.reasoning, self.weights[verdict], self.name
        )
