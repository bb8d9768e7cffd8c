"""Blind at start is loud: the live run started (in-process, on a clock set inside the session)
while IB Gateway is down. Before any connection the HTTP endpoints answer and /readyz says why,
MQTT carries ``online``, systemd hears READY and watchdog pings, and the default pack's
FeedNeverConnected reaches the journal, the alerts file, MQTT and the chat channel after its
two minutes; once the gateway is up the run imports the book and the alert resolves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from harness.chat import ChatReceiver, chat_receiver_fixture  # noqa: F401 - the fixture
from harness.mosquitto import Mosquitto, Subscriber, mosquitto_fixture  # noqa: F401
from harness.ports import free_port
from ibemu.gateway import IBGateway
from test_ib_dates import CLIENT_ID, HELD, contracts
from test_ib_idle import SetClock, eventually, get, in_thread

from monitor import bundled
from monitor.app import load_common
from monitor.config import load_config
from monitor.domain.instruments import NEW_YORK
from monitor.live import run_live

NOW = datetime(2026, 3, 3, 10, 30, tzinfo=NEW_YORK)
INSTANCE = "blind"


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """systemd's notification socket, as a Type=notify unit with WatchdogSec=2 would have,
    read as systemd does (a datagram socket left unread blocks its sender): the messages."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                seen.append(sock.recv(4096).decode())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    yield seen
    done.set()
    reader.join()
    sock.close()


def write_config(
    tmp_path: Path, ib_port: int, metrics_port: int, broker: Mosquitto, chat: int
) -> Path:
    (tmp_path / "apprise.yml").write_text(
        f"urls:\n  - json://127.0.0.1:{chat}/hook:\n      tag: desk\n"
    )
    path = tmp_path / "live.toml"
    path.write_text(
        f'instance = "{INSTANCE}"\nportfolio = "{bundled.PORTFOLIO}"\n'
        f'rules = ["{REPO / "rules"}"]\nalerts_out = "alerts.jsonl"\n'
        f'[feed]\nkind = "ib"\nport = {ib_port}\nclient_id = {CLIENT_ID}\n'
        "evaluation_interval_seconds = 0.2\nconnect_timeout_seconds = 2\n"
        "reconnect_max_seconds = 1\n"
        '[signals]\nib_history = false\n[journal]\npath = "journal.sqlite"\n'
        f"[metrics]\nport = {metrics_port}\n[console]\nenabled = false\n"
        f"[mqtt]\nenabled = true\nport = {broker.port}\n"
        '[notify]\ncredentials = "apprise.yml"\n'
        '[[notify.channels]]\nname = "desk"\ntags = ["desk"]\n'
        "[delivery]\nretry_initial_seconds = 0.2\nretry_max_seconds = 1.0\n"
    )
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_daemon_started_with_the_gateway_down_is_up_and_pages(
    tmp_path: Path,
    mosquitto: Mosquitto,
    chat_receiver: ChatReceiver,
    notify_socket: list[str],
) -> None:
    clock = SetClock(NOW.astimezone(UTC))
    metrics_port = free_port()
    base = f"http://127.0.0.1:{metrics_port}"
    out = tmp_path / "alerts.jsonl"
    subscriber = Subscriber.for_broker(mosquitto, f"condor/{INSTANCE}/#").start()
    held = [(k, float(q), 1.0) for k, q in HELD.items()]
    with IBGateway(contracts(), held) as gw:
        gw.stop()
        config_path = write_config(tmp_path, gw.port, metrics_port, mosquitto, chat_receiver.port)
        config = load_config(config_path)
        portfolio, rules = load_common(config, config_path)

        def never_connected() -> list[str]:
            return [a["state"] for a in lines(out) if a["rule"] == "FeedNeverConnected"]

        async def scenario() -> None:
            run = asyncio.create_task(
                run_live(config, portfolio, rules, config_path=config_path, clock=clock)
            )
            try:
                # Up before any connection: health, readiness with its reason, MQTT online.
                await eventually(lambda: run.done() or get(f"{base}/healthz")[0] == 200, "HTTP")
                assert not run.done()
                await eventually(
                    lambda: "attempts failed" in get(f"{base}/readyz")[1], "a failed attempt"
                )
                status, body = await in_thread(lambda: get(f"{base}/readyz"))
                ready = json.loads(body)
                assert status == 503
                assert ready["feed_connected"] is False
                (why,) = [r for r in ready["reasons"] if "broker" in r]
                assert "has not reached the broker since the start" in why
                assert f"connection refused at 127.0.0.1:{gw.port}" in why
                status, body = await in_thread(lambda: get(f"{base}/state"))
                assert status == 503
                assert json.loads(body)["ready"]["reasons"] == ready["reasons"]
                await eventually(
                    lambda: (
                        [m.text for m in subscriber.messages(f"condor/{INSTANCE}/status")]
                        == ["online"]
                    ),
                    "MQTT online",
                )
                # Pending for its two minutes, then firing through every channel.
                await asyncio.sleep(1.0)  # evaluations every 0.2 s
                assert never_connected() == []
                await clock.advance_to(clock.moment + timedelta(minutes=2, seconds=1))
                await eventually(lambda: never_connected() == ["firing"], "FeedNeverConnected")
                await eventually(
                    lambda: any(
                        json.loads(m.payload).get("rule") == "FeedNeverConnected"
                        for m in subscriber.messages(f"condor/{INSTANCE}/alerts/#")
                    ),
                    "the alert on MQTT",
                )
                await eventually(
                    lambda: any("not reached IB" in r.message for r in chat_receiver.received),
                    "the alert in the chat channel",
                )
                (fired,) = [a for a in lines(out) if a["rule"] == "FeedNeverConnected"]
                assert fired["severity"] == "critical"
                assert fired["value"] >= 1
                assert not [a for a in lines(out) if a["rule"] == "FeedDisconnected"]
                # systemd: READY (saying why it is blind) and watchdog pings while blind.
                await asyncio.sleep(1.5)
                notes = list(notify_socket)
                (ready_note,) = [n for n in notes if n.startswith("READY=1")]
                assert "not connected to the broker" in ready_note
                assert sum(n == "WATCHDOG=1" for n in notes) >= 1
                # The gateway comes up: the book is imported, the alert resolves.
                gw.start()
                await eventually(
                    lambda: "SPX" in gw.subscribed_keys(CLIENT_ID), "subscriptions", within=30
                )
                await clock.advance_to(clock.moment + timedelta(seconds=5))
                await eventually(
                    lambda: never_connected() == ["firing", "resolved"], "the alert resolved"
                )
                assert not run.done()
            finally:
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)

        asyncio.run(scenario())
    subscriber.stop()
    with_journal = tmp_path / "journal.sqlite"
    assert with_journal.exists()

    with sqlite3.connect(with_journal) as db:
        rules_journaled = [
            json.loads(r[0])["rule"]
            for r in db.execute("SELECT record FROM alert_transitions ORDER BY id")
        ]
    assert rules_journaled.count("FeedNeverConnected") == 2


