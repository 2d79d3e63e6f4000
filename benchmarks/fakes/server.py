"""A tiny threaded HTTP server on 127.0.0.1 (port 0) that hands requests to a fake app.

An app is any object with ``handle(request: Request) -> Response``. Faults (status codes,
slow answers, rate-limit answers) are queued with :class:`FaultQueue` and consumed in order by
the requests they match.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "Request", "Response", "Fault", "FaultQueue", "FakeServer", "json_response", "sleep_fault",
]


@dataclass
class Request:
    """One HTTP request as the fake apps see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self):
        """The body parsed as JSON."""
        return json.loads(self.body.decode("utf-8"))

    def header(self, name: str) -> str | None:
        """A header value (case-insensitive)."""
        return self.headers.get(name.lower())


@dataclass
class Response:
    """What a fake app answers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer."""
    return Response(
        status,
        json.dumps(payload).encode("utf-8"),
        {"Content-Type": "application/json;charset=utf-8", **(headers or {})},
    )


@dataclass
class Fault:
    """A fault injected into the next matching request.

    Attributes:
        kind: ``status`` (answer ``status`` with ``body``), ``delay`` (sleep ``seconds`` then
            handle normally — the client may have timed out meanwhile), or ``rate_limit``
            (answer 429 with ``policy`` and optional ``retry_after``).
        status: Status code for ``status`` faults.
        seconds: Delay for ``delay`` faults.
        policy: ``policyName`` for ``rate_limit`` faults.
        retry_after: ``Retry-After`` header value, or ``None`` for none.
        path: Only requests whose path contains this text match.
        body: Body for ``status`` faults.
    """

    kind: str
    status: int = 503
    seconds: float = 0.0
    policy: str = "TEN_SECONDLY_ROLLING"
    retry_after: str | None = None
    path: str = ""
    body: str = '{"status":"error","message":"Service unavailable","category":"INTERNAL_ERROR"}'


class FaultQueue:
    """Thread-safe FIFO of faults; each fault is used by exactly one matching request."""

    def __init__(self) -> None:
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self.used: list[Fault] = []

    def add(self, fault: Fault, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` matching requests."""
        with self._lock:
            self._faults.extend([fault] * times)

    def take(self, path: str) -> Fault | None:
        """Pop the first queued fault matching ``path``."""
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.path in path:
                    del self._faults[i]
                    self.used.append(fault)
                    return fault
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)


def _make_handler(app):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30

        def setup(self) -> None:
            super().setup()
            # answer in one segment, without waiting for the client's delayed ACK
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args) -> None:  # keep test output quiet
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            try:
                response = app.handle(request)
            except Exception as exc:  # a bug in a fake answers 500 so the test sees it
                response = json_response(500, {"message": f"fake crashed: {exc!r}"})
            try:
                self.send_response(response.status)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


class FakeServer:
    """Run a fake app on ``http://127.0.0.1:<free port>`` in a background thread.

    Use as a context manager; :attr:`url` is the base URL.
    """

    def __init__(self, app) -> None:
        self.app = app
        self._server = _Server(("127.0.0.1", 0), _make_handler(app))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> FakeServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        self._server.shutdown()
        with self._server.sockets_lock:
            for sock in list(self._server.open_sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def sleep_fault(fault: Fault) -> None:
    """Sleep for a ``delay`` fault."""
    time.sleep(fault.seconds)
