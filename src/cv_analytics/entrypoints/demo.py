"""``cv-analytics demo``: realistic recruiter traffic through the real pipeline.

Two complete ISO weeks of questions about one developer's CV go through the
real client (fire-and-forget, background sender), the embedded FIFO queue and
the processor (in a background thread) into the store; then a summary, and the
HTML report of the last complete week.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..queues.base import Queue
from ..stores.base import Store
from ..stores.models import InteractionStatus

# (skill, how it may be written in a question, weight in week 1, weight in week 2)
CV_SKILLS: list[tuple[str, list[str], float, float]] = [
    ("TypeScript", ["TypeScript", "TS"], 14, 16),
    ("Python", ["Python"], 12, 12),
    ("Node.js", ["Node.js", "Node"], 10, 9),
    ("React", ["React", "React.js"], 9, 8),
    ("AWS", ["AWS", "Amazon Web Services"], 8, 10),
    ("PostgreSQL", ["PostgreSQL", "Postgres"], 6, 6),
    ("Docker", ["Docker"], 5, 5),
    ("Kubernetes", ["Kubernetes", "k8s"], 3, 9),
    ("GraphQL", ["GraphQL"], 4, 3),
    ("FastAPI", ["FastAPI"], 3, 4),
    ("Express", ["Express"], 3, 2),
    ("Redis", ["Redis"], 2, 2),
    ("jQuery", ["jQuery"], 4, 1),
]
# skills the CV does not have: these become the report's gaps
MISSING_SKILLS: list[tuple[str, list[str], float, float]] = [
    ("Rust", ["Rust"], 2, 4),
    ("Go", ["Go", "Golang"], 2, 2),
    ("Kotlin", ["Kotlin"], 1, 1),
    ("Terraform", ["Terraform"], 1, 3),
    ("Snowflake", ["Snowflake"], 1, 1),
]
TEMPLATES = [
    "What is your experience with {0}?",
    "How many years of {0} do you have?",
    "Have you used {0} in production?",
    "Tell me about a project where you used {0}.",
    "Are you comfortable with {0} and {1}?",
    "Do you know {0}?",
    "Would you describe yourself as senior in {0}?",
]
AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0",
]
REFERERS = ["https://www.linkedin.com/", "https://cv.example.dev", None]


@dataclass(frozen=True)
class SimulatedQuestion:
    timestamp_ms: int
    session_id: str
    query: str
    skills: list[str]
    known: bool
    answered: bool
    legacy: bool


def two_complete_weeks(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Start of the ISO week before last, and the start of this week (exclusive end)."""
    monday = (now - dt.timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday - dt.timedelta(weeks=2), monday


def generate_traffic(n: int, now: dt.datetime, rng: random.Random) -> list[SimulatedQuestion]:
    """Recruiter sessions of one to five questions, during working hours, over two weeks."""
    start, end = two_complete_weeks(now)
    questions: list[SimulatedQuestion] = []
    while len(questions) < n:
        week = 0 if rng.random() < 0.45 else 1
        day = start + dt.timedelta(weeks=week, days=rng.choices(range(7), weights=[5, 6, 6, 5, 4, 1, 1])[0])
        moment = day + dt.timedelta(hours=rng.gauss(13, 3), minutes=rng.uniform(0, 60))
        moment = min(max(moment, start), end - dt.timedelta(minutes=10))
        session = f"session-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
        for turn in range(min(rng.randint(1, 5), n - len(questions))):
            pool = MISSING_SKILLS if rng.random() < 0.12 else CV_SKILLS
            weights = [w[2 + week] for w in pool]
            first = rng.choices(pool, weights=weights)[0]
            # the second skill is another one: never "Rust and Rust"
            others = [(entry, w) for entry, w in zip(pool, weights, strict=True) if entry is not first]
            picked = [first, rng.choices([e for e, _ in others], weights=[w for _, w in others])[0]]
            template = rng.choice(TEMPLATES)
            words = [rng.choice(picked[0][1]), rng.choice(picked[1][1])]
            skills = [picked[0][0]] + ([picked[1][0]] if "{1}" in template else [])
            questions.append(
                SimulatedQuestion(
                    timestamp_ms=int((moment + dt.timedelta(seconds=40 * turn)).timestamp() * 1000),
                    session_id=session,
                    query=template.format(*words),
                    skills=skills,
                    known=pool is CV_SKILLS,
                    answered=rng.random() > 0.008,
                    legacy=rng.random() < 0.08,
                )
            )
    return questions


def _log(client: object, q: SimulatedQuestion, rng: random.Random) -> None:
    cid = str(uuid.uuid4())  # fresh on every run: a second demo adds traffic, not duplicates
    total = max(40.0, rng.lognormvariate(6.0, 0.5))
    cache_hit = rng.random() < 0.22
    if cache_hit:
        total = rng.uniform(15, 60)
    retrieval = round(total * rng.uniform(0.15, 0.35))
    if q.legacy:  # the older producer: requestId, matchType/matchScore, no session or timings
        client.log({"eventType": "query", "requestId": cid, "timestamp": q.timestamp_ms, "query": q.query})  # type: ignore[attr-defined]
        if q.answered:
            score = rng.randint(70, 98) if q.known else rng.randint(0, 35)
            kind = "full" if score >= 80 else "partial" if score >= 50 else "none"
            client.log(  # type: ignore[attr-defined]
                {
                    "eventType": "response",
                    "requestId": cid,
                    "timestamp": q.timestamp_ms + int(total),
                    "matchType": kind,
                    "matchScore": score,
                    "reasoning": f"{', '.join(q.skills)} {'appears' if q.known else 'does not appear'} in the CV",
                }
            )
        return
    client.log_query(  # type: ignore[attr-defined]
        q.query,
        session_id=q.session_id,
        correlation_id=cid,
        timestamp=q.timestamp_ms,
        metadata={"userAgent": rng.choice(AGENTS), "referer": rng.choice(REFERERS)},
    )
    if not q.answered:
        return
    quality = rng.uniform(0.8, 0.99) if q.known else rng.uniform(0.05, 0.45)
    if q.known and rng.random() < 0.2:
        quality = rng.uniform(0.5, 0.8)
    client.log_response(  # type: ignore[attr-defined]
        cid,
        (
            f"Yes: {', '.join(q.skills)} is part of my day-to-day work; see the projects section."
            if q.known
            else f"I have not worked with {', '.join(q.skills)} professionally yet."
        ),
        session_id=q.session_id,
        timestamp=q.timestamp_ms + int(total),
        total_time=round(total),
        llm_time=round(total) - retrieval,
        retrieval_time=retrieval,
        cache_hit=cache_hit,
        match_quality=round(quality, 3),
        sources_used=q.skills if q.known else [],
    )


def run_demo(
    open_queue: Callable[[], Queue],
    store: Store,
    *,
    data_dir: pathlib.Path,
    orphan_timeout_seconds: float,
    interactions: int,
    seed: int,
    console: Console,
) -> dict[str, Any]:
    """Log ``interactions`` simulated questions through the client into ``open_queue()``, process them
    into ``store``, print a summary and write the last complete week's report under ``data_dir/reports``.

    The client spools under ``data_dir/spool``.
    """
    from ..client import AnalyticsClient
    from ..processor import Worker

    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    traffic = generate_traffic(interactions, now, rng)
    queue = open_queue()
    worker = Worker(queue, store, wait_seconds=0.2, orphan_timeout_seconds=orphan_timeout_seconds)
    thread = threading.Thread(target=worker.run, name="cv-analytics-demo-worker", daemon=True)
    thread.start()
    client = AnalyticsClient(open_queue, spool_dir=data_dir / "spool")
    started = time.perf_counter()
    events = sum(1 + q.answered for q in traffic)
    console.print(f"[bold]cv-analytics demo[/bold]: {len(traffic)} recruiter questions, data in {data_dir}/")
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        logged = progress.add_task("logging events ", total=len(traffic))
        for i, question in enumerate(traffic):
            _log(client, question, rng)
            if i % 50 == 0:
                progress.update(logged, completed=i + 1)
        progress.update(logged, completed=len(traffic))
        client.flush(timeout=60)
        processed = progress.add_task("processing     ", total=events)
        while time.perf_counter() - started < 300:
            progress.update(processed, completed=min(worker.stats.messages, events))
            attrs = queue.attributes()
            if attrs.visible == attrs.in_flight == attrs.delayed == 0:
                break
            time.sleep(0.1)
        progress.update(processed, completed=min(worker.stats.messages, events))
    client.close(timeout=10)
    worker.stop()
    thread.join(timeout=10)
    # the demo does not wait out the orphan timeout: what is still pending now is unanswered
    store.sweep_orphans(0)
    elapsed = time.perf_counter() - started
    summary = summarise(store, now, elapsed)
    _print_summary(console, summary)
    summary["report"] = _write_report(data_dir / "reports", store, summary["week"], console)
    return summary


def summarise(store: Store, now: dt.datetime, elapsed: float) -> dict[str, object]:
    """Totals from the store, and the highlights of the last complete week's report."""
    from ..reporting import build_report, last_complete_week

    insights, catalog = _insights(store)
    counts = store.counts()
    statuses = counts.interactions
    queries = statuses[InteractionStatus.ANSWERED] + statuses[InteractionStatus.UNANSWERED]
    week = last_complete_week(now)
    report = build_report(insights, week, catalog=catalog)
    return {
        "interactions": counts.total_interactions,
        "answered": statuses[InteractionStatus.ANSWERED],
        "unanswered": statuses[InteractionStatus.UNANSWERED],
        "orphanResponses": statuses[InteractionStatus.ORPHAN_RESPONSE],
        "correlationRate": statuses[InteractionStatus.ANSWERED] / queries if queries else 0.0,
        "seconds": round(elapsed, 2),
        "week": week,
        "topSkills": [(s.skill, s.queries) for s in report.top_skills[:5]],
        "missingSkills": [(g.key, g.queries) for g in report.gaps.missing[:5]],
        "weakSkills": [(g.key, g.queries) for g in report.gaps.weak[:5]],
        "rising": [t.skill for t in report.trends.rising[:3]],
        "p50TotalMs": report.performance.total_time.p50,
    }


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    console.print(
        f"\n[bold]{summary['interactions']}[/bold] interactions in the store "
        f"({summary['answered']} answered, {summary['unanswered']} unanswered, "
        f"{summary['orphanResponses']} orphan responses) in {summary['seconds']} s"
    )
    console.print(f"correlation rate: [bold]{summary['correlationRate']:.1%}[/bold]")
    console.print(f"[bold]{summary['week']}[/bold] (last complete week):")
    console.print("  top skills: " + ", ".join(f"{s} ({n})" for s, n in summary["topSkills"]))
    for label, key in (
        ("gaps missing from the CV, add them", "missingSkills"),
        ("gaps answered weakly, strengthen what the CV says", "weakSkills"),
    ):
        console.print(f"  {label}: " + (", ".join(f"{s} ({n})" for s, n in summary[key]) or "none"))
    if summary["rising"]:
        console.print("  rising: " + ", ".join(summary["rising"]))
    if summary["p50TotalMs"] is not None:
        console.print(f"  median answer time: {summary['p50TotalMs']:.0f} ms")


def _write_report(reports_dir: pathlib.Path, store: Store, week: str, console: Console) -> str:
    from ..reporting import write_report

    insights, catalog = _insights(store)
    paths = write_report(insights, week, reports_dir, formats=("html",), catalog=catalog)
    console.print(f"weekly report for {week}: [bold]{paths['html']}[/bold]")
    return str(paths["html"])


def _insights(store: Store) -> tuple[Any, Any]:
    """The report's figures over the demo's store, resolved with the packaged catalog its traffic is drawn from."""
    from ..skills import load_catalog
    from ..wiring import insights_for

    return insights_for(store), load_catalog()
