"""The HTTP endpoints (docs/operations.md): /metrics, /healthz, /readyz and /state.

The handler of metrics.py serves /metrics; the other paths answer JSON. The server runs on
its own threads and reads only what the pipeline publishes whole (the latest snapshot, the
alert states), so a request never waits for the event loop or sees a half-updated book.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

Route = Callable[[], tuple[int, Mapping[str, Any]]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def _handler(
    metrics: type[BaseHTTPRequestHandler], routes: Mapping[str, Route]
) -> type[BaseHTTPRequestHandler]:
    class Handler(metrics):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:  # noqa: N802 - the stdlib handler's method name
            path = urlsplit(self.path).path.rstrip("/") or "/"
            route = routes.get(path)
            if route is not None:
                status, document = route()
                self._json(status, document)
            elif path == "/metrics":
                super().do_GET()
            else:
                known = ", ".join(["/metrics", *routes])
                self._json(404, {"error": f"no such path {path!r}; try {known}"})

        def _json(self, status: int, document: Mapping[str, Any]) -> None:
            body = json.dumps(document, allow_nan=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            return  # requests are not logged: scrapes every few seconds would flood the log

    return Handler


class Endpoints:
    """The server; ``start`` binds (OSError when the address is taken) and serves ``metrics``
    (``monitor.metrics.metrics_handler``) on /metrics beside ``routes``; ``stop``, or leaving
    its ``with`` block (started or not), closes it."""

    def __init__(self) -> None:
        self.server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(
        self,
        metrics: type[BaseHTTPRequestHandler],
        routes: Mapping[str, Route],
        *,
        host: str,
        port: int,
    ) -> int:
        self.server = _Server((host, port), _handler(metrics, routes))
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="http-endpoints", daemon=True
        )
        self._thread.start()
        return int(self.server.server_address[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
