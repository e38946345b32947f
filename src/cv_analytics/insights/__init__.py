"""The weekly figures over a store, as the report needs them: a part of its own, composed with a store.

:class:`Insights` is what the report builder reads. :class:`GenericInsights`
computes it over any store by walking a week's interactions;
``cv_analytics.insights.sqlite.SQLiteInsights`` computes the same figures in
SQL over the SQLite store. The wiring picks one for the configured store.
"""

from __future__ import annotations

from typing import Protocol

from .generic import GenericInsights
from .model import (
    LOW_MATCH_SCORE,
    GapKind,
    GapTally,
    SkillResolver,
    SkillTally,
    WeekActivity,
    WeekInsights,
    derivation_fingerprint,
)


class Insights(Protocol):
    """The figures of one ISO week (``2026-W47``), resolved against a skills catalog."""

    def week_insights(
        self, week: str, catalog: SkillResolver, *, max_gap_groups: int = 10, max_examples: int = 3
    ) -> WeekInsights: ...

    def skill_tallies(self, week: str, catalog: SkillResolver) -> tuple[SkillTally, ...]: ...


__all__ = [
    "LOW_MATCH_SCORE",
    "GapKind",
    "GapTally",
    "GenericInsights",
    "Insights",
    "SkillResolver",
    "SkillTally",
    "WeekActivity",
    "WeekInsights",
    "derivation_fingerprint",
]
