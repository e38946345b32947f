"""The weekly report: one model, rendered as HTML email, plain text and JSON.

JSON field names are camelCase (like the event wire format) and stable: a field
is never renamed or removed without bumping ``schemaVersion``. Every field is
described here; ``docs/report-json.md`` is generated from these descriptions
(:func:`fields_markdown`) and a test keeps it in step.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

#: Bumped when a field is renamed, removed or changes meaning (adding one does not).
#: 2: ``gaps.groups`` split into ``gaps.missing`` and ``gaps.weak``.
SCHEMA_VERSION = 2


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class DayCount(_Model):
    day: str = Field(description="Day of the week, `Mon` … `Sun`.")
    date: dt.date = Field(description="The calendar date of that day (UTC).")
    queries: int = Field(description="Queries received that day.")


class HourCount(_Model):
    hour: int = Field(description="Hour of the day in UTC, 0–23.")
    queries: int = Field(description="Queries received in that hour, all days of the week together.")


class Volume(_Model):
    queries: int = Field(description="Recruiter queries: answered + unanswered.")
    answered: int = Field(description="Queries whose response arrived and was correlated.")
    unanswered: int = Field(description="Queries whose response never arrived within the orphan timeout.")
    orphan_responses: int = Field(description="Responses whose query never arrived (not counted as queries).")
    interactions: int = Field(description="All interactions of the week: queries + orphan responses.")
    sessions: int = Field(description="Distinct session ids among queries (older-shape events carry none).")
    correlation_rate: float | None = Field(
        description="answered / queries, 0–1; null when there were no queries."
    )
    correlation_target: float = Field(description="The rate the pipeline should reach (0.99).")
    meets_correlation_target: bool | None = Field(description="correlationRate ≥ correlationTarget; null without queries.")
    by_day: list[DayCount] = Field(description="Queries per day, Monday first (7 entries).")
    by_hour: list[HourCount] = Field(description="Queries per UTC hour (24 entries).")
    busiest_day: str | None = Field(description="The day with most queries (first on a tie); null without queries.")
    busiest_hour: int | None = Field(description="The UTC hour with most queries (first on a tie); null without queries.")


class SkillCount(_Model):
    skill: str = Field(description="Canonical skill name from the skills catalog (or a `sourcesUsed` label it lacks).")
    queries: int = Field(
        description="Queries whose text named the skill, plus queries naming no skill whose answer drew on it."
    )
    share: float = Field(description="queries / all queries of the week, 0–1.")
    from_query: int = Field(description="Of those, queries whose text named the skill (or an alias).")
    from_sources: int = Field(description="Of those, queries whose response listed it in `sourcesUsed` (both may hold).")
    full: int = Field(description="Of those, answered with a full match.")
    partial: int = Field(description="Of those, answered with a partial match.")
    none: int = Field(description="Of those, answered with no match.")
    unjudged: int = Field(
        description="Of those, the rest: unanswered, or answered without match information (queries − full − partial − none)."
    )


class ScoreBucket(_Model):
    low: int = Field(description="Lower bound of the bucket (inclusive), 0–90.")
    high: int = Field(description="Upper bound (exclusive; the last bucket includes 100).")
    queries: int = Field(description="Answered queries whose match score falls in the bucket.")


class MatchQuality(_Model):
    full: int = Field(description="Answered queries with a full match.")
    partial: int = Field(description="Answered queries with a partial match.")
    none: int = Field(description="Answered queries with no match.")
    unknown: int = Field(description="Answered queries whose response carried no match information.")
    full_rate: float | None = Field(description="full / (full + partial + none), 0–1; null when none was judged.")
    histogram: list[ScoreBucket] = Field(description="Match scores (0–100) in ten buckets of width 10.")
    full_threshold: float = Field(
        description="matchQuality (0–1) at or above which a current-shape response counts as a full match."
    )
    partial_threshold: float = Field(
        description="matchQuality at or above which (and below fullThreshold) it counts as partial; below: none."
    )
    low_match_score: float = Field(
        description="A partial match scoring below this (0–100) is a low match and makes its query a gap."
    )


class Trend(_Model):
    skill: str = Field(description="Canonical skill name.")
    queries: int = Field(description="Queries this week.")
    previous_queries: int = Field(description="Queries the week before.")
    change: int = Field(description="queries − previousQueries.")
    relative_change: float | None = Field(
        description="change / previousQueries (0.5 = +50%); null when the skill is new this week."
    )
    is_new: bool = Field(description="True when the skill was not asked about at all the week before.")


class Trends(_Model):
    previous_week: str = Field(description="The week compared against, e.g. `2026-W46`.")
    min_queries: int = Field(
        description="A rising skill needs at least this many queries this week, a falling one the week before."
    )
    min_change: int = Field(description="…and its count must have moved by at least this much…")
    min_relative_change: float = Field(
        description="…and, unless it is new, by at least this fraction of the previous week's count (0.2 = 20%)."
    )
    rising: list[Trend] = Field(description="Skills asked more, largest absolute change first.")
    falling: list[Trend] = Field(description="Skills asked less, largest absolute drop first.")


class GapGroup(_Model):
    kind: Literal["skill", "term"] = Field(
        description="`skill`: a catalog skill the queries named; `term`: a word from queries that named no catalog skill."
    )
    key: str = Field(description="The skill name, or the term (lower case).")
    queries: int = Field(description="Gap queries in the group.")
    no_match: int = Field(description="Of those, answered with no match.")
    low_match: int = Field(description="Of those, answered with a low partial match.")
    matched: int = Field(
        description=(
            "Queries about the same skill or term this week, gaps or not, that got a full or partial match: "
            "0 means the CV has nothing on it (the group is in `missing`), more means it has something (`weak`)."
        )
    )
    examples: list[str] = Field(
        description=(
            "Up to three distinct query texts, latest first, cut to 200 characters, control characters removed. "
            "Still untrusted: escape before putting it in HTML."
        )
    )


class Gaps(_Model):
    queries: int = Field(description="Gap queries: answered with no match or a low match.")
    no_match: int = Field(description="Of those, with no match.")
    low_match: int = Field(description="Of those, with a low partial match.")
    ungrouped: int = Field(description="Gap queries that named no skill and had no usable term.")
    missing: list[GapGroup] = Field(
        description=(
            "Missing from the CV (add it): skills and terms no query about which got even a partial match "
            "(`matched` is 0). Largest first; a query naming two skills is in both groups."
        )
    )
    weak: list[GapGroup] = Field(
        description=(
            "Answered weakly (strengthen what the CV says about it): skills and terms the CV matched at least "
            "partly for some queries (`matched` > 0) but not for these. Largest first."
        )
    )


class Percentiles(_Model):
    samples: int = Field(description="Responses that reported this time.")
    p50: float | None = Field(description="Median in milliseconds (nearest rank); null without samples.")
    p95: float | None = Field(description="95th percentile in milliseconds (nearest rank).")
    p99: float | None = Field(description="99th percentile in milliseconds (nearest rank).")


class Performance(_Model):
    total_time: Percentiles = Field(description="End-to-end answer time.")
    llm_time: Percentiles = Field(description="Time spent in the language model.")
    retrieval_time: Percentiles = Field(description="Time spent retrieving CV passages.")
    cache_hits: int = Field(description="Responses served from the cache.")
    cache_lookups: int = Field(description="Responses that said whether the cache was hit.")
    cache_hit_rate: float | None = Field(description="cacheHits / cacheLookups, 0–1; null without lookups.")


class ActionItem(_Model):
    rank: int = Field(description="1 is the most important.")
    kind: Literal["add_skill", "strengthen_skill", "feature_skill", "check_pipeline"] = Field(
        description=(
            "`add_skill`: recruiters ask for something the CV does not answer; `strengthen_skill`: "
            "it answers only weakly; `feature_skill`: a rising skill the CV covers well, worth making "
            "prominent; `check_pipeline`: the analytics themselves need attention."
        )
    )
    title: str = Field(description="One line, imperative.")
    detail: str = Field(description="Why, with the figures.")
    skill: str | None = Field(description="The skill or term concerned, if any.")
    queries: int = Field(
        description=(
            "What the item is ranked by: for a gap, its gap queries (or the rise, when the skill is also rising and "
            "that is larger); for a rising skill, how many more queries than the week before; for the pipeline "
            "check, unanswered queries + orphan responses."
        )
    )
    ranked_by: str = Field(description="What `queries` counts, in words, e.g. `poorly answered` or `more than in 2026-W46`.")


class WeeklyReport(_Model):
    """What recruiters asked in one ISO week, and what to change in the CV."""

    schema_version: int = Field(default=SCHEMA_VERSION, description="Version of this JSON layout.")
    week: str = Field(description="ISO week reported, e.g. `2026-W47`.")
    start: dt.date = Field(description="Its Monday (UTC).")
    end: dt.date = Field(description="Its Sunday (UTC).")
    generated_at: dt.datetime = Field(description="When the report was built (UTC, ISO 8601).")
    volume: Volume = Field(description="How much was asked, when, and how well the pipeline correlated it.")
    top_skills: list[SkillCount] = Field(description="The most asked-about skills, most first (ties by name).")
    match: MatchQuality = Field(description="How well the CV answered.")
    trends: Trends = Field(description="Skills rising and falling against the previous week.")
    gaps: Gaps = Field(description="What recruiters asked that the CV did not answer well.")
    performance: Performance = Field(description="Answer times and cache.")
    actions: list[ActionItem] = Field(description="What to do, most important first (at most five).")

    @property
    def is_empty(self) -> bool:
        return self.volume.interactions == 0

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def fields_markdown() -> str:
    """A Markdown table of every JSON field (dotted path, type, meaning), from the models above."""
    lines = ["| field | type | meaning |", "|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            path = f"{prefix}{info.alias or to_camel(name)}"
            annotation = info.annotation
            inner, container = _unwrap(annotation)
            type_name = _type_name(annotation)
            lines.append(f"| `{path}` | {type_name} | {info.description or ''} |")
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                walk(inner, f"{path}{'[].' if container else '.'}")

    walk(WeeklyReport, "")
    return "\n".join(lines) + "\n"


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    args = getattr(annotation, "__args__", ())
    if getattr(annotation, "__origin__", None) is list:
        return args[0], True
    return annotation, False


def _type_name(annotation: Any) -> str:
    names = {int: "integer", float: "number", str: "string", bool: "boolean", dt.date: "date", dt.datetime: "date-time"}
    if annotation in names:
        return names[annotation]
    origin = getattr(annotation, "__origin__", None)
    args = getattr(annotation, "__args__", ())
    if origin is list:
        return f"array of {_type_name(args[0])}"
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if args and type(None) in args:  # X | None
        rest = [a for a in args if a is not type(None)]
        return f"{_type_name(rest[0])} or null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return str(annotation)
