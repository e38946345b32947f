"""Schemathesis against the jobs API's own OpenAPI spec: no 5xx, answers as documented, every documented status seen."""

from __future__ import annotations

from collections import defaultdict

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from cv_analytics.entrypoints.web import create_app
from cv_analytics.jobs import JobStatus

from .conftest import API_KEY

#: Examples per operation: enough to reach every answer, few enough to stay well under a minute.
EXAMPLES = 40
JOB_ROUTES = {("POST", "/jobs"), ("GET", "/jobs"), ("GET", "/jobs/{jobId}"), ("POST", "/jobs/{jobId}/cancel")}
VALID_BODIES = [
    {"type": "test.echo", "input": {"value": "a"}},
    {"type": "test.echo", "input": {"value": "b"}},
]


def _documented(spec: dict) -> dict[tuple[str, str], set[int]]:
    return {
        (method.upper(), path): {int(code) for code in operation["responses"]}
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
        if (method.upper(), path) in JOB_ROUTES
    }


def test_the_api_answers_as_documented_with_no_server_error(wiring, make_wiring, tmp_path):
    app = create_app(wiring)
    store = wiring.job_store
    queued = wiring.job_service().submit("test.echo", {"value": "q"})[0]
    running = wiring.job_service().submit("test.slow", {"seconds": 1})[0]
    store.claim(running.job_id, "a-worker", 3600)
    done = wiring.job_service().submit("test.echo", {"value": "d"})[0]
    done = store.finish(done.job_id, JobStatus.SUCCEEDED, result={"echo": "d"}).job
    known = [(job.job_id, store.get(job.job_id).etag) for job in (queued, running, done)]
    known.append(("no-such-job", '"x"'))

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen: dict[tuple[str, str], set[int]] = defaultdict(set)
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]

    for result in schema.get_all_operations():
        operation = result.ok()
        route = (operation.method.upper(), operation.path)
        if route not in JOB_ROUTES:
            continue

        @given(
            case=st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
            ),
            authed=st.booleans(),
            job=st.one_of(st.none(), st.sampled_from(known)),
            use_etag=st.booleans(),
            body=st.sampled_from([None, *VALID_BODIES]),
            key=st.sampled_from([None, "fuzz-key"]),
        )
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case, authed, job, use_etag, body, key) -> None:
            headers = dict(case.headers or {})
            if authed:
                headers["x-api-key"] = API_KEY
            if job is not None and "jobId" in (case.path_parameters or {}):
                case.path_parameters["jobId"] = job[0]
                if use_etag and case.method.upper() == "GET":
                    headers["If-None-Match"] = job[1]
            if route == ("POST", "/jobs"):
                if body is not None:
                    case.body = body
                if key is not None:
                    headers["Idempotency-Key"] = key
            if case.query and _number(case.query.get("wait")) and 0 <= float(case.query["wait"]) <= 20:
                case.query["wait"] = min(float(case.query["wait"]), 0.05)  # a valid wait, kept short
            case.headers = headers
            response = case.call()
            seen[route].add(response.status_code)
            case.validate_response(response, checks=checks)

        run()
        # The answers that need a state the generator cannot arrange (a key reused, a job in each
        # state), as cases of the same operation, checked the same way.
        for scenario in _scenarios(route, known):
            case = operation.Case(**scenario)
            response = case.call()
            seen[route].add(response.status_code)
            case.validate_response(response, checks=checks)

    # What a generator does not send: a body over the limit, and a damaged job store (an outage, 503).
    with TestClient(app) as client:
        big = {"type": "test.echo", "input": {"value": "x" * (300 * 1024)}}
        seen[("POST", "/jobs")].add(client.post("/jobs", json=big, headers={"x-api-key": API_KEY}).status_code)
    broken = make_wiring()
    broken.settings.data_dir.mkdir(parents=True, exist_ok=True)
    (broken.settings.data_dir / "jobs.db").write_bytes(b"not a database" * 512)
    with TestClient(create_app(broken)) as client:
        for method, path in JOB_ROUTES:
            response = client.request(
                method, path.replace("{jobId}", "some-job"), json=VALID_BODIES[0], headers={"x-api-key": API_KEY}
            )
            assert response.status_code == 503 and "damaged" in response.json()["detail"]
            seen[(method, path)].add(response.status_code)

    documented = _documented(app.openapi())
    assert set(documented) == JOB_ROUTES
    for route, codes in documented.items():
        assert seen[route] == codes, f"{route}: documented {sorted(codes)}, seen {sorted(seen[route])}"


def _scenarios(route: tuple[str, str], known: list[tuple[str, str]]) -> list[dict]:
    key = {"x-api-key": API_KEY}
    (queued, _), (running, _), (done, done_etag), (unknown, _) = known
    if route == ("POST", "/jobs"):
        reused = {**key, "Idempotency-Key": "scenario-key"}
        return [
            {"headers": reused, "body": VALID_BODIES[0]},
            {"headers": reused, "body": VALID_BODIES[0]},
            {"headers": reused, "body": VALID_BODIES[1]},
        ]
    if route == ("GET", "/jobs/{jobId}"):
        return [
            {"headers": key, "path_parameters": {"jobId": done}},
            {"headers": {**key, "If-None-Match": done_etag}, "path_parameters": {"jobId": done}},
            {"headers": key, "path_parameters": {"jobId": unknown}},
            {"headers": key, "path_parameters": {"jobId": done}, "query": {"wait": -1}},
        ]
    if route == ("POST", "/jobs/{jobId}/cancel"):
        return [
            {"headers": key, "path_parameters": {"jobId": job_id}}
            for job_id in (queued, running, done, unknown, "x" * 200)
        ]
    return [{"headers": key}, {"headers": key, "query": {"limit": 0}}]


def _number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True
