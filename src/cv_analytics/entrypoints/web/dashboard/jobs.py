""""Generate report now": an ``analytics.report`` job for a week, through the jobs service, and its progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ....wiring import Wiring
from .views import REPORT_JOB_TYPE

TERMINAL = {"succeeded", "failed", "dead", "cancelled"}


@dataclass(frozen=True)
class JobView:
    job_id: str
    week: str | None
    status: str
    progress: int
    progress_message: str | None
    error: str | None
    #: the dashboard's page of the report the job built (once it succeeded)
    report_link: str | None
    result: dict[str, Any] | None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


def available(wiring: Wiring) -> bool:
    """Whether this build has the jobs service (``Wiring.job_service``)."""
    return callable(getattr(wiring, "job_service", None))


def submit_report(wiring: Wiring, week: str) -> str:
    job, _created = wiring.job_service().submit(REPORT_JOB_TYPE, {"week": week}, None)  # type: ignore[attr-defined]
    return str(job.job_id)


def job_view(wiring: Wiring, job_id: str) -> JobView | None:
    job = wiring.job_service().get(job_id)  # type: ignore[attr-defined]
    if job is None or job.type != REPORT_JOB_TYPE:
        return None
    state = getattr(job.status, "value", job.status)
    week = (job.input or {}).get("week")
    result = job.result if isinstance(job.result, dict) else None
    return JobView(
        job_id=str(job.job_id),
        week=week,
        status=str(state),
        progress=int(job.progress or 0),
        progress_message=job.progress_message,
        error=str(job.error) if job.error else None,
        report_link=f"/dashboard/reports/{week}" if state == "succeeded" and week else None,
        result=result,
    )
