"""What API Gateway's HTTP API sends a Lambda proxy integration, and what it reads back (payload format 2.0).

https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
Shared by the jobs tests on moto and ``bench/aws_jobs_bench.py``.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The key the tests' deployments accept (``CV_ANALYTICS_API_KEYS``).
API_KEY = "test-key-0123456789"


@dataclass
class HttpAnswer:
    """Mangum's answer to API Gateway (payload format 2.0)."""

    raw: Mapping[str, Any]

    @property
    def status(self) -> int:
        return int(self.raw["statusCode"])

    @property
    def headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.raw.get("headers", {}).items()}

    def json(self) -> Any:
        body = self.raw.get("body") or ""
        if self.raw.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        return json.loads(body)


def http_api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    api_key: str | None = API_KEY,
    route_key: str = "$default",
) -> dict[str, Any]:
    """The event API Gateway's HTTP API sends a Lambda proxy integration, payload format 2.0
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html)."""
    sent = {name.lower(): value for name, value in (headers or {}).items()}
    if api_key is not None:
        sent["x-api-key"] = api_key
    raw_body = None
    if body is not None:
        raw_body = body if isinstance(body, str) else json.dumps(body)
        sent.setdefault("content-type", "application/json")
        sent["content-length"] = str(len(raw_body.encode()))
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": urllib.parse.urlencode(query or {}),
        "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "tests", **sent},
        **({"queryStringParameters": dict(query)} if query else {}),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "tests"},
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        **({"body": raw_body} if raw_body is not None else {}),
        "isBase64Encoded": False,
    }
