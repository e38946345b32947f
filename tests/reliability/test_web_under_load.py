"""Scenario 9: the web app under load while its analytics worker is stopped and restarted.

``cv-analytics serve --no-workers`` (BM25 retrieval, analytics on, events to the embedded queue) takes
``/api/search`` from Debian's ``wrk`` at concurrency 64 for 30 s: 4 s with ``cv-analytics worker`` running
steadily, 20 s during which the worker is stopped with SIGTERM, restarted, killed with SIGKILL and
restarted (it drains its backlog under the load), 4 s steady again. No request may fail or take over
3 s, the fault window's latency is held against the steady windows' of the same run, and after a final
drain every search the server answered is one interaction in the store, by correlation id.
"""

from __future__ import annotations

import contextlib
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

from cv_analytics.queues.base import QueueAttributes
from cv_analytics.wiring import ANALYTICS_QUEUE, Settings, Wiring, open_store

from .harness import CliProcess, Survived, child_env, record_survived, tally_interactions, wait_until

pytestmark = pytest.mark.slow

WRK = pathlib.Path("/usr/bin/wrk")
WRK_SCRIPT = pathlib.Path(__file__).with_name("wrk_search.lua")
CONCURRENCY = 64
WARM_UP_SECONDS = 2
#: the baseline, the worker running steadily: before the fault window and after it (drift cancels)
BASELINE_SECONDS = 4
FAULT_SECONDS = 20
#: wrk counts a request slower than this as a timeout: one blocked behind a stalled event loop
#: (an outage is 4 s long; the p99 reached 1.6 s at a load average of 17)
REQUEST_TIMEOUT = "3s"
#: the worker's SIGTERM, seconds into the fault window; it is restarted after an outage, SIGKILLed as
#: soon as it holds messages of its backlog, and restarted after another outage
STOP_AT = 2.0
OUTAGE_SECONDS = 4.0
#: a SIGKILLed worker's batch comes back after this (the embedded default is 30 s)
VISIBILITY_TIMEOUT = "5"
#: issue 10's bound on p99, analytics on / off; here fault window / baseline, recorded against it
WEB_ISSUE_P99_BOUND = 1.05
#: what is asserted on a shared 2-core machine, where others' bursts move a window's p99 (the fault
#: window's over the steady one's: 0.64 to 2.61 in 13 runs at load averages of 4 to 17, 0.73 to 1.26 in
#: 3 runs without faults): the median, which bursts hardly move (0.86 to 1.56), at most doubled (the loop
#: blocked through the outages, or a sender busy while the worker is down, moves it far more), and the
#: p99 at most 4×; a request held for seconds is a wrk timeout, a failure
ASSERTED_P50_RATIO = 2.0
ASSERTED_P99_RATIO = 4.0
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


