"""Async jobs end to end with a no-op handler: cv-analytics vs huey (SQLite) vs RQ (redis-server).

    .venv/bin/python bench/jobs_bench.py [--jobs N] [--rate R] [--seconds S] [--only ours,huey,rq,rq-fork]

Each system runs as it is deployed embedded on one machine: the submitting
side is this process, the workers are processes of their own, started and
warmed up (50 jobs through) before anything is timed.

* cv-analytics: ``JobService.submit`` here; the job worker (``cv-analytics jobs worker``
  with a no-op type registered: ``_jobs_ours.py``) and
  ``cv-analytics jobs results`` as two processes (as ``serve`` runs them), on
  the embedded SQLite queues and job store, defaults otherwise.
* huey: ``SqliteHuey`` (its SQLite storage, defaults), the task enqueued here,
  ``huey_consumer`` with one worker thread (its default).
* RQ on Debian's ``redis-server``, started here on 127.0.0.1 on a free port
  in a temporary directory with the server's built-in defaults (RDB snapshots,
  no AOF), and stopped at the end: ``Queue.enqueue`` here, ``rq worker`` with
  ``SimpleWorker`` (the job runs in the worker process) and, as a second row,
  the default ``Worker`` (forks a work horse per job).

The handler does nothing and returns ``{}`` everywhere. Two phases per system:

* throughput: N jobs submitted as fast as the submitter can; the clock runs
  from the first submit until the last one has succeeded (then each job is
  looked at, oldest first, until it has; every 5 ms while the oldest has not);
* latency: open loop at R jobs/s for S seconds (each submit at its scheduled
  time, whether or not earlier ones are done). Latency is when an observer
  thread here first sees the job succeeded (every millisecond it looks at the
  oldest outstanding job, and on while they are done) minus the job's
  scheduled submit time.

"Succeeded" is: ours, status ``succeeded`` in the job store (written by the
result processor); huey, the result in its result store; RQ, status
``finished``. CPU seconds per job for each process come from the kernel
(psutil; children included, so RQ's work horses count) over each phase; the
submitter's include the observer thread and the throughput phase's checks.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import os
import pathlib
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import free_port, machine, percentile, table, write_json, write_result  # noqa: E402

WARM_UP_JOBS = 50
PHASE_TIMEOUT = 120.0
SYSTEMS = ("ours", "huey", "rq", "rq-fork")


# -- the systems ----------------------------------------------------------------------


@dataclass
class Subject:
    """One system under test: how to submit a job, and how to see it succeeded."""

    name: str
    submit: Callable[[], object]
    succeeded: Callable[[object], bool]
    processes: dict[str, psutil.Process]
    #: (created, started, finished) in wall-clock seconds, as the system records them; None if it does not
    timestamps: Callable[[object], tuple[float, float, float]] | None = None


def _bench_env(**extra: str) -> dict[str, str]:
    """The environment of a worker process: this one's, with bench/ importable (the task modules) and
    this process's PYTHONPATH made absolute (workers start in bench/; ``PYTHONPATH=src`` must still mean this tree)."""
    inherited = [str(pathlib.Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *inherited]), **extra}


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], log: pathlib.Path) -> Iterator[psutil.Process]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, cwd=HERE, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def ours_subject(tmp: pathlib.Path) -> Iterator[Subject]:
    from _jobs_ours import NOOP, add_noop

    from cv_analytics.jobs import JobRegistry, JobService, JobStatus
    from cv_analytics.wiring import JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE, Settings, Wiring

    env = _bench_env(CV_ANALYTICS_DATA_DIR=str(tmp / "data"))
    wiring = Wiring(Settings.from_env(env))
    # The queues and the job store exist before the processes start polling them.
    wiring.queue(JOBS_REQUEST_QUEUE), wiring.queue(JOBS_RESPONSE_QUEUE), wiring.job_store.ping()
    service = JobService(wiring.job_store, wiring.queue(JOBS_REQUEST_QUEUE), add_noop(JobRegistry()))
    worker = [sys.executable, str(HERE / "_jobs_ours.py")]
    results = [sys.executable, "-m", "cv_analytics", "jobs", "results"]
    with (
        _process(worker, env, tmp / "jobs_worker.log") as worker_proc,
        _process(results, env, tmp / "jobs_results.log") as results_proc,
    ):
        yield Subject(
            name="cv-analytics: JobService.submit → SQLite queue → job worker → result processor → job store",
            submit=lambda: service.submit(NOOP, {})[0].job_id,
            succeeded=lambda job_id: service.get(job_id).status is JobStatus.SUCCEEDED,
            processes={"worker": worker_proc, "results": results_proc},
            timestamps=lambda job_id: _job_times(service.get(job_id)),
        )
    wiring.close()


