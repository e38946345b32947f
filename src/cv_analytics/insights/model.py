"""The weekly figures as data, and the rules that count them (one place, every implementation).

:mod:`cv_analytics.insights.generic` folds a store's interactions in Python
(any store, DynamoDB included); :mod:`cv_analytics.insights.sqlite` computes the
same figures in SQL over the SQLite store; a test holds both to the same
figures on the same data.

What is counted, once, for every backend:

* **queries** are interactions that have a query: ``answered`` + ``unanswered``.
  Orphan responses (a response whose query never came) are counted apart.
* **correlation rate** = answered / queries.
* **sessions** = distinct session ids among queries (the older producer shape
  has no session id: such queries count as queries but not as sessions).
* **day and hour** are the query's timestamp in UTC, Monday first.
* **match** counts are over answered queries: ``full`` / ``partial`` / ``none``
  from :attr:`Interaction.match_type` (the older shape's ``matchType``, or the
  current shape's ``matchQuality`` classified by the thresholds in
  :mod:`cv_analytics.events`: ≥ 0.8 full, ≥ 0.5 partial, below that none);
  ``unknown`` when the response carried neither. The score histogram has ten
  buckets of width 10 over the 0–100 score (100 falls in the last).
* **performance** figures (total, LLM, retrieval time; cache hits) come from
  every response in the week, orphan responses included.
* **skills** are counted per query: a query counts once for each catalog skill
  its text names (aliases included); a query whose text names none counts for
  the skills its response's ``sourcesUsed`` resolve to instead.
* **gaps** are answered queries with no match (``none``) or a low one
  (``partial`` with a score below :data:`LOW_MATCH_SCORE`); each is grouped
  under every catalog skill its *text* names, or, when it names none, under
  one fallback term picked from its text (see :class:`SkillResolver`). Each
  group also counts ``matched``: the queries about the same skill or term, gap
  or not, that got a full or partial match (does the CV say anything on it?).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Protocol

from ..events import MatchType
from ..stores.models import InteractionStatus

if TYPE_CHECKING:
    from ..stores.models import Interaction

#: A ``partial`` match scoring below this (0–100, i.e. matchQuality < 0.6) is a
#: "low" match, and its query a gap, as is every ``none`` match.
LOW_MATCH_SCORE = 60.0
#: Width of one score histogram bucket; ten buckets cover 0–100.
SCORE_BUCKET_WIDTH = 10
SCORE_BUCKETS = 10
#: The performance metrics, as :class:`Interaction` field names.
PERFORMANCE_METRICS = ("total_time", "llm_time", "retrieval_time")
#: Bump when the way derived terms are computed changes: stored derivations are then redone.
DERIVATION_VERSION = 1


class GapKind(IntEnum):
    """Why a query is a gap (stored as this integer by backends that keep derived rows)."""

    NONE = 0
    NO_MATCH = 1
    LOW_MATCH = 2


class SkillResolver(Protocol):
    """What the aggregations need from a skills catalog (:class:`cv_analytics.skills.SkillsCatalog`)."""

    @property
    def fingerprint(self) -> str:
        """Changes whenever what the resolver returns for some text would."""

    def skills_in_text(self, text: str) -> list[str]:
        """Canonical skills named in free text, each once, in order of appearance."""

    def resolve_source(self, source: str) -> list[str]:
        """Canonical skills a ``sourcesUsed`` entry stands for (itself, tidied, if the catalog knows none)."""

    def fallback_term(self, text: str) -> str | None:
        """The one term a query is about when it names no catalog skill (None if it has none)."""


def derivation_fingerprint(resolver: SkillResolver) -> str:
    """The catalog's fingerprint combined with the gap rule, so changing either invalidates stored derivations."""
    seed = f"{resolver.fingerprint}|v{DERIVATION_VERSION}|low<{LOW_MATCH_SCORE}"
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


_ANSWERED = InteractionStatus.ANSWERED.value
_NO_MATCH = MatchType.NONE.value
_PARTIAL = MatchType.PARTIAL.value


def classify_gap(status: str, match_type: str | None, match_score: float | None) -> GapKind:
    """Whether an interaction is a gap query, and why. Unanswered queries are not judged."""
    if status != _ANSWERED:
        return GapKind.NONE
    if match_type == _NO_MATCH:
        return GapKind.NO_MATCH
    if match_type == _PARTIAL and match_score is not None and match_score < LOW_MATCH_SCORE:
        return GapKind.LOW_MATCH
    return GapKind.NONE


def score_bucket(score: float) -> int:
    """Histogram bucket (0–9) of a 0–100 score.

    Written as truncated division, exactly as SQL's ``CAST(score / 10 AS INTEGER)``,
    so every backend puts a score like 79.99999999999999 in the same bucket.
    """
    return min(int(score / SCORE_BUCKET_WIDTH), SCORE_BUCKETS - 1)


