"""What analytics costs the web app: ``/api/search`` under load with analytics on and off, in one run.

    .venv/bin/python bench/web_bench.py [--requests N] [--concurrency C] [--rounds R] [--path /api/search]

The server is the one app (``create_app``) under uvicorn on 127.0.0.1, a free
port, one process, started afresh for every run over one data directory:

* analytics on: the app as shipped, its fire-and-forget client sending the
  query and response events of every search to the embedded SQLite queue, and
  ``cv-analytics worker`` draining that queue into the store in a process of
  its own (both on the same two cores, as embedded);
* analytics off: the same app with ``CV_ANALYTICS_ANALYTICS_ENABLED=0`` (no
  client, no events) and no worker.

The load is Debian's ``wrk`` (C, a process of its own; ``_wrk_mix.lua``):
``--requests`` requests at ``--concurrency`` connections, closed loop, each
connection cycling through a fixed mix of recruiter questions (POST
``{"q": ...}``, an ``x-session-id`` header from 64 sessions; ``--retrieval``,
BM25 by default, no LLM), after a warm-up of 1,000 requests. Runs alternate off, on, off, on... (``--rounds`` of each) to
cancel drift on a shared machine; the table gives each run and the medians.
After each "on" run the bench waits until the store holds an interaction for
every search sent (the events arrived, end to end) and says how long that took
after the load stopped. CPU milliseconds per request for each process (the
server, and of it its main thread, the event loop; the analytics worker; wrk)
come from the kernel over the measured run.
httpx's AsyncClient was tried as the generator first: it spent 2.4 ms of CPU
per request on ``/healthz`` (295 requests/s at concurrency 32), so it would
have measured itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psutil

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import free_port, machine, median, table, write_json, write_result  # noqa: E402

from cv_analytics.wiring import Settings, open_store  # noqa: E402

WRK_SCRIPT = HERE / "_wrk_mix.lua"
WRK_THREADS = 2
WARM_UP_REQUESTS = 1_000
ANALYTICS_SWITCH = "CV_ANALYTICS_ANALYTICS_ENABLED"
SESSIONS = 64
#: Recruiters' favourite questions: a third of the mix, repeated (the assistant's answer cache serves them).
POPULAR = [
    "What is your experience with Python?",
    "Have you worked with TypeScript and React?",
    "Tell me about your AWS experience.",
    "Do you know Kubernetes?",
    "What databases have you used?",
    "Any experience with machine learning?",
    "Have you built REST APIs?",
    "What is your strongest programming language?",
    "Have you led a team?",
    "Do you have experience with Docker and CI/CD?",
    "What about data engineering with Spark or Airflow?",
    "Have you used PostgreSQL in production?",
    "Do you know Go or Rust?",
    "Have you worked on distributed systems?",
    "Any experience with LLMs or RAG?",
    "What testing practices do you follow?",
    "Have you used Terraform?",
    "Do you know Django or FastAPI?",
    "What is your experience with Kafka?",
    "Have you done system design interviews?",
]
#: The long tail: every skill asked about in several ways, each question once per pass of the mix.
TAIL_SKILLS = [
    "Python", "TypeScript", "JavaScript", "Java", "Kotlin", "Scala", "Go", "Rust", "C++", "C#", "Ruby", "PHP",
    "Node.js", "React", "Vue", "Angular", "Django", "Flask", "FastAPI", "Spring", "GraphQL", "gRPC",
    "PostgreSQL", "MySQL", "MongoDB", "Redis", "DynamoDB", "Elasticsearch", "Kafka", "RabbitMQ", "Spark",
    "Airflow", "Pandas", "PyTorch", "TensorFlow", "scikit-learn", "AWS Lambda", "SQS", "Azure", "GCP",
    "Docker", "Kubernetes", "Terraform", "Ansible", "Linux", "Nginx", "GitHub Actions", "Jenkins",
    "Microservices", "Observability",
]  # fmt: skip
TAIL_PHRASINGS = [
    "How many years of {} do you have?",
    "What projects have you built with {}?",
    "Would you be comfortable working with {} every day?",
    "Rate your {} skills, please.",
    "Have you used {} in production, and at what scale?",
    "What do you like least about {}?",
    "Could you mentor juniors in {}?",
    "When did you last work with {}?",
]


def question_mix(seed: int = 20261202) -> list[str]:
    """The fixed mix: the popular questions ten times each and the 400 tail questions once, shuffled."""
    tail = [phrasing.format(skill) for skill in TAIL_SKILLS for phrasing in TAIL_PHRASINGS]
    mix = POPULAR * 10 + tail
    random.Random(seed).shuffle(mix)
    return mix


def write_mix(path: pathlib.Path, route: str) -> int:
    """The wrk mix file for ``route``; how many distinct questions it holds."""
    lines = []
    if route == "/api/search":
        mix = question_mix()
        for i, question in enumerate(mix):
            lines.append(f"POST\t{route}\t{json.dumps({'q': question})}\tx-session-id: bench-session-{i % SESSIONS}")
        distinct = len(set(mix))
    else:  # any GET route (the skeleton's /healthz, to try the harness)
        lines.append(f"GET\t{route}\t\t")
        distinct = 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return distinct


# -- the processes ---------------------------------------------------------------------


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], log: pathlib.Path) -> Iterator[psutil.Process]:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _thread_cpu(process: psutil.Process, thread_id: int) -> float:
    return next((t.user_time + t.system_time for t in process.threads() if t.id == thread_id), 0.0)


@contextlib.contextmanager
def server(env: dict[str, str], log: pathlib.Path) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    args = [
        sys.executable, "-m", "uvicorn", "--factory", "cv_analytics.entrypoints.web.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    with _process(args, env, log) as proc:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if not proc.is_running() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer /healthz: {log.read_text(errors='replace')[-1500:]}")
            time.sleep(0.1)
        yield base_url, proc


@dataclass
class WrkRun:
    requests: int
    seconds: float
    errors: dict[str, int]
    latency_us: dict[str, float]
    cpu_seconds: float


def run_wrk(base_url: str, mix: pathlib.Path, total: int, concurrency: int) -> WrkRun:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("error: wrk not found: `make wrk` installs Debian's (apt-get install wrk)")
    env = {**os.environ, "WRK_MIX": str(mix), "WRK_TOTAL": str(total), "WRK_THREADS": str(WRK_THREADS)}
    args = [wrk, f"-t{WRK_THREADS}", f"-c{concurrency}", "-d600s", "--timeout", "30s", "-s", str(WRK_SCRIPT), base_url]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    threads, summary, output = [], None, []
    assert proc.stdout is not None
    cpu = 0.0
    for line in proc.stdout:
        output.append(line)
        if line.startswith("WRK_THREAD "):
            threads.append(json.loads(line.removeprefix("WRK_THREAD ")))
            if len(threads) == WRK_THREADS:
                cpu = _cpu(psutil.Process(proc.pid))
                proc.send_signal(signal.SIGINT)  # every thread is done; wrk itself would sleep until -d
        elif line.startswith("WRK_JSON "):
            summary = json.loads(line.removeprefix("WRK_JSON "))
    proc.wait()
    if summary is None or len(threads) < WRK_THREADS:
        raise RuntimeError("wrk did not finish its requests:\n" + "".join(output[-30:]))
    seconds = max(t["last_response"] for t in threads) - min(t["first_send"] for t in threads)
    errors = {kind: n for kind, n in summary["errors"].items() if n}
    return WrkRun(summary["requests"], seconds, errors, summary["latency_us"], cpu)


# -- one run ------------------------------------------------------------------------------


@dataclass
class Run:
    mode: str  # "on" | "off"
    wrk: WrkRun
    server_cpu: float
    server_loop_cpu: float  # the main thread's: the event loop, where the route's own code runs
    worker_cpu: float | None
    arrived_after_s: float | None  # on: load stopped → the last interaction stored

    @property
    def rps(self) -> float:
        return self.wrk.requests / self.wrk.seconds

    def p(self, q: str) -> float:
        return self.wrk.latency_us[q] / 1000


def _interactions(settings: Settings) -> int:
    store = open_store(settings)
    try:
        return store.counts().total_interactions
    finally:
        close = getattr(store, "close", None)
        if close:
            close()


def one_run(
    mode: str, data_dir: pathlib.Path, mix: pathlib.Path, route: str, total: int, concurrency: int, retrieval: str
) -> Run:
    env = {
        **os.environ,
        "CV_ANALYTICS_DATA_DIR": str(data_dir),
        "CV_ANALYTICS_RETRIEVAL": retrieval,
        ANALYTICS_SWITCH: "1" if mode == "on" else "0",
    }
    settings = Settings.from_env(env)
    counts_searches = route == "/api/search"
    with contextlib.ExitStack() as stack:
        worker = None
        if mode == "on":
            worker_args = [sys.executable, "-m", "cv_analytics", "worker", "--wait", "1"]
            worker = stack.enter_context(_process(worker_args, env, data_dir / "worker.log"))
        base_url, server_proc = stack.enter_context(server(env, data_dir / "server.log"))
        before = _interactions(settings) if counts_searches else 0
        run_wrk(base_url, mix, WARM_UP_REQUESTS, concurrency)
        server_cpu, worker_cpu = _cpu(server_proc), _cpu(worker) if worker else 0.0
        loop_cpu = _thread_cpu(server_proc, server_proc.pid)
        wrk = run_wrk(base_url, mix, total, concurrency)
        server_cpu = _cpu(server_proc) - server_cpu
        loop_cpu = _thread_cpu(server_proc, server_proc.pid) - loop_cpu
        worker_cpu = _cpu(worker) - worker_cpu if worker else None
        if wrk.errors:
            raise RuntimeError(f"{mode}: wrk counted errors {wrk.errors}: see {data_dir / 'server.log'}")
        arrived_after = None
        if mode == "on" and counts_searches:
            load_stopped = time.perf_counter()
            sent = WARM_UP_REQUESTS + total
            while (stored := _interactions(settings) - before) < sent:
                if time.perf_counter() - load_stopped > 120:
                    raise RuntimeError(f"on: {stored} of {sent} searches reached the store within 120 s")
                time.sleep(0.05)
            arrived_after = time.perf_counter() - load_stopped
    return Run(mode, wrk, server_cpu, loop_cpu, worker_cpu, arrived_after)


# -- the report ---------------------------------------------------------------------------


def _spread(values: list[float], fmt: str) -> str:
    return f"{format(median(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def report(
    runs: list[Run], *, route: str, total: int, concurrency: int, distinct: int, retrieval: str, load: tuple, load_after: tuple
) -> None:
    rows = []
    for i, r in enumerate(runs, 1):
        rows.append(
            [
                i, r.mode, f"{r.wrk.requests:,}", f"{r.wrk.seconds:.2f}", f"{r.rps:,.0f}", f"{r.p('50'):.1f}",
                f"{r.p('99'):.1f}", f"{1000 * r.server_cpu / r.wrk.requests:.2f}",
                f"{1000 * r.server_loop_cpu / r.wrk.requests:.2f}",
                "—" if r.worker_cpu is None else f"{1000 * r.worker_cpu / r.wrk.requests:.3f}",
                f"{1000 * r.wrk.cpu_seconds / r.wrk.requests:.3f}",
                "—" if r.arrived_after_s is None else f"{r.arrived_after_s:.2f}",
            ]
        )  # fmt: skip
    by_mode = {mode: [r for r in runs if r.mode == mode] for mode in ("off", "on")}
    med = {
        mode: {
            "rps": median([r.rps for r in rs]),
            "p50": median([r.p("50") for r in rs]),
            "p99": median([r.p("99") for r in rs]),
            "server_cpu_ms": median([1000 * r.server_cpu / r.wrk.requests for r in rs]),
        }
        for mode, rs in by_mode.items()
    }
    summary = [
        [
            mode,
            _spread([r.rps for r in rs], ",.0f"),
            _spread([r.p("50") for r in rs], ".1f"),
            _spread([r.p("99") for r in rs], ".1f"),
            _spread([1000 * r.server_cpu / r.wrk.requests for r in rs], ".2f"),
        ]
        for mode, rs in by_mode.items()
    ]
    p99_ratio = med["on"]["p99"] / med["off"]["p99"]
    rps_ratio = med["on"]["rps"] / med["off"]["rps"]
    p50_ratio = med["on"]["p50"] / med["off"]["p50"]
    cpu_ratio = med["on"]["server_cpu_ms"] / med["off"]["server_cpu_ms"]
    summary.append(["on / off", f"{rps_ratio:.3f}", f"{p50_ratio:.3f}", f"{p99_ratio:.3f}", f"{cpu_ratio:.3f}"])
    goals = [
        ["p99 latency on / off at most 1.05", f"{p99_ratio:.3f}", "yes" if p99_ratio <= 1.05 else "no"],
        ["throughput on / off at least 0.95", f"{rps_ratio:.3f}", "yes" if rps_ratio >= 0.95 else "no"],
    ]
    what = (
        f"POST {route}, a fixed mix of {distinct} distinct recruiter questions ({retrieval} retrieval, no LLM)"
        if route == "/api/search"
        else f"GET {route}"
    )
    markdown = (
        f"{what}: {total:,} requests per run at concurrency {concurrency} from wrk ({WRK_THREADS} threads), "
        f"uvicorn with one process on 127.0.0.1 ({machine()}; load average {load[0]:.2f} / {load[1]:.2f} before "
        f"the run, {load_after[0]:.2f} after: the two cores are shared with other work).\n\n"
        + table(["analytics", "requests/s, median (min–max)", "p50 ms", "p99 ms", "server CPU ms per request"], summary)
        + "\n\nEach run, in the order run:\n\n"
        + table(
            ["run", "analytics", "requests", "seconds", "requests/s", "p50 ms", "p99 ms", "server CPU ms/req",
             "of which the event loop's", "worker CPU ms/req", "wrk CPU ms/req", "events stored, s after the load"],
            rows,
        )  # fmt: skip
        + "\n\nOn: the app's analytics client logs a query and a response event per search to the embedded "
        "queue, and `cv-analytics worker` correlates them into the store in its own process, on the same two "
        "cores; the last column is how long after the last response the store held every search of the run. "
        "Off: `CV_ANALYTICS_ANALYTICS_ENABLED=0`, no client and no worker. Latency is wrk's, per request, from "
        "send to the whole response, closed loop at the concurrency above.\n\n## Goals\n\n"
        + table(["goal", "measured (medians)", "met"], goals)
    )
    write_result("web_bench", markdown)
    write_json(
        "web_bench",
        {
            "machine": machine(),
            "load_average_before": load,
            "load_average_after": load_after,
            "route": route,
            "requests_per_run": total,
            "concurrency": concurrency,
            "distinct_questions": distinct,
            "retrieval": retrieval,
            "runs": [
                {
                    "mode": r.mode, "requests": r.wrk.requests, "seconds": r.wrk.seconds, "requests_per_second": r.rps,
                    "latency_ms": {q: us / 1000 for q, us in r.wrk.latency_us.items()},
                    "server_cpu_seconds": r.server_cpu, "server_event_loop_cpu_seconds": r.server_loop_cpu,
                    "worker_cpu_seconds": r.worker_cpu,
                    "wrk_cpu_seconds": r.wrk.cpu_seconds, "events_stored_after_seconds": r.arrived_after_s,
                }
                for r in runs
            ],  # fmt: skip
            "medians": med,
            "ratios": {"requests_per_second": rps_ratio, "p50": p50_ratio, "p99": p99_ratio, "server_cpu": cpu_ratio},
            "goals": [{"goal": g, "measured": m, "met": met == "yes"} for g, m, met in goals],
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each mode, alternating off, on, off, on...")
    parser.add_argument("--path", default="/api/search", help="the route (a GET route such as /healthz tries the harness)")
    parser.add_argument("--retrieval", default="bm25", choices=["bm25", "embedding", "auto"], help="CV_ANALYTICS_RETRIEVAL")
    args = parser.parse_args()
    load = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="web-bench-") as d:
        data_dir = pathlib.Path(d)
        mix = data_dir / "mix.tsv"
        distinct = write_mix(mix, args.path)
        for mode in ["off", "on"] * args.rounds:
            run = one_run(mode, data_dir, mix, args.path, args.requests, args.concurrency, args.retrieval)
            print(f"{mode}: {run.rps:,.0f} requests/s, p50 {run.p('50'):.1f} ms, p99 {run.p('99'):.1f} ms", flush=True)
            runs.append(run)
    report(
        runs, route=args.path, total=args.requests, concurrency=args.concurrency, distinct=distinct,
        retrieval=args.retrieval, load=load, load_after=os.getloadavg(),
    )  # fmt: skip


if __name__ == "__main__":
    main()