def _job_times(job: Any) -> tuple[float, float, float]:
    return job.created_at, job.started_at, job.finished_at


def _rq_times(job: Any) -> tuple[float, float, float]:
    job.refresh()
    return tuple(_utc(t).timestamp() for t in (job.enqueued_at, job.started_at, job.ended_at))  # type: ignore[return-value]


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)  # RQ writes UTC


@contextlib.contextmanager
def huey_subject(tmp: pathlib.Path) -> Iterator[Subject]:
    os.environ["BENCH_HUEY_DB"] = str(tmp / "huey.db")  # read by _huey_tasks at import, here and in the consumer
    import _huey_tasks

    storage = _huey_tasks.huey.storage
    consumer = [str(pathlib.Path(sys.executable).with_name("huey_consumer")), "_huey_tasks.huey", "-k", "thread", "-w", "1"]
    with _process(consumer, _bench_env(), tmp / "huey_consumer.log") as proc:
        yield Subject(
            name="huey 3.5 SqliteHuey, huey_consumer (1 worker thread)",
            submit=_huey_tasks.noop,
            succeeded=lambda result: storage.has_data_for_key(result.id),
            processes={"consumer": proc},
        )


@contextlib.contextmanager
def redis_server(tmp: pathlib.Path) -> Iterator[tuple[int, psutil.Process]]:
    """Debian's redis-server on 127.0.0.1, a free port, its built-in defaults, data in ``tmp``; its port and process."""
    import redis

    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("error: redis-server not found: `make redis-server` installs Debian's (apt-get install redis-server)")
    port = free_port()
    args = [exe, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp), "--daemonize", "no"]
    with _process(args, dict(os.environ), tmp / "redis.log") as server:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer within 20 s: {(tmp / 'redis.log').read_text()[-500:]}") from None
                time.sleep(0.05)
        client.close()
        yield port, server


@contextlib.contextmanager
def rq_subject(tmp: pathlib.Path, port: int, redis_process: psutil.Process, *, fork: bool) -> Iterator[Subject]:
    import redis
    import rq
    from rq.job import JobStatus

    import _rq_tasks

    connection = redis.Redis(host="127.0.0.1", port=port)
    name = "bench-fork" if fork else "bench-simple"
    jobs = rq.Queue(name, connection=connection)
    worker_class = "rq.Worker" if fork else "rq.worker.SimpleWorker"
    worker = [
        str(pathlib.Path(sys.executable).with_name("rq")), "worker", "--url", f"redis://127.0.0.1:{port}",
        "--worker-class", worker_class, "--quiet", "--disable-job-desc-logging", name,
    ]  # fmt: skip
    with _process(worker, _bench_env(), tmp / f"rq_{name}.log") as proc:
        yield Subject(
            name=f"RQ 3.0 on redis-server, `rq worker` ({'Worker: forks per job' if fork else 'SimpleWorker'})",
            submit=lambda: jobs.enqueue(_rq_tasks.noop),
            succeeded=lambda job: job.get_status(refresh=True) == JobStatus.FINISHED,
            processes={"worker": proc, "redis-server": redis_process},
            timestamps=_rq_times,
        )
    connection.close()


# -- the two phases -------------------------------------------------------------------


@dataclass
class Phase:
    jobs: int
    seconds: float
    cpu_seconds: dict[str, float]  # per process label, over the phase
    submit_us: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    stages_ms: dict[str, list[float]] = field(default_factory=dict)

    def cpu_ms_per_job(self) -> dict[str, float]:
        return {label: 1000 * cpu / self.jobs for label, cpu in self.cpu_seconds.items()}


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


class _CpuMeter:
    def __init__(self, subject: Subject) -> None:
        self.processes = subject.processes
        self.before = {label: _cpu(p) for label, p in self.processes.items()}
        self.submitter_before = time.process_time()

    def seconds(self) -> dict[str, float]:
        spent = {"submitter": time.process_time() - self.submitter_before}
        spent.update({label: _cpu(p) - self.before[label] for label, p in self.processes.items()})
        return spent


