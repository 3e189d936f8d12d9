"""The composition root, and the LLM's answers cached in PostgreSQL across processes."""

from medmatch.config import Settings
from medmatch.matching import PairSet
from medmatch.matching.adjudicators.ollama import OllamaAdjudicator
from medmatch.mpi.answer_cache import PostgresAnswerCache
from medmatch.mpi.bootstrap import bootstrap
from tests.fakes.ollama_server import FakeOllama
from tests.matching.test_ollama_adjudicator import SAME_A, SAME_B
from tests.mpi.test_services import _record


def test_bootstrap_wires_the_services(database_url, uow_factory):
    mpi = bootstrap(Settings(ollama_base_url=None), url=database_url)
    try:
        assert [a.name for a in mpi.matcher.adjudicators] == ["offline"]
        first = mpi.matching.lookup(_record("EHR", "1"))
        assert mpi.golden.get(first.golden_record_id).source_count == 1
        assert mpi.review.pending() == []
    finally:
        mpi.engine.dispose()


def test_llm_answers_are_shared_through_postgres(database_url, uow_factory):
    with FakeOllama() as server:
        mpi = bootstrap(
            Settings(ollama_base_url=server.url), url=database_url, adjudicator="ollama"
        )
        try:
            llm, offline = mpi.matcher.adjudicators
            assert llm.pairs == {PairSet.REVIEW_BAND, PairSet.LIFE_EVENTS}
            assert isinstance(llm.cache, PostgresAnswerCache)
            first = llm.adjudicate(SAME_A, SAME_B)
            asked = len(server.requests)
            # another worker, a fresh adjudicator: the answer comes from PostgreSQL
            other = OllamaAdjudicator(server.url, cache=PostgresAnswerCache(uow_factory, "ollama"))
            assert other.adjudicate(SAME_A, SAME_B) == first
            assert len(server.requests) == asked
        finally:
            mpi.engine.dispose()
    with uow_factory() as uow:
        uow.answers.put("broken", "ollama", {"verdict": "maybe"})
        uow.commit()
    assert PostgresAnswerCache(uow_factory, "ollama").get("broken") is None
