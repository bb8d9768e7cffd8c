"""Chat delivery per Apprise URL against real parts: Apprise posting to a local receiver, to a
server that accepts and never answers, and to one that trickles a byte every 2 s; the daemon
run as a process for the shutdown bound."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import REPO
from harness.chat import (  # noqa: F401 - the fixtures
    ChatReceiver,
    HungServer,
    TricklingServer,
    chat_receiver_fixture,
    hung_server_fixture,
    trickling_server_fixture,
)
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_delivery_end_to_end import write_config
from test_ib_live import Daemon, wait_until

from monitor import bundled
from monitor.config import (
    ChannelConfig,
    DaemonConfig,
    DeliveryConfig,
    FeedConfig,
    JournalConfig,
    NotifyConfig,
)
from monitor.delivery.chat import ChatTarget, ChatTransport, channel_targets, load_services
from monitor.delivery.service import Delivery
from monitor.delivery.worker import DeliveryError
from monitor.domain.alerts import AlertState, AlertTransition, Severity
from monitor.metrics import DeliveryCollector
from monitor.sinks.base import transition_record
from monitor.sinks.journal import Journal
from monitor.sinks.outbox import OutboxMessage
from monitor.tasks import TaskOwner

START = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
ID = re.compile(r"\bid ([0-9a-f]{32})\b")
PASSWORD = "Rec3iverPassw0rd"  # noqa: S105 - in the working URL; must reach no metric label


class NoCommands:
    def acknowledge(self, alert_id: str) -> str | None:
        return None

    def add_silence(self, *args: object) -> int:
        raise AssertionError(args)

    def expire_silence(self, *args: object) -> bool:
        raise AssertionError(args)


def transition(minute: int, severity: Severity = Severity.CRITICAL) -> AlertTransition:
    return AlertTransition(
        START.replace(minute=minute),
        "Delta",
        severity,
        AlertState.FIRING,
        (("leg", f"P{6400 + minute}"),),
        0.31,
        "delta per contract",
        "short put: delta 0.31",
    )


def config(tmp_path: Path, credentials: Path, **channel: object) -> DaemonConfig:
    return DaemonConfig(
        feed=FeedConfig(session=bundled.SESSION),
        portfolio=bundled.PORTFOLIO,
        rules=[REPO / "rules"],
        journal=JournalConfig(path=tmp_path / "j.sqlite"),
        notify=NotifyConfig(
            credentials=credentials,
            channels=[
                ChannelConfig(
                    name="desk",
                    tags=["desk"],
                    group_window_seconds=0,
                    min_interval_seconds=0,
                    **channel,  # type: ignore[arg-type]
                )
            ],
        ),
        delivery=DeliveryConfig(
            retry_initial_seconds=0.05, retry_max_seconds=0.2, shutdown_flush_seconds=0.5
        ),
    )


def channel_labels(registry: CollectorRegistry) -> set[str]:
    text = generate_latest(registry).decode()
    return {
        s.labels["channel"]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if "channel" in s.labels
    }


def message(minute: int) -> OutboxMessage:
    t = transition(minute)
    record = json.loads(json.dumps(transition_record(t)))
    return OutboxMessage(minute, "chat:desk", t.message_id, record, 0.0, 0, 0.0, None)


def target(credentials: Path) -> ChatTarget:
    (one,) = channel_targets(load_services(credentials), [])
    return one


def test_a_hung_url_neither_holds_back_nor_repeats_messages_to_a_working_one(
    tmp_path: Path, chat_receiver: ChatReceiver, hung_server: HungServer
) -> None:
    credentials = tmp_path / "apprise.yml"
    working = chat_receiver.apprise_url().replace("json://", f"json://desk:{PASSWORD}@")
    credentials.write_text(
        f"urls:\n  - {hung_server.apprise_url()}:\n      tag: desk\n"
        f"  - {working}:\n      tag: desk\n"
    )
    journal = Journal(tmp_path / "j.sqlite")
    delivery = Delivery(
        config(tmp_path, credentials, timeout_seconds=0.5), journal, NoCommands(), now=lambda: START
    )
    registry = CollectorRegistry()
    registry.register(DeliveryCollector(delivery))
    sent = [transition(m, Severity.CRITICAL if m % 2 else Severity.WARNING) for m in range(1, 9)]

    async def scenario() -> tuple[set[str], bool]:
        await delivery.start(TaskOwner(lambda _failure: None))
        for t in sent:  # one at a time, as a day's alerts come
            await journal.emit([t])
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 20.0
        while len(chat_receiver.received) < len(sent) or hung_server.connections < 2:
            assert time.monotonic() < deadline, (len(chat_receiver.received), hung_server)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # time for a duplicate, were one coming
        labels = channel_labels(registry)
        return labels, await delivery.stop()

    labels, flushed = asyncio.run(scenario())
    received = [i for r in chat_receiver.received for i in ID.findall(r.message)]
    assert received == [t.message_id for t in sent]  # each once, in order
    assert not flushed  # the hung URL's messages wait for the next start
    targets = channel_targets(load_services(credentials), ["desk"])
    channels = {t.server.port: f"chat:desk/{t.key}" for t in targets}
    workers = {w.channel: w for w in delivery.workers}
    assert sorted(workers) == sorted(channels.values())
    assert all(re.fullmatch(r"chat:desk/json-[0-9a-f]{8}", n) for n in workers)
    hung, ok = workers[channels[hung_server.port]], workers[channels[chat_receiver.port]]
    assert journal.outbox.backlog(hung.channel).messages == len(sent)
    assert journal.outbox.backlog(ok.channel).messages == 0
    assert hung.stats.failed >= 2
    assert (ok.stats.sent, ok.stats.failed) == (len(sent), 0)
    assert labels == set(workers)
    assert not any(PASSWORD in label for label in labels)


def test_a_send_to_a_hung_host_fails_after_its_timeout(
    tmp_path: Path, hung_server: HungServer
) -> None:
    credentials = tmp_path / "apprise.txt"
    credentials.write_text(f"desk={hung_server.apprise_url()}\n")
    transport = ChatTransport(target(credentials), timeout=1.0)

    async def send() -> float:
        began = time.monotonic()
        with pytest.raises(DeliveryError, match=r"timed out after 1 s") as caught:
            await transport.send([message(1)], "g")
        assert str(hung_server.port) not in str(caught.value)  # named by its key, not its URL
        return time.monotonic() - began

    elapsed = asyncio.run(send())
    assert elapsed >= 1.0
    hung_server.wait_for_connections(1)


@pytest.fixture
def fast_trickle() -> Iterator[TricklingServer]:
    """A byte every 0.1 s: faster than any socket read timeout Apprise is given here."""
    with TricklingServer(interval=0.1, lifetime=30.0) as server:
        yield server


def test_abandoned_sends_to_a_trickling_host_are_capped(
    tmp_path: Path, fast_trickle: TricklingServer
) -> None:
    credentials = tmp_path / "apprise.txt"
    credentials.write_text(f"{fast_trickle.apprise_url()}\n")
    transport = ChatTransport(target(credentials), timeout=0.3, max_abandoned=2)

    async def attempts() -> list[str]:
        errors = []
        for minute in range(4):
            with pytest.raises(DeliveryError) as caught:
                await transport.send([message(minute)], "g")
            errors.append(str(caught.value))
        return errors

    errors = asyncio.run(attempts())
    assert ["timed out after 0.3 s" in e for e in errors] == [True, True, False, False]
    assert all("2 earlier sends" in e and "still running" in e for e in errors[2:])
    assert transport.abandoned == 2  # a trickle never lets them end; no third was started
    fast_trickle.wait_for_connections(2)
    assert fast_trickle.connections == 2
    threads = [t for t in threading.enumerate() if t.name == f"chat-send-{transport.target.key}"]
    assert len(threads) == 2
    assert all(t.daemon for t in threads)  # they cannot hold up the interpreter's exit


def test_stop_abandons_a_send_in_progress_when_the_flush_time_is_up(
    tmp_path: Path, trickling_server: TricklingServer
) -> None:
    credentials = tmp_path / "apprise.yml"
    credentials.write_text(f"urls:\n  - {trickling_server.apprise_url()}:\n      tag: desk\n")
    journal = Journal(tmp_path / "j.sqlite")
    delivery = Delivery(
        config(tmp_path, credentials, timeout_seconds=120), journal, NoCommands(), now=lambda: START
    )

    async def scenario() -> tuple[bool, float]:
        await delivery.start(TaskOwner(lambda _failure: None))
        await journal.emit([transition(1)])
        deadline = time.monotonic() + 10.0
        while trickling_server.connections < 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        began = time.monotonic()
        flushed = await delivery.stop()
        return flushed, time.monotonic() - began

    flushed, took = asyncio.run(scenario())
    assert not flushed
    assert took < 60.0  # the flush time (0.5 s), not the send's timeout (120 s)
    (worker,) = delivery.workers
    assert worker.channel == "chat:desk"  # a channel with one URL keeps its plain name
    assert journal.outbox.backlog("chat:desk").messages == 1


def test_a_trickling_url_cannot_keep_the_daemon_from_exiting_after_sigterm(
    tmp_path: Path, chat_receiver: ChatReceiver, trickling_server: TricklingServer
) -> None:
    flush = 2.0
    # 1000x: the session takes about 23 s, its first alerts come about 10 s in.
    path = write_config(tmp_path, speed=1000.0, chat=chat_receiver, shutdown_flush_seconds=flush)
    (tmp_path / "apprise.yml").write_text(
        f"urls:\n  - {chat_receiver.apprise_url()}:\n      tag: desk\n"
        f"  - {trickling_server.apprise_url()}:\n      tag: desk\n"
    )
    # The channel's table is the config's last: a send may take a minute before it fails.
    path.write_text(path.read_text() + "timeout_seconds = 60\n")
    daemon = Daemon(path)
    try:
        wait_until(lambda: trickling_server.connections >= 1, 60, "a send to the trickling URL")
        chat_receiver.wait_for(bool, timeout=10)  # the working URL is not held back
        daemon.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            code = daemon.process.wait(timeout=flush + 10.0)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {flush + 10.0} s after SIGTERM") from None
        took = time.monotonic() - signalled
        daemon._reader.join(timeout=5)
        assert code == 0, "".join(daemon.lines[-30:])
        assert took >= flush * 0.9  # it tried the trickling URL for the flush time
        (warning,) = daemon.logged("outbox_not_flushed")
        assert warning["channel"].startswith("chat:desk/json-")
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(timeout=10)


def test_the_dead_services_accept_and_never_finish(
    hung_server: HungServer, fast_trickle: TricklingServer
) -> None:
    with socket.create_connection(("127.0.0.1", hung_server.port), timeout=0.5) as hung:
        hung.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        with pytest.raises(TimeoutError):
            hung.recv(1)
    with socket.create_connection(("127.0.0.1", fast_trickle.port), timeout=5) as trickle:
        received = b"".join(trickle.recv(1) for _ in range(5))
    assert received == b"HTTP/"
    assert (hung_server.connections, fast_trickle.connections) == (1, 1)


def test_a_dead_service_closes_its_connections_at_the_end_of_its_lifetime() -> None:
    with (
        HungServer(lifetime=0.5) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection,
    ):
        assert connection.recv(1) == b""  # closed, not left open past the lifetime
