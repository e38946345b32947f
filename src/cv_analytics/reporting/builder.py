"""Build the weekly report model from a store's aggregations.

The insights part does the counting (:meth:`~cv_analytics.insights.Insights.week_insights`,
in SQL on SQLite); this module turns counts into rates, percentiles, trends and
a short ranked list of things to do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ..clock import Clock, SystemClock
from ..events import FULL_MATCH_THRESHOLD, PARTIAL_MATCH_THRESHOLD
from ..insights import Insights
from ..insights.model import (
    LOW_MATCH_SCORE,
    SCORE_BUCKET_WIDTH,
    SkillResolver,
    SkillTally,
    WeekActivity,
    WeekInsights,
)
from .model import (
    ActionItem,
    DayCount,
    GapGroup,
    Gaps,
    HourCount,
    MatchQuality,
    Percentiles,
    Performance,
    ScoreBucket,
    SkillCount,
    Trend,
    Trends,
    Volume,
    WeeklyReport,
)
from .render import clean_text
from .weeks import IsoWeek


#: The share of queries that must end correlated with their response.
CORRELATION_TARGET = 0.99
TOP_SKILLS = 10
MAX_GAP_GROUPS = 8
MAX_EXAMPLES = 3
#: Query text is untrusted and may be up to 256 KiB: reports show the start only.
MAX_EXAMPLE_CHARS = 200
#: One query is not a trend: a rising skill needs this many queries this week
#: (a falling one the week before), a change of at least TREND_MIN_CHANGE, and
#: (unless it is new) a change of at least TREND_MIN_RELATIVE of last week's
#: count, so 63 -> 61 in a busy week is not news either.
TREND_MIN_QUERIES = 3
TREND_MIN_CHANGE = 2
TREND_MIN_RELATIVE = 0.2
MAX_TRENDS = 5
MAX_ACTIONS = 5
#: Below this many queries behind it, a gap or trend is not worth an action.
ACTION_MIN_QUERIES = 2
#: The pipeline check needs enough queries for the rate to mean something.
PIPELINE_CHECK_MIN_QUERIES = 20
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def build_report(
    source: Insights,
    week: str,
    *,
    catalog: SkillResolver,
    clock: Clock | None = None,
) -> WeeklyReport:
    """The report for ``week`` (``2026-W47``), from the figures ``source`` computes
    (:class:`~cv_analytics.insights.GenericInsights` over any store, or the SQL ones
    over SQLite), with skills resolved against ``catalog``."""
    iso = IsoWeek.parse(week)
    previous = str(iso.previous())
    insights = source.week_insights(str(iso), catalog, max_gap_groups=MAX_GAP_GROUPS, max_examples=MAX_EXAMPLES)
    previous_skills = source.skill_tallies(previous, catalog)
    now = (clock or SystemClock()).now()
    return assemble_report(
        iso, insights, previous_skills, generated_at=dt.datetime.fromtimestamp(now, tz=dt.UTC).replace(microsecond=0)
    )


def assemble_report(
    week: IsoWeek,
    insights: WeekInsights,
    previous_skills: Sequence[SkillTally],
    *,
    generated_at: dt.datetime,
) -> WeeklyReport:
    """The report from already-aggregated figures (no store access)."""
    volume = _volume(week, insights.activity)
    trends = compute_trends(str(week.previous()), insights.skills, previous_skills)
    gaps = _gaps(insights)
    return WeeklyReport(
        week=str(week),
        start=week.monday,
        end=week.sunday,
        generated_at=generated_at,
        volume=volume,
        top_skills=[
            SkillCount(
                skill=clean_text(t.skill),  # a sourcesUsed label is producer-supplied text
                queries=t.queries,
                share=_ratio(t.queries, volume.queries) or 0.0,
                from_query=t.from_query,
                from_sources=t.from_sources,
                full=t.full,
                partial=t.partial,
                none=t.none,
                unjudged=t.queries - t.full - t.partial - t.none,
            )
            for t in insights.skills[:TOP_SKILLS]
        ],
        match=_match(insights.activity),
        trends=trends,
        gaps=gaps,
        performance=_performance(insights),
        actions=rank_actions(volume, insights.skills, trends, gaps),
    )


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _volume(week: IsoWeek, a: WeekActivity) -> Volume:
    per_day = [sum(row) for row in a.queries_by_slot]
    per_hour = [sum(row[h] for row in a.queries_by_slot) for h in range(24)]
    rate = _ratio(a.answered, a.queries)
    return Volume(
        queries=a.queries,
        answered=a.answered,
        unanswered=a.unanswered,
        orphan_responses=a.orphan_responses,
        interactions=a.interactions,
        sessions=a.sessions,
        correlation_rate=rate,
        correlation_target=CORRELATION_TARGET,
        # compare the exact fraction, not the rounded rate
        meets_correlation_target=None if not a.queries else a.answered >= CORRELATION_TARGET * a.queries,
        by_day=[
            DayCount(day=DAY_NAMES[d], date=week.monday + dt.timedelta(days=d), queries=per_day[d]) for d in range(7)
        ],
        by_hour=[HourCount(hour=h, queries=per_hour[h]) for h in range(24)],
        busiest_day=DAY_NAMES[per_day.index(max(per_day))] if a.queries else None,
        busiest_hour=per_hour.index(max(per_hour)) if a.queries else None,
    )


def _match(a: WeekActivity) -> MatchQuality:
    m = a.match_counts
    judged = m["full"] + m["partial"] + m["none"]
    return MatchQuality(
        full=m["full"],
        partial=m["partial"],
        none=m["none"],
        unknown=m["unknown"],
        full_rate=_ratio(m["full"], judged),
        histogram=[
            ScoreBucket(low=b * SCORE_BUCKET_WIDTH, high=(b + 1) * SCORE_BUCKET_WIDTH, queries=n)
            for b, n in enumerate(a.score_histogram)
        ],
        full_threshold=FULL_MATCH_THRESHOLD,
        partial_threshold=PARTIAL_MATCH_THRESHOLD,
        low_match_score=LOW_MATCH_SCORE,
    )


def percentile(distribution: Sequence[tuple[float, int]], p: int) -> float | None:
    """Nearest-rank percentile of a (value, count) distribution sorted by value.

    The smallest value with at least ``p``% of the samples at or below it: an
    observed value, never an interpolation, so every backend agrees exactly.
    """
    n = sum(count for _, count in distribution)
    if n == 0:
        return None
    rank = max(1, -(-p * n // 100))  # ceil(p * n / 100) in integers
    seen = 0
    for value, count in distribution:
        seen += count
        if seen >= rank:
            return value
    return distribution[-1][0]


def _percentiles(distribution: Sequence[tuple[float, int]]) -> Percentiles:
    return Percentiles(
        samples=sum(count for _, count in distribution),
        p50=percentile(distribution, 50),
        p95=percentile(distribution, 95),
        p99=percentile(distribution, 99),
    )


def _performance(insights: WeekInsights) -> Performance:
    a = insights.activity
    return Performance(
        total_time=_percentiles(insights.performance["total_time"]),
        llm_time=_percentiles(insights.performance["llm_time"]),
        retrieval_time=_percentiles(insights.performance["retrieval_time"]),
        cache_hits=a.cache_hits,
        cache_lookups=a.cache_lookups,
        cache_hit_rate=_ratio(a.cache_hits, a.cache_lookups),
    )


def compute_trends(previous_week: str, current: Sequence[SkillTally], previous: Sequence[SkillTally]) -> Trends:
    """Skills rising and falling between two weeks' tallies, by the minimum-count rules above."""
    now = {t.skill: t.queries for t in current}
    before = {t.skill: t.queries for t in previous}
    rising: list[Trend] = []
    falling: list[Trend] = []
    for skill in sorted(now.keys() | before.keys()):
        count, prior = now.get(skill, 0), before.get(skill, 0)
        change = count - prior
        trend = Trend(
            skill=clean_text(skill),
            queries=count,
            previous_queries=prior,
            change=change,
            relative_change=round(change / prior, 4) if prior else None,
            is_new=prior == 0,
        )
        relative_enough = prior == 0 or abs(change) >= TREND_MIN_RELATIVE * prior
        if count >= TREND_MIN_QUERIES and change >= TREND_MIN_CHANGE and relative_enough:
            rising.append(trend)
        elif prior >= TREND_MIN_QUERIES and -change >= TREND_MIN_CHANGE and relative_enough:
            falling.append(trend)
    rising.sort(key=lambda t: (-t.change, t.skill))
    falling.sort(key=lambda t: (t.change, t.skill))
    return Trends(
        previous_week=previous_week,
        min_queries=TREND_MIN_QUERIES,
        min_change=TREND_MIN_CHANGE,
        min_relative_change=TREND_MIN_RELATIVE,
        rising=rising[:MAX_TRENDS],
        falling=falling[:MAX_TRENDS],
    )


