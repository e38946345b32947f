"""CPU per event, per process and per thread, of the e2e pipeline (bench/e2e_bench.py's run).

The same producer loop and worker as ``e2e_bench.run_pipeline``; what it adds is
the breakdown that wall time on shared cores cannot give: CPU µs per event of the
producer (split by thread: the caller, the client's sender and I/O threads, the
checkpointer) and of the worker, and optionally a py-spy profile of each process.

    PYTHONPATH=src python bench/perf_probe.py --pairs 20000 --repeat 3
    PYTHONPATH=src python bench/perf_probe.py --pairs 20000 --profile /tmp/prof

With ``--profile DIR``, py-spy samples both processes (every thread, idle excluded)
into ``DIR/producer.txt`` and ``DIR/worker.txt`` (collapsed stacks) and prints the
top functions of each by self and cumulative samples.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psutil

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from e2e_bench import BASE_TS, _pairs, _wait_until_ready  # noqa: E402

from cv_analytics.client import AnalyticsClient  # noqa: E402
from cv_analytics.wiring import Settings, open_queue, open_store  # noqa: E402

PY_SPY = pathlib.Path(sys.executable).with_name("py-spy")


def _thread_cpu() -> dict[str, float]:
    names = {t.native_id: t.name for t in threading.enumerate()}
    return {names.get(t.id, str(t.id)): t.user_time + t.system_time for t in psutil.Process().threads()}


def _spy(pid: int, out: pathlib.Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(PY_SPY), "record", "--pid", str(pid), "-r", "500", "--threads", "-f", "raw", "-o", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def run(tmp: pathlib.Path, pairs: list[tuple[str, str]], profile: pathlib.Path | None) -> dict[str, float]:
    env = {**os.environ, "CV_ANALYTICS_DATA_DIR": str(tmp)}
    settings = Settings.from_env(env)
    store = open_store(settings)
    open_queue(settings)
    worker = subprocess.Popen(
        [sys.executable, "-m", "cv_analytics", "worker", "--wait", "1"], env=env, stderr=subprocess.DEVNULL
    )
    spies: list[subprocess.Popen[bytes]] = []
    try:
        worker_process = psutil.Process(worker.pid)
        _wait_until_ready(worker_process, tmp)
        client = AnalyticsClient(
            lambda: open_queue(settings), spool_dir=tmp / "spool", max_buffer=max(50_000, 2 * len(pairs))
        )
        client.flush(1)  # threads started, queue opened: not the pipeline's cost
        if profile is not None:
            spies = [_spy(os.getpid(), profile / "producer.txt"), _spy(worker.pid, profile / "worker.txt")]
            time.sleep(1.0)
        threads_before = _thread_cpu()
        worker_before = sum(worker_process.cpu_times()[:2])
        started, cpu_started = time.perf_counter(), time.process_time()
        for i, (cid, session) in enumerate(pairs):
            ts = BASE_TS + i
            client.log_query("What is your experience with TypeScript?", session_id=session, correlation_id=cid, timestamp=ts)
            client.log_response(
                cid, "Seven years, mostly Node.js.", session_id=session, timestamp=ts + 230, total_time=230,
                llm_time=180, retrieval_time=50, cache_hit=False, match_quality=0.93,
                sources_used=["TypeScript", "Node.js"],
            )  # fmt: skip
        logged_cpu = time.process_time() - cpu_started
        logged_at = time.perf_counter()
        client.flush(timeout=600)
        flushed_at = time.perf_counter()
        # the producer's work ends here; what follows is this script polling the store
        producer_cpu = time.process_time() - cpu_started
        threads_after = _thread_cpu()
        lost = client.stats()
        if lost.dropped or lost.failed or lost.invalid:
            raise RuntimeError(f"the client did not send every event: {lost}")
        while store.counts().total_interactions < len(pairs):
            if time.perf_counter() - started > 900:
                raise RuntimeError("pipeline did not finish within 15 minutes")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        worker_cpu = sum(worker_process.cpu_times()[:2]) - worker_before
        client.close(timeout=10)
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(30)
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    events = 2 * len(pairs)
    result = {
        "events/s": events / elapsed,
        "producer µs/ev": producer_cpu / events * 1e6,
        "worker µs/ev": worker_cpu / events * 1e6,
        "caller-loop µs/ev": logged_cpu / events * 1e6,
        "log s": logged_at - started,
        "flush s": flushed_at - logged_at,
        "drain s": started + elapsed - flushed_at,
    }
    for name, cpu in threads_after.items():
        spent = cpu - threads_before.get(name, 0.0)
        if spent > 0.005:
            result[f"thread {name} µs/ev"] = spent / events * 1e6
    return result


def top_functions(path: pathlib.Path, limit: int = 15) -> str:
    """Top functions of a py-spy raw profile by self and by cumulative samples."""
    own: collections.Counter[str] = collections.Counter()
    cumulative: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        # "function (path/file.py:line)" -> "function (file.py)": a function's lines added up
        frames = [re.sub(r" \((?:.*/)?([^/:]+):\d+\)$", r" (\1)", f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith(("thread ", "process "))]
        total += n
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            cumulative[f] += n
    lines = [f"  samples: {total}", "  self%  function"]
    lines += [f"  {100 * n / total:5.1f}  {f}" for f, n in own.most_common(limit)]
    lines += ["  cum%   function"]
    # frames under which nearly everything runs (thread bootstraps, the CLI) say nothing
    telling = [(f, n) for f, n in cumulative.most_common() if n < 0.85 * total]
    lines += [f"  {100 * n / total:5.1f}  {f}" for f, n in telling[: limit + 10]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", type=pathlib.Path)
    args = parser.parse_args()
    pairs = _pairs(args.pairs)
    runs = []
    for _ in range(args.repeat):
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as d:
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
            result = run(pathlib.Path(d), pairs, args.profile)
        result["load"] = load
        runs.append(result)
        print("  ".join(f"{k}={v:,.1f}" for k, v in result.items()), flush=True)
    if args.repeat > 1:
        keys = ["events/s", "producer µs/ev", "worker µs/ev"]
        print("median: " + "  ".join(f"{k}={statistics.median(r[k] for r in runs):,.1f}" for k in keys))
    if args.profile:
        for name in ("producer", "worker"):
            print(f"\n{name}:\n{top_functions(args.profile / f'{name}.txt')}")


if __name__ == "__main__":
    main()
