"""``analytics.report``: the weekly report of a given week, on demand (the web app's "generate now")."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..exceptions import ConfigurationError
from ..jobs import JobContext, JobRegistry
from ..reporting import IsoWeek, build_report, render
from .dependencies import JobDependencies

REPORT_JOB = "analytics.report"


class ReportInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    week: str = Field(
        description="ISO 8601 week, e.g. 2026-W47", pattern=r"^\d{4}-W\d{2}$", examples=["2026-W47"]
    )

    @field_validator("week")
    @classmethod
    def _iso_week(cls, week: str) -> str:
        try:
            return str(IsoWeek.parse(week))
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None


def register(registry: JobRegistry, deps: JobDependencies) -> None:
    @registry.handler(REPORT_JOB, input=ReportInput, timeout_seconds=600.0)
    def weekly_report(job: ReportInput, context: JobContext) -> dict[str, Any]:
        """The weekly report of ``week`` from the store: its HTML, text and JSON."""
        context.report_progress(5, "closing out unanswered queries")
        if deps.sweep_orphans is not None:
            deps.sweep_orphans()
        context.check_cancelled()
        context.report_progress(20, f"reading {job.week}")
        report = build_report(deps.insights, job.week, catalog=deps.skills_catalog, clock=deps.clock)
        context.check_cancelled()
        context.report_progress(80, "rendering")
        rendered = render(report)
        return {
            "week": rendered.week,
            "subject": rendered.subject,
            "html": rendered.html,
            "text": rendered.text,
            "json": json.loads(rendered.json),
        }