def _percentile_ms(percent: float, *runs: dict) -> float:
    """A percentile of the runs' latencies together (their histograms merged; wrk's, corrected for
    coordinated omission as its own percentiles are)."""
    histogram = sum((run["histogram"] for run in runs), Counter())
    rank = percent / 100 * sum(histogram.values())
    seen = 0
    for micros in sorted(histogram):
        seen += histogram[micros]
        if seen >= rank:
            return micros / 1000
    raise AssertionError("no latency recorded")


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


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
    wiring = Wiring(settings)
    queue = wiring.queue(ANALYTICS_QUEUE)
    queue_at: dict[str, QueueAttributes] = {}  # the analytics queue at each fault
    try:
        server.wait_for_output("serving on", stream="stdout")
        url = _URL.search(server.stdout()).group(1)

        runs["warm-up"] = _run_wrk(url, WARM_UP_SECONDS, mix, tmp_path / "warm-up")
        runs["before"] = _run_wrk(url, BASELINE_SECONDS, mix, tmp_path / "before")
        load = _start_wrk(url, FAULT_SECONDS, mix, tmp_path / "fault")
        started = time.monotonic()
        _sleep_until(started + STOP_AT)
        stop_codes.append(workers[-1].terminate(timeout=30))
        _sleep_until(started + STOP_AT + OUTAGE_SECONDS)
        workers.append(CliProcess(env, *worker_args, log_dir=logs))

        def draining() -> bool:
            queue_at["sigkill"] = queue.attributes()
            return queue_at["sigkill"].in_flight > 0

        with contextlib.suppress(AssertionError):  # killed all the same; the row says how much was in flight
            wait_until(draining, 6, what="the restarted worker draining its backlog", interval=0.005)
        workers[-1].kill()
        killed_at = time.monotonic() - started
        _sleep_until(started + killed_at + OUTAGE_SECONDS)
        queue_at["restart"] = queue.attributes()
        workers.append(CliProcess(env, *worker_args, log_dir=logs))
        runs["fault"] = _finish_wrk(load, tmp_path / "fault")
        runs["after"] = _run_wrk(url, BASELINE_SECONDS, mix, tmp_path / "after")

        answered = _answered(url)
        served = sum(answered.values())
        drain_started = time.monotonic()
        with contextlib.suppress(AssertionError):  # what never arrives is counted lost below, in the row
            wait_until(lambda: _stored(settings) >= served, 60, what=f"{served} interactions in the store", interval=0.2)
        drained_after = time.monotonic() - drain_started
        stop_codes += [server.terminate(timeout=30), workers[-1].terminate(timeout=30)]
        absorbed = re.search(r"(\d+) duplicate", workers[-1].stderr())

        store = open_store(settings)
        try:
            tally = tally_interactions(store, [i for run in runs.values() for i in run["ids"]])
        finally:
            store.close()
    finally:
        server.kill()
        for worker in workers:
            worker.kill()
        wiring.close()

    read = sum(run["responses"] for run in runs.values())
    failed = sum(run["failed"] for run in runs.values())
    # requests in flight when a wrk run's -d ran out: answered by the server, never read by wrk
    unread = served - read
    lost = tally.lost + max(0, unread - tally.unexpected)
    steady, fault = (runs["before"], runs["after"]), (runs["fault"],)
    p50 = {"steady": _percentile_ms(50, *steady), "fault": _percentile_ms(50, *fault)}
    p99 = {"steady": _percentile_ms(99, *steady), "fault": _percentile_ms(99, *fault)}
    p50_ratio, p99_ratio = p50["fault"] / p50["steady"], p99["fault"] / p99["steady"]
    record_survived(
        Survived(
            "9. web app under load, worker stopped",
            f"analytics worker SIGTERM at {STOP_AT:g} s of a {FAULT_SECONDS} s window, restarted {OUTAGE_SECONDS:g} s "
            f"later, SIGKILL while it drains (at {killed_at:.1f} s), restarted {OUTAGE_SECONDS:g} s later; wrk "
            f"loading /api/search at concurrency {CONCURRENCY}",
            f"{served:,} searches in {WARM_UP_SECONDS + 2 * BASELINE_SECONDS + FAULT_SECONDS} s "
            f"({2 * served:,} events), BM25, events to the embedded queue",
            lost=lost,
            duplicated=tally.duplicated,
            notes=f"{failed} request(s) failed (socket errors, non-2xx, over {REQUEST_TIMEOUT}); p99 {p99['fault']:.0f} ms "
            f"in the fault window, {p99['steady']:.0f} ms with the worker steady ({BASELINE_SECONDS} s before and "
            f"after): ratio {p99_ratio:.2f} against the web issue's on/off bound of {WEB_ISSUE_P99_BOUND}; "
            f"p50 {p50['fault']:.0f} / {p50['steady']:.0f} ms, ratio {p50_ratio:.2f} (asserted: p50 ratio at most "
            f"{ASSERTED_P50_RATIO}, p99 ratio at most {ASSERTED_P99_RATIO}, on a shared 2-core machine); stored "
            f"{drained_after:.1f} s after the load; SIGKILL with {queue_at['sigkill'].in_flight} event(s) in flight, "
            f"{queue_at['restart'].visible:,} visible at the restart, {absorbed.group(1) if absorbed else 'none'} of "
            "the redelivered found already stored",
        )
    )
    summaries = {name: {k: v for k, v in run.items() if k not in ("ids", "histogram")} for name, run in runs.items()}
    assert failed == 0, summaries
    assert set(answered) == {"200"}, answered
    assert stop_codes == [0, 0, 0], "the SIGTERMed worker, serve and the last worker exit cleanly"
    assert tally.lost == 0 and tally.duplicated == 0, tally
    assert tally.unexpected == unread, (tally, served, read)
    assert tally.details["rows"] == served, (tally, served)
    assert p50_ratio <= ASSERTED_P50_RATIO and p99_ratio <= ASSERTED_P99_RATIO, (p50, p99, summaries)
