"""Weekly report over a week of 1,000,000 interactions: seconds and peak memory.

    .venv/bin/python bench/report_bench.py [--interactions 1000000] [--rebuild]

Writes the week (plus a previous week of a tenth the size, for trends)
straight into a SQLite store with ``write_interactions`` (which, as the
processor's writes do, only queues each interaction for skill resolution),
resolves the queued skills as the worker's periodic rounds do (timed apart:
that work is off the write path, once per interaction), then, in a fresh
process each time, builds the report model and renders HTML, text and JSON. Peak memory is
that process's maximum resident set (``getrusage``), interpreter included.
A second figure is the one-off cost after the owner edits the skills catalog:
the first report then re-resolves the week's skills.

Goal: under 5 s and under 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine, table, write_result  # noqa: E402

WEEK = "2026-W47"
PREVIOUS_WEEK = "2026-W46"
RUNS = 3
CHUNK = 20_000


def build_store(path: pathlib.Path, interactions: int) -> tuple[float, float]:
    """Write the data set; returns (seconds writing, seconds resolving its skills as the worker would)."""
    from cv_analytics.insights.sqlite import SQLiteInsights
    from cv_analytics.reporting.synthetic import synthetic_week
    from cv_analytics.skills import load_catalog
    from cv_analytics.stores.sqlite import SQLiteStore

    started = time.perf_counter()
    store = SQLiteStore(path)
    for week, count, seed in ((PREVIOUS_WEEK, interactions // 10, 1), (WEEK, interactions, 2)):
        batch = []
        for interaction in synthetic_week(week, count, seed=seed, skill_weights={"Kubernetes": 6}):
            batch.append(interaction)
            if len(batch) == CHUNK:
                store.write_interactions(batch)
                batch = []
        if batch:
            store.write_interactions(batch)
    written = time.perf_counter()
    catalog, insights = load_catalog(), SQLiteInsights(store)
    while insights.resolve_pending(catalog, limit=20_000):  # the worker's rounds
        pass
    resolved = time.perf_counter()
    store.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return written - started, resolved - written


def peak_rss_mb() -> float:
    """This process's peak resident set. Linux's VmHWM is the process's own; getrusage's ru_maxrss
    also counts the parent's memory at fork (it survives exec), which is big after writing the data."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: str) -> None:
    """Child process: build and render one report, print the figures as JSON."""
    from cv_analytics.clock import ManualClock
    from cv_analytics.reporting.builder import build_report
    from cv_analytics.reporting.render import render
    from cv_analytics.stores.sqlite import SQLiteStore
    from cv_analytics.wiring import Settings, insights_for, load_skills_catalog

    started = time.perf_counter()
    store = SQLiteStore(path, clock=ManualClock())
    # the catalog CV_ANALYTICS_SKILLS_FILE names, as `cv-analytics report` loads it
    report = build_report(insights_for(store), WEEK, catalog=load_skills_catalog(Settings.from_env()))
    built = time.perf_counter()
    rendered = render(report)
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "build": built - started,
                "render": done - built,
                "total": done - started,
                "maxrss_mb": peak_rss_mb(),
                "queries": report.volume.queries,
                "html_kb": len(rendered.html.encode()) / 1024,
            }
        )
    )


