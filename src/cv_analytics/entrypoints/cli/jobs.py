"""``jobs submit|status|list|cancel|worker|results``: the jobs service on the configured backends, directly (not over HTTP)."""

from __future__ import annotations

import json
import signal
import sys
from typing import Annotated, Any, Optional

import typer

from ...jobs import Job, JobInputError, JobStatus
from ...wiring import job_worker, result_processor
from . import environment
from .commands import FLAG, command, new_typer
from .errors import USAGE_EXIT_CODE, CommandError

jobs_app = new_typer(name="jobs", help="The AI-jobs service: submit jobs, follow them, run the worker and the result processor.")

#: ``submit --wait`` gives up after this long by default.
DEFAULT_SUBMIT_WAIT_SECONDS = 120.0


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def _parse_input(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--input is not JSON ({exc.msg} at character {exc.pos}): give an object, e.g. '{{\"week\": \"2026-W47\"}}'", USAGE_EXIT_CODE) from None
    if not isinstance(value, dict):
        raise CommandError(f"--input must be a JSON object, not {type(value).__name__}", USAGE_EXIT_CODE)
    return value


def _input_error(exc: JobInputError) -> CommandError:
    details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors)
    return CommandError(f"{exc} ({details})", USAGE_EXIT_CODE)


def _summary(job: Job) -> str:
    parts = [f"{job.job_id} {job.type} {job.status.value}", f"attempts {job.attempts}"]
    if job.progress is not None and not job.finished:
        parts.append(f"progress {job.progress}%" + (f" ({job.progress_message})" if job.progress_message else ""))
    if job.cancel_requested and not job.finished:
        parts.append("cancel requested")
    if job.error:
        parts.append(f"error: {job.error}")
    return ", ".join(parts)


def _ended_badly(job: Job) -> CommandError:
    return CommandError(f"job {job.job_id} {job.status.value}: {job.error or 'no reason given'}")


@command(jobs_app, "submit")
def submit(
    job_type: Annotated[str, typer.Argument(metavar="TYPE", help="cv.match, cv.summary or analytics.report")],
    input_json: Annotated[str, typer.Option("--input", help='The job\'s input as JSON, e.g. \'{"week": "2026-W47"}\'.')] = "{}",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job to finish and print it as JSON.", **FLAG)] = False,
    timeout: Annotated[float, typer.Option(help="With --wait: give up after this many seconds.", min=0)] = DEFAULT_SUBMIT_WAIT_SECONDS,
    idempotency_key: Annotated[Optional[str], typer.Option(help="Submitting again with this key returns the same job (24 h).")] = None,
) -> None:
    """Submit a job; prints its id (with --wait, the finished job as JSON; exit 1 unless it succeeded)."""
    job_input = _parse_input(input_json)
    with environment.jobs_wiring() as wiring:
        service = wiring.job_service()
        try:
            job, created = service.submit(job_type, job_input, idempotency_key=idempotency_key)
        except JobInputError as exc:
            raise _input_error(exc) from None
        _say(f"{'submitted' if created else 'already submitted with this key:'} job {job.job_id} ({job.type})")
        if not wait:
            typer.echo(job.job_id)
            return
        deadline = service.clock.monotonic() + timeout
        while not job.finished and (left := deadline - service.clock.monotonic()) > 0:
            job = service.wait(job.job_id, min(left, 20.0), known_etag=job.etag)
        if not job.finished:
            raise CommandError(
                f"job {job.job_id} is still {job.status.value} after {timeout:g}s: is `cv-analytics jobs worker` "
                "running (and `cv-analytics jobs results`)? Follow it with `cv-analytics jobs status`"
            )
        _print_json(job.to_public())
        if job.status is not JobStatus.SUCCEEDED:
            raise _ended_badly(job)


@command(jobs_app, "status")
def status(
    job_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json", help="The whole job, result included, as JSON.", **FLAG)] = False,
) -> None:
    """A job's status, attempts, progress and error (with --json, everything)."""
    with environment.jobs_wiring(read_only=True) as wiring:
        job = wiring.job_service().get(job_id)
    if as_json:
        _print_json(job.to_public())
    else:
        typer.echo(_summary(job))


@command(jobs_app, "list")
def list_jobs(
    status_filter: Annotated[Optional[str], typer.Option("--status", help="queued, running, succeeded, failed, dead or cancelled")] = None,
    job_type: Annotated[Optional[str], typer.Option("--type", help="Only jobs of this type.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1–100).", min=1, max=100)] = 20,
) -> None:
    """Jobs, newest first: id, type, status, attempts, created."""
    wanted = None
    if status_filter is not None:
        try:
            wanted = JobStatus(status_filter)
        except ValueError:
            known = ", ".join(s.value for s in JobStatus)
            raise CommandError(f"--status must be one of {known}, not {status_filter!r}", USAGE_EXIT_CODE) from None
    with environment.jobs_wiring(read_only=True) as wiring:
        page = wiring.job_service().list(status=wanted, job_type=job_type, limit=limit)
    for job in page.jobs:
        shown = job.to_public()
        typer.echo(f"{job.job_id}  {job.type:<17} {job.status.value:<9} attempts {job.attempts}  {shown['createdAt']}")
    _say(f"{len(page.jobs)} job(s)" + (" (more: raise --limit)" if page.next_cursor else ""))


@command(jobs_app, "cancel")
def cancel(job_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Cancel a job: a queued one never runs; a running one is told and ends cancelled."""
    with environment.jobs_wiring(read_only=True) as wiring:
        job = wiring.job_service().cancel(job_id)
    if job.status is JobStatus.RUNNING:
        _say(f"job {job.job_id} is running: its handler is told, and it ends cancelled")
    else:
        _say(f"job {job.job_id} is cancelled")


def _stop_on_signals(stop: Any) -> None:
    def _stop(signum: int, _frame: Any) -> None:
        _say(f"{signal.Signals(signum).name}: finishing the job in hand")
        stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


@command(jobs_app, "worker")
def worker(
    drain: Annotated[bool, typer.Option(help="Return once the request queue is empty.", **FLAG)] = False,
    wait: Annotated[float, typer.Option(help="Long-poll wait in seconds (SIGTERM is heard between polls).", min=0, max=20)] = 5.0,
) -> None:
    """Run the job worker: requests in, results to the response queue. SIGTERM finishes the job in hand."""
    with environment.jobs_wiring() as wiring:
        run = job_worker(wiring, wait_seconds=wait)
        _stop_on_signals(run.stop)
        stats = run.run(drain=drain)
    _say(
        f"handled {stats.messages} request(s): {stats.succeeded} succeeded, {stats.failed} failed or dead, "
        f"{stats.cancelled} cancelled, {stats.retried} to retry, {stats.duplicates} duplicate"
    )


@command(jobs_app, "results")
def results(
    drain: Annotated[bool, typer.Option(help="Return once the response queue is empty.", **FLAG)] = False,
    wait: Annotated[float, typer.Option(help="Long-poll wait in seconds (SIGTERM is heard between polls).", min=0, max=20)] = 5.0,
) -> None:
    """Run the result processor: results from the response queue into the job store."""
    with environment.jobs_wiring() as wiring:
        run = result_processor(wiring, wait_seconds=wait)
        _stop_on_signals(run.stop)
        stats = run.run(drain=drain)
    _say(
        f"applied {stats.applied} result(s), ignored {stats.ignored} duplicate or late, "
        f"dead-lettered {stats.dead_lettered}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app)