def run_throughput(subject: Subject, jobs: int) -> Phase:
    meter = _CpuMeter(subject)
    submit_us = []
    pending: collections.deque[object] = collections.deque()
    started = time.perf_counter()
    for _ in range(jobs):
        t = time.perf_counter()
        pending.append(subject.submit())
        submit_us.append((time.perf_counter() - t) * 1e6)
    # Each job is seen succeeded once, oldest first: the wait follows the workers' front, and ends
    # when the last job is done (a succeeded job never changes again).
    while pending:
        if subject.succeeded(pending[0]):
            pending.popleft()
            continue
        if time.perf_counter() - started > PHASE_TIMEOUT:
            raise RuntimeError(f"{subject.name}: {jobs - len(pending)} of {jobs} jobs succeeded within {PHASE_TIMEOUT:.0f} s")
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    return Phase(jobs, elapsed, meter.seconds(), submit_us=submit_us)


def run_latency(subject: Subject, rate: float, seconds: float) -> Phase:
    jobs = int(rate * seconds)
    submitted: queue.SimpleQueue[tuple[object, float] | None] = queue.SimpleQueue()
    latencies: list[float] = []
    failure: list[str] = []

    def observe() -> None:
        # Oldest first, and a sweep stops at the first job not done yet: jobs finish about in
        # submission order, so a sweep costs about one look (not one per outstanding job, which
        # would take a good part of a core from the systems measured). A job done before an older
        # one is seen when that one is: its latency is overstated, never understated.
        pending: collections.deque[tuple[object, float]] = collections.deque()
        finished_submitting = False
        while not finished_submitting or pending:
            while not submitted.empty():
                item = submitted.get()
                if item is None:
                    finished_submitting, deadline = True, time.perf_counter() + PHASE_TIMEOUT
                else:
                    pending.append(item)
            while pending and subject.succeeded(pending[0][0]):
                handle, scheduled = pending.popleft()
                latencies.append((time.perf_counter() - scheduled) * 1000)
                handles.append((handle, scheduled_wall + (scheduled - started)))
            if finished_submitting and pending and time.perf_counter() > deadline:
                failure.append(f"{len(pending)} jobs had not succeeded {PHASE_TIMEOUT:.0f} s after the last submit")
                return
            time.sleep(0.001)

    observer = threading.Thread(target=observe, name="observer")
    meter = _CpuMeter(subject)
    submit_us = []
    handles: list[tuple[object, float]] = []  # with the scheduled submit in wall-clock seconds
    started, scheduled_wall = time.perf_counter(), time.time()
    observer.start()
    for i in range(jobs):
        scheduled = started + i / rate
        if (ahead := scheduled - time.perf_counter()) > 0:
            time.sleep(ahead)
        t = time.perf_counter()
        handle = subject.submit()
        submit_us.append((time.perf_counter() - t) * 1e6)
        submitted.put((handle, scheduled))
    submitted.put(None)
    observer.join()
    elapsed = time.perf_counter() - started
    if failure:
        raise RuntimeError(f"{subject.name}: {failure[0]}")
    phase = Phase(jobs, elapsed, meter.seconds(), submit_us=submit_us, latencies_ms=latencies)
    if subject.timestamps is not None:
        phase.stages_ms = _stages(subject.timestamps, handles)
    return phase


def _stages(timestamps: Callable[[object], tuple[float, float, float]], handles: list[tuple[object, float]]) -> dict[str, list[float]]:
    """Each job's stages by the system's own clock readings (wall clock, one machine)."""
    stages: dict[str, list[float]] = {"scheduled → created": [], "created → started": [], "started → finished": [], "scheduled → finished": []}
    for handle, scheduled in handles:
        created, started, finished = timestamps(handle)
        stages["scheduled → created"].append((created - scheduled) * 1000)
        stages["created → started"].append((started - created) * 1000)
        stages["started → finished"].append((finished - started) * 1000)
        stages["scheduled → finished"].append((finished - scheduled) * 1000)
    return stages


