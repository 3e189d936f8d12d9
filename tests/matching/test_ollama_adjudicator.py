import json
import socket

import ollama
import pytest

from medmatch.matching import Decision, PairSet, PatientMatcher, Stage, Verdict
from medmatch.matching.adjudicators.ollama import OllamaAdjudicator, question
from tests.conftest import lookup_body
from tests.fakes.ollama_server import FakeOllama

SAME_A = {"conditions": ["type_2_diabetes"], "medications": ["metformin"]}
SAME_B = {"conditions": ["type_2_diabetes"], "medications": []}
OTHER = {"conditions": ["asthma"], "medications": []}


@pytest.fixture
def server():
    with FakeOllama() as fake:
        yield fake


def test_the_fake_speaks_ollama_through_the_official_client(server):
    client = ollama.Client(host=server.url)
    assert [m.model for m in client.list().models] == ["medgemma:latest"]
    msg = [{"role": "user", "content": question(SAME_A, SAME_B)}]
    streamed = "".join(part.message.content for part in client.chat("medgemma", msg, stream=True))
    whole = client.chat("medgemma", msg).message.content
    assert streamed == whole and '"verdict": "same"' in whole


def test_good_answers_are_used_and_cached(server):
    judge = OllamaAdjudicator(server.url, timeout_s=5)
    same = judge.adjudicate(SAME_A, SAME_B)
    assert same.verdict is Verdict.SAME and same.match_weight > 0 and not same.failed
    assert judge.adjudicate(OTHER, SAME_B).verdict is Verdict.DIFFERENT
    asked = len(server.requests)
    assert judge.adjudicate(SAME_A, SAME_B) == same
    assert len(server.requests) == asked  # a re-run never asks twice
    sent = server.requests[0]
    assert sent["format"]["properties"]["verdict"]["enum"] == ["same", "different", "unsure"]
    assert "type_2_diabetes" in sent["messages"][-1]["content"]
    assert judge.adjudicate({"conditions": []}, SAME_B) is None


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("slow", "service unavailable"),
        ("malformed", "answer rejected"),
        ("out_of_range", "answer rejected"),
        ("error", "service unavailable"),
    ],
)
def test_bad_service_fails_soft(server, mode, reason):
    server.mode = mode
    judge = OllamaAdjudicator(server.url, timeout_s=0.5, retries=1)
    result = judge.adjudicate(SAME_A, SAME_B)
    assert result.failed and result.verdict is Verdict.UNSURE and result.match_weight == 0
    assert reason in result.reasoning
    assert judge.calls == 2  # bounded retries


def test_refused_connection_fails_soft():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = OllamaAdjudicator(f"http://127.0.0.1:{port}", timeout_s=1, retries=0)
    result = judge.adjudicate(SAME_A, SAME_B)
    assert result.failed and "service unavailable" in result.reasoning


def test_failed_adjudication_routes_the_pair_to_review(server, trained):
    from medmatch.config import MatchThresholds

    server.mode = "error"
    judge = OllamaAdjudicator(server.url, timeout_s=1, retries=0)
    matcher = PatientMatcher(
        trained, thresholds=MatchThresholds(auto_match=0.999999, review=0.0), adjudicator=judge
    )
    a = lookup_body(
        record_id="1",
        name_first="Ann",
        name_last="Lee",
        date_of_birth="1980-03-04",
        medical_data={"conditions": "T2DM"},
    )
    b = lookup_body(
        record_id="2",
        name_first="Ann",
        name_last="Lee",
        date_of_birth="1980-03-04",
        medical_data={"conditions": "type 2 diabetes"},
    )
    result = matcher.match_pair(a, b)
    assert result.stage is Stage.AI and result.decision is Decision.REVIEW_REQUIRED
    assert result.ai_reasoning.startswith("AI adjudication failed")


