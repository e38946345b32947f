""""Generate report now": an ``analytics.report`` job for a week through the jobs service, and its progress.

The job runs wherever the jobs workers run (``cv-analytics serve``, ``cv-analytics jobs worker``);
its result holds the rendered report, which the dashboard serves once it succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass

from ....exceptions import CVAnalyticsError, JobNotFoundError
from ....job_types import REPORT_JOB
from ....jobs import TERMINAL_STATUSES, JobStatus
from ....wiring import Wiring


@dataclass(frozen=True)
class JobView:
    job_id: str
    week: str | None
    status: str
    progress: int
    progress_message: str | None
    error: str | None
    finished: bool
    #: the dashboard's page of the report the job rendered, once it succeeded
    report_link: str | None


def unavailable_reason(wiring: Wiring) -> str | None:
    """None when this process can submit jobs; otherwise why not (the button is hidden and says so)."""
    try:
        wiring.job_service()
    except CVAnalyticsError as exc:
        return str(exc)
    return None


def submit_report(wiring: Wiring, week: str) -> str:
    job, _created = wiring.job_service().submit(REPORT_JOB, {"week": week})
    return job.job_id


def _report_job(wiring: Wiring, job_id: str):  # noqa: ANN202 - a Job or None
    try:
        job = wiring.job_service().get(job_id)
    except JobNotFoundError:
        return None
    return job if job.type == REPORT_JOB else None


def job_view(wiring: Wiring, job_id: str) -> JobView | None:
    job = _report_job(wiring, job_id)
    if job is None:
        return None
    succeeded = job.status is JobStatus.SUCCEEDED and bool(job.result and job.result.get("html"))
    return JobView(
        job_id=job.job_id,
        week=job.input.get("week"),
        status=job.status.value,
        progress=job.progress or 0,
        progress_message=job.progress_message,
        error=job.error,
        finished=job.status in TERMINAL_STATUSES,
        report_link=f"/dashboard/jobs/{job.job_id}/report" if succeeded else None,
    )


def job_report_html(wiring: Wiring, job_id: str) -> str | None:
    """The HTML report a succeeded job rendered (None for any other job)."""
    job = _report_job(wiring, job_id)
    if job is None or job.status is not JobStatus.SUCCEEDED or not job.result:
        return None
    html = job.result.get("html")
    return html if isinstance(html, str) else None
