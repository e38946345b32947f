"""What the pages show, read from the wiring: the week's report (the very model ``report --format json``
prints), the week index, and the pipeline's status (``status --json``'s collector).

Everything here blocks (SQLite, boto3): the routes run it in the thread pool.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ....client import spool_status
from ....clock import SystemClock
from ....ops.status import SystemStatus, collect_status
from ....queues.base import Queue
from ....reporting.builder import build_report
from ....reporting.model import Percentiles, WeeklyReport
from ....reporting.render import render
from ....reporting.weeks import IsoWeek, last_complete_week
from ....stores.models import WeekSummary
from ....wiring import ANALYTICS_QUEUE, JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE, Wiring
from .charts import Chart, Datum, horizontal_bars, vertical_bars
from .jobs import JobView, recent_report_jobs


@dataclass(frozen=True)
class WeekPage:
    report: WeeklyReport
    #: the week index (weeks with data, oldest first)
    weeks: list[WeekSummary]
    #: why this week is shown: it was asked for, or which default it is
    reason: str
    previous_week: str
    next_week: str | None
    charts: dict[str, Chart]


def default_week(weeks: list[WeekSummary], now: float) -> tuple[str, str]:
    """The last complete week when it has data, else the latest week with data; and why, in words."""
    complete = last_complete_week(now)
    with_data = {w.week for w in weeks}
    if complete in with_data or not weeks:
        return complete, "the last complete week" + ("" if weeks else " (no week has data yet)")
    latest = weeks[-1].week
    return latest, f"the latest week with data (the last complete week, {complete}, has none)"


def weekly_report(wiring: Wiring, week: str | None) -> WeeklyReport:
    """What ``cv-analytics report --week WEEK --format json`` builds: orphans swept first, the same
    builder; without a week, the default one (see :func:`default_week`)."""
    if week is None:
        _, week, _ = week_index(wiring)
    else:
        wiring.store.sweep_orphans(wiring.settings.orphan_timeout_seconds)
    return build_report(wiring.insights, week, catalog=wiring.skills_catalog, clock=wiring.clock)


def week_index(wiring: Wiring) -> tuple[list[WeekSummary], str, str]:
    """The weeks with data (after the orphan sweep `report` makes first), the default week, and why it is."""
    wiring.store.sweep_orphans(wiring.settings.orphan_timeout_seconds)
    weeks = wiring.store.weeks()
    return weeks, *default_week(weeks, (wiring.clock or SystemClock()).now())


def load_week_page(wiring: Wiring, requested: str | None) -> WeekPage:
    weeks, week, reason = week_index(wiring)
    if requested:
        week, reason = str(IsoWeek.parse(requested)), "the week asked for"
    now = (wiring.clock or SystemClock()).now()
    report = build_report(wiring.insights, week, catalog=wiring.skills_catalog, clock=wiring.clock)
    iso = IsoWeek.parse(week)
    following = iso.next()
    current = IsoWeek.containing(now)
    return WeekPage(
        report=report,
        weeks=weeks,
        reason=reason,
        previous_week=str(iso.previous()),
        next_week=str(following) if following <= current else None,
        charts=week_charts(report),
    )


def rendered_report_html(wiring: Wiring, week: str) -> str:
    return render(weekly_report(wiring, week)).html


# -- charts ---------------------------------------------------------------------------


def _queries(n: int) -> str:
    return f"{n:,} {'query' if n == 1 else 'queries'}"


def milliseconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} ms" if float(value).is_integer() else f"{value:,.1f} ms"


def week_charts(report: WeeklyReport) -> dict[str, Chart]:
    v, m, p = report.volume, report.match, report.performance
    by_day = vertical_bars(
        "chart-by-day", "Queries by day",
        [Datum(f"{d.day} {d.date:%d %b}", d.queries, f"{d.queries:,}", f"{d.day} {d.date}: {_queries(d.queries)}")
         for d in v.by_day],
        unit="queries",
    )  # fmt: skip
    by_hour = vertical_bars(
        "chart-by-hour", "Queries by hour (UTC, all days)",
        [Datum(f"{h.hour:02d}", h.queries, f"{h.queries:,}" if h.queries else "",
               f"{h.hour:02d}:00–{h.hour:02d}:59 UTC: {_queries(h.queries)}") for h in v.by_hour],
        unit="queries", height=220,
    )  # fmt: skip
    quality = horizontal_bars(
        "chart-match", "Match quality of answered queries",
        [Datum(label, n, f"{n:,}", f"{label}: {_queries(n)}", kind)
         for label, n, kind in (("full match", m.full, "full"), ("partial match", m.partial, "partial"),
                                ("no match", m.none, "none"), ("no match information", m.unknown, "unknown"))],
        unit="queries",
    )  # fmt: skip
    histogram = vertical_bars(
        "chart-scores", "Match scores (0–100)",
        [Datum(f"{b.low}–{b.high}", b.queries, f"{b.queries:,}", f"score {b.low} to {b.high}: {_queries(b.queries)}")
         for b in m.histogram],
        unit="queries", height=200,
    )  # fmt: skip
    skills = horizontal_bars(
        "chart-skills", "Top skills",
        [Datum(s.skill, s.queries, f"{s.queries:,} ({s.share:.0%})",
               f"{s.skill}: {_queries(s.queries)}, {s.share:.1%} of the week; {s.full} full, {s.partial} partial, "
               f"{s.none} no match, {s.unjudged} unjudged") for s in report.top_skills],
        unit="queries",
    )  # fmt: skip
    t = report.trends
    trends = horizontal_bars(
        "chart-trends", f"Trending skills against {t.previous_week}",
        [Datum(x.skill, abs(x.change), f"{x.change:+,} ({x.previous_queries:,} → {x.queries:,})",
               f"{x.skill}: {x.previous_queries:,} in {t.previous_week}, {x.queries:,} this week"
               + (" (new)" if x.is_new else ""), "rising" if x.change > 0 else "falling")
         for x in [*t.rising, *t.falling]],
        unit="change in queries",
    )  # fmt: skip
    latency_rows: list[Datum] = []
    for name, series in (("total", p.total_time), ("LLM", p.llm_time), ("retrieval", p.retrieval_time)):
        latency_rows.extend(_percentile_data(name, series))
    latency = horizontal_bars("chart-latency", "Answer time percentiles", latency_rows, unit="milliseconds")
    return {
        "by_day": by_day, "by_hour": by_hour, "quality": quality, "histogram": histogram,
        "skills": skills, "trends": trends, "latency": latency,
    }  # fmt: skip


def _percentile_data(name: str, series: Percentiles) -> list[Datum]:
    return [
        Datum(f"{name} {label}", value, milliseconds(value), f"{name} time {label}: {milliseconds(value)} over "
              f"{series.samples:,} responses", label)
        for label, value in (("p50", series.p50), ("p95", series.p95), ("p99", series.p99))
        if value is not None
    ]  # fmt: skip


# -- pipeline health ------------------------------------------------------------------


@dataclass(frozen=True)
class HealthPage:
    status: SystemStatus
    #: queues that could not be opened or read, with why
    unavailable: list[tuple[str, str]]
    #: the latest ``analytics.report`` jobs, newest first
    report_jobs: list[JobView]


def load_health_page(wiring: Wiring) -> HealthPage:
    """``status --json``'s collector over every queue this process is configured for."""
    queues: list[Queue] = []
    unavailable: list[tuple[str, str]] = []
    for name in (ANALYTICS_QUEUE, JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE):
        try:
            queue = wiring.queue(name)
            queue.attributes()
        except Exception as exc:  # noqa: BLE001 - one queue's trouble is shown beside the others
            unavailable.append((name, f"{type(exc).__name__}: {exc}"[:300]))
            continue
        queues.append(queue)
    status = collect_status(queues, wiring.store, spool=spool_status(wiring.settings.spool_dir))
    return HealthPage(status, unavailable, recent_report_jobs(wiring))


def when(ms: int | float | None) -> str:
    if not ms:
        return "never"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def template_helpers() -> dict[str, Any]:
    return {"when": when, "age": age, "milliseconds": milliseconds}
