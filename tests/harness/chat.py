"""A local HTTP receiver standing in for a chat service's webhook endpoint.

``ChatReceiver`` accepts POST (and PUT/PATCH) requests on any path at ``http://127.0.0.1:<port>``,
records each one and answers 200. It can be told to fail: ``fail()`` rejects every request with an
error status until ``recover()``; ``fail_next(n)`` rejects only the next ``n``. Rejected requests
are recorded apart from accepted ones. Apprise's ``json://127.0.0.1:<port>/<path>`` notifier
posts ``{"version", "title", "message", "attachments", "type"}`` to it.

Two dead services beside it, each on a free loopback port: ``HungServer`` accepts TCP
connections and never answers; ``TricklingServer`` answers one byte every 2 s and never
finishes. Both stop by themselves after ``lifetime`` seconds at the latest, and their
fixtures stop them after the test.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast

import pytest

from harness.ports import LOOPBACK, free_port


@dataclass(frozen=True)
class ChatRequest:
    """One request as received; ``received_at`` is a ``time.monotonic()`` reading."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    status: int
    received_at: float

    @property
    def title(self) -> Any:
        """The ``title`` field of a JSON object body (Apprise's JSON notifier), else None."""
        return self.body.get("title") if isinstance(self.body, dict) else None

    @property
    def message(self) -> Any:
        """The ``message`` field of a JSON object body (Apprise's JSON notifier), else None."""
        return self.body.get("message") if isinstance(self.body, dict) else None


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class _Server(ThreadingHTTPServer):
    # Handler threads are joined by server_close(), so none outlives the receiver.
    daemon_threads = False
    block_on_close = True

    def __init__(self, receiver: ChatReceiver) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.receiver = receiver