def _clip(text: str) -> str:
    """Untrusted query text for the report: control and bidi characters out, and short."""
    text = clean_text(text).strip()
    return text if len(text) <= MAX_EXAMPLE_CHARS else text[: MAX_EXAMPLE_CHARS - 1].rstrip() + "…"


def _gaps(insights: WeekInsights) -> Gaps:
    """Gap groups split by what the CV has: nothing matched at all (missing) or something (weak)."""
    a = insights.activity
    total = a.no_match_queries + a.low_match_queries
    groups = [
        GapGroup(
            kind=g.kind,  # type: ignore[arg-type]
            key=clean_text(g.key),
            queries=g.queries,
            no_match=g.no_match,
            low_match=g.low_match,
            matched=g.matched,
            examples=[_clip(e) for e in g.examples],
        )
        for g in insights.gaps
    ]
    return Gaps(
        queries=total,
        no_match=a.no_match_queries,
        low_match=a.low_match_queries,
        ungrouped=total - insights.grouped_gap_queries,
        missing=[g for g in groups if is_missing(g)],
        weak=[g for g in groups if not is_missing(g)],
    )


def is_missing(group: GapGroup) -> bool:
    """True when nothing in the CV matched the group's skill or term, even partly, all week."""
    return group.matched == 0


def _gap_detail(g: GapGroup, label: str) -> str:
    queries = f"{g.queries} {_plural(g.queries, 'query', 'queries')} about {label}"
    if g.low_match == 0:
        outcome = "got no match"
    elif g.no_match == 0:
        outcome = "matched only weakly"
    else:
        outcome = f"got no match ({g.no_match}) or a weak one ({g.low_match})"
    if is_missing(g):
        context = ", and none matched even partly"
    else:
        context = f" (the CV matched {g.matched} {_plural(g.matched, 'query', 'queries')} about it at least partly)"
    example = f', e.g. "{g.examples[0]}"' if g.examples else "."
    return f"{queries} {outcome}{context}{example}"


