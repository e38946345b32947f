"""cv.summary's function: a profile for a role, from the template or an LLM."""

from __future__ import annotations

import pytest

from cv_analytics.assistant import LLMClient, LLMError, Retriever, open_retriever, summarise_for_role
from cv_analytics.skills import SkillsCatalog

from .chat_server import ChatServer, Reply, completion


def test_the_template_opens_with_the_profile_and_highlights_the_roles_skills(
    catalog: SkillsCatalog, retriever: Retriever
):
    result = summarise_for_role(catalog, retriever, "Data engineer")
    assert result.method == "template" and result.role == "Data engineer"
    assert result.summary.startswith("Alex Morgan, Senior backend engineer (Python, TypeScript, AWS).")
    assert "For a Data engineer role:" in result.summary
    assert result.highlighted_skills[0] == "Data Engineering"
    assert len(result.highlighted_skills) == 5
    assert "4 years of Data Engineering (feature store ETL, cv-analytics event pipeline)" in result.summary
    assert result.to_dict() == {
        "role": "Data engineer",
        "summary": result.summary,
        "highlightedSkills": result.highlighted_skills,
        "method": "template",
    }


def test_a_role_about_nothing_in_the_catalog_highlights_the_longest_held_skills(
    catalog: SkillsCatalog, bm25: Retriever
):
    result = summarise_for_role(catalog, bm25, "Pastry chef")
    assert result.highlighted_skills == ["Linux", "Git", "Python", "JavaScript", "SQL"]


def test_a_catalog_without_a_profile_still_summarises():
    catalog = SkillsCatalog.from_mapping({"skills": [{"name": "Elm", "years": 2}]})
    result = summarise_for_role(catalog, open_retriever(catalog, "bm25"), "Frontend developer")
    assert result.summary == "The candidate. For a Frontend developer role: 2 years of Elm."


@pytest.mark.parametrize("role", ["", "   "])
def test_a_blank_role_is_refused(catalog: SkillsCatalog, bm25: Retriever, role: str):
    with pytest.raises(ValueError, match="role"):
        summarise_for_role(catalog, bm25, role)


def test_a_long_role_is_cut_to_what_is_read(catalog: SkillsCatalog, bm25: Retriever):
    assert len(summarise_for_role(catalog, bm25, "Platform engineer " * 1000).role) <= 200


def test_an_llm_writes_it_from_the_same_facts(catalog: SkillsCatalog, bm25: Retriever, server: ChatServer):
    server.respond = lambda body: Reply(body=completion("  Alex Morgan builds data platforms.  "))
    with LLMClient(server.url, "test-model", "sk-2") as llm:
        result = summarise_for_role(catalog, bm25, "Data engineer", llm)
    assert (result.method, result.summary) == ("llm", "Alex Morgan builds data platforms.")
    [request] = server.requests
    system, user = request["body"]["messages"]
    assert user["content"] == "Role: Data engineer"
    assert "Name: Alex Morgan" in system["content"] and "Data Engineering: 4 years" in system["content"]
    assert "response_format" not in request["body"]
    assert request["headers"]["Authorization"] == "Bearer sk-2"


def test_an_llm_reply_out_of_shape_falls_back_to_the_template(catalog: SkillsCatalog, bm25: Retriever, server: ChatServer):
    server.respond = lambda body: Reply(body={"choices": []})
    with LLMClient(server.url, "m") as llm:
        result = summarise_for_role(catalog, bm25, "Data engineer", llm)
    assert result.method == "template"
    assert result == summarise_for_role(catalog, bm25, "Data engineer")


@pytest.mark.parametrize(("status", "transient"), [(503, True), (401, False)])
def test_an_llm_that_fails_raises_so_the_job_can_retry_or_fail(
    catalog: SkillsCatalog, bm25: Retriever, server: ChatServer, status: int, transient: bool
):
    server.respond = lambda body: Reply(status=status, body={"error": "no"})
    with LLMClient(server.url, "m") as llm, pytest.raises(LLMError) as info:
        summarise_for_role(catalog, bm25, "Data engineer", llm)
    assert info.value.transient is transient
