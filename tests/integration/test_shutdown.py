"""Stopping the daemon: SIGTERM or SIGINT ends the feed, flushes the outbox within
``[delivery] shutdown_flush_seconds``, publishes ``offline`` and exits 0; a second signal
exits at once with 128 + its number. Real processes throughout: `condor-monitor run`, a
mosquitto broker, a local chat receiver and, for a live run, the IB API emulator."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.chat import ChatReceiver, chat_receiver_fixture  # noqa: F401 - the fixture
from harness.mosquitto import Mosquitto, Subscriber, mosquitto_fixture  # noqa: F401
from ibemu.gateway import IBGateway
from test_delivery_end_to_end import (
    INSTANCE,
    alerts,
    chat_ids,
    journal_records,
    statuses,
    undelivered,
)
from test_delivery_end_to_end import write_config as replay_config
from test_ib_live import Book, Daemon, market, wait_until
from test_ib_live import write_config as live_config

from monitor.config import IbFeedConfig

STOP = [signal.SIGTERM, signal.SIGINT]
CLIENT_ID = f"condor-monitor-{INSTANCE}"
LIVE_CLIENT_ID = 7  # test_ib_live's config


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
        daemon.process.wait(timeout=10)


def exit_code(daemon: Daemon, timeout: float) -> int:
    """The process's exit status, waiting at most ``timeout`` seconds for it."""
    try:
        code = daemon.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {timeout} s later") from None
    daemon._reader.join(timeout=5)
    return code


def log_tail(daemon: Daemon) -> str:
    return "".join(daemon.lines[-30:])


def retained_status(broker: Mosquitto) -> list[tuple[bytes, bool]]:
    """What a new subscriber is given on the status topic: (payload, retained) pairs."""
    with Subscriber.for_broker(broker, f"condor/{INSTANCE}/status") as late:
        wait_until(lambda: bool(late.messages()), 5, "the retained status")
        return [(m.payload, m.retain) for m in late.messages()]


@pytest.mark.parametrize("stop", STOP, ids=lambda s: s.name)
def test_a_signal_stops_the_replay_flushes_the_outbox_and_says_offline(
    tmp_path: Path,
    mosquitto: Mosquitto,
    chat_receiver: ChatReceiver,
    daemons: list[Daemon],
    stop: signal.Signals,
) -> None:
    subscriber = Subscriber.for_broker(mosquitto, f"condor/{INSTANCE}/#").start()
    try:
        # 1000x: the session takes about 23 s, its first alerts come about 10 s in. The chat
        # channel groups for two minutes, so its messages are still in the outbox at the stop.
        config = replay_config(
            tmp_path, speed=1000.0, broker=mosquitto, chat=chat_receiver, group_window=120.0
        )
        daemons.append(daemon := Daemon(config))
        journal = tmp_path / "journal.sqlite"
        wait_until(lambda: "online" in statuses(subscriber), 20, "online")
        wait_until(lambda: undelivered(journal) >= 1, 40, "a chat message waiting to be grouped")
        assert chat_receiver.received == []
        daemon.process.send_signal(stop)
        signalled = time.monotonic()
        assert exit_code(daemon, 30) == 0, log_tail(daemon)
        # Well before the replay would have ended: the feed stopped, the group went at once.
        assert time.monotonic() - signalled < 8.0
        assert [r["signal"] for r in daemon.logged("stopping")] == [stop.name]
        assert daemon.logged("replay_end")
        assert not daemon.logged("outbox_not_flushed")
        assert undelivered(journal) == 0
        sent = [r["id"] for r in journal_records(journal, "chat:desk")]
        assert sent
        assert [i for ids in chat_ids(chat_receiver) for i in ids] == sent
        expected = journal_records(journal, "mqtt")
        wait_until(lambda: len(alerts(subscriber)) >= len(expected), 10, "the MQTT alerts")
        assert alerts(subscriber) == expected
        wait_until(lambda: statuses(subscriber)[-1:] == ["offline"], 10, "offline")
    finally:
        subscriber.stop()
    # Published by the daemon itself before a clean disconnect: once, retained; the broker
    # had no Will to send (it sends one only when a connection drops without DISCONNECT).
    assert statuses(subscriber).count("offline") == 1
    assert retained_status(mosquitto) == [(b"offline", True)]
    log = mosquitto.log_text()
    assert f"Client {CLIENT_ID} disconnected" in log, mosquitto.log_tail()
    assert f"Client {CLIENT_ID} closed its connection" not in log


