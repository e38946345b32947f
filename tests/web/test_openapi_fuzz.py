"""schemathesis against the app's own OpenAPI spec: whatever it sends to the web routes, no 5xx, and
every answer as documented (status, content type, headers, schema). The jobs routes are the jobs tests'.

Each operation's cases come from schemathesis' hypothesis strategy and are sent to the app under
uvicorn (schemathesis' pytest loader does not run under this pytest: its lazy schemas set a
``_nodeid`` that pytest 9 no longer has).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from .conftest import API_KEY

#: The web app's own routers (the jobs API and the dashboard are tested by their owners).
WEB_TAGS = "^(health|chat|ingestion|metrics)$"
EXAMPLES_PER_OPERATION = 40


@pytest.mark.slow
def test_no_input_makes_a_server_error_and_every_answer_is_documented(live_server):
    schema = schemathesis.openapi.from_url(f"{live_server}/openapi.json").include(tag_regex=WEB_TAGS)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} >= {
#A
#B
        ("POST", "/v1/events"),
        ("GET", "/"),
        ("GET", "/metrics"),
        ("GET", "/readyz"),
    }
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            case.call_and_validate(base_url=live_server, headers={"x-api-key": API_KEY})

        fuzz()
