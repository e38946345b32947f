"""Plausible recruiter traffic for one ISO week, written straight into a store.

For the report's benchmark and screenshot: deterministic for a seed, both event
shapes, a few unanswered queries and orphan responses, skills the CV covers
well, some it covers partly and some it lacks (the gaps a report should show).
It builds :class:`Interaction` objects directly; the real pipeline is the
demo's business.
"""

from __future__ import annotations

import bisect
import random
import uuid
from collections.abc import Iterator
from typing import Any

from ..events import EventShape, MatchType, classify_match_quality, iso_week
from ..stores.models import Interaction, InteractionStatus
from .weeks import IsoWeek

#: skill -> (how often asked, match quality range the CV gets for it, sources used)
COVERED: dict[str, tuple[float, tuple[float, float], tuple[str, ...]]] = {
    "TypeScript": (14, (0.82, 0.99), ("TypeScript", "Node.js")),
    "Python": (12, (0.78, 0.97), ("Python",)),
    "React": (9, (0.80, 0.96), ("React", "TypeScript")),
    "Node.js": (8, (0.80, 0.95), ("Node.js", "Express")),
    "AWS": (7, (0.70, 0.92), ("AWS", "AWS Lambda")),
    "PostgreSQL": (5, (0.75, 0.93), ("PostgreSQL",)),
    "Docker": (5, (0.72, 0.90), ("Docker",)),
    "Leadership": (4, (0.60, 0.88), ("Leadership",)),
    "GraphQL": (3, (0.55, 0.78), ("GraphQL",)),
    "Testing": (3, (0.70, 0.90), ("Testing",)),
}
#: skills the CV lacks or barely mentions: asked about, poorly matched
MISSING: dict[str, tuple[float, tuple[float, float]]] = {
    "Kubernetes": (4, (0.10, 0.58)),
    "Rust": (2.5, (0.05, 0.40)),
    "Terraform": (2, (0.20, 0.59)),
    "Kafka": (1.5, (0.10, 0.45)),
}
#: asked about, in no skills catalog: the report groups these by term
UNCATALOGUED = ("Zig", "Salesforce", "COBOL")
TEMPLATES = (
    "What is your experience with {skill}?",
    "How many years of {skill} do you have?",
    "Have you used {skill} in production?",
    "Tell me about a project where you used {skill}.",
    "Are you comfortable with {skill}?",
    "{skill} experience?",
    "Can you lead a team working with {skill}?",
)
ALIASES = {"Kubernetes": ("k8s", "Kubernetes"), "TypeScript": ("TS", "TypeScript"), "Node.js": ("Node", "Node.js")}
# Hour-of-day weights (UTC): recruiters ask in European and US working hours.
_HOURS = [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 12, 10, 12, 14, 14, 12, 10, 8, 6, 4, 3, 2, 1]
_DAYS = [16, 18, 18, 17, 14, 5, 4]


def synthetic_week(
    week: str,
    count: int,
    *,
    seed: int = 7,
    skill_weights: dict[str, float] | None = None,
    unanswered_rate: float = 0.006,
    orphan_rate: float = 0.002,
    legacy_rate: float = 0.1,
) -> Iterator[Interaction]:
    """``count`` interactions in ``week``, oldest first. ``skill_weights`` overrides how often each skill is asked."""
    rng = random.Random(f"{seed}:{week}")
    start_ms = int(IsoWeek.parse(week).start.timestamp() * 1000)
    weights: dict[str, float] = {s: w for s, (w, _, _) in COVERED.items()}
    weights.update({s: w for s, (w, _) in MISSING.items()})
    weights.update({s: 0.6 for s in UNCATALOGUED})
    weights.update(skill_weights or {})
    skills = list(weights)
    cumulative = _cumulative([weights[s] for s in skills])
    slots = [(d, h) for d in range(7) for h in range(24)]
    slot_weights = _cumulative([_DAYS[d] * _HOURS[h] for d, h in slots])
    sessions = max(1, count // 4)
    offsets = sorted(_slot_offset(rng, slots[_pick(rng, slot_weights)]) for _ in range(count))
    for n, offset in enumerate(offsets):
        skill = skills[_pick(rng, cumulative)]
        yield _interaction(rng, n, start_ms + offset, skill, sessions, unanswered_rate, orphan_rate, legacy_rate)


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _pick(rng: random.Random, cumulative: list[float]) -> int:
    return min(bisect.bisect_right(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)


def _slot_offset(rng: random.Random, slot: tuple[int, int]) -> int:
    day, hour = slot
    return ((day * 24 + hour) * 3600 + rng.randrange(3600)) * 1000 + rng.randrange(1000)


def _interaction(
    rng: random.Random,
    n: int,
    timestamp: int,
    skill: str,
    sessions: int,
    unanswered_rate: float,
    orphan_rate: float,
    legacy_rate: float,
) -> Interaction:
    legacy = rng.random() < legacy_rate
    spelled = rng.choice(ALIASES.get(skill, (skill,)))
    query = rng.choice(TEMPLATES).format(skill=spelled)
    roll = rng.random()
    status = (
        InteractionStatus.UNANSWERED
        if roll < unanswered_rate
        else InteractionStatus.ORPHAN_RESPONSE
        if roll < unanswered_rate + orphan_rate
        else InteractionStatus.ANSWERED
    )
    cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    fields: dict[str, Any] = {
        "correlation_id": cid,
        "status": status,
        "week": iso_week(timestamp),
        "timestamp": timestamp,
        "session_id": None if legacy else f"session-{rng.randrange(sessions):06d}",
        "shape": EventShape.LEGACY if legacy else EventShape.CURRENT,
        "processed_at": timestamp + 1000,
    }
    if status is not InteractionStatus.ORPHAN_RESPONSE:
        fields.update(query=query, query_timestamp=timestamp)
    if status is not InteractionStatus.UNANSWERED:
        if skill in COVERED:
            low, high = COVERED[skill][1]
            sources = list(COVERED[skill][2])
        elif skill in MISSING:
            low, high = MISSING[skill][1]
            sources = []
        else:
            low, high, sources = 0.02, 0.35, []
        quality = round(rng.uniform(low, high), 3)
        retrieval = round(rng.lognormvariate(3.6, 0.35))
        llm = round(rng.lognormvariate(5.6, 0.45))
        cached = rng.random() < 0.3
        total = retrieval + (llm // 8 if cached else llm) + rng.randrange(5, 30)
        fields.update(
            response=f"Answer about {skill}.",
            response_timestamp=timestamp + total,
            total_time=float(total),
            llm_time=float(llm // 8 if cached else llm),
            retrieval_time=float(retrieval),
            cache_hit=cached,
        )
        if legacy:  # the older shape: matchType and a 0-100 score, no sources, no performance
            match_type = classify_match_quality(quality) or MatchType.NONE
            fields.update(
                match_type=match_type,
                match_score=float(round(quality * 100)),
                reasoning=f"{skill} {'appears' if match_type is not MatchType.NONE else 'does not appear'} in the CV",
                total_time=None,
                llm_time=None,
                retrieval_time=None,
                cache_hit=None,
            )
        else:
            fields.update(
                match_quality=quality,
                match_type=classify_match_quality(quality),
                match_score=round(quality * 100, 2),
                sources_used=sources,
            )
    return Interaction.model_construct(**fields)
