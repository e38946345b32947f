"""What every router asks for: the process's wiring and the API key check.

Routers never build backends or read the environment: ``create_app`` puts one
:class:`~cv_analytics.wiring.Wiring` on ``app.state`` and these dependencies hand it out.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from ...wiring import Settings, Wiring

API_KEY_HEADER = "x-api-key"


def get_wiring(request: Request) -> Wiring:
    return request.app.state.wiring


def get_settings(request: Request) -> Settings:
    return request.app.state.wiring.settings


def api_key_matches(presented: str | None, accepted: tuple[str, ...]) -> bool:
    """Constant-time comparison against every accepted key (no early exit that times which one matched)."""
    if not presented:
        return False
    candidate = presented.encode()
    matched = False
    for key in accepted:
        matched |= hmac.compare_digest(candidate, key.encode())
    return matched


def require_api_key(
    request: Request,
    x_api_key: Annotated[str | None, Header(alias=API_KEY_HEADER, description="One of CV_ANALYTICS_API_KEYS.")] = None,
) -> str:
    """401 unless ``x-api-key`` is one of the configured keys (none configured: every request is refused)."""
    accepted = get_settings(request).api_keys
    if not api_key_matches(x_api_key, accepted):
        detail = (
            "missing or unknown API key: send it in the x-api-key header"
            if accepted
            else "no API keys are configured: set CV_ANALYTICS_API_KEYS on the server"
        )
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": API_KEY_HEADER})
    return x_api_key  # type: ignore[return-value]


WiringDep = Annotated[Wiring, Depends(get_wiring)]
ApiKeyDep = Annotated[str, Depends(require_api_key)]
