"""A client of an OpenAI-compatible chat-completions endpoint (``POST {url}/chat/completions``), over httpx."""

from __future__ import annotations

import json
from typing import Any

import httpx

from ..exceptions import CVAnalyticsError

#: Statuses worth a retry: the server is busy, down or rate-limiting.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})
#: Longest part of an error reply quoted in an :class:`LLMError`.
_QUOTED = 200


class LLMError(CVAnalyticsError):
    """The endpoint failed. ``transient``: a retry may succeed (network, timeout, 5xx, 429); else it will not (4xx)."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


class LLMReplyError(LLMError):
    """The endpoint answered, but not with what was asked (no message, or not JSON of the schema)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


class LLMClient:
    """An OpenAI-compatible chat-completions endpoint. Thread-safe (one httpx connection pool)."""

    def __init__(self, url: str, model: str, api_key: str | None = None, *, timeout: float = 20.0) -> None:
        self.url = url.rstrip("/") + "/chat/completions"
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))

    def chat(self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None) -> str | dict[str, Any]:
        """The assistant message's text; with ``json_schema``, its content parsed as JSON (an object).

        The schema goes as ``response_format: {"type": "json_schema", ...}`` (strict).
        Raises :class:`LLMError` (:class:`LLMReplyError` for a reply that is not what was asked).
        """
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": json_schema.get("title", "reply"), "schema": json_schema, "strict": True},
            }
        try:
            response = self._http.post(self.url, json=body)
        except httpx.TimeoutException as exc:
            raise LLMError(f"the LLM endpoint {self.url} timed out ({type(exc).__name__})", transient=True) from exc
        except httpx.HTTPError as exc:
            raise LLMError(f"cannot reach the LLM endpoint {self.url}: {exc}", transient=True) from exc
        if response.status_code >= 400:
            transient = response.status_code >= 500 or response.status_code in _TRANSIENT_STATUSES
            raise LLMError(
                f"the LLM endpoint {self.url} answered {response.status_code}: {response.text[:_QUOTED]}",
                transient=transient,
                status=response.status_code,
            )
        content = _content(response)
        if json_schema is None:
            return content
        try:
            parsed = json.loads(content)
        except ValueError as exc:
            raise LLMReplyError(f"the LLM's reply is not JSON: {content[:_QUOTED]!r}") from exc
        if not isinstance(parsed, dict):
            raise LLMReplyError(f"the LLM's reply is not a JSON object: {content[:_QUOTED]!r}")
        return parsed

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _content(response: httpx.Response) -> str:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LLMReplyError(f"the LLM endpoint's reply has no choices[0].message.content: {response.text[:_QUOTED]!r}") from exc
    if not isinstance(content, str) or not content.strip():
        raise LLMReplyError("the LLM's reply is empty")
    return content