def run_child(path: pathlib.Path, env: dict[str, str] | None = None) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(path)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true", help="rewrite the data set even if one is cached")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return 0

    cache = pathlib.Path(tempfile.gettempdir()) / "cv-analytics-bench"
    cache.mkdir(exist_ok=True)
    path = cache / f"report-v3-{args.interactions}.db"  # v3: the store's schema with queued skill resolution
    sidecar = cache / f"report-v3-{args.interactions}.json"  # how long writing the cached data set took
    if args.rebuild or not path.exists() or not sidecar.exists():
        for stale in cache.glob(f"report-v3-{args.interactions}.db*"):
            stale.unlink()
        print(f"writing {args.interactions:,} interactions (+{args.interactions // 10:,} the week before)…", flush=True)
        load, resolve = build_store(path, args.interactions)
        sidecar.write_text(json.dumps({"load_seconds": load, "resolve_seconds": resolve}))
    timings = json.loads(sidecar.read_text())
    load_seconds, resolve_seconds = timings["load_seconds"], timings["resolve_seconds"]
    size_mb = sum(p.stat().st_size for p in cache.glob(f"report-v3-{args.interactions}.db*")) / 1e6

    runs = [run_child(path) for _ in range(RUNS)]
    steady = {key: statistics.median(r[key] for r in runs) for key in ("build", "render", "total", "maxrss_mb")}
    # An edited catalog: the first report re-resolves both weeks it reads, once.
    from cv_analytics.skills import DEFAULT_CATALOG_PATH

    # (on a copy, so the cached data set stays resolved with the packaged catalog)
    edited = cache / "skills-edited.yaml"
    edited.write_text(DEFAULT_CATALOG_PATH.read_text() + "  - {name: Zig, aliases: [ziglang]}\n")
    copy = cache / f"edited-{path.name}"
    shutil.copyfile(path, copy)
    try:
        reindex = run_child(copy, {"CV_ANALYTICS_SKILLS_FILE": str(edited)})
        rerun = run_child(copy, {"CV_ANALYTICS_SKILLS_FILE": str(edited)})
    finally:
        for leftover in cache.glob(f"{copy.name}*"):
            leftover.unlink()

    def goal(seconds: float, mb: float) -> str:
        return "met" if seconds < 5 and mb < 500 else "missed"

    n = f"{runs[0]['queries']:,} queries in {args.interactions:,} interactions"
    total_written = args.interactions + args.interactions // 10
    rows = [
        [
            "skills of the written interactions resolved in the worker's rounds (off the write path, once each)",
            f"{total_written:,} interactions",
            f"{resolve_seconds:.2f} ({resolve_seconds / total_written * 1e6:.0f} µs each)",
            "—",
            "background",
        ],
        [
            "weekly report (build + render HTML, text, JSON)",
            n,
            f"{steady['total']:.2f} (build {steady['build']:.2f}, render {steady['render']:.3f})",
            f"{steady['maxrss_mb']:.0f}",
            goal(steady["total"], steady["maxrss_mb"]),
        ],
        [
            "first report after editing the skills catalog (re-resolves the weeks read, once)",
            n,
            f"{reindex['total']:.2f}",
            f"{reindex['maxrss_mb']:.0f}",
            "one-off",
        ],
        [
            "the report after that",
            n,
            f"{rerun['total']:.2f}",
            f"{rerun['maxrss_mb']:.0f}",
            goal(rerun["total"], rerun["maxrss_mb"]),
        ],
    ]
    notes = [
        f"Machine: {machine()}, shared with other work. SQLite store of {size_mb:,.0f} MB, page cache warm; "
        f"median of {RUNS} fresh processes for the first row. Peak memory is the report process's maximum "
        "resident set (VmHWM), Python included.",
        "The aggregation runs in SQL, each query streaming a covering index in its GROUP BY order (SQLite "
        "has no hash aggregation: an unindexed GROUP BY sorts the whole week, ~0.7 s per million rows "
        "each; without those indexes this report took 7.4 s); Python only folds the grouped rows.",
        "Re-resolving after a catalog edit runs the skills catalog's regular expression over every query "
        "of the two weeks read, in Python (~50 µs each): a one-off per edit, milliseconds at a real CV "
        "chatbot's volume.",
    ]
    if load_seconds:
        total = args.interactions + args.interactions // 10
        notes.append(
            f"Writing the data set ({total:,} interactions with `write_interactions`, skills queued, not resolved) "
            f"took {load_seconds:.0f} s ({total / load_seconds:,.0f}/s)."
        )
    markdown = (
        "# Report benchmark\n\n"
        + table(["what", "data", "seconds", "peak RSS (MB)", "goal < 5 s, < 500 MB"], rows)
        + "\n\n"
        + "\n".join(f"- {n}" for n in notes)
        + "\n"
    )
    write_result("report_bench", markdown)
    return 0 if goal(steady["total"], steady["maxrss_mb"]) == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
