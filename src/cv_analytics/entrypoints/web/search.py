"""``/api/search``: the sample CV assistant, instrumented as any chatbot would be.

The instrumentation is the runnable example of the analytics client's use: a
query event before answering, a response event after (timings, cache hit, the
top similarity as match quality, the top five skills as sources), both through
the process's fire-and-forget client, whose calls are O(1) appends that never
raise; they are guarded all the same, so that analytics can never fail or slow
a request. The answering is CPU work and runs in the threadpool, off the event
loop.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..._ids import random_uuid4
from ...client import AnalyticsClient
from .deps import WiringDep

log = logging.getLogger(__name__)

router = APIRouter(tags=["assistant"])

#: A recruiter's question, not a document: longer ones are refused (422) rather than searched.
MAX_QUESTION_CHARS = 2000
#: A session id is an opaque token from the chatbot's front end.
MAX_SESSION_ID_CHARS = 256
#: ``sourcesUsed``: the top five matched skills.
SOURCES_USED = 5
CORRELATION_HEADER = "x-correlation-id"


class _CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class SearchRequest(_CamelModel):
    #: a blank question is asked like any other: the assistant says what it can answer
    q: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="The recruiter's question.")


class SkillMatchOut(_CamelModel):
    skill: str
    score: float = Field(description="similarity, 0..1")
    evidence: str


class Timings(_CamelModel):
    total_ms: float = Field(description="the request, from arrival to answer")
    retrieval_ms: float
    llm_ms: float | None = Field(description="None when no LLM endpoint is configured")


class SearchAnswer(_CamelModel):
    answer: str
    matches: list[SkillMatchOut]
    match_quality: Literal["full", "partial", "none"]
    match_score: float = Field(description="the top similarity, 0..1 (the analytics events' matchQuality)")
    confidence: float
    reasoning: str
    cache_hit: bool
    method: str = Field(description="the retrieval method: embedding or bm25")
    sources: list[str]
    timings: Timings
    correlation_id: str


def _log_query(client: AnalyticsClient | None, question: str, session_id: str | None, request: Request) -> str:
    """Log the query event; the correlation id for the response (a new one whatever happens)."""
    correlation_id = random_uuid4()
    if client is None:
        return correlation_id
    try:
        metadata = {
            key: value
            for key, value in (("userAgent", request.headers.get("user-agent")), ("referer", request.headers.get("referer")))
            if value
        }
        client.log_query(question, session_id=session_id, correlation_id=correlation_id, metadata=metadata or None)
        request.app.state.metrics.events_logged.labels("query").inc()
    except Exception:  # noqa: BLE001 - analytics never fails a request
        log.exception("analytics: the query event could not be logged")
    return correlation_id


def _log_response(
    client: AnalyticsClient | None, correlation_id: str, result: Any, session_id: str | None, total_ms: float, request: Request
) -> None:
    if client is None:
        return
    try:
        client.log_response(
            correlation_id,
            result.answer,
            session_id=session_id,
            total_time=total_ms,
            llm_time=result.llm_ms,
            retrieval_time=result.retrieval_ms,
            cache_hit=result.cache_hit,
            match_quality=result.match_score,
            sources_used=result.sources[:SOURCES_USED],
        )
        request.app.state.metrics.events_logged.labels("response").inc()
    except Exception:  # noqa: BLE001 - as above
        log.exception("analytics: the response event could not be logged")


async def _answer(question: str, session_id: str | None, request: Request, response: Response, wiring: WiringDep) -> SearchAnswer:
    started = time.perf_counter()
    client: AnalyticsClient | None = request.app.state.analytics
    try:
        assistant = wiring.assistant
    except Exception as exc:  # noqa: BLE001 - a broken catalog is the server's state, said as such, not a 500
        log.exception("the assistant could not be built")
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"the assistant is unavailable: {exc}") from exc
    session_id = session_id or None  # an empty x-session-id is no session (an event's sessionId is never empty)
    correlation_id = _log_query(client, question, session_id, request)
    result = await run_in_threadpool(assistant.answer, question)
    total_ms = (time.perf_counter() - started) * 1000
    _log_response(client, correlation_id, result, session_id, total_ms, request)
    response.headers[CORRELATION_HEADER] = correlation_id
    return SearchAnswer(
        answer=result.answer,
        matches=[SkillMatchOut(skill=m.skill, score=m.score, evidence=m.evidence) for m in result.matches],
        match_quality=result.match_quality,
        match_score=result.match_score,
        confidence=result.confidence,
        reasoning=result.reasoning,
        cache_hit=result.cache_hit,
        method=result.method,
        sources=list(result.sources),
        timings=Timings(total_ms=total_ms, retrieval_ms=result.retrieval_ms, llm_ms=result.llm_ms),
        correlation_id=correlation_id,
    )


SessionHeader = Annotated[
    str | None,
    Header(
        alias="x-session-id",
        max_length=MAX_SESSION_ID_CHARS,
        description="The visitor's session: its events are delivered in order.",
    ),
]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "the body could not be read (not JSON text)"},
    503: {"description": "the assistant could not be built (the skills catalog is unreadable)"},
}
_HEADERS = {CORRELATION_HEADER: {"description": "the correlation id of the analytics events", "schema": {"type": "string"}}}


@router.get(
    "/api/search",
    response_model=SearchAnswer,
    summary="Ask the CV assistant a question",
    responses={200: {"headers": _HEADERS}, **_RESPONSES},
)
async def search_get(
    request: Request,
    response: Response,
    wiring: WiringDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS, description="The recruiter's question.")],
    x_session_id: SessionHeader = None,
) -> SearchAnswer:
    return await _answer(q, x_session_id, request, response, wiring)


@router.post(
    "/api/search",
    response_model=SearchAnswer,
    summary="Ask the CV assistant a question (JSON body)",
    responses={200: {"headers": _HEADERS}, **_RESPONSES},
)
async def search_post(
    body: SearchRequest, request: Request, response: Response, wiring: WiringDep, x_session_id: SessionHeader = None
) -> SearchAnswer:
    return await _answer(body.q, x_session_id, request, response, wiring)

