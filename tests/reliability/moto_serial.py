"""An HTTP proxy on loopback that hands moto one request at a time.

moto's SQS is not thread-safe where SQS is atomic: a DeleteMessage rebuilds the queue's message
list, and a SendMessage handled meanwhile is lost with the old list (a first run of scenario 1,
the client sending while the function deleted, lost 6 of 1,000 events so; the product was not
involved). Processes that write to moto at the same time reach it through this proxy, which
forwards each request whole, under one lock, so that moto handles them one after another as
SQS and DynamoDB would apply them atomically, while the processes interleave freely.

Per request, not per connection (``tests.aws_backends.moto_envs.TcpProxy(serialize=True)`` holds
its lock for a connection's life, and botocore keeps its connections open, so one process would
starve the others).
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

#: Request headers not passed on: the proxy opens its own connection to moto for each request.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


class SerialProxy:
    """``url`` forwards to ``target`` (moto's endpoint) one request at a time. ``close()`` stops it."""

    def __init__(self, target: str) -> None:
        parsed = urlparse(target)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
        lock = threading.Lock()

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                with lock:
                    upstream = http.client.HTTPConnection(host, port, timeout=120)
                    try:
                        upstream.request(self.command, self.path, body=body, headers=headers)
                        answer = upstream.getresponse()
                        payload = answer.read()
                    finally:
                        upstream.close()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass  # one line per request would drown a failing test's report

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-serial-proxy", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
