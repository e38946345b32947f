"""The weekly figures over any store: plain Python folding one ISO week's interactions.

The reference implementation: any backend with :meth:`Store.iter_interactions`
(DynamoDB included) gets a report with no extra code.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from ..stores.base import Store
from ..stores.models import Interaction, InteractionStatus
from .model import (
    PERFORMANCE_METRICS,
    SCORE_BUCKETS,
    DerivedTerms,
    GapKind,
    GapTally,
    SkillResolver,
    SkillTally,
    WeekActivity,
    WeekInsights,
    derive_interaction,
    pick_examples,
    score_bucket,
    sort_skills,
)


class GenericInsights:
    """:class:`~cv_analytics.insights.Insights` over any store, by walking its interactions."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def week_insights(
        self, week: str, catalog: SkillResolver, *, max_gap_groups: int = 10, max_examples: int = 3
    ) -> WeekInsights:
        """All of one week's figures in one pass over its interactions."""
        fold = _WeekFold(catalog, max_examples)
        for interaction in self.store.iter_interactions(week):
            fold.add(interaction)
        return fold.result(week, max_gap_groups)

    def skill_tallies(self, week: str, catalog: SkillResolver) -> tuple[SkillTally, ...]:
        """Every skill of one week, most asked first: what trends compare."""
        fold = _SkillFold()
        for interaction in self.store.iter_interactions(week):
            derived = derive_interaction(catalog, interaction)
            if derived is not None:
                fold.add(derived, interaction.match_type.value if interaction.match_type else None)
        return fold.result()


class _SkillFold:
    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}

    def add(self, derived: DerivedTerms, match_type: str | None) -> None:
        for skill, (in_query, in_sources) in derived.skills.items():
            c = self.counts.setdefault(skill, [0, 0, 0, 0, 0, 0])
            c[0] += 1
            c[1] += in_query
            c[2] += in_sources
            if match_type == "full":
                c[3] += 1
            elif match_type == "partial":
                c[4] += 1
            elif match_type == "none":
                c[5] += 1

    def result(self) -> tuple[SkillTally, ...]:
        return sort_skills(SkillTally(skill, *c) for skill, c in self.counts.items())


class _WeekFold:
    """Accumulates one week's interactions into :class:`WeekInsights`."""

    def __init__(self, catalog: SkillResolver, max_examples: int) -> None:
        self.catalog = catalog
        self.max_examples = max_examples
        self.status: Counter[str] = Counter()
        self.sessions: set[str] = set()
        self.slots = [[0] * 24 for _ in range(7)]
        self.match = {"full": 0, "partial": 0, "none": 0, "unknown": 0}
        self.histogram = [0] * SCORE_BUCKETS
        self.cache_hits = self.cache_lookups = 0
        self.gap_kinds: Counter[GapKind] = Counter()
        self.perf: dict[str, Counter[float]] = {m: Counter() for m in PERFORMANCE_METRICS}
        self.skills = _SkillFold()
        # (kind, key) -> [queries, no_match, low_match, {text: latest timestamp}]
        self.gaps: dict[tuple[str, str], list] = {}  # type: ignore[type-arg]
        self.grouped = 0
        # (kind, key) -> queries about it that got a full or partial match
        self.matched: Counter[tuple[str, str]] = Counter()

    def add(self, i: Interaction) -> None:
        self.status[i.status.value] += 1
        for metric in PERFORMANCE_METRICS:
            value = getattr(i, metric)
            if value is not None:
                self.perf[metric][float(value)] += 1
        if i.cache_hit is not None:
            self.cache_lookups += 1
            self.cache_hits += i.cache_hit
        if i.query is None:  # an orphan response: no query to count
            return
        if i.session_id is not None:
            self.sessions.add(i.session_id)
        when = dt.datetime.fromtimestamp(i.timestamp / 1000, tz=dt.UTC)
        self.slots[when.weekday()][when.hour] += 1
        match_type = i.match_type.value if i.match_type else None
        if i.status is InteractionStatus.ANSWERED:
            self.match[match_type or "unknown"] += 1
            if i.match_score is not None:
                self.histogram[score_bucket(i.match_score)] += 1
        derived = derive_interaction(self.catalog, i)
        assert derived is not None
        self.skills.add(derived, match_type)
        if i.status is InteractionStatus.ANSWERED and match_type in ("full", "partial"):
            self.matched.update(derived.group_keys)
        if derived.gap is GapKind.NONE:
            return
        self.gap_kinds[derived.gap] += 1
        keys = derived.gap_keys
        self.grouped += bool(keys)
        for key in keys:
            g = self.gaps.setdefault(key, [0, 0, 0, {}])
            g[0] += 1
            g[1] += derived.gap is GapKind.NO_MATCH
            g[2] += derived.gap is GapKind.LOW_MATCH
            examples: dict[str, int] = g[3]
            examples[i.query] = max(examples.get(i.query, i.timestamp), i.timestamp)

    def result(self, week: str, max_gap_groups: int) -> WeekInsights:
        activity = WeekActivity(
            interactions=sum(self.status.values()),
            answered=self.status[InteractionStatus.ANSWERED.value],
            unanswered=self.status[InteractionStatus.UNANSWERED.value],
            orphan_responses=self.status[InteractionStatus.ORPHAN_RESPONSE.value],
            sessions=len(self.sessions),
            queries_by_slot=tuple(tuple(row) for row in self.slots),
            match_counts=dict(self.match),
            score_histogram=tuple(self.histogram),
            cache_hits=self.cache_hits,
            cache_lookups=self.cache_lookups,
            no_match_queries=self.gap_kinds[GapKind.NO_MATCH],
            low_match_queries=self.gap_kinds[GapKind.LOW_MATCH],
        )
        ranked = sorted(self.gaps.items(), key=lambda item: (-item[1][0], item[0][0], item[0][1]))
        gaps = tuple(
            GapTally(kind, key, g[0], g[1], g[2], pick_examples(g[3], self.max_examples), self.matched[(kind, key)])
            for (kind, key), g in ranked[:max_gap_groups]
        )
        return WeekInsights(
            week=week,
            activity=activity,
            performance={m: tuple(sorted(c.items())) for m, c in self.perf.items()},
            skills=self.skills.result(),
            gaps=gaps,
            grouped_gap_queries=self.grouped,
        )
