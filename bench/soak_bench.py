"""Soak: the analytics client at 2,000 interactions/s and the jobs service at 50 jobs/s, for 5 minutes, on one data directory.

    .venv/bin/python bench/soak_bench.py [--seconds S] [--warm-up W] [--rate R] [--job-rate J]
                                         [--job-type cv.summary|bench.noop] [--plot PNG] [--update-readme]
    BENCH_SOAK_SECONDS=30 .venv/bin/python bench/soak_bench.py      # a short run while developing

It prints the tables it writes to ``bench/results/soak_bench.md`` (figures and every sample in
``soak_bench.json``), draws ``docs/images/soak.png``, and with ``--update-readme`` puts the tables in
the README between its ``<!-- soak:begin -->`` and ``<!-- soak:end -->`` markers.

Everything runs embedded as ``cv-analytics serve`` runs it, each part in its own process:

* this process is the chatbot: the real ``AnalyticsClient`` (``open_client``, its defaults) logs
  query/response pairs in the contract's shapes (user agent and referer, timings, match quality,
  sources; one pair in ten response first, 1,000 sessions interleaved), open loop: each pair at its
  scheduled time, whether or not the pipeline keeps up; and, on a thread of its own,
  ``JobService.submit`` at its own paced rate (``cv.summary`` on its template path with BM25
  retrieval, or a no-op type as ``bench/jobs_bench.py`` registers it);
* ``cv-analytics worker`` drains the analytics queue into the store;
* ``cv-analytics jobs worker`` runs the jobs and ``cv-analytics jobs results`` writes their results.

The traffic runs for a warm-up (60 s by default: the worker's SQLite page cache of the store, 64 MiB,
fills in about that) and then for the measured seconds (300 by default). Measured:

* latency from ``log_query`` to the stored interaction, for every interaction of the measured span:
  the worker's ``processed_at`` (its clock reading when it writes the batch, ms) minus the query's
  timestamp, which is its *scheduled* time (so a producer running late counts against the pipeline);
  and, for one interaction in 100, until a reader sees it in the store (commit included; the reader,
  ``bench/_soak_reader.py``, is a process of its own, its page cache no part of the chatbot's memory);
* job latency, scheduled submit → ``succeeded`` in the job store (the result processor's ``finished_at``);
* each process's resident memory every second (start = the end of the warm-up, end = the end of the
  traffic; growth beyond 10 % is the soak's failure), and its CPU seconds from the kernel over the
  measured span and the drain after it, per event and per job (this process split by thread: the
  caller and the client's threads, the submitter);
* the depth of the analytics queue and of the job request and response queues every second (visible
  plus in flight), plotted with the memory and the latency over time (``--plot``, PNG);
* loss: at the end every interaction is stored exactly once (the fault suite's tallies) and every job
  has succeeded, after one attempt; the dead-letter queues are empty; the client dropped nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import datetime
import os
import pathlib
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))  # the fault suite's tallies (tests/reliability/harness.py)
from _common import machine, percentile, table, write_json, write_result  # noqa: E402
from _soak_reader import interaction_id  # noqa: E402
from e2e_bench import _wait_until_ready  # noqa: E402
from jobs_bench import _bench_env, _process  # noqa: E402

from cv_analytics.jobs import JobRegistry, JobService, JobStatus  # noqa: E402
from cv_analytics.wiring import ANALYTICS_QUEUE, JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE, Settings, Wiring  # noqa: E402
from cv_analytics.wiring.client import open_client  # noqa: E402
from tests.reliability.harness import RECRUITER_QUESTIONS as QUESTIONS, tally_interactions, tally_jobs  # noqa: E402

DEFAULT_PLOT = ROOT / "docs" / "images" / "soak.png"
#: The goal: no process's resident memory grows by more than this over the measured span.
RSS_GROWTH_GOAL = 0.10
#: One interaction in this many is also polled in the store until a reader sees it.
VISIBLE_SAMPLE_EVERY = 100
#: Interactions per visitor session; SESSIONS of them are open at any moment, interleaved.
SESSION_LENGTH, SESSIONS = 10, 1_000
DRAIN_TIMEOUT = 300.0
BENCHMARK = "benchmark (client + submitter)"
CHILD_WAIT = "2"  # the long-poll wait `serve` gives its children

ROLES = ("Backend engineer", "Platform engineer", "Data engineer", "Engineering manager", "Site reliability engineer")
QUERY_METADATA = {"userAgent": "Mozilla/5.0 (X11; Linux x86_64)", "referer": "https://cv.example.dev"}
ANSWER = "I have 7 years of TypeScript experience, mostly with Node.js and Express."
SOURCES = ("TypeScript", "Node.js", "Express")


def job_id(run: int, i: int) -> str:
    return str(uuid.UUID(int=(run << 64) | i))


# -- the processes and their samples --------------------------------------------------


@dataclass
class Sample:
    """One second of the run: queue depths, the client's buffer and spool, each process's RSS and CPU."""

    at: float  # seconds since the traffic started
    depth: dict[str, int]
    buffered: int
    spool_bytes: int
    rss_mb: dict[str, float]
    cpu_s: dict[str, float]


def _depth(message_queue: Any) -> int:
    """Messages in a queue: visible, in flight or delayed."""
    attrs = message_queue.attributes()
    return attrs.visible + attrs.in_flight + attrs.delayed


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _client_threads_cpu() -> float:
    """CPU seconds of the client's sender threads in this process (they live until the client closes)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    return sum(
        t.user_time + t.system_time for t in psutil.Process().threads() if names.get(t.id, "").startswith("cv-analytics-sender")
    )