def test_with_the_broker_down_the_flush_gives_up_in_time_and_the_next_start_delivers(
    tmp_path: Path, mosquitto: Mosquitto, daemons: list[Daemon]
) -> None:
    flush = 3.0
    config = replay_config(tmp_path, speed=2000.0, broker=mosquitto, shutdown_flush_seconds=flush)
    journal = tmp_path / "journal.sqlite"
    with Subscriber.for_broker(mosquitto, f"condor/{INSTANCE}/status") as watcher:
        daemons.append(daemon := Daemon(config))
        wait_until(lambda: "online" in statuses(watcher), 20, "online")
    mosquitto.stop()
    wait_until(lambda: undelivered(journal) >= 2, 40, "alerts waiting in the outbox")
    daemon.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert exit_code(daemon, flush + 15.0) == 0, log_tail(daemon)
    took = time.monotonic() - signalled
    # It kept trying for the configured time, and no longer (a margin for start-up of the
    # stop and the process exit).
    assert flush * 0.9 <= took <= flush + 5.0, took
    left = undelivered(journal)
    assert left >= 2
    (warning,) = daemon.logged("outbox_not_flushed")
    assert (warning["channel"], warning["messages"]) == ("mqtt", left)
    assert daemon.logged("mqtt_offline_not_published") == []  # not tried without a link
    pending = [r["id"] for r in journal_records(journal, "mqtt")][-left:]

    # The next start sends the backlog first.
    mosquitto.start()
    subscriber = Subscriber.for_broker(mosquitto, f"condor/{INSTANCE}/#").start()
    try:
        daemons.append(again := Daemon(replay_config(tmp_path, speed=0.0, broker=mosquitto)))
        assert exit_code(again, 120) == 0, log_tail(again)
        (backlog,) = again.logged("outbox_backlog")
        assert (backlog["channel"], backlog["messages"]) == ("mqtt", left)
        wait_until(lambda: set(pending) <= {a["id"] for a in alerts(subscriber)}, 10, "the backlog")
        received = [a["id"] for a in alerts(subscriber)]
        assert received[: len(pending)] == pending  # first, in journal order
        assert undelivered(journal) == 0
    finally:
        subscriber.stop()


@pytest.mark.parametrize(
    ("first", "second"),
    [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGINT)],
    ids=lambda s: s.name,
)
def test_a_second_signal_during_the_flush_exits_at_once_and_loses_nothing(
    tmp_path: Path,
    mosquitto: Mosquitto,
    daemons: list[Daemon],
    first: signal.Signals,
    second: signal.Signals,
) -> None:
    config = replay_config(tmp_path, speed=2000.0, broker=mosquitto, shutdown_flush_seconds=120)
    journal = tmp_path / "journal.sqlite"
    with Subscriber.for_broker(mosquitto, f"condor/{INSTANCE}/status") as watcher:
        daemons.append(daemon := Daemon(config))
        wait_until(lambda: "online" in statuses(watcher), 20, "online")
    mosquitto.stop()
    wait_until(lambda: undelivered(journal) >= 2, 40, "alerts waiting in the outbox")
    daemon.process.send_signal(first)
    wait_until(lambda: bool(daemon.logged("stopping")), 10, "the stop to begin")
    time.sleep(1.5)
    assert daemon.process.poll() is None  # flushing: it would try for two minutes
    waiting = undelivered(journal)
    daemon.process.send_signal(second)
    signalled = time.monotonic()
    assert exit_code(daemon, 10) == 128 + second, log_tail(daemon)
    assert time.monotonic() - signalled < 3.0
    assert [r["signal"] for r in daemon.logged("forced_exit")] == [second.name]
    assert not daemon.logged("replay_end")  # it did not finish the stop
    # Every undelivered message is still in the journal's outbox for the next start.
    assert waiting >= 2
    assert undelivered(journal) == waiting


