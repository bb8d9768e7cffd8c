"""The authority over MQTT commands: a shared-secret HMAC of the topic and the payload, a time
window, nonces never taken twice, a rate limit on silences and a cap on those in force; each
refusal says why on the reply and changes nothing (docs/delivery.md, "Commands")."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor import logs
from monitor.cli import EXIT_BAD_INPUT, EXIT_OK, main
from monitor.config import DaemonConfig, FeedConfig, JournalConfig, MqttConfig
from monitor.delivery.commands import (
    COMMANDS_OFF,
    CommandGate,
    CommandProcessor,
    CommandSecret,
    canonical_json,
    sign_command,
    signed_message,
)
from monitor.delivery.service import Delivery, read_command_secret
from monitor.domain.instruments import NEW_YORK
from monitor.errors import ConfigError
from monitor.sinks.journal import MAX_SILENCES_IN_FORCE, Journal

SECRET = secrets.token_hex(32)  # 64 characters, as `openssl rand -hex 32` writes
CREDENTIAL = "mqtt-command-secret"  # the systemd credential's name
BASE = "condor/example"
WALL = 1_772_560_800.0  # 2026-03-03 17:00 UTC, the sender's and the daemon's clock
SESSION = datetime(2026, 3, 3, 12, 0, tzinfo=NEW_YORK)
SILENCE = {"matchers": {"alertname": "ShortDelta"}, "minutes": 30, "request_id": "p1"}


class Target:
    """Records the calls a command makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def acknowledge(self, alert_id: str) -> str | None:
        self.calls.append(("ack", alert_id))
        return "ShortDelta strategy=IC" if alert_id == "a" * 16 else None

    def add_silence(
        self, matchers: dict[str, str], starts: datetime, ends: datetime, comment: str
    ) -> int:
        self.calls.append(("silence", matchers, ends - starts, comment))
        return len(self.calls)

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        self.calls.append(("expire", silence_id))
        return True


class Clock:
    def __init__(self, now: float = WALL) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Nonces:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"nonce-{self.count:04d}"


@pytest.fixture
def secret() -> CommandSecret:
    return CommandSecret(SECRET)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def target() -> Target:
    return Target()


@pytest.fixture
def gate(secret: CommandSecret, target: Target, clock: Clock) -> CommandGate:
    return CommandGate(
        CommandProcessor(target, lambda: SESSION), secret, topic_base=BASE, wall_clock=clock
    )


NONCES = Nonces()


def signed(
    command: dict[str, Any],
    name: str = "silence",
    *,
    secret: str = SECRET,
    ts: float = WALL,
    nonce: str | None = None,
    base: str = BASE,
) -> bytes:
    topic = f"{base}/cmd/{name}"
    payload = sign_command(CommandSecret(secret), topic, command, ts=ts, nonce=nonce or NONCES())
    return json.dumps(payload).encode()


def send(gate: CommandGate, name: str, payload: bytes) -> dict[str, Any]:
    return asyncio.run(gate(name, payload))


def refused(reply: dict[str, Any], reason: str, text: str) -> None:
    assert reply["ok"] is False, reply
    assert reply["reason"] == reason, reply
    assert text in reply["error"], reply


# -- signatures ---------------------------------------------------------------------------------


def test_a_signed_command_is_applied(gate: CommandGate, target: Target) -> None:
    reply = send(gate, "silence", signed(SILENCE))
    assert reply == {
        "command": "silence",
        "request_id": "p1",
        "ok": True,
        "result": {"silence_id": 1, "ends": (SESSION + timedelta(minutes=30)).isoformat()},
    }
    assert target.calls == [("silence", {"alertname": "ShortDelta"}, timedelta(minutes=30), "")]
    assert (gate.accepted, gate.rejected) == (1, 0)


def test_without_a_secret_every_command_is_refused_saying_how_to_enable(target: Target) -> None:
    gate = CommandGate(CommandProcessor(target, lambda: SESSION), None, topic_base=BASE)
    for name, payload in [("silence", signed(SILENCE)), ("ack", b'{"alert_id": "aaaa"}')]:
        reply = send(gate, name, payload)
        refused(reply, "disabled", "command_secret_file or command_secret_credential")
        assert reply["error"] == COMMANDS_OFF
    assert target.calls == []
    assert gate.rejections == {"disabled": 2}


