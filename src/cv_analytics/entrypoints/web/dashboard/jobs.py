""""Generate report now": an ``analytics.report`` job for a week through the jobs service, and its progress.

The job runs wherever the jobs workers run (``cv-analytics serve``, ``cv-analytics jobs worker``);
its result holds the rendered report, which the dashboard serves once it succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass

from ....exceptions import CVAnalyticsError, JobNotFoundError
from ....job_types import REPORT_JOB
from ....jobs import TERMINAL_STATUSES, Job, JobStatus
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
    #: seconds since the epoch
    created_at: float


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


def _report_job(wiring: Wiring, job_id: str) -> Job | None:
    try:
        job = wiring.job_service().get(job_id)
    except JobNotFoundError:
        return None
    return job if job.type == REPORT_JOB else None


def recent_report_jobs(wiring: Wiring, limit: int = 5) -> list[JobView]:
    """The latest report jobs, newest first (none when the jobs service cannot open here)."""
    if unavailable_reason(wiring) is not None:
        return []
    return [_view(job) for job in wiring.job_service().list(job_type=REPORT_JOB, limit=limit).jobs]


def job_view(wiring: Wiring, job_id: str) -> JobView | None:
    job = _report_job(wiring, job_id)
    return None if job is None else _view(job)


def _view(job: Job) -> JobView:
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
        created_at=job.created_at,
    )


def job_report_html(wiring: Wiring, job_id: str) -> str | None:
    """The HTML report a succeeded job rendered (None for any other job)."""
    job = _report_job(wiring, job_id)
    if job is None or job.status is not JobStatus.SUCCEEDED or not job.result:
        return None
    html = job.result.get("html")
    return html if isinstance(html, str) else None
