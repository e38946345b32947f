"""``cv.match`` (a job description against the skills catalog) and ``cv.summary`` (a profile for a role)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..assistant import LLMError, match_job_description, summarise_for_role
from ..assistant.job_match import MAX_JOB_DESCRIPTION_CHARS
from ..jobs import JobContext, JobRegistry, PermanentJobError
from .dependencies import JobDependencies

MATCH_JOB = "cv.match"
SUMMARY_JOB = "cv.summary"
MAX_ROLE_CHARS = 200


class MatchInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_description: str = Field(
        alias="jobDescription",
        min_length=1,
        max_length=MAX_JOB_DESCRIPTION_CHARS,
        description="The job description to match the CV against.",
    )


class SummaryInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(min_length=1, max_length=MAX_ROLE_CHARS, description="The role the summary is written for.")


def register(registry: JobRegistry, deps: JobDependencies) -> None:
    @registry.handler(MATCH_JOB, input=MatchInput)
    def match(job: MatchInput, context: JobContext) -> dict[str, Any]:
        """How well the CV fits a job description: matched skills with evidence, missing ones, a score."""
        context.report_progress(10, "matching against the skills catalog")
        try:
            result = match_job_description(deps.skills_catalog, deps.retriever, job.job_description)
        except ValueError as exc:  # a blank description: no retry makes it less blank
            raise PermanentJobError(str(exc)) from exc
        return result.to_dict()

    @registry.handler(SUMMARY_JOB, input=SummaryInput)
    def summary(job: SummaryInput, context: JobContext) -> dict[str, Any]:
        """A short profile summary for a role, by the configured LLM or from a template."""
        context.report_progress(10, "composing the summary")
        try:
            result = summarise_for_role(deps.skills_catalog, deps.retriever, job.role, llm=deps.llm_client)
        except ValueError as exc:
            raise PermanentJobError(str(exc)) from exc
        except LLMError as exc:
            if exc.transient:
                raise  # network, timeout, 5xx, 429: retried with backoff
            raise PermanentJobError(f"the LLM endpoint refused the request: {exc}") from exc
        return result.to_dict()
