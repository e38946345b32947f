"""The assistant: a recruiter's question in, an answer from the owner's skills out (with what analytics records)."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from ..skills import SkillsCatalog
from .llm import LLMClient, LLMError
from .quality import FULL_MATCH, PARTIAL_MATCH, first_person, listing, match_quality
from .retrieval import MAX_QUERY_CHARS, Retriever, SkillMatch

#: Skills named as an answer's sources (the analytics events' ``sourcesUsed``).
MAX_SOURCES = 5
#: Skills the composed answer speaks of.
MAX_ANSWERED_SKILLS = 3
#: Longest answer text kept from an LLM.
MAX_LLM_ANSWER_CHARS = 4_000
_SPACES = re.compile(r"\s+")

#: The structured answer asked of an LLM: the fields the existing producer's LLM gives.
ANSWER_SCHEMA: dict[str, Any] = {
    "title": "cv_answer",
    "type": "object",
    "additionalProperties": False,
    "required": ["answer", "matchQuality", "confidence", "reasoning"],
    "properties": {
        "answer": {"type": "string", "description": "plain text, at most three sentences"},
        "matchQuality": {"type": "string", "enum": ["full", "partial", "none"]},
        "confidence": {"type": "number", "description": "0 to 1"},
        "reasoning": {"type": "string", "description": "one sentence: why this match quality"},
    },
}


@dataclass(frozen=True)
class AnswerResult:
    """An answer and what the analytics response event carries of it (times in milliseconds)."""

    answer: str
    matches: list[SkillMatch]
    match_quality: str  # "full" | "partial" | "none"
    match_score: float  # the top similarity, 0..1
    confidence: float
    reasoning: str
    cache_hit: bool
    method: str  # the retrieval method
    retrieval_ms: float
    llm_ms: float | None
    total_ms: float
    sources: list[str] = field(default_factory=list)


def normalise_question(question: str) -> str:
    """The cache key of a question: case and spacing do not make another question."""
    return _SPACES.sub(" ", question[:MAX_QUERY_CHARS]).strip().casefold()


class Assistant:
    """Answers recruiters' questions from the owner's skills catalog. Thread-safe.

    Retrieval finds the skills a question is about; the answer is composed from
    their evidence, or written by ``llm`` (an OpenAI-compatible endpoint) when
    given, with its structured match quality. An LLM that fails or replies
    out of shape leaves the composed answer (never an exception). Answers are
    kept in an LRU cache of ``cache_size`` (0: none) keyed by the normalised
    question; answers the LLM should have written but did not are not kept.
    """

    def __init__(
        self, catalog: SkillsCatalog, retriever: Retriever, llm: LLMClient | None = None, *, cache_size: int = 256
    ) -> None:
        self.catalog = catalog
        self.retriever = retriever
        self.llm = llm
        self.cache_size = cache_size
        self._cache: OrderedDict[str, AnswerResult] = OrderedDict()
        self._lock = threading.Lock()

    def answer(self, question: str) -> AnswerResult:
        started = time.perf_counter()
        key = normalise_question(question)
        cached = self._cached(key)
        if cached is not None:
            return replace(cached, cache_hit=True, retrieval_ms=0.0, llm_ms=None, total_ms=_ms(started))
        if not key:
            return self._empty(started)
        matches = self.retriever.search(question[:MAX_QUERY_CHARS], top_k=MAX_SOURCES)
        retrieved = time.perf_counter()
        composed = self._composed(matches)
        result, keep = composed, True
        llm_ms = None
        if self.llm is not None:
            written = self._written(question[:MAX_QUERY_CHARS], matches)
            llm_ms = _ms(retrieved)
            if written is None:
                keep = False
            else:
                result = {**composed, **written}
        answer = AnswerResult(
            **result,
            cache_hit=False,
            method=self.retriever.method,
            retrieval_ms=(retrieved - started) * 1000,
            llm_ms=llm_ms,
            total_ms=_ms(started),
        )
        if keep:
            self._keep(key, answer)
        return answer

    # -- composition ----------------------------------------------------------

    def _composed(self, matches: list[SkillMatch]) -> dict[str, Any]:
        top = matches[0].score if matches else 0.0
        quality = match_quality(top)
        used = [m for m in matches if m.score >= PARTIAL_MATCH]
        if quality == "none":
            text = "My CV does not cover that."
            main = [s.name for s in sorted(self.catalog.owner_skills, key=lambda s: -(s.years or 0))[:3]]
            if main:
                text += f" Ask me about my main skills, such as {listing(main)}."
            best = f" (the best, {matches[0].skill}, scored {top:.2f})" if matches else ""
            reasoning = f"No skill in the catalog matched the question{best}; a partial match needs {PARTIAL_MATCH:.2f}."
            confidence = 1.0 - top
        else:
            spoken = [first_person(self.catalog.skill(m.skill)) for m in used[:MAX_ANSWERED_SKILLS]]
            text = ("Yes. " if quality == "full" else "Partly. ") + " ".join(spoken)
            scored = listing([f"{m.skill} ({m.score:.2f})" for m in used[:MAX_ANSWERED_SKILLS]])
            reasoning = (
                f"{scored} matched the question by {self.retriever.method} similarity; "
                f"{'at or over' if quality == 'full' else 'under'} the {FULL_MATCH:.2f} a full match needs."
            )
            confidence = top
        return {
            "answer": text,
            "matches": matches,
            "match_quality": quality,
            "match_score": top,
            "confidence": round(confidence, 4),
            "reasoning": reasoning,
            "sources": [m.skill for m in used[:MAX_SOURCES]],
        }

    def _written(self, question: str, matches: list[SkillMatch]) -> dict[str, Any] | None:
        """The LLM's answer fields, or None when it failed or replied out of shape."""
        assert self.llm is not None
        try:
            reply = self.llm.chat(self._messages(question, matches), json_schema=ANSWER_SCHEMA)
        except LLMError:
            return None
        return _structured(reply)

    def _messages(self, question: str, matches: list[SkillMatch]) -> list[dict[str, str]]:
        profile = self.catalog.profile
        who = profile.name or "the CV's owner"
        facts = [f"Profile: {who}" + (f", {profile.headline}" if profile.headline else "") + "."]
        if profile.summary:
            facts.append(profile.summary)
        if matches:
            facts.append("Skills from the CV that the question may be about (similarity 0..1):")
            for m in matches:
                skill = self.catalog.skill(m.skill)
                details = "; ".join(x for x in (m.evidence, skill.summary or "") if x)
                facts.append(f"- {m.skill} ({m.score:.2f})" + (f": {details}" if details else ""))
        else:
            facts.append("No skill in the CV matched the question.")
        system = (
            f"You answer recruiters' questions about {who}'s CV in the first person, as {who}, using only the "
            "facts below; never invent skills, years or projects, and say so plainly when the facts do not "
            "cover the question. Reply in JSON: answer (plain text, at most three sentences), matchQuality "
            "(full: the CV covers what is asked; partial: part of it or something close; none: not covered), "
            "confidence (0 to 1) and reasoning (one sentence).\n\n" + "\n".join(facts)
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": question}]

    def _empty(self, started: float) -> AnswerResult:
        return AnswerResult(
            answer="Ask me about a skill, a technology or a project in my CV.",
            matches=[],
            match_quality="none",
            match_score=0.0,
            confidence=1.0,
            reasoning="The question is empty.",
            cache_hit=False,
            method=self.retriever.method,
            retrieval_ms=0.0,
            llm_ms=None,
            total_ms=_ms(started),
        )

    # -- cache ----------------------------------------------------------------

    def _cached(self, key: str) -> AnswerResult | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _keep(self, key: str, answer: AnswerResult) -> None:
        if self.cache_size <= 0:
            return
        with self._lock:
            self._cache[key] = answer
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)


def _structured(reply: Any) -> dict[str, Any] | None:
    """The fields of a structured reply, or None when any is missing or out of range."""
    if not isinstance(reply, dict):
        return None
    answer, quality, confidence, reasoning = (reply.get(k) for k in ANSWER_SCHEMA["required"])
    if not isinstance(answer, str) or not answer.strip() or not isinstance(reasoning, str):
        return None
    if quality not in ("full", "partial", "none"):
        return None
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        return None
    return {
        "answer": answer.strip()[:MAX_LLM_ANSWER_CHARS],
        "match_quality": quality,
        "confidence": float(confidence),
        "reasoning": reasoning.strip()[:MAX_LLM_ANSWER_CHARS],
    }


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000
