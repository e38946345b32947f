"""The built-in job types over the embedded backends: ``analytics.report`` (and the inputs of all three)."""

from __future__ import annotations

import json

import pytest

from cv_analytics.jobs import JobInputError, JobStatus
from cv_analytics.reporting import build_report, render
from cv_analytics.reporting.synthetic import synthetic_week
from cv_analytics.wiring import insights_for, load_skills_catalog

from .conftest import drain

WEEK = "2026-W47"


def test_the_report_job_keeps_the_weeks_report_as_its_result(wiring):
    wiring.store.write_interactions(list(synthetic_week(WEEK, 2000, seed=7)))
    wiring.store.write_interactions(list(synthetic_week("2026-W46", 500, seed=8)))
    job, _ = wiring.job_service().submit("analytics.report", {"week": WEEK})
    drain(wiring)
    done = wiring.job_service().get(job.job_id)
    assert done.status is JobStatus.SUCCEEDED, done.error
    expected = render(build_report(insights_for(wiring.store), WEEK, catalog=load_skills_catalog(wiring.settings)))
    result = done.result
    assert result["week"] == WEEK and result["subject"] == expected.subject
    assert result["html"] == expected.html.replace(_generated(expected.html), _generated(result["html"]))
    assert {k: v for k, v in result["json"].items() if k != "generatedAt"} == {
        k: v for k, v in json.loads(expected.json).items() if k != "generatedAt"
    }
    assert result["json"]["volume"]["interactions"] == 2000  # what the store holds for the week


@pytest.mark.parametrize(
    ("job_type", "job_input", "field"),
    [
        ("analytics.report", {"week": "2026-W99"}, ["input", "week"]),
        ("analytics.report", {"week": "last week"}, ["input", "week"]),
        ("analytics.report", {}, ["input", "week"]),
        ("cv.match", {"jobDescription": ""}, ["input", "jobDescription"]),
        ("cv.match", {"job_description": "Python"}, ["input", "jobDescription"]),
        ("cv.match", {"jobDescription": "x" * 50_001}, ["input", "jobDescription"]),
        ("cv.summary", {"role": ""}, ["input", "role"]),
        ("cv.summary", {"role": "Engineer", "tone": "warm"}, ["input", "tone"]),
    ],
)
def test_a_bad_input_is_refused_at_submission_naming_the_field(wiring, job_type, job_input, field):
    with pytest.raises(JobInputError) as refused:
        wiring.job_service().submit(job_type, job_input)
    assert field in [error["loc"] for error in refused.value.errors]
    assert wiring.job_store.list_jobs().jobs == []


def test_inputs_are_kept_as_their_wire_names(wiring):
    job, _ = wiring.job_service().submit("cv.match", {"jobDescription": "Senior Python engineer"})
    assert job.input == {"jobDescription": "Senior Python engineer"}
    job, _ = wiring.job_service().submit("analytics.report", {"week": "2026-W05"})
    assert job.input == {"week": "2026-W05"}


def _generated(html: str) -> str:
    """The report's generation time as the HTML shows it (the only part that differs between two renders)."""
    import re

    found = re.search(r"[Gg]enerated[^<]*", html)
    return found.group(0) if found else ""