def rank_actions(volume: Volume, skills: Sequence[SkillTally], trends: Trends, gaps: Gaps) -> list[ActionItem]:
    """At most one item per skill, most important first; gaps before trends on a tie.

    Ranked by :attr:`ActionItem.queries`: a gap's gap queries, a rising skill's
    increase on the week before, the pipeline check's unanswered + orphan count.

    A skill that is both a gap and rising keeps its gap item (it has the
    examples), says that it is rising and ranks by the larger count, when it is
    mostly answered poorly or the gap is at least as large as the rise; a
    mostly well-answered skill whose rise is the bigger news gets the trend item.
    """
    # (queries, tie-break order, item) per skill or term; the pipeline check has no skill
    best: dict[str | None, tuple[int, int, dict[str, object]]] = {}

    def offer(key: str | None, queries: int, order: int, item: dict[str, object]) -> None:
        best[key] = (queries, order, item)

    for g in [*gaps.missing, *gaps.weak]:
        if g.queries < ACTION_MIN_QUERIES:
            continue
        mostly_missing = is_missing(g)
        label = g.key if g.kind == "skill" else f"“{g.key}”"
        offer(
            g.key,
            g.queries,
            0,
            {
                "kind": "add_skill" if mostly_missing else "strengthen_skill",
                "title": f"Add {label} to the CV" if mostly_missing else f"Strengthen {label} in the CV",
                "detail": _gap_detail(g, label),
                "skill": g.key,
                "queries": g.queries,
                "ranked_by": "poorly answered",
            },
        )
    by_skill = {t.skill: t for t in skills}
    for t in trends.rising:
        if t.change < ACTION_MIN_QUERIES:
            continue
        growth = "new this week" if t.is_new else f"{t.change} more than in {trends.previous_week}"
        tally = by_skill.get(t.skill)
        poorly = (tally.partial + tally.none) if tally else 0
        weak = tally is not None and poorly > tally.full
        if t.skill in best and (weak or best[t.skill][0] >= t.change):
            # the gap is the news: keep its item (it has examples) and say the skill is rising
            queries, order, item = best[t.skill]
            item["detail"] = f"{item['detail']} It is rising: {t.previous_queries} → {t.queries} ({growth})."
            item["queries"] = max(queries, t.change)
            if t.change > queries:
                item["ranked_by"] = f"more than in {trends.previous_week}"
            best[t.skill] = (max(queries, t.change), order, item)
            continue
        # otherwise a few weak answers of a skill the CV mostly covers are the gaps section's
        # business; the item is about the rise
        offer(
            t.skill,
            t.change,
            1,
            {
                "kind": "strengthen_skill" if weak else "feature_skill",
                "title": f"Strengthen {t.skill} in the CV" if weak else f"Make {t.skill} prominent in the CV",
                "detail": (
                    f"{t.skill} is rising: {t.queries} {_plural(t.queries, 'query', 'queries')} ({growth})"
                    + (f", and {poorly} of them matched only partly or not at all" if weak else "")
                    + "."
                ),
                "skill": t.skill,
                "queries": t.change,
                "ranked_by": f"more than in {trends.previous_week}",
            },
        )
    if (
        volume.queries >= PIPELINE_CHECK_MIN_QUERIES
        and volume.meets_correlation_target is False
        and volume.correlation_rate is not None
    ):
        missing = volume.unanswered + volume.orphan_responses
        offer(
            None,
            missing,
            2,
            {
                "kind": "check_pipeline",
                "title": "Check the analytics pipeline",
                "detail": (
                    f"Only {volume.correlation_rate:.1%} of queries were matched with their response "
                    f"(target {volume.correlation_target:.0%}): {volume.unanswered} unanswered, "
                    f"{volume.orphan_responses} orphan {_plural(volume.orphan_responses, 'response', 'responses')}. "
                    "See `cv-analytics status`."
                ),
                "skill": None,
                "queries": missing,
                "ranked_by": "uncorrelated",
            },
        )
    ranked = sorted(best.values(), key=lambda c: (-c[0], c[1], str(c[2]["skill"])))
    return [ActionItem(rank=n, **item) for n, (_, _, item) in enumerate(ranked[:MAX_ACTIONS], 1)]  # type: ignore[arg-type]


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many
