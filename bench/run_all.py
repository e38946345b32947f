"""`make bench`: run every benchmark in turn (they share 2 cores: never in parallel)."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ORDER = [
    "client_bench",
    "queue_bench",
    "e2e_bench",
    "worker_memory_bench",
    "report_bench",
    "aws_cost_bench",
    "aws_jobs_bench",
    "assistant_bench",
    "jobs_bench",
    "web_bench",
    "soak_bench",  # 6 minutes by default (BENCH_SOAK_SECONDS, BENCH_SOAK_WARMUP)
]


def main() -> int:
    failed = []
    for name in ORDER:
        script = HERE / f"{name}.py"
        if not script.exists():
            continue
        print(f"\n## {name}\n", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)])
        print(f"\n({name}: {time.perf_counter() - started:.0f} s, exit {code})", flush=True)
        if code:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