class Sampler(threading.Thread):
    """Every second: the queues' depth (visible + in flight), the client's buffer, each process's RSS and CPU."""

    def __init__(self, settings: Settings, client: Any, processes: dict[str, psutil.Process], started: float) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.settings, self.client, self.processes, self.started = settings, client, processes, started
        self.samples: list[Sample] = []
        self.stopping = threading.Event()

    def take(self, wiring: Wiring) -> Sample:
        depth = {}
        for name in (ANALYTICS_QUEUE, JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE):
            depth[name] = _depth(wiring.queue(name))
        stats = self.client.stats()
        return Sample(
            at=time.perf_counter() - self.started,
            depth=depth,
            buffered=stats.buffered,
            spool_bytes=stats.spool_bytes,
            rss_mb={label: p.memory_info().rss / 2**20 for label, p in self.processes.items()},
            cpu_s={label: _cpu(p) for label, p in self.processes.items()},
        )

    def run(self) -> None:
        with Wiring(self.settings) as wiring:  # its own connections
            next_at = time.perf_counter()
            while not self.stopping.is_set():
                self.samples.append(self.take(wiring))
                next_at += 1.0
                self.stopping.wait(max(0.0, next_at - time.perf_counter()))


# -- the traffic ----------------------------------------------------------------------


@dataclass
class Traffic:
    interactions: int = 0
    jobs: int = 0
    #: the producer's worst lateness behind its schedule (ms), and ticks more than 10 ms late
    max_lag_ms: float = 0.0
    late_ticks: int = 0
    #: CPU seconds of the logging loop's thread and of the submitter's thread over the measured span
    caller_cpu: float = 0.0
    submitter_cpu: float = 0.0
    submit_errors: list[str] = field(default_factory=list)
    submit_us: list[float] = field(default_factory=list)


def log_interactions(client: Any, run: int, rate: float, total: int, warm_up: int, started: float, wall_start: float,
                     traffic: Traffic) -> None:  # fmt: skip
    """Open loop: every interaction due by now is logged, then sleep until the next one is due."""
    i = 0
    cpu_at_warm_up = None
    while i < total:
        if cpu_at_warm_up is None and i >= warm_up:
            cpu_at_warm_up = time.thread_time()
        now = time.perf_counter()
        due = min(total, int((now - started) * rate) + 1)
        if i < due:
            lag_ms = (now - (started + i / rate)) * 1000
            traffic.max_lag_ms = max(traffic.max_lag_ms, lag_ms)
            traffic.late_ticks += lag_ms > 10
        while i < due:
            scheduled = wall_start + i / rate
            ts = int(scheduled * 1000)
            cid = interaction_id(run, i)
            session = f"visitor-{i // (SESSION_LENGTH * SESSIONS)}-{i % SESSIONS:03d}"
            query = QUESTIONS[i % len(QUESTIONS)]
            if i % 10 == 0:  # the response arrives first
                _log_response(client, cid, session, ts)
                client.log_query(query, session_id=session, correlation_id=cid, metadata=QUERY_METADATA, timestamp=ts)
            else:
                client.log_query(query, session_id=session, correlation_id=cid, metadata=QUERY_METADATA, timestamp=ts)
                _log_response(client, cid, session, ts)
            i += 1
        traffic.interactions = i
        ahead = started + i / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    traffic.caller_cpu = time.thread_time() - (cpu_at_warm_up or 0.0)