def stays_subscribed(text: str) -> str:
    """The live config with the feed kept subscribed outside market hours, where the config
    has that option (so the test means the same by day and by night)."""
    if "idle_outside_session" not in IbFeedConfig.model_fields or "idle_outside_session" in text:
        return text
    return text.replace("[feed]\n", "[feed]\nidle_outside_session = false\n", 1)


@pytest.fixture
def gateway_and_book() -> Iterator[tuple[IBGateway, Book]]:
    book = Book()
    with IBGateway(book.contracts(), book.positions()) as gw:
        yield gw, book


def test_sigterm_in_a_live_run_closes_the_ib_connection(
    tmp_path: Path, gateway_and_book: tuple[IBGateway, Book], daemons: list[Daemon]
) -> None:
    gw, book = gateway_and_book
    config = live_config(tmp_path, gw.port, book)
    config.write_text(stays_subscribed(config.read_text()))
    daemons.append(daemon := Daemon(config))
    wait_until(lambda: bool(daemon.logged("live_start")), 30, "the live run to start")
    market(gw, book, 6800.0)
    subscribed = "idle_outside_session" in IbFeedConfig.model_fields
    if subscribed:
        wait_until(lambda: bool(gw.subscribed_keys(LIVE_CLIENT_ID)), 10, "subscriptions")
    assert gw.client_ids == [LIVE_CLIENT_ID]
    daemon.process.send_signal(signal.SIGTERM)
    assert exit_code(daemon, 30) == 0, log_tail(daemon)
    assert [r["signal"] for r in daemon.logged("stopping")] == ["SIGTERM"]
    assert daemon.logged("live_end")
    # The emulator saw the session end: no connection left, so no subscription either.
    wait_until(lambda: gw.client_ids == [], 5, "the IB session to close")
    assert gw.subscribed_keys() == set()
    if subscribed:
        assert {r.key for r in gw.requests("reqMktData", client_id=LIVE_CLIENT_ID)} >= {
            "SPX",
            "VIX",
        }


@pytest.mark.parametrize("stop", STOP, ids=lambda s: s.name)
def test_a_stop_while_the_gateway_is_awaited_is_clean(
    tmp_path: Path,
    gateway_and_book: tuple[IBGateway, Book],
    daemons: list[Daemon],
    stop: signal.Signals,
) -> None:
    gw, book = gateway_and_book
    config = live_config(tmp_path, gw.port, book)
    config.write_text(stays_subscribed(config.read_text()))
    gw.stop()  # the nightly reset: the daemon retries until the gateway is back
    daemons.append(daemon := Daemon(config))
    wait_until(lambda: bool(daemon.logged("ib_connect_failed")), 20, "a refused connection")
    daemon.process.send_signal(stop)
    assert exit_code(daemon, 15) == 0, log_tail(daemon)
    assert [r["signal"] for r in daemon.logged("stopping")] == [stop.name]


def test_a_slow_replay_stops_between_two_ticks(tmp_path: Path, daemons: list[Daemon]) -> None:
    # 0.05x: the bundled session's ticks, about 5 s apart, come about 100 s apart.
    daemons.append(daemon := Daemon(replay_config(tmp_path, speed=0.05)))
    wait_until(lambda: bool(daemon.logged("replay_start")), 20, "the replay to start")
    time.sleep(1.0)
    daemon.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert exit_code(daemon, 30) == 0, log_tail(daemon)
    assert time.monotonic() - signalled < 5.0
    assert daemon.logged("replay_end")