def test_a_gateway_slow_to_send_history_costs_one_timeout_and_the_watchdog_goes_on(
    tmp_path: Path, notify_socket: list[str]
) -> None:
    """Started while IB Gateway is down (READY sent, the watchdog armed), then the gateway
    comes up and its history farm does not answer: the signal series are asked for together
    (one timeout, not one per series), and the rules run meanwhile, so systemd's watchdog
    (2 s here, 60 s in the unit) keeps hearing from a daemon that is not stuck."""
    clock = SetClock(NOW.astimezone(UTC))
    held = [(k, float(q), 1.0) for k, q in HELD.items()]
    with IBGateway(contracts(), held) as gw:
        gw.stop()
        gw.hold_history()
        path = tmp_path / "live.toml"
        path.write_text(
            f'instance = "{INSTANCE}"\nportfolio = "{bundled.PORTFOLIO}"\n'
            f'rules = ["{REPO / "rules"}"]\n'
            f'[feed]\nkind = "ib"\nport = {gw.port}\nclient_id = {CLIENT_ID}\n'
            "evaluation_interval_seconds = 0.2\nconnect_timeout_seconds = 2\n"
            "reconnect_max_seconds = 1\nhistory_timeout_seconds = 4\n"
            f"[signals]\nib_history = true\n[metrics]\nport = {free_port()}\n"
            '[console]\nenabled = false\n[mqtt]\nenabled = false\n[journal]\npath = "j.sqlite"\n'
        )
        config = load_config(path)
        portfolio, rules = load_common(config, path)

        def pings() -> int:
            return sum(n == "WATCHDOG=1" for n in notify_socket)

        async def scenario() -> None:
            run = asyncio.create_task(
                run_live(config, portfolio, rules, config_path=path, clock=clock)
            )
            try:
                await eventually(
                    lambda: any(n.startswith("READY=1") for n in notify_socket), "READY"
                )
                gw.start()
                await eventually(lambda: len(gw.requests("reqHistoricalData")) >= 2, "history")
                # No evaluation for 2 s would stop the pings; they go on while IB is silent.
                await asyncio.sleep(2.2)
                before = pings()
                await asyncio.sleep(1.5)
                assert pings() > before
                asked = gw.requests("reqHistoricalData")
                assert max(r.at for r in asked) - min(r.at for r in asked) < 1.0  # together
                assert not run.done()
            finally:
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)

        asyncio.run(scenario())