def _log_response(client: Any, cid: str, session: str, ts: int) -> None:
    client.log_response(
        cid, ANSWER, session_id=session, timestamp=ts, total_time=234, llm_time=180, retrieval_time=54,
        cache_hit=False, match_quality=0.95, sources_used=SOURCES,
    )  # fmt: skip


class Submitter(threading.Thread):
    """``JobService.submit`` at a paced rate, open loop (as the web app's request threads submit)."""

    def __init__(self, service: JobService, job_type: str, rate: float, total: int, warm_up: int,
                 started: float, traffic: Traffic) -> None:  # fmt: skip
        super().__init__(name="soak-submitter", daemon=True)
        self.service, self.job_type, self.rate, self.total, self.warm_up = service, job_type, rate, total, warm_up
        self.started, self.traffic = started, traffic

    def run(self) -> None:
        cpu_at_warm_up = 0.0
        for i in range(self.total):
            if i == self.warm_up:
                cpu_at_warm_up = time.thread_time()
            ahead = self.started + i / self.rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
            t = time.perf_counter()
            try:
                self.service.submit(self.job_type, {} if self.job_type == "bench.noop" else {"role": ROLES[i % len(ROLES)]})
            except Exception as exc:  # counted and shown: a failed submit is a lost job
                self.traffic.submit_errors.append(f"job {i}: {exc}")
            self.traffic.submit_us.append((time.perf_counter() - t) * 1e6)
            self.traffic.jobs = i + 1
        self.traffic.submitter_cpu = time.thread_time() - cpu_at_warm_up


# -- one run --------------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    traffic: Traffic
    samples: list[Sample]
    warm_up_index: int  # the first sample of the measured span
    end_index: int  # the last sample of the traffic
    #: per process over the measured span and the drain; this one's also split: producer, submitter
    cpu_s: dict[str, float]
    measured_interactions: int
    measured_jobs: int
    interaction_latency_ms: list[float]
    latency_by_window: list[tuple[float, float, float, float]]  # (second, p50, p99 interactions, p99 jobs)
    visible_latency_ms: list[float]
    visible_missing: int
    job_latency_ms: list[float]
    drain_seconds: float
    loss: dict[str, Any]
    load_before: tuple[float, ...]
    load_after: tuple[float, ...] = ()


def _children(job_type: str) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "cv_analytics"]
    job_worker = [sys.executable, str(HERE / "_jobs_ours.py")] if job_type == "bench.noop" else [*cli, "jobs", "worker", "--wait", CHILD_WAIT]
    return {
        "analytics worker": [*cli, "worker", "--wait", CHILD_WAIT],
        "job worker": job_worker,
        "job results": [*cli, "jobs", "results", "--wait", CHILD_WAIT],
    }


@contextlib.contextmanager
def _processes(commands: dict[str, list[str]], env: dict[str, str], logs: pathlib.Path) -> Iterator[dict[str, psutil.Process]]:
    with contextlib.ExitStack() as stack:
        processes = {
            label: stack.enter_context(_process(args, env, logs / f"{label.replace(' ', '-')}.log"))
            for label, args in commands.items()
        }
        yield processes


