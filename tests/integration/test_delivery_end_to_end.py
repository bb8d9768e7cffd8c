"""Delivery against real parts: a mosquitto broker started here on a free loopback port, a
local HTTP receiver standing in for a chat service through an Apprise URL, and the daemon
run as a process (`condor-monitor run --config`) that is stopped, or killed, mid-session."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from harness.chat import ChatReceiver, chat_receiver_fixture  # noqa: F401 - the fixture
from harness.mosquitto import Mosquitto, Subscriber, mosquitto_fixture  # noqa: F401

from monitor import bundled
from monitor.delivery.commands import CommandSecret, sign_command

INSTANCE = "it"
COMMAND_SECRET = "a-shared-secret-of-at-least-32-characters"  # noqa: S105 - a test secret
ID = re.compile(r"\bid ([0-9a-f]{32})\b")


def write_config(
    tmp_path: Path,
    *,
    speed: float,
    broker: Mosquitto | None = None,
    chat: ChatReceiver | None = None,
    group_window: float = 0.0,
    shutdown_flush_seconds: float = 20.0,
    session: Path = bundled.SESSION,
) -> Path:
    lines = [
        f'instance = "{INSTANCE}"',
        f'portfolio = "{bundled.PORTFOLIO}"',
        f'rules = ["{REPO / "rules"}"]',
        "[feed]",
        f'session = "{session}"',
        f"speed = {speed}",
        "[journal]",
        'path = "journal.sqlite"',
        "[metrics]",
        "enabled = false",
        "[console]",
        "enabled = false",
        "[delivery]",
        "retry_initial_seconds = 0.2",
        "retry_max_seconds = 1.0",
        f"shutdown_flush_seconds = {shutdown_flush_seconds}",
    ]
    if broker is not None:
        lines += ["[mqtt]", "enabled = true", f"port = {broker.port}", "state_interval_seconds = 1"]
        (tmp_path / "command-secret").write_text(COMMAND_SECRET + "\n")
        lines.append('command_secret_file = "command-secret"')
    if chat is not None:
        apprise = tmp_path / "apprise.yml"
        apprise.write_text(f"urls:\n  - json://127.0.0.1:{chat.port}/hook:\n      tag: desk\n")
        lines += [
            "[notify]",
            'credentials = "apprise.yml"',
            "[[notify.channels]]",
            'name = "desk"',
            'tags = ["desk"]',
            f"group_window_seconds = {group_window}",
            "min_interval_seconds = 0.1",
        ]
    path = tmp_path / "condor.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_daemon(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "--log-level",
            "info",
            "run",
            "--config",
            str(config),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.parent,
    )


@pytest.fixture(name="daemons")
def daemons_fixture() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def finish(process: subprocess.Popen[str], timeout: float = 120.0) -> str:
    _out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return err


def journal_records(path: Path, channel: str | None = None) -> list[dict[str, Any]]:
    """Records of the notified transitions, in journal order (optionally one channel's)."""
    with sqlite3.connect(path) as db:
        if channel is None:
            rows = db.execute(
                "SELECT record FROM alert_transitions WHERE notify = 1 ORDER BY id"
            ).fetchall()
        else:
            rows = db.execute(
                "SELECT t.record FROM outbox o JOIN alert_transitions t ON t.id = o.transition_id "
                "WHERE o.channel = ? ORDER BY o.id",
                (channel,),
            ).fetchall()
    return [json.loads(r[0]) for r in rows]


def undelivered(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(
                db.execute("SELECT count(*) FROM outbox WHERE delivered IS NULL").fetchone()[0]
            )
    except sqlite3.OperationalError:  # the table is not there yet
        return 0


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def alerts(subscriber: Subscriber) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in subscriber.messages(f"condor/{INSTANCE}/alerts/#")]


def statuses(subscriber: Subscriber) -> list[str]:
    return [m.payload.decode() for m in subscriber.messages(f"condor/{INSTANCE}/status")]


def chat_ids(chat: ChatReceiver) -> list[list[str]]:
    """The message ids in each request the chat service accepted, in arrival order."""
    return [ID.findall(r.message) for r in chat.received]


def test_subscriber_receives_every_alert_exactly_as_journaled(
    tmp_path: Path, mosquitto: Mosquitto, daemons: list[subprocess.Popen[str]]
) -> None:
    subscriber = Subscriber.for_broker(mosquitto, f"condor/{INSTANCE}/#").start()
    try:
        daemons.append(start_daemon(write_config(tmp_path, speed=0.0, broker=mosquitto)))
        finish(daemons[0])
        expected = journal_records(tmp_path / "journal.sqlite")
        assert len(expected) >= 4  # the bundled day's delta and term-structure alerts
        wait_until(lambda: len(alerts(subscriber)) >= len(expected), 10, "the subscriber")
        assert alerts(subscriber) == expected
        topics = [m.topic for m in subscriber.messages(f"condor/{INSTANCE}/alerts/#")]
        assert topics == [f"condor/{INSTANCE}/alerts/{r['severity']}" for r in expected]
        wait_until(lambda: statuses(subscriber)[-1:] == ["offline"], 10, "the subscriber")
        assert statuses(subscriber)[0] == "online"
        states = [json.loads(m.payload) for m in subscriber.messages(f"condor/{INSTANCE}/state")]
        assert states
        assert states[-1]["instance"] == INSTANCE
        assert set(states[-1]["book"]) >= {"delta_usd_per_pct", "vega_usd_per_vol_point"}
    finally:
        subscriber.stop()


def test_broker_killed_mid_replay_loses_no_alert(
    tmp_path: Path, mosquitto: Mosquitto, daemons: list[subprocess.Popen[str]]
) -> None:
    subscriber = Subscriber.for_broker(mosquitto, f"condor/{INSTANCE}/#").start()
    try:
        # 2000x: the session's 6.5 hours take about 12 s; the alerts come 2.7 to 3 hours in.
        daemons.append(start_daemon(write_config(tmp_path, speed=2000.0, broker=mosquitto)))
        wait_until(lambda: "online" in statuses(subscriber), 20, "the subscriber")
        time.sleep(1.0)
        mosquitto.kill()
        journal = tmp_path / "journal.sqlite"
        # Alerts are journaled while the broker is down; they wait in the outbox.
        wait_until(lambda: undelivered(journal) >= 2, timeout=30, what="undelivered alerts")
        mosquitto.restart()
        finish(daemons[0])
        expected = journal_records(journal)
        wait_until(
            lambda: len({a["id"] for a in alerts(subscriber)}) >= len(expected), 20, "all alerts"
        )
        received = alerts(subscriber)
        # At least once: duplicates carry the same id; dropping them gives the journal.
        unique = list({a["id"]: a for a in received}.values())
        assert sorted(unique, key=lambda a: a["id"]) == sorted(expected, key=lambda a: a["id"])
        # In order per alert: each alert's messages arrive in journal order.
        for alert_id in {a["alert_id"] for a in expected}:
            journal_order = [a["id"] for a in expected if a["alert_id"] == alert_id]
            seen = [a["id"] for a in received if a["alert_id"] == alert_id]
            assert list(dict.fromkeys(seen)) == journal_order
        assert undelivered(journal) == 0
        assert statuses(subscriber)[-1] == "offline"
        assert statuses(subscriber).count("online") >= 2  # announced again after the restart
    finally:
        subscriber.stop()


def test_last_will_says_offline_when_the_daemon_dies_and_undelivered_chat_goes_out_after_restart(
    tmp_path: Path,
    mosquitto: Mosquitto,
    chat_receiver: ChatReceiver,
    daemons: list[subprocess.Popen[str]],
) -> None:
    subscriber = Subscriber.for_broker(mosquitto, f"condor/{INSTANCE}/#").start()
    try:
        chat_receiver.fail(500)
        config = write_config(tmp_path, speed=2000.0, broker=mosquitto, chat=chat_receiver)
        daemons.append(start_daemon(config))
        journal = tmp_path / "journal.sqlite"
        wait_until(lambda: undelivered(journal) >= 3, timeout=40, what="undelivered messages")
        pending = journal_records(journal, "chat:desk")
        daemons[0].send_signal(signal.SIGKILL)
        daemons[0].wait(timeout=10)
        # The broker sees the connection drop and publishes the Last Will.
        wait_until(lambda: statuses(subscriber)[-1:] == ["offline"], 10, "the subscriber")
        assert chat_receiver.rejected > 0
        chat_receiver.recover()
        # The restart replays the day again, as fast as it can: the same transitions get the
        # same ids and are not queued twice.
        again = write_config(tmp_path, speed=0.0, broker=mosquitto, chat=chat_receiver)
        daemons.append(start_daemon(again))
        wait_until(lambda: statuses(subscriber)[-1:] == ["online"], 20, "the subscriber")
        finish(daemons[1])
        delivered = [i for ids in chat_ids(chat_receiver) for i in ids]
        assert {r["id"] for r in pending} <= set(delivered)
        assert {r["id"] for r in journal_records(journal, "chat:desk")} == set(delivered)
        assert undelivered(journal) == 0
    finally:
        subscriber.stop()


def test_chat_outage_then_recovery_delivers_everything_grouped(
    tmp_path: Path, chat_receiver: ChatReceiver, daemons: list[subprocess.Popen[str]]
) -> None:
    chat_receiver.fail(500)
    config = write_config(tmp_path, speed=2000.0, chat=chat_receiver, group_window=2.0)
    daemons.append(start_daemon(config))
    journal = tmp_path / "journal.sqlite"
    wait_until(lambda: chat_receiver.rejected >= 2, timeout=60, what="failed attempts")
    chat_receiver.recover()
    finish(daemons[0])
    expected = [r["id"] for r in journal_records(journal, "chat:desk")]
    groups = chat_ids(chat_receiver)
    delivered = [i for ids in groups for i in ids]
    assert sorted(set(delivered)) == sorted(expected)  # none lost
    assert delivered == expected  # in order, each once: retries resent the same groups only
    assert len(groups) < len(expected)  # alerts within the window went out together
    # A group reads "4 alerts: 2 critical, 2 warning"; which alerts share a window depends on
    # how fast the replay runs on this machine, so the first group, wherever it is.
    grouped = [m for m in chat_receiver.received if "alerts:" in m.title]
    assert grouped, [m.title for m in chat_receiver.received]
    assert "Value: " in grouped[0].message
    assert undelivered(journal) == 0


def test_commands_over_mqtt(
    tmp_path: Path, mosquitto: Mosquitto, daemons: list[subprocess.Popen[str]]
) -> None:
    subscriber = Subscriber.for_broker(mosquitto, f"condor/{INSTANCE}/#").start()
    try:
        # 2000x: VixAboveFrontFuture would page about 5 s in; the silence comes before.
        daemons.append(start_daemon(write_config(tmp_path, speed=2000.0, broker=mosquitto)))
        wait_until(lambda: "online" in statuses(subscriber), 20, "the subscriber")
        journal = tmp_path / "journal.sqlite"

        secret = CommandSecret(COMMAND_SECRET)

        def signed(name: str, fields: dict[str, Any]) -> bytes:
            topic = f"condor/{INSTANCE}/cmd/{name}"
            nonce = uuid.uuid4().hex
            return json.dumps(sign_command(secret, topic, fields, ts=time.time(), nonce=nonce))

        def command(name: str, payload: bytes | str, request_id: str) -> dict[str, Any]:
            mosquitto.publish(f"condor/{INSTANCE}/cmd/{name}", payload)

            def replied() -> list[dict[str, Any]]:
                replies = subscriber.messages(f"condor/{INSTANCE}/reply")
                return [
                    r
                    for r in (json.loads(m.payload) for m in replies)
                    if (r["command"], r["request_id"]) == (name, request_id)
                ]

            wait_until(lambda: bool(replied()), 10, "the subscriber")
            return replied()[0]

        def silences() -> list[tuple[Any, ...]]:
            with sqlite3.connect(journal) as db:
                return db.execute("SELECT * FROM silences").fetchall()

        reply = command("reboot", signed("reboot", {"request_id": "r1"}), "r1")
        assert reply["ok"] is False
        assert "unknown command 'reboot'" in reply["error"]
        empty = signed("silence", {"request_id": "r2", "matchers": {}, "minutes": 5})
        reply = command("silence", empty, "r2")
        assert reply["ok"] is False
        assert "matchers" in reply["error"]
        reply = command("silence", b"{not json", "")
        assert reply["ok"] is False
        fields = {"matchers": {"alertname": "VixAboveFrontFuture"}, "minutes": 600}
        reply = command("silence", json.dumps({"request_id": "r0", **fields}), "r0")
        assert (reply["ok"], reply["reason"]) == (False, "signature")  # unsigned
        assert silences() == []  # nothing changed
        reply = command("silence", signed("silence", {"request_id": "r3", **fields}), "r3")
        assert reply["ok"] is True, reply
        assert len(silences()) == 1
        finish(daemons[0])
    finally:
        subscriber.stop()
    with sqlite3.connect(journal) as db:
        rows = db.execute(
            "SELECT record FROM alert_transitions WHERE rule = 'VixAboveFrontFuture'"
        ).fetchall()
    held = [json.loads(row[0]) for row in rows]
    # The silence set over MQTT held the page back (recorded, not sent).
    assert held
    assert all(r["notify"] is False for r in held)


def test_sigterm_stops_cleanly_flushing_and_saying_offline(
    tmp_path: Path, mosquitto: Mosquitto, daemons: list[subprocess.Popen[str]]
) -> None:
    subscriber = Subscriber.for_broker(mosquitto, f"condor/{INSTANCE}/#").start()
    try:
        daemons.append(start_daemon(write_config(tmp_path, speed=200.0, broker=mosquitto)))
        wait_until(lambda: "online" in statuses(subscriber), 20, "online")
        daemons[0].send_signal(signal.SIGTERM)
        err = finish(daemons[0], timeout=30)
        assert "stopping" in err  # the log line of a clean stop
        wait_until(lambda: statuses(subscriber)[-1:] == ["offline"], 10, "offline")
        # Published by the daemon itself, not the broker's Last Will: it comes once, retained.
        assert statuses(subscriber).count("offline") == 1
        assert undelivered(tmp_path / "journal.sqlite") == 0
    finally:
        subscriber.stop()
