"""A small Python client for the jobs HTTP API, over httpx.

::

    with JobsClient("http://127.0.0.1:8000", api_key) as jobs:
        job = jobs.submit("cv.match", {"jobDescription": "..."}, idempotency_key="req-42")
        done = jobs.wait(job["jobId"], timeout=60)

Jobs come back as the API's JSON objects (camelCase). An answer other than
the one expected raises :class:`JobsAPIError` with the HTTP status and the
server's detail.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from ..stores.jobs import TERMINAL_STATUSES

_FINAL = frozenset(status.value for status in TERMINAL_STATUSES)
#: The server holds a ``?wait=`` request at most this long.
MAX_WAIT_SECONDS = 20.0


class JobsAPIError(Exception):
    """The API answered ``status_code`` with ``detail`` (a string, or the 422's list of field errors)."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class JobWaitTimeout(TimeoutError):
    """The job had not finished when :meth:`JobsClient.wait` gave up; ``job`` is its last state."""

    def __init__(self, job: dict[str, Any], timeout: float) -> None:
        super().__init__(f"job {job.get('jobId')} still {job.get('status')} after {timeout:g}s")
        self.job = job


class JobsClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"x-api-key": api_key}, timeout=timeout, transport=transport
        )
        self._timeout = timeout

    def submit(
        self, job_type: str, job_input: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """A new job (202), or the one ``idempotency_key`` made from the same body (200)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        response = self._http.post("/jobs", json={"type": job_type, "input": job_input}, headers=headers)
        return self._json(response, 200, 202)

    def get(self, job_id: str, *, wait: float | None = None) -> dict[str, Any]:
        """The job now, or (``wait``, up to 20 s) once its status changes."""
        params = {"wait": min(wait, MAX_WAIT_SECONDS)} if wait else None
        timeout = self._timeout + (wait or 0.0)
        return self._json(self._http.get(f"/jobs/{job_id}", params=params, timeout=timeout), 200)

    def wait(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job once finished; :class:`JobWaitTimeout` after ``timeout`` seconds. Long polls, no storm."""
        deadline = time.monotonic() + timeout
        job = self.get(job_id)
        while job["status"] not in _FINAL:
            left = deadline - time.monotonic()
            if left <= 0:
                raise JobWaitTimeout(job, timeout)
            job = self.get(job_id, wait=min(left, MAX_WAIT_SECONDS))
        return job

    def list(
        self, *, status: str | None = None, job_type: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> dict[str, Any]:
        """``{"jobs": [...], "nextCursor": ...}``, newest first."""
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("status", status), ("type", job_type), ("cursor", cursor)):
            if value is not None:
                params[name] = value
        return self._json(self._http.get("/jobs", params=params), 200)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancelled now (a queued job) or told to stop (a running one); :class:`JobsAPIError` 409 once finished."""
        return self._json(self._http.post(f"/jobs/{job_id}/cancel"), 200, 202)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JobsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _json(response: httpx.Response, *expected: int) -> dict[str, Any]:
        if response.status_code not in expected:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise JobsAPIError(response.status_code, detail)
        return response.json()  # type: ignore[no-any-return]
