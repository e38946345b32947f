"""Request body limits, enforced while the body streams in (``Content-Length`` or chunked): a 413, never a read of it all."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...queues.base import MAX_BATCH_SIZE, MAX_MESSAGE_BYTES

#: One message's worth, the SQS limit: a job submission, a search.
DEFAULT_MAX_BODY_BYTES = MAX_MESSAGE_BYTES
#: ``/v1/events`` takes a batch of up to ten events of 256 KiB each (plus the JSON array around them).
EVENTS_MAX_BODY_BYTES = MAX_BATCH_SIZE * MAX_MESSAGE_BYTES + 64 * 1024


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for a body over the limit of its path (the longest matching prefix in ``limits``, else ``default``)."""

    def __init__(self, app: ASGIApp, *, default: int = DEFAULT_MAX_BODY_BYTES, limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.limits = sorted((limits or {}).items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _reject(send, limit)
                    return
        received = 0
        response_started = False
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if too_large:
                # FastAPI catches what the body read raised and answers 400 "error parsing the body":
                # the answer to a body cut off here is the 413, whatever the app made of it
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await _reject(send, limit)
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await _reject(send, limit)


async def _reject(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body over the {limit // 1024} KiB limit"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