def soak(args: argparse.Namespace, tmp: pathlib.Path) -> Run:
    data_dir = tmp / "data"
    env = _bench_env(CV_ANALYTICS_DATA_DIR=str(data_dir), CV_ANALYTICS_RETRIEVAL="bm25")
    settings = Settings.from_env(env)
    wiring = Wiring(settings)
    # The queues and the stores exist before the processes start polling them.
    for name in (ANALYTICS_QUEUE, JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE):
        wiring.queue(name)
    wiring.store.ping(), wiring.job_store.ping()
    if args.job_type == "bench.noop":
        from _jobs_ours import add_noop

        registry = add_noop(JobRegistry())
    else:
        registry = wiring.job_registry
    run_tag = time.time_ns() & 0xFFFF_FFFF
    jobs_made = iter(range(1 << 62))
    service = JobService(wiring.job_store, wiring.queue(JOBS_REQUEST_QUEUE), registry, new_id=lambda: job_id(run_tag, next(jobs_made)))
    load_before = os.getloadavg()
    with _processes(_children(args.job_type), env, tmp) as children, contextlib.ExitStack() as stack:
        for process in children.values():
            _wait_until_ready(process, data_dir)
        client = open_client(settings)
        processes = {BENCHMARK: psutil.Process(), **children}
        seconds = args.warm_up + args.seconds
        total_interactions, total_jobs = int(args.rate * seconds), int(args.job_rate * seconds)
        traffic = Traffic()
        seen_file = tmp / "reader.json"
        reader = [sys.executable, str(HERE / "_soak_reader.py"), str(run_tag), str(total_interactions), str(VISIBLE_SAMPLE_EVERY), str(seen_file)]
        reader_process = stack.enter_context(_process(reader, env, tmp / "reader.log"))
        _wait_until_ready(reader_process, data_dir)
        started, wall_start = time.perf_counter(), time.time()
        sampler = Sampler(settings, client, processes, started)
        warm_up_interactions, warm_up_jobs = int(args.rate * args.warm_up), int(args.job_rate * args.warm_up)
        submitter = Submitter(service, args.job_type, args.job_rate, total_jobs, warm_up_jobs, started, traffic)
        sampler.start(), submitter.start()
        print(f"soaking for {args.warm_up:g} + {args.seconds:g} s: {total_interactions:,} interactions, {total_jobs:,} jobs", flush=True)

        # The warm-up's end: where the measured span's CPU and memory start.
        warm_up_cpu: dict[str, float] = {}

        def mark_warm_up() -> None:
            time.sleep(max(0.0, started + args.warm_up - time.perf_counter()))
            warm_up_cpu.update({label: _cpu(p) for label, p in processes.items()}, client_threads=_client_threads_cpu())

        marker = threading.Thread(target=mark_warm_up, name="soak-marker", daemon=True)
        marker.start()
        log_interactions(client, run_tag, args.rate, total_interactions, warm_up_interactions, started, wall_start, traffic)
        submitter.join()
        traffic_end = time.perf_counter()
        marker.join()
        end_index = len(sampler.samples) - 1
        print(f"traffic done in {traffic_end - started:.1f} s (producer at most {traffic.max_lag_ms:.1f} ms late); draining", flush=True)

        # The drain: until the client has sent everything and the three queues are empty (each part
        # deletes a message once its write is done). Checked on the queues, not by counting the store:
        # counting its rows here would fill this process's page cache and show as this process's memory.
        client.flush(timeout=DRAIN_TIMEOUT)
        queues = [wiring.queue(name) for name in (ANALYTICS_QUEUE, JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE)]
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while any(_depth(q) for q in queues) and time.monotonic() < deadline:
            time.sleep(0.05)
        drain_seconds = time.perf_counter() - traffic_end
        cpu_s = {label: _cpu(p) - warm_up_cpu[label] for label, p in processes.items()}
        cpu_s["producer"] = traffic.caller_cpu + _client_threads_cpu() - warm_up_cpu["client_threads"]
        cpu_s["submitter"] = traffic.submitter_cpu
        sampler.stopping.set()
        sampler.join()
        seen = _reader_results(reader_process, seen_file)
        stats = client.stats()
        client.close(timeout=10)
    load_after = os.getloadavg()

    warm_up_ms = (wall_start + args.warm_up) * 1000
    warm_up_index = next(n for n, s in enumerate(sampler.samples) if s.at >= args.warm_up)
    loss = account(wiring, run_tag, total_interactions, traffic, stats)
    latencies, by_window = interaction_latencies(wiring.store, warm_up_ms, wall_start)
    job_latencies, job_windows = job_latencies_ms(wiring.job_store, run_tag, traffic.jobs, args.job_rate, wall_start, args.warm_up)
    windows = [(at, p50, p99, job_windows.get(at, float("nan"))) for at, p50, p99 in by_window]
    wiring.close()
    return Run(
        args=args,
        traffic=traffic,
        samples=sampler.samples,
        warm_up_index=warm_up_index,
        end_index=end_index,
        cpu_s=cpu_s,
        measured_interactions=total_interactions - warm_up_interactions,
        measured_jobs=total_jobs - warm_up_jobs,
        interaction_latency_ms=latencies,
        latency_by_window=windows,
        visible_latency_ms=[
            (at - (wall_start + i / args.rate)) * 1000 for i, at in seen.items() if i >= warm_up_interactions
        ],
        visible_missing=len(range(0, total_interactions, VISIBLE_SAMPLE_EVERY)) - len(seen),
        job_latency_ms=job_latencies,
        drain_seconds=drain_seconds,
        loss=loss,
        load_before=load_before,
        load_after=load_after,
    )


