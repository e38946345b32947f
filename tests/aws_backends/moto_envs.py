"""The AWS backends on moto, as the shared behavioural suites use them.

``SQSQueueEnv`` has the surface of ``tests/queues/conftest.py``'s queue
environments; :func:`make_dynamodb_store` builds the store of
``tests/stores/conftest.py``. Both talk HTTP to the session's moto server (see
``tests/moto_server.py``); the queue env goes through a :class:`TcpProxy` so a
test can cut the connection and see what an outage looks like.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import boto3

from cv_analytics.deploy import resources
from cv_analytics.clock import Clock
from cv_analytics.queues.base import Queue, QueueConfig
from cv_analytics.queues.sqs import SQSQueueBackend
from cv_analytics.stores.dynamodb import DynamoDBStore
from cv_analytics.stores.jobs.dynamodb import DynamoDBJobStore
from tests.moto_server import REGION, reset_moto

#: Where moto falls short of AWS, for the ``moto_gap`` marker's readers.
MOTO_GAP_PREFIX = "moto falls short of AWS here"


class TcpProxy:
    """A loopback TCP forwarder to ``target`` that can be cut (``down()``) and restored.

    While down, new connections are accepted and closed at once and open ones
    are closed: a client sees the connection drop, as in a network outage.

    With ``serialize``, one connection at a time is forwarded (moto closes the
    connection after each response, so: one request at a time). moto handles
    concurrent requests with no isolation (two UpdateItems of a new item can
    lose one another's attributes), where DynamoDB makes every single-item write
    atomic; serializing the requests gives moto that property while the
    clients still interleave their calls freely.
    """

    def __init__(self, target: str, *, serialize: bool = False) -> None:
        parsed = urlparse(target)
        self._target = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._up = threading.Event()
        self._up.set()
        self._closed = False
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._serial = threading.Lock() if serialize else None
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        self._up.clear()
        self._close_open()
        try:
            yield
        finally:
            self._up.set()

    def close(self) -> None:
        self._closed = True
        self._up.clear()
        # closing a listening socket does not wake a thread blocked in accept(): a connection does
        with contextlib.suppress(OSError), socket.create_connection(self._listener.getsockname(), timeout=1):
            pass
        self._thread.join(timeout=5)
        self._listener.close()
        self._close_open()

    def _close_open(self) -> None:
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()
                continue
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        with self._serial or contextlib.nullcontext():
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                return
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            pumps = [
                threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                for src, dst in ((client, upstream), (upstream, client))
            ]
            for pump in pumps:
                pump.start()
            for pump in pumps:
                pump.join()
            client.close()
            upstream.close()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)


class SQSQueueEnv:
    """SQS on moto, on real time (moto's clock cannot be moved)."""

    name = "sqs"
    real_time = True

    def __init__(self, endpoint: str) -> None:
        reset_moto(endpoint)
        self.endpoint = endpoint
        self.proxy = TcpProxy(endpoint)
        # one attempt: an outage test should fail at once, not after botocore's backoff
        self.backend = SQSQueueBackend(
            endpoint_url=self.proxy.url, region=REGION, create_missing=True, max_attempts=1
        )

    def make_queue(self, name: str, config: QueueConfig | None = None) -> Queue:
        return self.backend.queue(name, config or QueueConfig())

    def advance(self, seconds: float) -> None:
        time.sleep(seconds)  # moto runs on real time; the suite keeps these to a couple of seconds

    def process_opener(self, name: str, config: QueueConfig | None = None) -> Callable[[], Queue]:
        endpoint, config = self.endpoint, config or QueueConfig()
        return lambda: SQSQueueBackend(endpoint_url=endpoint, region=REGION, create_missing=True).queue(name, config)

    @contextlib.contextmanager
    def unavailable(self) -> Iterator[None]:
        """The network between boto3 and SQS is cut for the whole block."""
        with self.proxy.down():
            yield

    def close(self) -> None:
        self.backend.close()
        self.proxy.close()


def create_tables(endpoint: str, prefix: str = "test") -> dict[str, str]:
    """The store's tables, as :mod:`cv_analytics.deploy.resources` describes them; returns key → name."""
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    for spec in resources.TABLES:
        client.create_table(**spec.create_table_request(prefix))
        if spec.ttl_attribute:
            client.update_time_to_live(
                TableName=spec.name(prefix),
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
    client.close()
    return {spec.key: spec.name(prefix) for spec in resources.TABLES}


def make_dynamodb_job_store(endpoint: str, clock: Clock, prefix: str = "test") -> DynamoDBJobStore:
    """A DynamoDB job store on a fresh jobs table in moto (the caller resets moto)."""
    spec = resources.JOBS_TABLE
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    client.create_table(**spec.create_table_request(prefix))
    client.close()
    return DynamoDBJobStore(spec.name(prefix), endpoint_url=endpoint, region=REGION, clock=clock)


def make_dynamodb_store(endpoint: str, clock: Clock, *, pending_ttl_seconds: float = 3600, **kwargs: object) -> DynamoDBStore:
    """A DynamoDB store on fresh tables in moto (the caller resets moto)."""
    tables = create_tables(endpoint)
    return DynamoDBStore(
        tables, endpoint_url=endpoint, region=REGION, clock=clock, pending_ttl_seconds=pending_ttl_seconds, **kwargs  # type: ignore[arg-type]
    )
