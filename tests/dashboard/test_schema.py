"""The dashboard's routes in the app's OpenAPI spec, fuzzed by schemathesis: never a 5xx, with or without the key.

The form posts (login, logout, generate report) are left out of the spec
(``include_in_schema=False``): browsers send them, not API clients. The HTML pages and
the JSON under ``/dashboard/api/`` are in it.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from cv_analytics.entrypoints.web import create_app
from cv_analytics.wiring import Wiring

from .conftest import API_KEY, PASSWORD, settings_for


@pytest.fixture(scope="module")
def dashboard_schema(tmp_path_factory):
    wiring = Wiring(settings_for(tmp_path_factory.mktemp("schema-data"), CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD))
    app = create_app(wiring)
    yield schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^/dashboard")
    wiring.close()


def operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def fuzz(schema, examples: int, call) -> int:
    """Run ``call(case)`` on ``examples`` generated requests per operation; returns how many operations ran."""
    ran = 0
    for operation in operations(schema):

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            call(case)

        check()
        ran += 1
    return ran


def test_the_spec_lists_the_dashboard_pages_and_its_json(dashboard_schema):
    paths = set(dashboard_schema.raw_schema["paths"])
    assert {"/dashboard", "/dashboard/health", "/dashboard/api/report", "/dashboard/api/status"} <= paths
    assert "/dashboard/login" not in paths and "/dashboard/logout" not in paths


def test_no_input_makes_a_server_error_with_the_api_key(dashboard_schema):
    assert fuzz(dashboard_schema, 25, lambda case: case.call_and_validate(headers={"x-api-key": API_KEY}, checks=[not_a_server_error])) >= 6


def test_no_input_makes_a_server_error_without_credentials_and_nothing_is_shown(dashboard_schema):
    def call(case):
        response = case.call_and_validate(checks=[not_a_server_error])
        assert response.status_code in (401, 303), response.text

    assert fuzz(dashboard_schema, 10, call) >= 6
