"""Scenario 9: the web app under load while its analytics worker is stopped and restarted.

``cv-analytics serve --no-workers`` (BM25 retrieval, analytics on, events to the embedded queue) takes
``/api/search`` from Debian's ``wrk`` at concurrency 64: a 10 s baseline with ``cv-analytics worker``
running, then 20 s during which the worker is stopped with SIGTERM, restarted, killed with SIGKILL and
restarted (it drains its backlog under the load). No request may fail, the fault window's p99 is held
against the baseline's of the same run, and after a final drain every search the server answered is
one interaction in the store, by correlation id.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import time
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cv_analytics.wiring import Settings, open_store

from .harness import CliProcess, Survived, child_env, record_survived, tally_interactions, wait_until

pytestmark = pytest.mark.slow

WRK = pathlib.Path("/usr/bin/wrk")
WRK_SCRIPT = pathlib.Path(__file__).with_name("wrk_search.lua")
CONCURRENCY = 64
WARM_UP_SECONDS = 2
#: the baseline, the worker running steadily: before the fault window and after it (drift cancels)
BASELINE_SECONDS = 5
FAULT_SECONDS = 20
#: wrk counts a request slower than this as a timeout: one blocked behind a stalled event loop
REQUEST_TIMEOUT = "2s"
#: the worker's faults, seconds into the fault window: (moment, action)
FAULT_PLAN = ((2.0, "sigterm"), (6.0, "restart"), (10.0, "sigkill"), (14.0, "restart"))
#: a SIGKILLed worker's batch comes back after this (the embedded default is 30 s)
VISIBILITY_TIMEOUT = "5"
#: issue 10's bound on p99, analytics on / off; here fault window / baseline, recorded against it
WEB_ISSUE_P99_BOUND = 1.05
#: what is asserted of that ratio on a shared 2-core machine: an event loop blocked by the outage
#: (a request waiting on the worker, or on a lock it held) shows as seconds, not as a third more
ASSERTED_P99_RATIO = 3.0
SESSIONS = 64
_QUESTIONS = [
    f"{phrasing.format(skill)}"
    for skill in ("Python", "TypeScript", "Kubernetes", "AWS Lambda", "PostgreSQL", "Rust", "React", "Terraform")
    for phrasing in ("What is your experience with {}?", "Have you used {} in production?", "Rate your {} skills.")
]
_URL = re.compile(r"serving on (http://\S+?)/?\s")


def _write_mix(path: pathlib.Path) -> None:
    lines = [
        f"POST\t/api/search\t{json.dumps({'q': q})}\tx-session-id: load-session-{i % SESSIONS:02d}"
        for i, q in enumerate(_QUESTIONS * 3)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _start_wrk(url: str, seconds: int, mix: pathlib.Path, out: pathlib.Path) -> subprocess.Popen[str]:
    args = [str(WRK), "-t2", f"-c{CONCURRENCY}", f"-d{seconds}s", "--timeout", REQUEST_TIMEOUT, "-s", str(WRK_SCRIPT), url]
    env = {**os.environ, "WRK_MIX": str(mix), "WRK_IDS": f"{out}.ids", "WRK_LATENCY": f"{out}.latency"}
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish_wrk(process: subprocess.Popen[str], out: pathlib.Path) -> dict:
    """wrk's summary, with the correlation ids it read, its latency histogram and its failures."""
    output, _ = process.communicate(timeout=120)
    line = next((line for line in output.splitlines() if line.startswith("WRK_JSON ")), None)
    assert process.returncode == 0 and line is not None, f"wrk failed:\n{output}"
    summary = json.loads(line.removeprefix("WRK_JSON "))
    summary["ids"] = pathlib.Path(f"{out}.ids").read_text(encoding="utf-8").split()
    histogram = Counter()
    for row in pathlib.Path(f"{out}.latency").read_text(encoding="utf-8").splitlines():
        micros, count = row.split()
        histogram[int(micros)] += int(count)
    summary["histogram"] = histogram
    summary["failed"] = sum(summary["errors"].values()) + summary["non_2xx"] + summary["without_id"]
    return summary


def _run_wrk(url: str, seconds: int, mix: pathlib.Path, out: pathlib.Path) -> dict:
    return _finish_wrk(_start_wrk(url, seconds, mix, out), out)


def _p99_ms(*runs: dict) -> float:
    """The 99th percentile of the runs' latencies together (their histograms merged)."""
    histogram = sum((run["histogram"] for run in runs), Counter())
    rank = 0.99 * sum(histogram.values())
    seen = 0
    for micros in sorted(histogram):
        seen += histogram[micros]
        if seen >= rank:
            return micros / 1000
    raise AssertionError("no latency recorded")


