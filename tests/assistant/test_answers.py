"""Assistant.answer: composed answers, match quality, the cache, hostile questions, and the LLM path."""

from __future__ import annotations

import json
import threading

import pytest

from cv_analytics.assistant import FULL_MATCH, PARTIAL_MATCH, Assistant, LLMClient, Retriever, match_quality
from cv_analytics.skills import SkillsCatalog

from .chat_server import ChatServer, Reply, completion


@pytest.mark.parametrize(
    ("score", "quality"),
    [(1.0, "full"), (FULL_MATCH, "full"), (FULL_MATCH - 0.001, "partial"), (PARTIAL_MATCH, "partial"),
     (PARTIAL_MATCH - 0.001, "none"), (0.0, "none")],
)
def test_match_quality_thresholds(score: float, quality: str):
    assert match_quality(score) == quality


def test_a_covered_skill_is_answered_with_its_years_and_projects(catalog: SkillsCatalog, retriever: Retriever):
    result = Assistant(catalog, retriever).answer("What is your experience with TypeScript?")
    assert result.match_quality == "full"
    assert result.sources[0] == "TypeScript"
    assert result.match_score == result.matches[0].score >= FULL_MATCH
    assert "7 years of TypeScript" in result.answer and "CV chatbot API" in result.answer
    assert "TypeScript" in result.reasoning and retriever.method in result.reasoning
    assert result.method == retriever.method and not result.cache_hit and result.llm_ms is None
    assert 0 <= result.retrieval_ms <= result.total_ms
    assert len(result.sources) <= 5


def test_a_skill_the_owner_lacks_is_answered_honestly(catalog: SkillsCatalog, retriever: Retriever):
    result = Assistant(catalog, retriever).answer("What about Zig?")
    assert result.match_quality == "none"
    assert result.answer.startswith("My CV does not cover that.")
    assert "Zig" not in result.answer  # it says what the CV has, never claims the unknown
    assert result.sources == []
    assert result.match_score < PARTIAL_MATCH
    assert result.confidence == pytest.approx(1 - result.match_score, abs=1e-4)


def test_a_partial_match_says_so(catalog: SkillsCatalog, bm25: Retriever):
    result = Assistant(catalog, bm25).answer("Do you know Python and Rust?")
    assert result.match_quality == "partial"
    assert result.answer.startswith("Partly.") and "Python" in result.answer


def test_the_same_question_again_is_a_cache_hit_whatever_its_case_and_spacing(catalog: SkillsCatalog, bm25: Retriever):
    assistant = Assistant(catalog, bm25)
    first = assistant.answer("Kafka experience?")
    again = assistant.answer("  kafka   EXPERIENCE? ")
    assert not first.cache_hit and again.cache_hit
    assert (again.answer, again.sources, again.match_quality) == (first.answer, first.sources, first.match_quality)
    assert again.retrieval_ms == 0.0 and again.llm_ms is None
    assert not assistant.answer("Redis experience?").cache_hit


def test_the_cache_forgets_the_least_recently_used_and_size_zero_keeps_nothing(catalog: SkillsCatalog, bm25: Retriever):
    assistant = Assistant(catalog, bm25, cache_size=2)
    for question in ("Kafka?", "Redis?", "Kafka?", "Terraform?"):  # Redis is the least recently used
        assistant.answer(question)
    assert assistant.answer("Kafka?").cache_hit
    assert not assistant.answer("Redis?").cache_hit
    uncached = Assistant(catalog, bm25, cache_size=0)
    uncached.answer("Kafka?")
    assert not uncached.answer("Kafka?").cache_hit