@dataclass(frozen=True)
class DerivedTerms:
    """What one query contributes to the skill and gap figures."""

    #: skill -> (named in the query text, resolved from sourcesUsed)
    skills: dict[str, tuple[bool, bool]]
    #: the fallback term, only when the query text names no catalog skill
    term: str | None
    gap: GapKind

    @property
    def group_keys(self) -> list[tuple[str, str]]:
        """The (kind, key) groups this query is about: the skills its text names, else its fallback term."""
        keys = [("skill", s) for s, (in_query, _) in self.skills.items() if in_query]
        if not keys and self.term:
            keys.append(("term", self.term))
        return keys

    @property
    def gap_keys(self) -> list[tuple[str, str]]:
        """The (kind, key) groups this query falls in when it is a gap."""
        return [] if self.gap is GapKind.NONE else self.group_keys


def derive_terms(
    resolver: SkillResolver,
    *,
    status: str,
    query: str | None,
    sources_used: Sequence[str],
    match_type: str | None,
    match_score: float | None,
) -> DerivedTerms | None:
    """Skills, fallback term and gap kind of one interaction; None when it has no query."""
    if query is None:
        return None
    named = resolver.skills_in_text(query)
    sourced = list(dict.fromkeys(skill for source in sources_used for skill in resolver.resolve_source(source)))
    # The skills a query is about are those its text names; sourcesUsed only
    # stands in when the text names none ("what backend work have you done?").
    # Otherwise every question about TypeScript would also count for each
    # section the answer drew on (Node.js, Express…).
    skills = {s: (True, s in sourced) for s in named} if named else {s: (False, True) for s in sourced}
    return DerivedTerms(
        skills=skills,
        term=None if named else resolver.fallback_term(query),
        gap=classify_gap(status, match_type, match_score),
    )


def derive_interaction(resolver: SkillResolver, interaction: Interaction) -> DerivedTerms | None:
    return derive_terms(
        resolver,
        status=interaction.status.value,
        query=interaction.query,
        sources_used=interaction.sources_used,
        match_type=interaction.match_type.value if interaction.match_type else None,
        match_score=interaction.match_score,
    )


# -- results ------------------------------------------------------------------


@dataclass(frozen=True)
class WeekActivity:
    """Volume, match and cache figures of one week."""

    interactions: int = 0
    answered: int = 0
    unanswered: int = 0
    orphan_responses: int = 0
    sessions: int = 0
    #: queries per (weekday, hour) in UTC: 7 rows (Monday first) of 24 hours
    queries_by_slot: tuple[tuple[int, ...], ...] = tuple(tuple([0] * 24) for _ in range(7))
    #: over answered queries: full / partial / none / unknown
    match_counts: dict[str, int] = field(
        default_factory=lambda: {"full": 0, "partial": 0, "none": 0, "unknown": 0}
    )
    #: answered queries with a score, per bucket of width 10 over 0–100
    score_histogram: tuple[int, ...] = tuple([0] * SCORE_BUCKETS)
    cache_hits: int = 0
    #: responses that said whether the cache was hit
    cache_lookups: int = 0
    no_match_queries: int = 0
    low_match_queries: int = 0

    @property
    def queries(self) -> int:
        return self.answered + self.unanswered


@dataclass(frozen=True)
class SkillTally:
    """How often one skill came up in a week's queries."""

    skill: str
    queries: int
    from_query: int
    from_sources: int
    full: int
    partial: int
    none: int


@dataclass(frozen=True)
class GapTally:
    """Gap queries grouped under one skill (kind ``skill``) or fallback term (kind ``term``)."""

    kind: str
    key: str
    queries: int
    no_match: int
    low_match: int
    #: up to N distinct query texts, latest first
    examples: tuple[str, ...]
    #: queries about the same skill or term (gaps or not) that got a full or partial match: the CV
    #: has something on it; 0 means nothing in the CV answered it at all this week
    matched: int = 0


@dataclass(frozen=True)
class WeekInsights:
    """Everything a report needs from the store about one week."""

    week: str
    activity: WeekActivity
    #: metric -> ((value, count), …) ascending by value, for exact percentiles
    performance: dict[str, tuple[tuple[float, int], ...]]
    #: every skill of the week, most asked first (ties by name)
    skills: tuple[SkillTally, ...]
    #: the largest gap groups, largest first (ties by kind, then key)
    gaps: tuple[GapTally, ...]
    #: gap queries that fall in at least one group (gap queries in all: no_match + low_match)
    grouped_gap_queries: int


def sort_skills(tallies: Iterable[SkillTally]) -> tuple[SkillTally, ...]:
    return tuple(sorted(tallies, key=lambda t: (-t.queries, t.skill)))


def pick_examples(latest_by_text: dict[str, int], limit: int) -> tuple[str, ...]:
    """Distinct texts by latest occurrence, newest first, ties by text."""
    ranked = sorted(latest_by_text.items(), key=lambda item: (-item[1], item[0]))
    return tuple(text for text, _ in ranked[:limit])