WINDOW_SECONDS = 5


def _reader_results(reader: psutil.Process, seen_file: pathlib.Path) -> dict[int, float]:
    """When the reader saw each sampled interaction ({index: wall-clock second}); it ends once it has seen the last."""
    deadline = time.monotonic() + 60
    while not seen_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not seen_file.exists():  # it is still waiting for one: what it saw so far
        reader.terminate()
        while not seen_file.exists() and time.monotonic() < deadline + 20:
            time.sleep(0.1)
    if not seen_file.exists():
        return {}
    return {int(i): at for i, at in json.loads(seen_file.read_text(encoding="utf-8"))["seen"].items()}


def interaction_latencies(store: Any, warm_up_ms: float, wall_start: float) -> tuple[list[float], list[tuple[float, float, float]]]:
    """Each measured interaction's ``processed_at`` minus its query's scheduled time (ms), and p50/p99 per window."""
    latencies: list[float] = []
    windows: dict[int, list[float]] = {}
    for interaction in store.iter_interactions():
        if interaction.query_timestamp is None:
            continue
        ms = float(interaction.processed_at - interaction.query_timestamp)
        if interaction.query_timestamp >= warm_up_ms:
            latencies.append(ms)
        window = max(0, int((interaction.query_timestamp / 1000 - wall_start) // WINDOW_SECONDS))  # ms rounding: never -1
        windows.setdefault(window, []).append(ms)
    by_window = [(n * WINDOW_SECONDS, percentile(v, 50), percentile(v, 99)) for n, v in sorted(windows.items())]
    return latencies, by_window


def job_latencies_ms(job_store: Any, run: int, jobs: int, rate: float, wall_start: float, warm_up: float) -> tuple[list[float], dict[float, float]]:
    """Scheduled submit → succeeded (the job store's ``finished_at``) per measured job (ms), and p99 per window."""
    latencies: list[float] = []
    windows: dict[int, list[float]] = {}
    for i in range(jobs):
        job = job_store.get(job_id(run, i))
        if job is None or job.status is not JobStatus.SUCCEEDED or job.finished_at is None:
            continue
        ms = (job.finished_at - (wall_start + i / rate)) * 1000
        if i / rate >= warm_up:
            latencies.append(ms)
        windows.setdefault(int(i / rate // WINDOW_SECONDS), []).append(ms)
    return latencies, {n * WINDOW_SECONDS: percentile(v, 99) for n, v in windows.items()}


def account(wiring: Wiring, run: int, interactions: int, traffic: Traffic, stats: Any) -> dict[str, Any]:
    """Every interaction stored exactly once, every job succeeded after one attempt, nothing dead-lettered or dropped."""
    expected = {interaction_id(run, i) for i in range(interactions)}
    stored = tally_interactions(wiring.store, expected)
    job_ids = [job_id(run, i) for i in range(traffic.jobs)]
    jobs = tally_jobs(wiring.job_store, job_ids)
    reruns = sum(1 for j in job_ids if (job := wiring.job_store.get(j)) is not None and job.attempts > 1)
    dead = {}
    for name in (ANALYTICS_QUEUE, JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE):
        dlq = wiring.queue(name).dead_letter_queue
        dead[name] = 0 if dlq is None else _depth(dlq)
    return {
        "interactions": {"expected": stored.expected, "arrived": stored.arrived, "lost": stored.lost,
                         "duplicated": stored.duplicated, "unexpected": stored.unexpected, "details": stored.details},
        "jobs": {"expected": jobs.expected, "succeeded": jobs.arrived, "lost": jobs.lost,
                 "ranTwice": reruns, "states": jobs.details["states"], "submitErrors": traffic.submit_errors[:5]},
        "deadLetters": dead,
        "client": {"sent": stats.sent, "spooled": stats.spooled, "dropped": stats.dropped, "failed": stats.failed,
                   "invalid": stats.invalid, "retries": stats.retries},
    }  # fmt: skip


# -- the report -----------------------------------------------------------------------


def _rss(run: Run, label: str) -> tuple[float, float, float]:
    """(MB at the warm-up's end, MB at the traffic's end, peak MB over the measured span)."""
    span = run.samples[run.warm_up_index : run.end_index + 1]
    return span[0].rss_mb[label], span[-1].rss_mb[label], max(s.rss_mb[label] for s in span)


def _fmt_ms(values: list[float]) -> str:
    return f"{percentile(values, 50):.0f} / {percentile(values, 99):.0f} / {max(values, default=float('nan')):.0f}"


def report(run: Run, plot: pathlib.Path | None, *, update_readme: bool = False) -> None:
    args, loss = run.args, run.loss
    events = 2 * run.measured_interactions
    span = run.samples[run.warm_up_index : run.end_index + 1]
    depth_max = {name: max(s.depth[name] for s in span) for name in span[0].depth}
    interactions, jobs = loss["interactions"], loss["jobs"]
    traffic_rows = [
        [
            f"interactions, {args.rate:,.0f}/s ({2 * args.rate:,.0f} events/s)",
            f"{run.measured_interactions:,} ({interactions['expected']:,} with the warm-up)",
            _fmt_ms(run.interaction_latency_ms),
            f"{percentile(run.visible_latency_ms, 50):.0f} / {percentile(run.visible_latency_ms, 99):.0f}",
            f"{depth_max[ANALYTICS_QUEUE]:,}",
            f"{interactions['lost']:,}",
            f"{interactions['duplicated'] + interactions['unexpected']:,}",
        ],
        [
            f"jobs `{args.job_type}`, {args.job_rate:g}/s",
            f"{run.measured_jobs:,} ({jobs['expected']:,} with the warm-up)",
            _fmt_ms(run.job_latency_ms),
            "—",
            f"{depth_max[JOBS_REQUEST_QUEUE]:,} (responses {depth_max[JOBS_RESPONSE_QUEUE]:,})",
            f"{jobs['lost']:,}",
            f"{jobs['ranTwice']:,}",
        ],
    ]
    units = {"analytics worker": (events, "µs per event", 1e6), "job worker": (run.measured_jobs, "ms per job", 1e3),
             "job results": (run.measured_jobs, "ms per job", 1e3)}  # fmt: skip
    process_rows = []
    for label in run.samples[0].rss_mb:
        start, end, peak = _rss(run, label)
        cpu = f"{run.cpu_s[label]:.1f}"
        if label == BENCHMARK:
            producer, submitter = run.cpu_s["producer"], run.cpu_s["submitter"]
            caller = run.traffic.caller_cpu
            per_unit = (f"producer {producer / events * 1e6:.1f} µs per event (the caller's loop {caller / events * 1e6:.1f}, "
                        f"the client's threads {(producer - caller) / events * 1e6:.1f}); "
                        f"submitter {submitter / max(run.measured_jobs, 1) * 1e3:.2f} ms per job")  # fmt: skip
        else:
            count, unit, scale = units[label]
            per_unit = f"{run.cpu_s[label] / max(count, 1) * scale:.{1 if scale == 1e6 else 2}f} {unit}"
        growth = (end - start) / start
        process_rows.append(
            [label, f"{start:.0f}", f"{end:.0f}", f"{growth:+.1%}", f"{peak:.0f}", cpu, per_unit]
        )
    growths = {label: (_rss(run, label)[1] - _rss(run, label)[0]) / _rss(run, label)[0] for label in run.samples[0].rss_mb}
    worst = max(growths, key=lambda k: growths[k])
    lost = interactions["lost"] + jobs["lost"]
    duplicated = interactions["duplicated"] + interactions["unexpected"] + jobs["ranTwice"]
    client = loss["client"]
    dropped = client["dropped"] + client["failed"] + client["invalid"]
    dead = sum(loss["deadLetters"].values())
    goals = [
        ["no process's RSS grows beyond 10 % over the measured span", f"{worst} {growths[worst]:+.1%}",
         "yes" if growths[worst] <= RSS_GROWTH_GOAL else "no"],
        ["zero loss: every interaction stored once, every job succeeded once",
         f"lost {lost}, duplicated {duplicated}, dead-lettered {dead}, dropped by the client {dropped}",
         "yes" if lost == duplicated == dead == dropped == 0 else "no"],
    ]  # fmt: skip
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    summary = (
        f"Soak, {args.seconds:g} s measured after a {args.warm_up:g}-s warm-up, run {when} ({machine()}; load average "
        f"{run.load_before[0]:.2f} / {run.load_before[1]:.2f} before, {run.load_after[0]:.2f} / {run.load_after[1]:.2f} after: "
        "the two cores are shared with other work).\n\n"
        + table(["traffic", "measured", "latency p50 / p99 / max ms", "seen by a reader p50 / p99 ms (1 in 100)",
                 "max queue depth", "lost", "duplicated"], traffic_rows)  # fmt: skip
        + "\n\n"
        + table(["process", "RSS MB at start", "at end", "growth", "peak", "CPU s", "CPU per unit of work"], process_rows)
        + f"\n\nThe queues were empty {run.drain_seconds:.1f} s after the traffic's end. The client sent "
        f"{client['sent']:,} events, {client['spooled']:,} of them through its disk spool (written there when its "
        f"sender fell behind), and dropped {dropped:,}."
    )
    markdown = (
        summary
        + f"\n\nInteraction latency: the worker's `processed_at` minus the query's scheduled time (the producer was at "
        f"most {run.traffic.max_lag_ms:.1f} ms behind its schedule, {run.traffic.late_ticks} times more than 10 ms); "
        f"seen by a reader: a process of its own (`bench/_soak_reader.py`) polling the store every 2 ms for one interaction in "
        f"{VISIBLE_SAMPLE_EVERY} ({len(run.visible_latency_ms):,} samples{', ' + str(run.visible_missing) + ' never seen' if run.visible_missing else ''}). "
        "Job latency: scheduled submit → `succeeded` (the result processor's `finished_at`); "
        f"`JobService.submit` took {percentile(run.traffic.submit_us, 50) / 1000:.2f} / {percentile(run.traffic.submit_us, 99) / 1000:.2f} ms (p50 / p99). "
        "Lost: interactions not stored (answered), jobs not `succeeded`; duplicated: interactions stored twice or "
        "never sent, jobs run more than once (attempts above 1). "
        "Queue depth: visible + in flight, sampled every second. RSS: at the warm-up's end and at the traffic's end "
        "(peak over the span between). CPU: from the kernel over the measured span and the drain after it "
        f"({run.drain_seconds:.1f} s); in the benchmark process by thread as well: the producer is the logging loop's "
        "thread and the client's sender threads, the submitter the thread calling `JobService.submit` (the rest of "
        "its CPU is this benchmark's sampler and drain checks, and SQLite's checkpointer threads). "
        f"The client retried {client['retries']} sends.\n\n"
        "## Goals\n\n" + table(["goal", "measured", "met"], goals)
    )
    if plot is not None:
        draw(run, plot)
        markdown += f"\n\nPlot: `{plot.relative_to(ROOT) if plot.is_relative_to(ROOT) else plot}`."
    write_result("soak_bench", markdown)
    if update_readme:
        replace_readme_block(summary)
    write_json(
        "soak_bench",
        {
            "machine": machine(),
            "when": when,
            "load_average_before": run.load_before,
            "load_average_after": run.load_after,
            "seconds": args.seconds,
            "warm_up_seconds": args.warm_up,
            "interactions_per_second": args.rate,
            "jobs_per_second": args.job_rate,
            "job_type": args.job_type,
            "measured_interactions": run.measured_interactions,
            "measured_jobs": run.measured_jobs,
            "interaction_latency_ms": {p: percentile(run.interaction_latency_ms, p) for p in (50, 90, 99, 100)},
            "visible_latency_ms": {p: percentile(run.visible_latency_ms, p) for p in (50, 90, 99, 100)},
            "job_latency_ms": {p: percentile(run.job_latency_ms, p) for p in (50, 90, 99, 100)},
            "submit_ms": {p: percentile(run.traffic.submit_us, p) / 1000 for p in (50, 99)},
            "producer_max_lag_ms": run.traffic.max_lag_ms,
            "caller_thread_cpu_seconds": run.traffic.caller_cpu,
            "drain_seconds": run.drain_seconds,
            "cpu_seconds": run.cpu_s,
            "rss_mb": {label: dict(zip(("start", "end", "peak"), _rss(run, label))) for label in run.samples[0].rss_mb},
            "max_queue_depth": depth_max,
            "loss": loss,
            "goals": [{"goal": g, "measured": m, "met": met == "yes"} for g, m, met in goals],
            "samples": [
                {"at": round(s.at, 2), "depth": s.depth, "buffered": s.buffered, "spoolBytes": s.spool_bytes,
                 "rssMb": {k: round(v, 1) for k, v in s.rss_mb.items()}, "cpuS": {k: round(v, 2) for k, v in s.cpu_s.items()}}
                for s in run.samples
            ],  # fmt: skip
            "latency_by_window": [
                {"at": at, "interactionP50Ms": p50, "interactionP99Ms": p99, "jobP99Ms": job} for at, p50, p99, job in run.latency_by_window
            ],
        },
    )


README = ROOT / "README.md"
README_BEGIN, README_END = "<!-- soak:begin -->", "<!-- soak:end -->"


def replace_readme_block(summary: str) -> None:
    """The README's soak tables (between its soak markers) become this run's."""
    text = README.read_text(encoding="utf-8")
    head, begin, rest = text.partition(README_BEGIN)
    _, end, tail = rest.partition(README_END)
    if not begin or not end:
        raise SystemExit(f"error: {README} has no {README_BEGIN} … {README_END} block to rewrite")
    README.write_text(f"{head}{README_BEGIN}\n{summary.strip()}\n{README_END}{tail}", encoding="utf-8")
    print(f"rewrote the soak tables in {README}")


def draw(run: Run, path: pathlib.Path) -> None:
    """Queue depth, resident memory and latency over the run: one PNG, three panels on one time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    at = [s.at for s in run.samples]
    fig, (depth, memory, latency) = plt.subplots(3, 1, figsize=(9, 8.5), sharex=True, constrained_layout=True)
    labels = {ANALYTICS_QUEUE: "analytics queue", JOBS_REQUEST_QUEUE: "job requests", JOBS_RESPONSE_QUEUE: "job results"}
    for name, label in labels.items():
        depth.plot(at, [s.depth[name] for s in run.samples], label=label, linewidth=1)
    depth.plot(at, [s.buffered for s in run.samples], label="client's buffer", linewidth=1, linestyle=":")
    depth.set_ylabel("messages (visible + in flight)")
    depth.set_title(
        f"Soak: {run.args.rate:,.0f} interactions/s and {run.args.job_rate:g} jobs/s "
        f"(load average {run.load_before[0]:.1f} before, {run.load_after[0]:.1f} after)"
    )
    for label in run.samples[0].rss_mb:
        memory.plot(at, [s.rss_mb[label] for s in run.samples], label=label, linewidth=1)
    memory.set_ylabel("RSS (MB)")
    windows = run.latency_by_window
    middles = [w[0] + WINDOW_SECONDS / 2 for w in windows]
    latency.plot(middles, [w[1] for w in windows], label="interaction p50", linewidth=1)
    latency.plot(middles, [w[2] for w in windows], label="interaction p99", linewidth=1)
    latency.plot(middles, [w[3] for w in windows], label="job p99", linewidth=1)
    latency.set_ylabel(f"latency (ms, per {WINDOW_SECONDS} s)")
    latency.set_xlabel("seconds since the traffic started")
    for axis in (depth, memory, latency):
        axis.axvspan(0, run.args.warm_up, color="0.9", zorder=0)
        axis.axvline(run.samples[run.end_index].at, color="0.5", linewidth=0.8, linestyle="--")
        axis.grid(True, linewidth=0.3)
        axis.legend(loc="upper right", fontsize=8, ncol=2)
        axis.set_ylim(bottom=0)
    depth.text(run.args.warm_up / 2, 0.97, "warm-up", transform=depth.get_xaxis_transform(), ha="center", va="top", fontsize=8)
    depth.text(run.samples[run.end_index].at, 0.03, "traffic ends ", transform=depth.get_xaxis_transform(), ha="right", va="bottom", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SOAK_SECONDS", "300")), help="measured seconds (after the warm-up)")
    parser.add_argument("--warm-up", type=float, default=float(os.environ.get("BENCH_SOAK_WARMUP", "60")), help="seconds of traffic before the measured span")
    parser.add_argument("--rate", type=float, default=2000.0, help="interactions per second (two events each)")
    parser.add_argument("--job-rate", type=float, default=50.0, help="jobs per second")
    parser.add_argument("--job-type", choices=("cv.summary", "bench.noop"), default="cv.summary")
    parser.add_argument("--plot", type=pathlib.Path, default=DEFAULT_PLOT, help="where the PNG goes")
    parser.add_argument("--update-readme", action="store_true", help="rewrite the README's soak tables with this run's")
    args = parser.parse_args()
    if args.seconds <= 0 or args.warm_up < 1:
        parser.error("--seconds must be positive and --warm-up at least 1")
    with tempfile.TemporaryDirectory(prefix="soak-bench-") as d:
        run = soak(args, pathlib.Path(d))
    report(run, args.plot.resolve(), update_readme=args.update_readme)


if __name__ == "__main__":
    main()