def _answered(url: str) -> dict[str, int]:
    """Searches the server answered, by status (its own request histogram on /metrics)."""
    statuses: dict[str, int] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        if family.name == "cv_analytics_http_request_duration_seconds":
            for sample in family.samples:
                if sample.name.endswith("_count") and sample.labels.get("route") == "/api/search":
                    statuses[sample.labels["status"]] = statuses.get(sample.labels["status"], 0) + int(sample.value)
    return statuses


def _stored(settings: Settings) -> int:
    store = open_store(settings)
    try:
        return store.counts().total_interactions
    finally:
        store.close()


def test_searches_survive_the_analytics_worker_stopped_killed_and_restarted(data_dir, logs, tmp_path):
    assert WRK.exists(), "Debian's wrk is missing: `make wrk` installs it"
    env = child_env(data_dir, CV_ANALYTICS_RETRIEVAL="bm25", CV_ANALYTICS_VISIBILITY_TIMEOUT=VISIBILITY_TIMEOUT)
    settings = Settings.from_env(env)
    mix = tmp_path / "mix.tsv"
    _write_mix(mix)
    worker_args = ("worker", "--wait", "2")  # as `serve` runs it: nice 10, a 2 s long poll
    workers = [CliProcess(env, *worker_args, log_dir=logs)]
    server = CliProcess(env, "serve", "--no-workers", "--port", "0", "--no-access-log", log_dir=logs)
    runs: dict[str, dict] = {}
    stop_codes: list[int] = []
    try:
        server.wait_for_output("serving on", stream="stdout")
        url = _URL.search(server.stdout()).group(1)

        runs["warm-up"] = _run_wrk(url, WARM_UP_SECONDS, mix, tmp_path / "warm-up")
        runs["before"] = _run_wrk(url, BASELINE_SECONDS, mix, tmp_path / "before")
        load = _start_wrk(url, FAULT_SECONDS, mix, tmp_path / "fault")
        started = time.monotonic()
        for moment, action in FAULT_PLAN:
            time.sleep(max(0.0, started + moment - time.monotonic()))
            if action == "sigterm":
                stop_codes.append(workers[-1].terminate(timeout=30))
            elif action == "sigkill":
                workers[-1].kill()
            else:
                workers.append(CliProcess(env, *worker_args, log_dir=logs))
        runs["fault"] = _finish_wrk(load, tmp_path / "fault")
        runs["after"] = _run_wrk(url, BASELINE_SECONDS, mix, tmp_path / "after")

        answered = _answered(url)
        served = sum(answered.values())
        drain_started = time.monotonic()
        wait_until(lambda: _stored(settings) >= served, 60, what=f"{served} interactions in the store", interval=0.2)
        drained_after = time.monotonic() - drain_started
        server.terminate(timeout=30)
        workers[-1].terminate(timeout=30)

        store = open_store(settings)
        try:
            tally = tally_interactions(store, [i for run in runs.values() for i in run["ids"]])
        finally:
            store.close()
    finally:
        server.kill()
        for worker in workers:
            worker.kill()

    read = sum(run["responses"] for run in runs.values())
    failed = sum(run["failed"] for run in runs.values())
    # requests in flight when a wrk run's -d ran out: answered by the server, never read by wrk
    unread = served - read
    lost = tally.lost + max(0, unread - tally.unexpected)
    baseline_p99, fault_p99 = _p99_ms(runs["before"], runs["after"]), _p99_ms(runs["fault"])
    ratio = fault_p99 / baseline_p99
    record_survived(
        Survived(
            "9. web app under load, worker stopped",
            "analytics worker SIGTERM, restart, SIGKILL, restart (2, 6, 10, 14 s into a 20 s window) "
            f"while wrk loads /api/search at concurrency {CONCURRENCY}",
            f"{served:,} searches in {WARM_UP_SECONDS + 2 * BASELINE_SECONDS + FAULT_SECONDS} s "
            f"({2 * served:,} events), BM25, events to the embedded queue",
            lost=lost,
            duplicated=tally.duplicated,
            notes=f"{failed} request(s) failed (socket errors, non-2xx, over {REQUEST_TIMEOUT}); p99 {fault_p99:.0f} ms "
            f"in the fault window, {baseline_p99:.0f} ms with the worker steady ({BASELINE_SECONDS} s before and "
            f"after): ratio {ratio:.2f} against the web issue's bound of {WEB_ISSUE_P99_BOUND} (asserted at most "
            f"{ASSERTED_P99_RATIO}: a shared 2-core machine); all stored {drained_after:.1f} s after the load",
        )
    )
    summaries = {name: {k: v for k, v in run.items() if k not in ("ids", "histogram")} for name, run in runs.items()}
    assert failed == 0, summaries
    assert set(answered) == {"200"}, answered
    assert stop_codes == [0]
    assert tally.lost == 0 and tally.duplicated == 0, tally
    assert tally.unexpected == unread, (tally, served, read)
    assert tally.details["rows"] == served, (tally, served)
    assert ratio <= ASSERTED_P99_RATIO, (baseline_p99, fault_p99, summaries)
