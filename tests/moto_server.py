"""moto in server mode: a local HTTP endpoint that speaks the AWS APIs.

Tests talk to it through boto3 exactly as the code talks to AWS (HTTP, signed
requests, ``AWS_ENDPOINT_URL``), never through ``mock_aws``, so what passes
here is the code path that runs in production.

One server per test session (per xdist worker), on a free loopback port.
Its state is global to that server: a test that needs a clean account uses the
``moto_reset`` fixture, which empties moto before and after the test.

Beware: while an SQS queue has a Lambda event source mapping (a deployed
stack), moto tries to invoke the function, in Docker, on every message sent to
that queue. Tests that deploy the stack reset moto afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.request
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
LOOPBACK = "127.0.0.1"

#: Variables that could point boto3 at a real account or another endpoint.
_CREDENTIAL_SOURCES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


@contextlib.contextmanager
def moto_server(tmp_dir: str) -> Iterator[str]:
    """Start moto on a free loopback port, point the AWS environment at it, yield its URL.

    The environment (endpoint, region, dummy credentials, no profile and no
    config files) is restored and the server stopped on exit. ``tmp_dir`` holds
    the empty config files boto3 is pointed at, so a developer's ``~/.aws``
    cannot leak a region, an endpoint or real credentials into the tests.
    """
    # One log line per request drowns a failing test's report: keep werkzeug's warnings only.
    request_log = logging.getLogger("werkzeug")
    previous_level = request_log.level
    request_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    empty = os.path.join(tmp_dir, "aws-config")
    open(empty, "w").close()
    try:
        with pytest.MonkeyPatch.context() as env:
            for name in _CREDENTIAL_SOURCES:
                env.delenv(name, raising=False)
            env.setenv("AWS_ENDPOINT_URL", endpoint)
            env.setenv("AWS_REGION", REGION)
            env.setenv("AWS_DEFAULT_REGION", REGION)
            env.setenv("AWS_ACCESS_KEY_ID", "testing")
            env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            env.setenv("AWS_CONFIG_FILE", empty)
            env.setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
            # No instance-metadata lookups: there is no EC2 here, and a probe would wait for a timeout.
            env.setenv("AWS_EC2_METADATA_DISABLED", "true")
            yield endpoint
    finally:
        server.stop()
        request_log.setLevel(previous_level)


def reset_moto(endpoint: str) -> None:
    """Drop every resource moto holds (all services, all regions)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200:
            raise RuntimeError(f"moto reset answered HTTP {response.status}")