class _Handler(BaseHTTPRequestHandler):
    server_version = "ChatReceiver/1"
    # Socket timeout, so a stalled client cannot keep a handler thread (and shutdown) waiting.
    timeout = 10

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        receiver = cast("_Server", self.server).receiver
        status = receiver._record(
            method=self.command,
            path=self.path,
            headers=dict(self.headers.items()),
            raw=raw,
        )
        reply = json.dumps({"ok": status < 400}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_POST(self) -> None:
        """Records a POST."""
        self._handle()

    def do_PUT(self) -> None:
        """Records a PUT."""
        self._handle()

    def do_PATCH(self) -> None:
        """Records a PATCH."""
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silences the per-request access log on stderr."""


class ChatReceiver:
    """An HTTP server in a background thread recording the webhook posts it receives."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._received: list[ChatRequest] = []
        self._rejected: list[ChatRequest] = []
        self._fail_status: int | None = None
        self._fail_next = 0
        self._fail_next_status = 500
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Binds a free loopback port and starts serving in a background thread."""
        if self._server is not None:
            raise RuntimeError("the receiver is already started")
        server = _Server(self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"chat-receiver-{server.server_address[1]}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stops serving, closes the socket and joins the server and handler threads."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addressing ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """Always the IPv4 loopback."""
        return LOOPBACK

    @property
    def port(self) -> int:
        """The bound port; RuntimeError before ``start()``."""
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    def apprise_url(self, path: str = "/hook") -> str:
        """An Apprise JSON-notifier URL posting to ``path`` on this receiver."""
        return f"json://{self.host}:{self.port}/{path.lstrip('/')}"

    # -- behaviour ----------------------------------------------------------------------------

    def fail(self, status: int = 500) -> None:
        """Answers every following request with ``status`` until ``recover()``."""
        with self._changed:
            self._fail_status = status

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answers only the next ``n`` requests with ``status``."""
        with self._changed:
            self._fail_next = n
            self._fail_next_status = status

    def recover(self) -> None:
        """Answers 200 again (also cancels a pending ``fail_next``)."""
        with self._changed:
            self._fail_status = None
            self._fail_next = 0

    # -- observations -------------------------------------------------------------------------

    @property
    def received(self) -> list[ChatRequest]:
        """A copy of the accepted (200) requests, in arrival order."""
        with self._changed:
            return list(self._received)

    @property
    def rejected(self) -> int:
        """How many requests were answered with an error status."""
        with self._changed:
            return len(self._rejected)

    @property
    def rejected_requests(self) -> list[ChatRequest]:
        """A copy of the requests answered with an error status, in arrival order."""
        with self._changed:
            return list(self._rejected)

    def clear(self) -> None:
        """Forgets every recorded request."""
        with self._changed:
            self._received.clear()
            self._rejected.clear()

    def wait_for(
        self, predicate: Callable[[list[ChatRequest]], bool], timeout: float = 10.0
    ) -> list[ChatRequest]:
        """Blocks until ``predicate(received)`` holds on the accepted requests; returns them.

        TimeoutError, listing what was received, when it does not hold within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self._received)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"condition not met within {timeout}s; accepted "
                        f"{[(r.path, r.body) for r in self._received]}, "
                        f"rejected {len(self._rejected)}"
                    )
                self._changed.wait(remaining)
            return list(self._received)

    def _record(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> int:
        """Stores one request and returns the status to answer it with."""
        with self._changed:
            if self._fail_status is not None:
                status = self._fail_status
            elif self._fail_next > 0:
                self._fail_next -= 1
                status = self._fail_next_status
            else:
                status = 200
            request = ChatRequest(
                method=method,
                path=path,
                headers=headers,
                body=_decode(raw),
                raw=raw,
                status=status,
                received_at=time.monotonic(),
            )
            (self._received if status < 400 else self._rejected).append(request)
            self._changed.notify_all()
            return status


@pytest.fixture(name="chat_receiver")
def chat_receiver_fixture() -> Iterator[ChatReceiver]:
    """A started receiver, stopped after the test."""
    with ChatReceiver() as receiver:
        yield receiver


# -- dead services --------------------------------------------------------------------------


class _StallingServer:
    """A TCP server on a free loopback port that never completes a response."""

    def __init__(self, lifetime: float = 120.0) -> None:
        self.lifetime = lifetime
        self._stopped = threading.Event()
        self._changed = threading.Condition()
        self._connections = 0
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._port: int | None = None

    def start(self) -> Self:
        """Listens on a free port and accepts in a background thread."""
        if self._listener is not None:
            raise RuntimeError("the server is already started")
        for _ in range(5):  # another process may take the port between the pick and the bind
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            port = free_port()
            try:
                listener.bind((LOOPBACK, port))
                break
            except OSError:
                listener.close()
        else:
            raise RuntimeError("no free loopback port could be bound")
        listener.listen(16)
        listener.settimeout(0.05)
        self._listener, self._port = listener, port
        self._stopped.clear()
        deadline = time.monotonic() + self.lifetime
        self._spawn(self._accept, deadline, name=f"{type(self).__name__}-{port}")
        return self

    def stop(self) -> None:
        """Closes every connection and the listener, and joins the threads."""
        self._stopped.set()
        while self._threads:  # the acceptor first: no connection thread starts after it
            self._threads.pop(0).join(timeout=10)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port; RuntimeError before ``start()``."""
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    def apprise_url(self, path: str = "/hook") -> str:
        """An Apprise JSON-notifier URL posting to ``path`` on this server."""
        return f"json://{LOOPBACK}:{self.port}/{path.lstrip('/')}"

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        with self._changed:
            return self._connections

    def wait_for_connections(self, n: int, timeout: float = 10.0) -> None:
        """Blocks until ``n`` connections were accepted; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._connections < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._connections} of {n} connections in {timeout}s")
                self._changed.wait(remaining)

    def _spawn(self, target: Callable[..., None], *args: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, deadline: float) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopped.is_set() and time.monotonic() < deadline:
            try:
                connection, _peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            with self._changed:
                self._connections += 1
                self._changed.notify_all()
            self._spawn(self._hold, connection, deadline, name=f"{type(self).__name__}-conn")
        self._stopped.set()  # the lifetime is over: the connections close too

    def _hold(self, connection: socket.socket, deadline: float) -> None:
        with connection:
            self._stall(connection, deadline)

    def _stall(self, connection: socket.socket, deadline: float) -> None:
        raise NotImplementedError


class HungServer(_StallingServer):
    """Accepts connections and never answers (a webhook whose backend is stuck)."""

    def _stall(self, connection: socket.socket, deadline: float) -> None:
        self._stopped.wait(max(deadline - time.monotonic(), 0.0))


class TricklingServer(_StallingServer):
    """Answers one byte every ``interval`` seconds, forever: a status line and then a header
    that never ends, so no read timeout ever fires and the response never completes."""

    def __init__(self, interval: float = 2.0, lifetime: float = 120.0) -> None:
        super().__init__(lifetime)
        self.interval = interval

    def _stall(self, connection: socket.socket, deadline: float) -> None:
        reply = b"HTTP/1.1 200 OK\r\nX-Trickle: "
        sent = 0
        while not self._stopped.wait(self.interval if sent else 0.0):
            if time.monotonic() >= deadline:
                return
            byte = reply[sent : sent + 1] or b"z"
            try:
                connection.sendall(byte)
            except OSError:  # the client gave up
                return
            sent += 1


@pytest.fixture(name="hung_server")
def hung_server_fixture() -> Iterator[HungServer]:
    """A started hung server, stopped after the test."""
    with HungServer() as server:
        yield server


@pytest.fixture(name="trickling_server")
def trickling_server_fixture() -> Iterator[TricklingServer]:
    """A started trickling server, stopped after the test."""
    with TricklingServer() as server:
        yield server
