"""A short profile summary of the owner for a role, from the catalog: written by an LLM, or from a template."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..skills import Skill, SkillsCatalog
from .llm import LLMClient, LLMReplyError
from .quality import PARTIAL_MATCH, phrase
from .retrieval import Retriever

#: Characters of a role that are read.
MAX_ROLE_CHARS = 200
#: Skills a summary highlights: those the role is about, topped up with the owner's longest-held ones.
HIGHLIGHTED = 5
#: Longest summary kept from an LLM.
MAX_SUMMARY_CHARS = 2_000
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class RoleSummary:
    """A profile summary for a role; ``method`` is ``"llm"`` or ``"template"``."""

    role: str
    summary: str
    highlighted_skills: list[str]
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "summary": self.summary,
            "highlightedSkills": list(self.highlighted_skills),
            "method": self.method,
        }


def summarise_for_role(
    catalog: SkillsCatalog, retriever: Retriever, role: str, llm: LLMClient | None = None
) -> RoleSummary:
    """The owner's profile for ``role``, highlighting the skills the role is about.

    With ``llm``, the endpoint writes it from the same facts; a reply out of
    shape falls back to the template, while an unreachable or refusing
    endpoint raises :class:`~.llm.LLMError` (``transient`` says whether a retry
    may help). Raises ``ValueError`` for a blank role.
    """
    role = _SPACES.sub(" ", role[:MAX_ROLE_CHARS]).strip()
    if not role:
        raise ValueError("the role is empty")
    highlighted = _highlighted(catalog, retriever, role)
    if llm is not None:
        try:
            written = llm.chat(_messages(catalog, role, highlighted))
        except LLMReplyError:
            pass
        else:
            assert isinstance(written, str)  # no schema asked: the reply's text
            return RoleSummary(role, written.strip()[:MAX_SUMMARY_CHARS], [s.name for s in highlighted], "llm")
    return RoleSummary(role, _template(catalog, role, highlighted), [s.name for s in highlighted], "template")


def _highlighted(catalog: SkillsCatalog, retriever: Retriever, role: str) -> list[Skill]:
    """The skills the role is about, best first, topped up with the owner's longest-held ones."""
    names = [m.skill for m in retriever.search(role, top_k=HIGHLIGHTED) if m.score >= PARTIAL_MATCH]
    by_years = sorted(catalog.owner_skills, key=lambda s: -(s.years or 0))  # stable: catalog order among equals
    names += [skill.name for skill in by_years if skill.name not in names]
    return [catalog.skill(name) for name in names[:HIGHLIGHTED]]


def _who(catalog: SkillsCatalog) -> str:
    return catalog.profile.name or "The candidate"


def _template(catalog: SkillsCatalog, role: str, highlighted: list[Skill]) -> str:
    profile = catalog.profile
    opening = f"{_who(catalog)}, {profile.headline}." if profile.headline else f"{_who(catalog)}."
    parts = [opening]
    if profile.summary:
        parts.append(profile.summary)
    if highlighted:
        parts.append(f"For a {role} role: {'; '.join(phrase(s) for s in highlighted)}.")
    return " ".join(parts)


def _messages(catalog: SkillsCatalog, role: str, highlighted: list[Skill]) -> list[dict[str, str]]:
    profile = catalog.profile
    facts = [f"Name: {_who(catalog)}"]
    if profile.headline:
        facts.append(f"Headline: {profile.headline}")
    if profile.summary:
        facts.append(f"Summary: {profile.summary}")
    facts.append("Skills most relevant to the role:")
    facts.extend(f"- {s.name}: " + "; ".join(x for x in (s.evidence, s.summary or "") if x) for s in highlighted)
    system = (
        "Write a short CV profile summary (two to four sentences, plain text, third person) for the role the "
        "user names, using only these facts; never invent skills, years or projects.\n\n" + "\n".join(facts)
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": f"Role: {role}"}]