@dataclass
class Result:
    system: str
    subject: str
    throughput: Phase
    latency: Phase

    @property
    def jobs_per_second(self) -> float:
        return self.throughput.jobs / self.throughput.seconds

    @property
    def jobs_per_busiest_cpu_second(self) -> float:
        """The throughput if each process had a core of its own: jobs per CPU-second of the busiest one."""
        return self.throughput.jobs / max(self.throughput.cpu_seconds.values())


def measure(key: str, subject: Subject, jobs: int, rate: float, seconds: float) -> Result:
    run_throughput(subject, WARM_UP_JOBS)
    throughput = run_throughput(subject, jobs)
    latency = run_latency(subject, rate, seconds)
    result = Result(key, subject.name, throughput, latency)
    print(
        f"{key}: {result.jobs_per_second:,.0f} jobs/s; at {rate:g}/s p50 {percentile(latency.latencies_ms, 50):.1f} ms, "
        f"p99 {percentile(latency.latencies_ms, 99):.1f} ms",
        flush=True,
    )
    return result


def run_systems(only: list[str], jobs: int, rate: float, seconds: float) -> list[Result]:
    results = []
    for key in only:
        with tempfile.TemporaryDirectory(prefix=f"jobs-bench-{key}-") as d:
            tmp = pathlib.Path(d)
            with contextlib.ExitStack() as stack:
                if key == "ours":
                    subject = stack.enter_context(ours_subject(tmp))
                elif key == "huey":
                    subject = stack.enter_context(huey_subject(tmp))
                else:
                    port, redis_process = stack.enter_context(redis_server(tmp))
                    subject = stack.enter_context(rq_subject(tmp, port, redis_process, fork=key == "rq-fork"))
                results.append(measure(key, subject, jobs if key != "rq-fork" else min(jobs, 1000), rate, seconds))
    return results


# -- the report -----------------------------------------------------------------------


def _cpu_cell(phase: Phase) -> str:
    per_job = phase.cpu_ms_per_job()
    return " / ".join(f"{label} {ms:.2f}" for label, ms in per_job.items())


def _redis_version() -> str | None:
    exe = shutil.which("redis-server")
    if exe is None:
        return None
    return subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()


