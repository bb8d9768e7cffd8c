"""The shipped broker config (deploy/mosquitto/) on a real mosquitto, with the daemon's MQTT
side in process: who may read and publish what, and commands that must be signed.

The broker runs deploy/mosquitto/mosquitto.conf with the harness's port, password file and a
throwaway TLS certificate put in, and the shipped ACL as it is; its users are the ACL's:
``condor`` (the daemon), ``owner`` (the phone, over the TLS listener) and ``dashboard``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from harness.certs import TlsFiles, make_tls_files
from harness.mosquitto import Mosquitto, Subscriber, publish
from harness.ports import free_port

from monitor import bundled
from monitor.config import DaemonConfig, FeedConfig, JournalConfig, MqttConfig
from monitor.delivery.commands import CommandSecret, sign_command
from monitor.delivery.service import Delivery
from monitor.domain.instruments import NEW_YORK
from monitor.sinks.journal import Journal
from monitor.tasks import TaskOwner

SHIPPED = REPO / "deploy" / "mosquitto"
BASE = "condor/example"  # the prefix and instance of deploy/examples/condor-monitor.toml
USERS = ("condor", "owner", "dashboard")
SESSION = datetime(2026, 3, 3, 12, 0, tzinfo=NEW_YORK)
TIMEOUT = 10.0
SILENCE = {"matchers": {"alertname": "VixAboveFrontFuture"}, "minutes": 30}


@dataclass(frozen=True)
class Broker:
    mosquitto: Mosquitto
    tls_port: int
    tls: TlsFiles

    def password(self, user: str) -> str:
        return self.mosquitto.users[user]

    def subscriber(self, user: str, topic_filter: str = f"{BASE}/#") -> Subscriber:
        m = self.mosquitto
        return Subscriber(
            m.host, m.port, topic_filter, username=user, password=self.password(user)
        ).start()

    def publish(self, user: str, topic: str, payload: bytes) -> None:
        """As the phone does it: over the TLS listener, verifying the broker."""
        publish(
            self.mosquitto.host,
            self.tls_port,
            topic,
            payload,
            username=user,
            password=self.password(user),
            ca_file=self.tls.ca_file,
        )


def render_shipped(broker: Mosquitto, tls: TlsFiles, tls_port: int) -> str:
    """deploy/mosquitto/mosquitto.conf with this broker's ports and files in its places."""
    text = (SHIPPED / "mosquitto.conf").read_text()
    for shipped, ours in {
        "listener 1883 127.0.0.1": f"listener {broker.port} 127.0.0.1",
        "listener 8883": f"listener {tls_port} 127.0.0.1",
        "/etc/mosquitto/condor-monitor.passwd": str(broker.password_path),
        "/etc/mosquitto/condor-monitor.acl": str(SHIPPED / "condor-monitor.acl"),
        "/etc/mosquitto/certs/broker.crt": str(tls.cert_file),
        "/etc/mosquitto/certs/broker.key": str(tls.key_file),
    }.items():
        assert shipped in text, shipped
        text = text.replace(shipped, ours)
    return text


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    tls = make_tls_files(tmp_path_factory.mktemp("certs"))
    tls_port = free_port()
    mosquitto = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    for user in USERS:
        mosquitto.with_password(user, f"{user}-{secrets.token_hex(8)}")
    mosquitto.with_config(lambda m: render_shipped(m, tls, tls_port))
    with mosquitto:
        yield Broker(mosquitto, tls_port, tls)


class JournalTarget:
    """The pipeline's side of commands: silences in a real journal, no firing alert."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def acknowledge(self, alert_id: str) -> str | None:
        return None

    def add_silence(
        self, matchers: dict[str, str], starts: datetime, ends: datetime, comment: str
    ) -> int:
        return self.journal.add_silence(matchers, starts, ends, comment, starts)

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        return self.journal.expire_silence(silence_id, now)


@dataclass
class Daemon:
    delivery: Delivery
    journal: Path
    secret: CommandSecret

    def silences(self) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.journal) as db:
            return db.execute("SELECT matchers FROM silences").fetchall()

    def counts(self) -> tuple[int, int]:
        gate = self.delivery.commands
        assert gate is not None
        return gate.accepted, gate.rejected


def write_secrets(broker: Broker, directory: Path) -> str:
    """The daemon's broker password and a command secret in ``directory``; the secret."""
    (directory / "mqtt-password").write_text(broker.password("condor") + "\n")
    secret = secrets.token_hex(32)
    (directory / "command-secret").write_text(secret + "\n")
    return secret


@contextlib.asynccontextmanager
async def daemon(broker: Broker, directory: Path) -> AsyncIterator[Daemon]:
    """The daemon's delivery side, logged in as ``condor``, with a command secret."""
    secret = await asyncio.to_thread(write_secrets, broker, directory)
    m = broker.mosquitto
    config = DaemonConfig(
        instance="example",
        feed=FeedConfig(session=bundled.SESSION),
        portfolio=bundled.PORTFOLIO,
        rules=[REPO / "rules"],
        journal=JournalConfig(path=directory / "journal.sqlite"),
        mqtt=MqttConfig(
            enabled=True,
            host=m.host,
            port=m.port,
            client_id=f"condor-{uuid.uuid4().hex[:8]}",  # a fresh session for each test
            username="condor",
            password_file=directory / "mqtt-password",
            command_secret_file=directory / "command-secret",
        ),
    )
    journal = Journal(config.journal.path)
    delivery = Delivery(config, journal, JournalTarget(journal), now=lambda: SESSION)
    await delivery.start(TaskOwner(lambda _failure: None))
    assert delivery.link is not None
    assert delivery.link.connected
    try:
        yield Daemon(delivery, config.journal.path, CommandSecret(secret))
    finally:
        await delivery.stop()
        await journal.close()


