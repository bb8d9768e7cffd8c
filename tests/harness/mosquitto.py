"""A real Mosquitto broker on a loopback port, plus synchronous MQTT helpers built on paho-mqtt.

``Mosquitto`` runs the system ``mosquitto`` binary with a generated config in a work directory:
a loopback listener on a free port, persistence on (so persistent sessions and their queued QoS 1
messages survive a restart), a log file, and optionally a password file and TLS (``with_tls()``;
see harness.certs for throwaway certificates). ``with_config()`` runs a config of your own
instead (a shipped one, with the harness's port and paths put in). ``restart()`` brings the broker
back on the same port, so connected clients can reconnect to the address they know.

Persistence caveat: Mosquitto writes its in-memory state to disk when it exits on SIGTERM, every
``autosave_interval`` seconds, and on SIGUSR1 (``save()``). ``kill()`` sends SIGKILL, which loses
whatever changed since the last save: call ``save()`` first when a test needs the state to survive.

Last Will caveat: the broker publishes a client's Will when it sees that client drop without a
DISCONNECT. Killing the broker publishes nothing; its clients only see their connection close.

``Subscriber`` collects messages on a topic filter at QoS 1 on a persistent session
(``clean_session=False``) and reconnects and resubscribes by itself after the broker comes back.
``publish()`` sends one message and returns once the broker acknowledged it. Both speak TLS
when given a CA file (``ca_file``), verifying the broker's certificate and host name against it;
``Subscriber.for_broker`` and ``Mosquitto.publish`` use the broker's own CA by default.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from harness.ports import LOOPBACK, accepts_connections, find_binary, free_port

INSTALL_HINT = "run scripts/ensure-system-packages.sh to install the mosquitto package"
BROKER_FALLBACK = Path("/usr/sbin/mosquitto")
PASSWD_FALLBACK = Path("/usr/bin/mosquitto_passwd")
START_ATTEMPTS = 5
READY_PATTERN = re.compile(r"mosquitto version \S+ running")
PORT_IN_USE = "Address already in use"
SAVE_LINE = "Saving in-memory database"
POLL_INTERVAL = 0.02


def _find_binary(name: str, fallback: Path) -> Path:
    return find_binary(name, fallback, INSTALL_HINT)


def find_mosquitto() -> Path:
    """The ``mosquitto`` binary on PATH, else /usr/sbin/mosquitto; RuntimeError if absent."""
    return _find_binary("mosquitto", BROKER_FALLBACK)


def find_mosquitto_passwd() -> Path:
    """The ``mosquitto_passwd`` tool, on PATH or in /usr/bin; RuntimeError if absent."""
    return _find_binary("mosquitto_passwd", PASSWD_FALLBACK)


class PortInUseError(RuntimeError):
    """Mosquitto exited at start-up because its port was already bound by another process."""


class Mosquitto:
    """One Mosquitto broker process on 127.0.0.1, started, stopped and restarted on demand.

    ``workdir`` holds the config, the persistence database, the log and the password file; when
    omitted a temporary directory is created and removed by ``close()``. The port is picked when
    the broker first starts (unless given) and kept for every later start.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        port: int | None = None,
        autosave_interval: int = 1,
    ) -> None:
        self._owned_dir: Path | None = None
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="mosquitto-"))
            self._owned_dir = workdir
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.stderr_path = self.workdir / "mosquitto.stderr"
        self.password_path = self.workdir / "passwd"
        self.autosave_interval = autosave_interval
        self._port = port
        self._port_pinned = port is not None
        self._users: dict[str, str] = {}
        self._tls: tuple[Path, Path, Path] | None = None
        self._render: Callable[[Mosquitto], str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- addressing ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The listener address, always the IPv4 loopback."""
        return LOOPBACK

    @property
    def port(self) -> int:
        """The listener port; RuntimeError before the first ``start()`` picked one."""
        if self._port is None:
            raise RuntimeError("the broker has no port yet: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:<port>``, or ``mqtts://...`` with TLS."""
        scheme = "mqtts" if self._tls is not None else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def tls(self) -> bool:
        """True when the listener speaks TLS (``with_tls()``)."""
        return self._tls is not None

    @property
    def tls_ca_file(self) -> Path | None:
        """The CA file given to ``with_tls()``, which clients verify the broker against."""
        return self._tls[0] if self._tls is not None else None

    @property
    def users(self) -> dict[str, str]:
        """The user names and passwords added with ``with_password()``."""
        return dict(self._users)

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs, else None."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def persistence_file(self) -> Path:
        """Where Mosquitto saves its in-memory database."""
        return self.data_dir / "mosquitto.db"

    # -- configuration ------------------------------------------------------------------------

    def with_password(self, user: str, password: str) -> Self:
        """Requires a user name and password (anonymous clients are refused) from the next start.

        May be called several times to add users; not while the broker runs.
        """
        if self.running:
            raise RuntimeError("with_password() must be called before start() or restart()")
        tool = find_mosquitto_passwd()
        args = [str(tool), "-b", str(self.password_path), user, password]
        if not self.password_path.exists():
            args.insert(1, "-c")
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"mosquitto_passwd failed with status {result.returncode}: {result.stderr.strip()}"
            )
        self._users[user] = password
        return self

    def with_tls(self, ca_file: Path, cert_file: Path, key_file: Path) -> Self:
        """Serves TLS only, with this server certificate and key, from the next start.

        ``ca_file`` is the CA clients are told to trust (``tls_ca_file``); client certificates
        are not required. Not while the broker runs.
        """
        if self.running:
            raise RuntimeError("with_tls() must be called before start() or restart()")
        for path in (ca_file, cert_file, key_file):
            if not Path(path).is_file():
                raise FileNotFoundError(f"with_tls(): {path} is not a file")
        self._tls = (Path(ca_file).resolve(), Path(cert_file).resolve(), Path(key_file).resolve())
        return self

    def with_config(self, render: Callable[[Mosquitto], str]) -> Self:
        """Runs a config of your own from the next start: ``render(broker)`` returns it (e.g. a
        shipped mosquitto.conf with this broker's ``port``, ``password_path`` and other paths
        put in), and the harness appends ``harness_lines()`` (log, persistence). Users added
        with ``with_password()`` are in ``password_path``. Not while the broker runs."""
        if self.running:
            raise RuntimeError("with_config() must be called before start() or restart()")
        self._render = render
        return self

    def harness_lines(self) -> list[str]:
        """What every config the harness writes ends with: the log it reads readiness from,
        persistence in the work directory, and (as root) the user to run as."""
        lines = [
            "persistence true",
            f"persistence_location {self.data_dir}/",
            "persistence_file mosquitto.db",
            f"autosave_interval {self.autosave_interval}",
            f"log_dest file {self.log_path}",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if os.geteuid() == 0:
            # As root, Mosquitto would otherwise switch to the "mosquitto" user, which cannot
            # write to the work directory.
            lines.append("user root")
        return lines

    def config_text(self) -> str:
        """The mosquitto.conf the next start writes."""
        if self._render is not None:
            return self._render(self).rstrip("\n") + "\n" + "\n".join(self.harness_lines()) + "\n"
        lines = [
            f"listener {self.port} {self.host}",
            *self._tls_lines(),
            f"allow_anonymous {'false' if self._users else 'true'}",
            *self.harness_lines(),
        ]
        if self._users:
            lines.append(f"password_file {self.password_path}")
        return "\n".join(lines) + "\n"

    def _tls_lines(self) -> list[str]:
        # Listener options: they belong right after the ``listener`` line they apply to.
        if self._tls is None:
            return []
        ca_file, cert_file, key_file = self._tls
        return [
            f"cafile {ca_file}",
            f"certfile {cert_file}",
            f"keyfile {key_file}",
            "require_certificate false",
        ]

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        """Starts the broker and returns once it accepts TCP connections.

        A port picked by the harness can be taken by another process before Mosquitto binds it;
        then a new port is picked and the start retried. A pinned port (given, or kept from an
        earlier start) is retried as is.
        """
        if self.running:
            raise RuntimeError(f"the broker already runs on port {self.port}")
        binary = find_mosquitto()
        failure: PortInUseError | None = None
        for _ in range(START_ATTEMPTS):
            if not self._port_pinned:
                self._port = free_port(self.host)
            try:
                self._launch(binary, timeout)
            except PortInUseError as exc:
                failure = exc
                if self._port_pinned:
                    time.sleep(0.2)
                continue
            self._port_pinned = True
            return self
        raise RuntimeError(f"mosquitto could not bind a port in {START_ATTEMPTS} attempts") from (
            failure
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the broker with SIGTERM (it saves its database) and waits for it to exit.

        Falls back to SIGKILL after ``timeout`` seconds. Does nothing when it is not running.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def kill(self) -> None:
        """Kills the broker with SIGKILL and waits: no database save, no goodbye to clients."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    def restart(self, timeout: float = 10.0, *, kill: bool = False) -> Self:
        """Stops the broker (SIGKILL when ``kill``, else SIGTERM) and starts it on the same port."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stops the broker and removes the work directory when the harness created it."""
        self.stop()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Blocks until the port accepts TCP connections; RuntimeError if the broker exits."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise RuntimeError(f"mosquitto is not running:\n{self.log_tail()}")
            if accepts_connections(self.host, self.port):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"mosquitto did not accept connections within {timeout}s")
            time.sleep(POLL_INTERVAL)

    def save(self, timeout: float = 5.0) -> None:
        """Makes the broker write its database now (SIGUSR1) and waits for the new file.

        After this, state acknowledged before the call (sessions, subscriptions, queued and
        retained messages) survives ``kill()``.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError("save() needs a running broker")
        saves_before = self._log_since_start().count(SAVE_LINE)
        inode_before = self._db_inode()
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        pending = self.persistence_file.with_name(self.persistence_file.name + ".new")
        while (
            self._log_since_start().count(SAVE_LINE) <= saves_before
            or self._db_inode() in {None, inode_before}
            or pending.exists()
        ):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"mosquitto did not save its database within {timeout}s")
            time.sleep(POLL_INTERVAL)

    # -- clients ------------------------------------------------------------------------------

    def credentials(self) -> tuple[str | None, str | None]:
        """The first user added with ``with_password()``, or (None, None) when anonymous."""
        return next(iter(self._users.items()), (None, None))

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float = 10.0,
    ) -> None:
        """Publishes one message through this broker and waits for its acknowledgement."""
        user, password = self.credentials()
        publish(
            self.host,
            self.port,
            topic,
            payload,
            qos=qos,
            retain=retain,
            username=user,
            password=password,
            ca_file=self.tls_ca_file,
            timeout=timeout,
        )

    def subscriber(self, topic_filter: str = "#", *, client_id: str | None = None) -> Subscriber:
        """A not yet started ``Subscriber`` to this broker (see ``Subscriber.for_broker``)."""
        return Subscriber.for_broker(self, topic_filter, client_id=client_id)

    # -- logs ---------------------------------------------------------------------------------

    def log_text(self) -> str:
        """The whole broker log, across restarts."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the broker log and of its stderr."""
        parts = [self.log_text()]
        if self.stderr_path.exists():
            parts.append(self.stderr_path.read_text(errors="replace"))
        return "\n".join("\n".join(p.splitlines()[-lines:]) for p in parts if p)

    # -- internals ----------------------------------------------------------------------------

    def _launch(self, binary: Path, timeout: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.stderr_path.open("ab") as stderr:
            proc = subprocess.Popen(
                [str(binary), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                cwd=self.workdir,
            )
        self._proc = proc
        try:
            self._await_start(proc, timeout)
        except BaseException:
            self.kill()
            raise

    def _await_start(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = proc.poll()
            if status is not None:
                log = self._log_since_start()
                if PORT_IN_USE in log:
                    raise PortInUseError(f"port {self.port} is taken:\n{log}")
                raise RuntimeError(
                    f"mosquitto exited with status {status} at start-up:\n{self.log_tail()}"
                )
            if READY_PATTERN.search(self._log_since_start()) and accepts_connections(
                self.host, self.port
            ):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"mosquitto did not come up on port {self.port} within {timeout}s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(POLL_INTERVAL)

    def _log_since_start(self) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def _db_inode(self) -> int | None:
        try:
            return self.persistence_file.stat().st_ino
        except FileNotFoundError:
            return None


@pytest.fixture(name="mosquitto")
def mosquitto_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A started broker in its own temporary directory, stopped after the test."""
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


# -- clients ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One received MQTT message; ``received_at`` is a ``time.monotonic()`` reading."""

    topic: str
    payload: bytes
    retain: bool
    qos: int
    dup: bool
    received_at: float

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8."""
        return self.payload.decode()

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload)


def _client(
    client_id: str,
    clean_session: bool,
    username: str | None,
    password: str | None,
    ca_file: Path | None = None,
) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
    )
    if username is not None:
        client.username_pw_set(username, password)
    if ca_file is not None:
        # Verifies the broker's certificate chain and that it names the host connected to.
        client.tls_set(ca_certs=str(ca_file))
    return client


def publish(
    host: str,
    port: int,
    topic: str,
    payload: bytes | str,
    *,
    qos: int = 1,
    retain: bool = False,
    username: str | None = None,
    password: str | None = None,
    ca_file: Path | None = None,
    timeout: float = 10.0,
) -> None:
    """Publishes one message and returns once the broker acknowledged it (QoS 1 and 2).

    With ``ca_file``, over TLS, trusting that CA.
    """
    client = _client(f"harness-pub-{uuid.uuid4().hex[:12]}", True, username, password, ca_file)
    connected = threading.Event()
    refused: list[ReasonCode] = []

    def on_connect(
        _c: mqtt.Client,
        _u: Any,
        _f: mqtt.ConnectFlags,
        reason: ReasonCode,
        _p: Properties | None,
    ) -> None:
        if reason.is_failure:
            refused.append(reason)
        connected.set()

    client.on_connect = on_connect
    client.connect(host, port)
    client.loop_start()
    try:
        if not connected.wait(timeout):
            raise TimeoutError(f"no CONNACK from {host}:{port} within {timeout}s")
        if refused:
            raise ConnectionRefusedError(f"{host}:{port} refused the connection: {refused[0]}")
        info = client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError(f"publish to {topic!r} not acknowledged within {timeout}s")
    finally:
        client.disconnect()
        client.loop_stop()


class Subscriber:
    """Collects the messages on ``topic_filter`` in a background paho network thread.

    The default is a persistent session (``clean_session=False`` and a fixed client id), so the
    broker queues QoS 1 messages for it while it is disconnected. On a (re)connect where the
    broker reports no session (first connect, or the session was lost, e.g. by a ``kill()``
    before a save) it subscribes again, so it keeps receiving either way. It retries the
    connection every second while the broker is down.

    With ``ca_file`` it connects over TLS and verifies the broker against that CA; a failed
    verification makes ``start()`` raise ``ssl.SSLCertVerificationError``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topic_filter: str = "#",
        *,
        qos: int = 1,
        client_id: str | None = None,
        clean_session: bool = False,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 10,
        ca_file: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.topic_filter = topic_filter
        self.qos = qos
        self.client_id = client_id or f"harness-sub-{uuid.uuid4().hex[:12]}"
        self.keepalive = keepalive
        self.ca_file = ca_file
        self._client = _client(self.client_id, clean_session, username, password, ca_file)
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._changed = threading.Condition()
        self._messages: list[Message] = []
        self._errors: list[str] = []
        self._connected = False
        self._subscribed_count = 0
        self._session_present: bool | None = None
        self._started = False

    @classmethod
    def for_broker(
        cls,
        broker: Mosquitto,
        topic_filter: str = "#",
        *,
        client_id: str | None = None,
        ca_file: Path | None = None,
    ) -> Subscriber:
        """A subscriber to ``broker``, logged in as its first user when it requires passwords.

        Over TLS when the broker serves TLS, trusting ``ca_file`` (default: the broker's CA).
        """
        user, password = broker.credentials()
        return cls(
            broker.host,
            broker.port,
            topic_filter,
            client_id=client_id,
            username=user,
            password=password,
            ca_file=ca_file if ca_file is not None else broker.tls_ca_file,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        """Connects, starts the network thread and waits until the subscription is granted."""
        self._client.connect(self.host, self.port, keepalive=self.keepalive)
        self._client.loop_start()
        self._started = True
        try:
            self.wait_subscribed(1, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Disconnects (the broker keeps a persistent session) and joins the network thread."""
        if not self._started:
            return
        self._started = False
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- state --------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True between a successful CONNACK and the next disconnect."""
        with self._changed:
            return self._connected

    @property
    def subscribed_count(self) -> int:
        """How many (re)connects ended with the subscription in place (granted or kept)."""
        with self._changed:
            return self._subscribed_count

    @property
    def session_present(self) -> bool | None:
        """The broker's session-present flag on the last successful connect."""
        with self._changed:
            return self._session_present

    def messages(self, topic_filter: str | None = None) -> list[Message]:
        """A copy of the messages received so far, optionally those matching ``topic_filter``."""
        with self._changed:
            received = list(self._messages)
        if topic_filter is None:
            return received
        return [m for m in received if mqtt.topic_matches_sub(topic_filter, m.topic)]

    def clear(self) -> None:
        """Forgets the messages received so far."""
        with self._changed:
            self._messages.clear()

    def wait_for(
        self, predicate: Callable[[list[Message]], bool], timeout: float = 10.0
    ) -> list[Message]:
        """Blocks until ``predicate(messages)`` holds; returns those messages.

        TimeoutError, listing what was received, when it does not hold within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self._messages)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"condition not met within {timeout}s; received "
                        f"{[(m.topic, m.payload, m.retain) for m in self._messages]}; "
                        f"errors {self._errors}"
                    )
                self._changed.wait(remaining)
            return list(self._messages)

    def wait_subscribed(self, count: int = 1, timeout: float = 10.0) -> None:
        """Blocks until ``subscribed_count`` reaches ``count``.

        After a broker restart, ``wait_subscribed(previous_count + 1)`` waits for the reconnect.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._subscribed_count < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"subscription in place {self._subscribed_count} of {count} times "
                        f"within {timeout}s; errors {self._errors}"
                    )
                self._changed.wait(remaining)

    # -- paho callbacks (network thread) ------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        with self._changed:
            if reason.is_failure:
                self._errors.append(f"connect refused: {reason}")
                self._changed.notify_all()
                return
            self._connected = True
            self._session_present = flags.session_present
            if flags.session_present:
                # The broker kept the session and its subscription; subscribing again would
                # only make it resend the retained messages.
                self._subscribed_count += 1
            self._changed.notify_all()
        if not flags.session_present:
            client.subscribe(self.topic_filter, qos=self.qos)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        _reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        with self._changed:
            self._connected = False
            self._changed.notify_all()

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        with self._changed:
            failures = [r for r in reasons if r.is_failure]
            if failures:
                self._errors.append(f"subscription to {self.topic_filter!r} refused: {failures}")
            else:
                self._subscribed_count += 1
            self._changed.notify_all()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        received = Message(
            topic=message.topic,
            payload=bytes(message.payload),
            retain=bool(message.retain),
            qos=message.qos,
            dup=bool(message.dup),
            received_at=time.monotonic(),
        )
        with self._changed:
            self._messages.append(received)
            self._changed.notify_all()