@pytest.mark.parametrize(
    ("payload", "reason", "error"),
    [
        (json.dumps(SILENCE).encode(), "signature", "missing signature"),
        (signed(SILENCE, secret="x" * 64), "signature", "bad signature"),
        (signed(SILENCE, base="condor/other"), "signature", "bad signature"),  # another instance
        (signed(SILENCE, name="expire"), "signature", "bad signature"),  # signed for another name
        (signed(SILENCE).replace(b'"minutes": 30', b'"minutes": 3000'), "signature", "bad"),
        (signed(SILENCE).replace(b'"hmac": "', b'"hmac": "0'), "signature", "64 hex digits"),
        (signed(SILENCE, ts=WALL - 121), "stale", "stale: ts is -121 s from the daemon's clock"),
        (signed(SILENCE, ts=WALL + 121), "stale", "more than 120 s either way"),
        (signed(SILENCE, ts=10**400), "stale", "stale: ts is +inf s"),
        (signed(SILENCE, nonce="short"), "signature", "nonce: expected 8 to 64"),
        (b"[1, 2]", "invalid", "payload must be a JSON object"),
        (b"{" + b" " * 5000 + b"}", "invalid", "payload over 4096 bytes"),
    ],
)
def test_a_refused_command_says_why_and_changes_nothing(
    gate: CommandGate, target: Target, payload: bytes, reason: str, error: str
) -> None:
    reply = send(gate, "silence", payload)
    refused(reply, reason, error)
    assert target.calls == []
    assert gate.rejections == {reason: 1}
    assert (gate.accepted, gate.rejected) == (0, 1)


def test_ts_as_a_json_string_or_a_bool_is_no_time(gate: CommandGate, target: Target) -> None:
    for ts in ("1772560800", True):
        fields = {**SILENCE, "ts": ts, "nonce": NONCES()}
        payload = {**fields, "hmac": CommandSecret(SECRET).digest(f"{BASE}/cmd/silence", fields)}
        refused(send(gate, "silence", json.dumps(payload).encode()), "signature", "ts: expected")
    assert target.calls == []


def test_a_replay_is_refused_within_the_window_and_stale_after(
    gate: CommandGate, target: Target, clock: Clock
) -> None:
    payload = signed(SILENCE)
    assert send(gate, "silence", payload)["ok"] is True
    clock.now += 60
    refused(send(gate, "silence", payload), "replayed", "was used already")
    clock.now += 61  # the nonce is forgotten with its ts out of the window
    refused(send(gate, "silence", payload), "stale", "stale")
    assert len(target.calls) == 1
    assert send(gate, "silence", signed(SILENCE, ts=clock.now))["ok"] is True  # a new nonce


def test_the_same_nonce_on_another_command_is_a_replay(gate: CommandGate) -> None:
    assert send(gate, "ack", signed({"alert_id": "a" * 16}, "ack", nonce="n-00000001"))["ok"]
    reply = send(gate, "silence", signed(SILENCE, nonce="n-00000001"))
    refused(reply, "replayed", "nonce 'n-00000001'")


def test_nonce_memory_is_bounded(target: Target, clock: Clock) -> None:
    gate = CommandGate(
        CommandProcessor(target, lambda: SESSION),
        CommandSecret(SECRET),
        topic_base=BASE,
        wall_clock=clock,
        max_nonces=3,
    )
    for _ in range(3):
        assert send(gate, "ack", signed({"alert_id": "a" * 16}, "ack"))["ok"]
    refused(send(gate, "ack", signed({"alert_id": "a" * 16}, "ack")), "rate_limited", "3 comm")
    clock.now += 121  # their ts have left the window: forgotten
    assert send(gate, "ack", signed({"alert_id": "a" * 16}, "ack", ts=clock.now))["ok"]


