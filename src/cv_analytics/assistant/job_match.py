"""A job description against the owner's skills: what matches (with evidence), what is missing, a score.

Requirements are the technical skills the description names: the catalog's
own skills and aliases, and the packaged vocabulary of common skills
(``tech_terms.yaml``) for what the catalog has never heard of. A requirement
the owner has (an owner skill of the catalog) is covered; the others are
missing. Each line of the description is also searched by the retriever, so
skills it speaks of without naming them ("container orchestration") match
too, by embedding similarity when the model is installed. The score (0..100)
is 80 % the share of requirements covered and 20 % the mean similarity of the
five best matches (all of it when the description names no requirement).
Deterministic: the same description and catalog give the same result.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from ..skills import SkillsCatalog
from .quality import FULL_MATCH
from .retrieval import TECH_TERMS_PATH, Retriever, SkillMatch, tokens

#: Characters of a job description that are read.
MAX_JOB_DESCRIPTION_CHARS = 50_000
#: Lines (sentences, bullets) of a description searched by the retriever.
MAX_FRAGMENTS = 200
#: Weight of requirement coverage in the score (the rest: similarity of the best matches).
COVERAGE_WEIGHT = 0.8
_FRAGMENT_BREAK = re.compile(r"\n+|(?<=[.!?;:])\s+|\s*[•·▪●◦‣]\s*|\s+[-*]\s+")


@dataclass(frozen=True)
class JobMatch:
    """How well the owner fits a job description (``score`` 0..100)."""

    score: float
    matched: list[SkillMatch]
    missing: list[str]
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "matched": [{"skill": m.skill, "score": m.score, "evidence": m.evidence} for m in self.matched],
            "missing": list(self.missing),
            "method": self.method,
        }


@functools.cache
def tech_vocabulary() -> SkillsCatalog:
    """The packaged vocabulary of common technical skills (in the catalog's format)."""
    return SkillsCatalog.load(TECH_TERMS_PATH)


def fragments(text: str) -> list[str]:
    """The distinct lines and sentences of a description that say something (a content word at least)."""
    parts = dict.fromkeys(p.strip() for p in _FRAGMENT_BREAK.split(text))
    return [p for p in parts if p and tokens(p)][:MAX_FRAGMENTS]


def match_job_description(catalog: SkillsCatalog, retriever: Retriever, job_description: str) -> JobMatch:
    """Matched owner skills (best first, with the catalog's evidence), missing requirements, and a score.

    Raises ``ValueError`` for a blank description.
    """
    text = job_description[:MAX_JOB_DESCRIPTION_CHARS]
    if not text.strip():
        raise ValueError("the job description is empty")
    owned = {skill.name for skill in catalog.owner_skills}
    requirements = _requirements(catalog, text)
    covered = [name for name in requirements.values() if name in owned]
    missing = [need for need, name in requirements.items() if name not in owned]

    best: dict[str, SkillMatch] = {}
    for found in retriever.search_many(fragments(text), top_k=3):
        for m in found:
            if m.score >= FULL_MATCH and (m.skill not in best or m.score > best[m.skill].score):
                best[m.skill] = m
    for name in covered:  # named in the description: a sure match whatever the similarity
        best[name] = SkillMatch(name, 1.0, catalog.skill(name).evidence)
    order = {name: n for n, name in enumerate(catalog.skills)}
    matched = sorted(best.values(), key=lambda m: (-m.score, order.get(m.skill, len(order))))

    top = [m.score for m in matched[:5]]
    similarity = sum(top) / len(top) if top else 0.0
    if requirements:
        score = 100 * (COVERAGE_WEIGHT * len(covered) / len(requirements) + (1 - COVERAGE_WEIGHT) * similarity)
    else:
        score = 100 * similarity
    return JobMatch(score=round(score, 1), matched=matched, missing=missing, method=retriever.method)


def _requirements(catalog: SkillsCatalog, text: str) -> dict[str, str | None]:
    """What the description asks for, in order: requirement -> the catalog skill it is (None: unknown to it)."""
    found: dict[str, str | None] = {name: name for name in catalog.skills_in_text(text)}
    for term in tech_vocabulary().skills_in_text(text):
        entry = tech_vocabulary().skill(term)
        known = next(filter(None, map(catalog.skill_named, (entry.name, *entry.aliases))), None)
        key = known or term
        if key not in found:
            found[key] = known
    return found
