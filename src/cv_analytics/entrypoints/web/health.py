"""``/healthz`` (the process answers) and ``/readyz`` (the queue and the store answer, each check's result)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from .deps import WiringDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check(name: str, probe: Any) -> dict[str, Any]:
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - a readiness check reports any failure as its result
        return {"name": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"name": name, "ok": True}


@router.get(
    "/readyz",
    summary="The queue and the store are reachable",
    responses={503: {"description": "a check failed; the body says which"}},
)
async def readyz(wiring: WiringDep) -> JSONResponse:
    checks = await run_in_threadpool(
        lambda: [_check("queue", lambda: wiring.queue().attributes()), _check("store", lambda: wiring.store.ping())]
    )
    ready = all(check["ok"] for check in checks)
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