def test_errors_behind_the_gate_keep_their_reasons(gate: CommandGate) -> None:
    refused(send(gate, "reboot", signed({}, "reboot")), "invalid", "unknown command 'reboot'")
    refused(send(gate, "ack", signed({"alert_id": "b" * 16}, "ack")), "not_found", "no firing")
    bad = signed({"matchers": {}, "minutes": 5})
    refused(send(gate, "silence", bad), "invalid", "matchers: ")
    assert gate.rejections == {"invalid": 2, "not_found": 1}


def test_a_journal_that_fails_is_a_refusal_not_a_crash(gate: CommandGate, target: Target) -> None:
    def locked(*_args: object) -> int:
        raise sqlite3.OperationalError("database is locked")

    target.add_silence = locked  # type: ignore[method-assign]
    refused(send(gate, "silence", signed(SILENCE)), "failed", "database is locked")


# -- limits -------------------------------------------------------------------------------------


def test_silences_are_rate_limited_on_the_injected_clock(
    gate: CommandGate, target: Target, clock: Clock
) -> None:
    for _ in range(10):
        assert send(gate, "silence", signed(SILENCE, ts=clock.now))["ok"] is True
    reply = send(gate, "silence", signed(SILENCE, ts=clock.now))
    refused(reply, "rate_limited", "at most 10 silence commands a minute; the next in 6 s")
    assert send(gate, "ack", signed({"alert_id": "a" * 16}, "ack", ts=clock.now))["ok"]  # no limit
    clock.now += 6.0  # one more token
    assert send(gate, "silence", signed(SILENCE, ts=clock.now))["ok"] is True
    refused(send(gate, "silence", signed(SILENCE, ts=clock.now)), "rate_limited", "rate limited")
    assert len([c for c in target.calls if c[0] == "silence"]) == 11
    assert gate.rejections == {"rate_limited": 2}


def test_silences_in_force_are_capped(tmp_path: Path, clock: Clock) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    for i in range(MAX_SILENCES_IN_FORCE):
        journal.add_silence({"leg": f"P{i}"}, SESSION, SESSION + timedelta(hours=1), "", SESSION)

    class JournalTarget(Target):
        def add_silence(
            self, matchers: dict[str, str], starts: datetime, ends: datetime, comment: str
        ) -> int:
            return journal.add_silence(matchers, starts, ends, comment, starts)

        def expire_silence(self, silence_id: int, now: datetime) -> bool:
            return journal.expire_silence(silence_id, now)

    gate = CommandGate(
        CommandProcessor(JournalTarget(), lambda: SESSION),
        CommandSecret(SECRET),
        topic_base=BASE,
        wall_clock=clock,
    )
    reply = send(gate, "silence", signed(SILENCE))
    refused(reply, "capped", "100 silences are in force or yet to start")
    assert len(journal.silences()) == MAX_SILENCES_IN_FORCE
    assert send(gate, "expire", signed({"silence_id": 1}, "expire"))["ok"] is True
    assert send(gate, "silence", signed(SILENCE))["ok"] is True


# -- the secret and the signature ---------------------------------------------------------------


def test_the_secret_is_in_no_repr_and_masked_in_logs(
    secret: CommandSecret, gate: CommandGate
) -> None:
    assert SECRET not in repr(secret)
    assert SECRET not in repr(gate.__dict__)
    assert logs.mask(f"signed with {SECRET}") == f"signed with {logs.MASK}"


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="has 10 characters; use at least 32"):
        CommandSecret("0123456789")


def test_canonical_json_is_sorted_compact_utf8_with_whole_numbers_plain() -> None:
    value = {"minutes": 30.0, "comment": "roll à 6425", "matchers": {"z": "1", "a": "2"}, "x": 0.5}
    assert canonical_json(value) == (
        '{"comment":"roll à 6425","matchers":{"a":"2","z":"1"},"minutes":30,"x":0.5}'.encode()
    )
    # A payload written that way is its own canonical form: sign what you send.
    text = '{"matchers":{"alertname":"X"},"minutes":30,"nonce":"abcdefgh","ts":1772560800}'
    assert canonical_json(json.loads(text)) == text.encode()