def test_batch_asks_the_llm_only_about_the_review_band(server, trained, synthetic):
    from medmatch.config import MatchThresholds

    judge = OllamaAdjudicator(server.url, timeout_s=5)
    thresholds = MatchThresholds(auto_match=0.99999, review=0.5)
    result = PatientMatcher(trained, thresholds=thresholds, adjudicator=judge).dedupe(
        synthetic.demographics.head(800), synthetic.medical
    )
    ai = result.pairs[result.pairs["stage"] == "ai"]
    assert 0 < len(server.requests) < len(result.pairs) / 4
    assert len(ai) > 0
    server.mode = "error"
    failed = PatientMatcher(
        trained,
        thresholds=thresholds,
        adjudicator=OllamaAdjudicator(server.url, timeout_s=1, retries=0),
    ).dedupe(synthetic.demographics.head(800), synthetic.medical)
    asked = failed.pairs[failed.pairs["explanation"].str.contains("AI adjudication failed")]
    assert len(asked) > 0 and (asked["decision"] == "review_required").all()


def test_cli_with_ollama(server, tmp_path, monkeypatch, synthetic):
    from typer.testing import CliRunner

    from medmatch.cli import app
    from medmatch.config import get_settings

    paths = synthetic.write(tmp_path)
    runner = CliRunner()
    monkeypatch.delenv("OLLAMA_BASE_URL", raising=False)
    get_settings.cache_clear()
    refused = runner.invoke(
        app, ["match", "--demographics", str(paths["demographics"]), "--adjudicator", "ollama"]
    )
    assert refused.exit_code == 2 and "OLLAMA_BASE_URL" in refused.output
    monkeypatch.setenv("OLLAMA_BASE_URL", server.url)
    get_settings.cache_clear()
    try:
        ok = runner.invoke(
            app,
            [
                "match",
                "--demographics",
                str(paths["demographics"]),
                "--medical",
                str(paths["medical"]),
                "--no-train",
                "--adjudicator",
                "ollama",
                "--out",
                str(tmp_path / "o"),
            ],
        )
    finally:
        get_settings.cache_clear()
    assert ok.exit_code == 0, ok.output
    assert "ollama asked" in ok.output and "offline asked" in ok.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["adjudicator"] == "ollama" and summary["ai_ollama_asked"] > 0


class CountingCache:
    def __init__(self):
        self.answers, self.puts = {}, 0

    def get(self, key):
        return self.answers.get(key)

    def put(self, key, answer):
        self.puts += 1
        self.answers[key] = answer


def test_answers_live_in_the_given_cache_and_weights_apply_on_read(server):
    cache = CountingCache()
    first = OllamaAdjudicator(server.url, timeout_s=5, cache=cache)
    assert first.pairs == {PairSet.REVIEW_BAND, PairSet.LIFE_EVENTS}
    first.adjudicate(SAME_A, SAME_B)
    asked = len(server.requests)
    # a second process with the same cache and re-calibrated weights: no request, new weight
    second = OllamaAdjudicator(
        server.url,
        cache=cache,
        weights={Verdict.SAME: 2.5, Verdict.DIFFERENT: -3.0, Verdict.UNSURE: 0.0},
    )
    again = second.adjudicate(SAME_A, SAME_B)
    assert len(server.requests) == asked and cache.puts == 1
    assert again.verdict is Verdict.SAME and again.match_weight == 2.5


def test_batch_reports_how_many_pairs_reached_each_adjudicator(server, trained, synthetic):
    from medmatch.matching.adjudicators import ClinicalAdjudicator

    llm = OllamaAdjudicator(server.url, timeout_s=5)
    result = PatientMatcher(trained, adjudicator=[llm, ClinicalAdjudicator()]).dedupe(
        synthetic.demographics.head(800), synthetic.medical
    )
    stats = result.stats
    assert stats["ai_ollama_asked"] > 0 and stats["ai_offline_asked"] > stats["ai_ollama_asked"]
    assert stats["ai_ollama_failed"] == 0
    answered = sum(stats[f"ai_ollama_{v}"] for v in ("same", "different", "unsure"))
    assert answered == stats["ai_ollama_asked"]
    assert len({r["messages"][-1]["content"] for r in server.requests}) == len(server.requests)