def signed(secret: CommandSecret, name: str, command: dict[str, Any], **overrides: Any) -> bytes:
    fields = {"ts": time.time(), "nonce": secrets.token_hex(8), **overrides}
    payload = sign_command(secret, f"{BASE}/cmd/{name}", command, **fields)
    return json.dumps(payload).encode()


def replies(subscriber: Subscriber) -> list[dict[str, Any]]:
    return [m.json() for m in subscriber.messages(f"{BASE}/reply")]


async def wait_for(subscriber: Subscriber, topic: str, count: int = 1) -> None:
    await asyncio.to_thread(
        subscriber.wait_for,
        lambda _: len(subscriber.messages(topic)) >= count,
        TIMEOUT,
    )


async def command(
    broker: Broker, subscriber: Subscriber, name: str, payload: bytes, user: str = "owner"
) -> dict[str, Any]:
    """Publishes a command as ``user`` and waits for the next reply."""
    before = len(replies(subscriber))
    await asyncio.to_thread(broker.publish, user, f"{BASE}/cmd/{name}", payload)
    await wait_for(subscriber, f"{BASE}/reply", before + 1)
    return replies(subscriber)[before]


def test_anonymous_clients_are_refused(broker: Broker) -> None:
    m = broker.mosquitto
    with pytest.raises(ConnectionRefusedError, match="refused the connection"):
        publish(m.host, m.port, f"{BASE}/cmd/silence", b"{}")


def test_the_daemon_publishes_and_takes_commands_from_the_owner(
    broker: Broker, tmp_path: Path
) -> None:
    owner = broker.subscriber("owner")

    async def scenario() -> None:
        async with daemon(broker, tmp_path) as d:
            link = d.delivery.link
            assert link is not None
            await link.publish(link.state_topic, b'{"book": {}}', retain=True)
            await link.publish(link.alerts_topic("critical"), b'{"rule": "X"}')
            await wait_for(owner, f"{BASE}/alerts/critical")
            reply = await command(broker, owner, "silence", signed(d.secret, "silence", SILENCE))
            assert reply["ok"] is True, reply
            assert d.silences() == [('{"alertname": "VixAboveFrontFuture"}',)]

    try:
        asyncio.run(scenario())
        topics = [m.topic for m in owner.messages()]
        assert f"{BASE}/status" in topics
        assert f"{BASE}/state" in topics
        # The daemon's own clean shutdown says offline.
        owner.wait_for(lambda ms: ms[-1].topic == f"{BASE}/status", TIMEOUT)
        assert owner.messages(f"{BASE}/status")[-1].text == "offline"
    finally:
        owner.stop()


def test_a_reader_cannot_command_nor_read_the_book_or_the_replies(
    broker: Broker, tmp_path: Path
) -> None:
    owner = broker.subscriber("owner")
    dashboard = broker.subscriber("dashboard")

    async def scenario() -> None:
        async with daemon(broker, tmp_path) as d:
            link = d.delivery.link
            assert link is not None
            # Signed with the right secret, even: the broker drops it, the daemon never sees it.
            payload = signed(d.secret, "silence", SILENCE)
            await asyncio.to_thread(broker.publish, "dashboard", f"{BASE}/cmd/silence", payload)
            await link.publish(link.state_topic, b'{"book": {"delta": 1}}', retain=True)
            # The owner's command, after the reader's was taken (and dropped) by the broker:
            # its reply is the only one.
            ack = signed(d.secret, "ack", {"alert_id": "0" * 16, "request_id": "o1"})
            reply = await command(broker, owner, "ack", ack)
            assert reply["request_id"] == "o1"
            assert reply["reason"] == "not_found"
            assert d.counts() == (0, 1)
            assert d.silences() == []
            # An alert after the state and the reply: once the reader has it, it would have
            # had those too, had the ACL let it read them.
            await link.publish(link.alerts_topic("warning"), b'{"rule": "Y"}')
            await wait_for(dashboard, f"{BASE}/alerts/warning")

    try:
        asyncio.run(scenario())
        assert [r["request_id"] for r in replies(owner)] == ["o1"]
        seen = {m.topic for m in dashboard.messages()}
        assert seen == {f"{BASE}/status", f"{BASE}/alerts/warning"}
        assert f"{BASE}/state" in {m.topic for m in owner.messages()}
    finally:
        owner.stop()
        dashboard.stop()


def test_only_a_fresh_correctly_signed_command_is_taken(broker: Broker, tmp_path: Path) -> None:
    owner = broker.subscriber("owner")

    async def scenario() -> list[dict[str, Any]]:
        async with daemon(broker, tmp_path) as d:
            other = CommandSecret(secrets.token_hex(32))
            good = signed(d.secret, "silence", SILENCE)
            sent = [
                json.dumps(SILENCE).encode(),  # unsigned
                signed(other, "silence", SILENCE),  # another secret
                signed(d.secret, "silence", SILENCE, ts=time.time() - 600),  # stale
                good,
                good,  # replayed
            ]
            out = [await command(broker, owner, "silence", p) for p in sent]
            assert len(d.silences()) == 1
            assert d.counts() == (1, 4)
            gate = d.delivery.commands
            assert gate is not None
            assert gate.rejections == {"signature": 2, "stale": 1, "replayed": 1}
            return out

    try:
        unsigned, wrong, stale, accepted, replayed = asyncio.run(scenario())
    finally:
        owner.stop()
    assert "missing signature" in unsigned["error"]
    assert "bad signature" in wrong["error"]
    assert stale["reason"] == "stale"
    assert "more than 120 s either way" in stale["error"]
    assert accepted["ok"] is True
    assert replayed["reason"] == "replayed"