def test_answers_from_many_threads_at_once_agree(catalog: SkillsCatalog, retriever: Retriever):
    assistant = Assistant(catalog, retriever, cache_size=4)
    questions = ["Kafka?", "Redis?", "Terraform?", "Zig?"] * 3  # each asked at once by several threads
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def ask(n: int, question: str) -> None:
        try:
            results[n] = assistant.answer(question).answer
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(n, q)) for n, q in enumerate(questions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    fresh = Assistant(catalog, retriever)
    assert all(results[n] == fresh.answer(q).answer for n, q in enumerate(questions))


@pytest.mark.parametrize(
    "question",
    ["", "   ", "<script>alert('x')</script>", "Kafka? " * 15_000, "Kafka ✓ 日本語 \u202e \x00", "?" * 5000],
)
def test_hostile_questions_get_a_plain_answer(catalog: SkillsCatalog, retriever: Retriever, question: str):
    result = Assistant(catalog, retriever).answer(question)
    assert result.answer and isinstance(result.answer, str)
    assert "<script>" not in result.answer  # the answer never echoes the question
    assert result.match_quality in ("full", "partial", "none")
    if not question.strip():
        assert result.match_quality == "none" and result.matches == [] and result.reasoning == "The question is empty."


# -- with an LLM ---------------------------------------------------------------


def _llm_reply(**fields: object) -> dict[str, object]:
    return {"answer": "I have 4 years of Kafka.", "matchQuality": "full", "confidence": 0.9,
            "reasoning": "Kafka is a listed skill.", **fields}


def test_an_llm_answers_with_its_structured_match_quality(catalog: SkillsCatalog, bm25: Retriever, server: ChatServer):
    server.respond = lambda body: Reply(body=completion(_llm_reply()))
    with LLMClient(server.url, "test-model", "sk-1") as llm:
        assistant = Assistant(catalog, bm25, llm)
        result = assistant.answer("Kafka experience?")
        assert (result.answer, result.match_quality, result.confidence) == ("I have 4 years of Kafka.", "full", 0.9)
        assert result.reasoning == "Kafka is a listed skill."
        assert result.sources[0] == "Kafka" and result.llm_ms is not None and result.llm_ms >= 0
        assert assistant.answer("kafka experience?").cache_hit
    [request] = server.requests  # the cache hit asked nothing
    system, user = request["body"]["messages"]
    assert user == {"role": "user", "content": "Kafka experience?"}
    assert "Alex Morgan" in system["content"] and "order events streaming" in system["content"]
    assert request["body"]["response_format"]["json_schema"]["schema"]["required"] == [
        "answer", "matchQuality", "confidence", "reasoning"
    ]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=completion("I think so, yes")),  # not JSON
        Reply(body=completion(_llm_reply(matchQuality="maybe"))),
        Reply(body=completion(_llm_reply(confidence=7))),
        Reply(body=completion(_llm_reply(confidence="high"))),
        Reply(body=completion(_llm_reply(answer="   "))),
        Reply(body=completion(json.dumps({"answer": "no other fields"}))),
        Reply(status=401, body={"error": "bad key"}),
        Reply(status=503, body={"error": "overloaded"}),
    ],
)
def test_an_llm_that_fails_or_replies_out_of_shape_leaves_the_composed_answer_uncached(
    catalog: SkillsCatalog, bm25: Retriever, server: ChatServer, reply: Reply
):
    server.respond = lambda body: reply
    with LLMClient(server.url, "m") as llm:
        assistant = Assistant(catalog, bm25, llm)
        result = assistant.answer("Kafka experience?")
        composed = Assistant(catalog, bm25).answer("Kafka experience?")
        assert (result.answer, result.match_quality, result.reasoning) == (
            composed.answer, composed.match_quality, composed.reasoning
        )
        assert result.llm_ms is not None
        assert not assistant.answer("Kafka experience?").cache_hit  # the LLM is asked again next time
    assert len(server.requests) == 2


def test_a_slow_llm_leaves_the_composed_answer(catalog: SkillsCatalog, bm25: Retriever, server: ChatServer):
    server.respond = lambda body: Reply(body=completion(_llm_reply()), delay=2.0)
    with LLMClient(server.url, "m", timeout=0.3) as llm:
        result = Assistant(catalog, bm25, llm).answer("Kafka experience?")
    assert result.answer.startswith("Yes. I have 4 years of Kafka experience")