def report(results: list[Result], *, rate: float, seconds: float, load_before: tuple[float, ...], load_after: tuple[float, ...]) -> None:
    rows = []
    for r in results:
        lat = r.latency.latencies_ms
        overloaded = " (overloaded)" if r.jobs_per_second < rate else ""
        rows.append(
            [
                r.subject,
                f"{r.throughput.jobs:,} in {r.throughput.seconds:.2f} s: **{r.jobs_per_second:,.0f}**",
                f"{percentile(lat, 50):.1f}{overloaded}",
                f"{percentile(lat, 99):.1f}{overloaded}",
                f"{max(lat):.1f}{overloaded}",
                f"{percentile(r.latency.submit_us, 50):.0f} / {percentile(r.latency.submit_us, 99):.0f}",
                _cpu_cell(r.throughput),
                f"{r.jobs_per_busiest_cpu_second:,.0f}",
                _cpu_cell(r.latency),
            ]
        )
    by_key = {r.system: r for r in results}
    goals = []
    ours = by_key.get("ours")
    if ours is not None:
        if "huey" in by_key:
            ratio = ours.jobs_per_second / by_key["huey"].jobs_per_second
            goals.append(["throughput at least 2× huey's", f"{ratio:.2f}×", "yes" if ratio >= 2 else "no"])
            ratio = ours.jobs_per_busiest_cpu_second / by_key["huey"].jobs_per_busiest_cpu_second
            goals.append(["the same, per CPU-second of the busiest process", f"{ratio:.2f}×", "yes" if ratio >= 2 else "no"])
        rq_runs = [by_key[k] for k in ("rq", "rq-fork") if k in by_key]
        if rq_runs:
            best = max(rq_runs, key=lambda r: r.jobs_per_second)
            ratio = ours.jobs_per_second / best.jobs_per_second
            goals.append(
                [f"throughput within 2× of RQ on Redis (the faster RQ worker, {best.system})", f"{ratio:.2f}×",
                 "yes" if ratio >= 0.5 else "no"]
            )  # fmt: skip
            ratio = ours.jobs_per_busiest_cpu_second / best.jobs_per_busiest_cpu_second
            goals.append(["the same, per CPU-second of the busiest process", f"{ratio:.2f}×", "yes" if ratio >= 0.5 else "no"])
        p99 = percentile(ours.latency.latencies_ms, 99)
        goals.append([f"p99 submit → succeeded under 50 ms at {rate:g} jobs/s", f"{p99:.1f} ms", "yes" if p99 < 50 else "no"])
    markdown = (
        f"Async jobs end to end, no-op handler ({machine()}; load average {load_before[0]:.2f} / {load_before[1]:.2f} "
        f"before the run, {load_after[0]:.2f} after: the two cores are shared with other work; {_redis_version()}).\n\n"
        + table(
            ["system", "throughput: jobs, seconds, jobs/s", f"p50 ms at {rate:g}/s", "p99 ms", "max ms",
             "submit µs p50 / p99", "CPU ms per job, burst", "jobs per CPU-s of the busiest process",
             f"CPU ms per job at {rate:g}/s"],
            rows,
        )  # fmt: skip
        + f"\n\nThroughput: the jobs submitted as fast as the submitter can, timed until the last has succeeded. "
        f"Latency: {int(rate * seconds):,} jobs over {seconds:g} s, open loop (each submitted at its scheduled time), "
        "from the scheduled submit until an observer thread in the submitting process, looking every millisecond "
        "at the oldest outstanding job (and on to the next while they are done), sees it succeeded (ours: status `succeeded` in the job store; huey: the result stored; "
        "RQ: status `finished`). CPU per job per process from the kernel over each phase (the submitter's include "
        "the observer; RQ's forking worker includes its work horses; RQ's rows count redis-server too); at a steady rate it includes what each system "
        "spends polling while idle. Overloaded: the system's throughput is below the rate, so its queue only "
        "grows during the latency phase.\n"
    )
    staged = [r for r in results if r.latency.stages_ms]
    if staged:
        stage_names = list(staged[0].latency.stages_ms)
        markdown += (
            f"\n\nThe latency phase by each system's own clock readings (wall clock, p50 / p99 ms): created is the "
            "job's record written (ours: in the job store; RQ: `enqueued_at`), started is the worker's claim "
            "(RQ: `started_at`), finished is the result written (ours: by the result processor; RQ: `ended_at`, "
            "set by the worker just before it saves the status). huey records none of these.\n\n"
            + table(
                ["system", *stage_names],
                [
                    [r.system, *(f"{percentile(r.latency.stages_ms[n], 50):.1f} / {percentile(r.latency.stages_ms[n], 99):.1f}" for n in stage_names)]
                    for r in staged
                ],
            )
        )
    if goals:
        markdown += "\n\n## Goals\n\n" + table(["goal", "measured", "met"], goals)
    write_result("jobs_bench", markdown)
    write_json(
        "jobs_bench",
        {
            "machine": machine(),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "redis_server": _redis_version(),
            "rate_per_second": rate,
            "latency_seconds": seconds,
            "systems": {
                r.system: {
                    "subject": r.subject,
                    "throughput_jobs": r.throughput.jobs,
                    "throughput_seconds": r.throughput.seconds,
                    "jobs_per_second": r.jobs_per_second,
                    "jobs_per_busiest_process_cpu_second": r.jobs_per_busiest_cpu_second,
                    "latency_ms": {p: percentile(r.latency.latencies_ms, p) for p in (50, 90, 99, 100)},
                    "submit_us": {p: percentile(r.latency.submit_us, p) for p in (50, 99)},
                    "cpu_ms_per_job_burst": r.throughput.cpu_ms_per_job(),
                    "cpu_ms_per_job_paced": r.latency.cpu_ms_per_job(),
                    "stages_ms": {n: {p: percentile(v, p) for p in (50, 99)} for n, v in r.latency.stages_ms.items()},
                }
                for r in results
            },
            "goals": [{"goal": g, "measured": m, "met": met == "yes"} for g, m, met in goals],
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("BENCH_JOBS", "3000")), help="jobs in the throughput phase")
    parser.add_argument("--rate", type=float, default=100.0, help="jobs per second in the latency phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument("--only", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(SYSTEMS)}")
    args = parser.parse_args()
    only = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = sorted(set(only) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}: choose from {', '.join(SYSTEMS)}")
    load_before = os.getloadavg()
    results = run_systems(only, args.jobs, args.rate, args.seconds)
    report(results, rate=args.rate, seconds=args.seconds, load_before=load_before, load_after=os.getloadavg())


if __name__ == "__main__":
    main()
