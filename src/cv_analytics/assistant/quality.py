"""How good a match a similarity is, and how the catalog's evidence for a skill is worded.

Both retrieval methods score 0..1 on the same scale (see :mod:`.retrieval`), so
one pair of thresholds holds for either.
"""

from __future__ import annotations

from ..skills import Skill

#: A top similarity at or over this is a ``full`` match: the CV covers what was asked.
FULL_MATCH = 0.6
#: At or over this (and under :data:`FULL_MATCH`) a ``partial`` one: part of it, or something close.
PARTIAL_MATCH = 0.3


def match_quality(score: float) -> str:
    """``full``, ``partial`` or ``none`` for a top similarity (0..1)."""
    if score >= FULL_MATCH:
        return "full"
    return "partial" if score >= PARTIAL_MATCH else "none"


def listing(items: list[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def first_person(skill: Skill) -> str:
    """What the owner says of a skill: ``"I have 7 years of TypeScript experience (projects: A and B)."``"""
    years = skill.years_text
    projects = listing(list(skill.projects)) if skill.projects else ""
    if years:
        sentence = f"I have {years} of {skill.name} experience" + (f" (projects: {projects})" if projects else "") + "."
    elif projects:
        sentence = f"I have used {skill.name} in {projects}."
    elif skill.summary:
        return f"{skill.name}: {_sentence(skill.summary)}"
    else:
        return f"{skill.name} is one of my skills."
    return f"{sentence} {_sentence(skill.summary)}" if skill.summary else sentence


def phrase(skill: Skill) -> str:
    """A skill for a profile: ``"9 years of Python (cv-analytics event pipeline, feature store ETL)"``."""
    years = skill.years_text
    head = f"{years} of {skill.name}" if years else skill.name
    return f"{head} ({', '.join(skill.projects)})" if skill.projects else head


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."