def test_the_hmac_is_the_documented_one_as_openssl_computes_it(secret: CommandSecret) -> None:
    """docs/delivery.md signs with openssl: HMAC-SHA256 of "<topic>\\n<canonical payload>"."""
    fields = {"matchers": {"alertname": "X"}, "minutes": 30, "nonce": "abcdefgh", "ts": 1772560800}
    topic = f"{BASE}/cmd/silence"
    message = signed_message(topic, fields)
    assert message == f"{topic}\n".encode() + canonical_json(fields)
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", SECRET, "-r"],
        input=message,
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert out.split()[0] == secret.digest(topic, fields)


# -- the CLI and the daemon's configuration -----------------------------------------------------


def test_mqtt_sign_prints_a_payload_the_gate_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_file = tmp_path / "command-secret"
    secret_file.write_text(SECRET + "\n")
    fields = json.dumps({"matchers": {"alertname": "ShortDelta"}, "minutes": 30})
    argv = ["mqtt", "sign", "silence", fields, "--secret-file", str(secret_file)]
    assert main([*argv, "--instance", "example"]) == EXIT_OK
    payload = capsys.readouterr().out.strip()
    assert SECRET not in payload
    target = Target()
    gate = CommandGate(
        CommandProcessor(target, lambda: SESSION), CommandSecret(SECRET), topic_base=BASE
    )  # the real wall clock: the CLI stamped it now
    assert send(gate, "silence", payload.encode())["ok"] is True
    assert main([*argv, "--instance", "other"]) == EXIT_OK
    other = capsys.readouterr().out.strip()
    refused(send(gate, "silence", other.encode()), "signature", "bad signature")
    only_minutes = ["mqtt", "sign", "silence", '{"minutes": 30}', "--secret-file", str(secret_file)]
    assert main(only_minutes) == EXIT_BAD_INPUT
    assert "matchers: Field required" in capsys.readouterr().err
    assert main(["mqtt", "sign", "ack", "{}"]) == EXIT_BAD_INPUT
    assert "no command secret" in capsys.readouterr().err


def daemon_config(tmp_path: Path, **mqtt: Any) -> DaemonConfig:
    from conftest import REPO

    from monitor import bundled

    return DaemonConfig(
        instance="example",
        feed=FeedConfig(session=bundled.SESSION),
        portfolio=bundled.PORTFOLIO,
        rules=[REPO / "rules"],
        journal=JournalConfig(path=tmp_path / "journal.sqlite"),
        mqtt=MqttConfig(enabled=True, **mqtt),
    )


def test_the_daemon_reads_the_secret_from_a_file_or_a_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / CREDENTIAL).write_text(SECRET + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    by_file = daemon_config(tmp_path, command_secret_file=tmp_path / CREDENTIAL)
    by_name = daemon_config(tmp_path, command_secret_credential=CREDENTIAL)
    for config in (by_file, by_name):
        journal = Journal(config.journal.path)
        delivery = Delivery(config, journal, Target(), now=lambda: SESSION, wall_clock=Clock())
        assert delivery.commands is not None
        assert delivery.commands.topic_base == BASE
        assert send(delivery.commands, "silence", signed(SILENCE))["ok"] is True
        asyncio.run(journal.close())
    journal = Journal(tmp_path / "journal.sqlite")
    unset = Delivery(daemon_config(tmp_path), journal, Target(), now=lambda: SESSION)
    assert unset.commands is not None
    refused(send(unset.commands, "silence", signed(SILENCE)), "disabled", "commands are off")
    asyncio.run(journal.close())


def test_a_bad_secret_names_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "short").write_text("too-short\n")
    with pytest.raises(ConfigError, match=r"field mqtt.command_secret_file: the command secret"):
        read_command_secret(MqttConfig(command_secret_file=tmp_path / "short"), None)
    with pytest.raises(ConfigError, match=r"field mqtt.command_secret_file: cannot read"):
        read_command_secret(MqttConfig(command_secret_file=tmp_path / "absent"), None)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match=r"mqtt.command_secret_credential: \$CRED"):
        read_command_secret(MqttConfig(command_secret_credential=CREDENTIAL), None)
    with pytest.raises(ValueError, match="not both"):
        MqttConfig(command_secret_file=tmp_path / "short", command_secret_credential=CREDENTIAL)
