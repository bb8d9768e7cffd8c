"""MQTT security against a real mosquitto: password log-in from a file or a systemd credential,
a refused password, TLS verified against the configured CA (and refused with another CA), and
the MQTT password never written to the daemon's logs (at debug level) nor to its journal.

The daemon runs as a process (`condor-monitor run --config`) on the bundled session at speed 0.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from harness.certs import TlsFiles, make_ca, make_tls_files
from harness.mosquitto import Mosquitto, Subscriber

from monitor import bundled
from monitor.cli import EXIT_BAD_INPUT, EXIT_OK, main

INSTANCE = "sec"
USER = "condor"
CREDENTIAL = "mqtt-password"
ALERTS = f"condor/{INSTANCE}/alerts/#"
DAEMON_TIMEOUT = 60.0
# Enough to cover the daemon's wait for a first connection (5 s) plus a speed 0 replay.
ARRIVAL_TIMEOUT = 10.0
UNUSED_PORT = 1883  # configs that fail before connecting

TomlValue = str | bool | int | float | Path


# -- the daemon ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """A finished daemon: its exit status, its output, and the directory it ran in."""

    returncode: int
    stdout: str
    stderr: str
    directory: Path

    @property
    def journal(self) -> Path:
        return self.directory / "journal.sqlite"

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines (stderr) whose event is ``name``."""
        found = []
        for line in self.stderr.splitlines():
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if record.get("event") == name:
                found.append(record)
        return found


def toml_value(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))  # a TOML basic string: JSON escapes are valid TOML


def write_config(directory: Path, port: int, **mqtt: TomlValue) -> Path:
    """A daemon config in ``directory`` (its journal goes there too) for a fast replay of the
    bundled day, delivering to the broker on 127.0.0.1:``port`` with the ``[mqtt]`` fields
    given."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f'instance = "{INSTANCE}"',
        f"portfolio = {toml_value(bundled.PORTFOLIO)}",
        f"rules = [{toml_value(REPO / 'rules')}]",
        "[feed]",
        f"session = {toml_value(bundled.SESSION)}",
        "speed = 0",
        "[journal]",
        'path = "journal.sqlite"',
        "[metrics]",
        "enabled = false",
        "[console]",
        "enabled = false",
        "[delivery]",
        "retry_initial_seconds = 0.2",
        "retry_max_seconds = 1.0",
        "shutdown_flush_seconds = 1",
        "[mqtt]",
        "enabled = true",
        f"port = {port}",
        *(f"{key} = {toml_value(value)}" for key, value in mqtt.items()),
    ]
    path = directory / "condor.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def daemon_env(credentials: Path | None = None) -> dict[str, str]:
    """The test's environment, with $CREDENTIALS_DIRECTORY set to ``credentials`` or unset."""
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    if credentials is not None:
        env["CREDENTIALS_DIRECTORY"] = str(credentials)
    return env


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[str]]]:
    """Daemon processes started by a test; killed at teardown if still running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def run_daemon(
    daemons: list[subprocess.Popen[str]], config: Path, credentials: Path | None = None
) -> Outcome:
    """Runs `condor-monitor --log-level debug run --config` to the end of the replay."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "--log-level",
            "debug",
            "run",
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.parent,
        env=daemon_env(credentials),
    )
    daemons.append(process)
    stdout, stderr = process.communicate(timeout=DAEMON_TIMEOUT)
    return Outcome(process.returncode, stdout, stderr, config.parent)


def journal_records(path: Path) -> list[dict[str, Any]]:
    """The records of the transitions routed to MQTT, in outbox order."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT t.record FROM outbox o JOIN alert_transitions t ON t.id = o.transition_id "
            "WHERE o.channel = 'mqtt' ORDER BY o.id"
        ).fetchall()
    return [json.loads(r[0]) for r in rows]


def outbox_counts(path: Path) -> tuple[int, int]:
    """(all, undelivered) MQTT rows of the outbox."""
    with sqlite3.connect(path) as db:
        total, pending = db.execute(
            "SELECT count(*), coalesce(sum(delivered IS NULL), 0) FROM outbox "
            "WHERE channel = 'mqtt'"
        ).fetchone()
    return int(total), int(pending)


def alerts(subscriber: Subscriber) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in subscriber.messages(ALERTS)]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def assert_secret_kept(secret: str, outcome: Outcome) -> None:
    """``secret`` is in neither the daemon's output nor any file it wrote (journal, WAL)."""
    assert secret not in outcome.stderr
    assert secret not in outcome.stdout
    written = [p for p in outcome.directory.rglob("*") if p.is_file()]
    assert outcome.journal in written
    for path in written:
        try:
            content = path.read_bytes()
        except FileNotFoundError:  # SQLite removes -wal/-shm when the last connection closes
            continue
        assert secret.encode() not in content, f"{secret!r} is in {path}"


def assert_delivered_everything(outcome: Outcome, subscriber: Subscriber) -> None:
    assert outcome.returncode == EXIT_OK, outcome.stderr[-3000:]
    expected = journal_records(outcome.journal)
    assert len(expected) >= 4  # the bundled day's delta and term-structure alerts
    wait_until(lambda: len(alerts(subscriber)) >= len(expected), ARRIVAL_TIMEOUT, "the alerts")
    assert alerts(subscriber) == expected
    assert outbox_counts(outcome.journal) == (len(expected), 0)
    assert outcome.events("mqtt_connected")
    assert not outcome.events("mqtt_disconnected")


def assert_delivered_nothing(outcome: Outcome, subscriber: Subscriber) -> list[str]:
    """The replay ran to the end with every alert left in the outbox; the link's errors."""
    assert outcome.returncode == EXIT_OK, outcome.stderr[-3000:]
    total, pending = outbox_counts(outcome.journal)
    assert total >= 4
    assert pending == total
    assert not outcome.events("mqtt_connected")
    disconnects = outcome.events("mqtt_disconnected")
    assert disconnects
    assert {d["level"] for d in disconnects} == {"warning"}
    # The same refusal again and again is one warning; the retries are debug lines.
    errors = [str(d["error"]) for d in disconnects]
    assert len(errors) == len(set(errors)), errors
    assert outcome.events("outbox_not_flushed")
    assert alerts(subscriber) == []
    return [str(d["error"]) for d in disconnects]


# -- brokers ------------------------------------------------------------------------------------


@pytest.fixture
def password() -> str:
    """A password no other text would contain by chance."""
    return f"pw-{secrets.token_hex(16)}"


@pytest.fixture
def password_broker(tmp_path: Path, password: str) -> Iterator[Mosquitto]:
    """A broker that requires USER / ``password``."""
    with Mosquitto(tmp_path / "broker").with_password(USER, password) as broker:
        yield broker


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "certs")


@pytest.fixture
def tls_broker(tmp_path: Path, tls_files: TlsFiles) -> Iterator[Mosquitto]:
    """An anonymous broker that serves TLS only, with a certificate for 127.0.0.1."""
    broker = Mosquitto(tmp_path / "broker").with_tls(
        tls_files.ca_file, tls_files.cert_file, tls_files.key_file
    )
    with broker:
        yield broker


@pytest.fixture
def subscriber(request: pytest.FixtureRequest) -> Iterator[Subscriber]:
    """A started subscriber to the test's broker (``password_broker`` or ``tls_broker``)."""
    name = next(n for n in ("password_broker", "tls_broker") if n in request.fixturenames)
    broker: Mosquitto = request.getfixturevalue(name)
    with Subscriber.for_broker(broker, f"condor/{INSTANCE}/#") as started:
        yield started


# -- password -----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["password_file", "password_credential"])
def test_password_log_in_delivers_and_the_password_is_never_written(
    tmp_path: Path,
    password_broker: Mosquitto,
    subscriber: Subscriber,
    daemons: list[subprocess.Popen[str]],
    source: str,
) -> None:
    password = password_broker.users[USER]
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    # With its trailing newline, as `echo` or an editor leaves it: the daemon drops it.
    (secrets_dir / CREDENTIAL).write_text(password + "\n")
    if source == "password_file":
        fields: dict[str, TomlValue] = {"password_file": secrets_dir / CREDENTIAL}
        credentials = None
    else:
        fields = {"password_credential": CREDENTIAL}
        credentials = secrets_dir
    config = write_config(tmp_path / "daemon", password_broker.port, username=USER, **fields)

    outcome = run_daemon(daemons, config, credentials)

    assert_delivered_everything(outcome, subscriber)
    assert outcome.events("replay_start")  # the log is there, at debug level
    assert_secret_kept(password, outcome)


def test_a_refused_password_leaves_the_alerts_in_the_outbox(
    tmp_path: Path,
    password_broker: Mosquitto,
    subscriber: Subscriber,
    daemons: list[subprocess.Popen[str]],
) -> None:
    wrong = f"wrong-{secrets.token_hex(16)}"
    secret = tmp_path / "secrets" / "mqtt-password"
    secret.parent.mkdir()
    secret.write_text(wrong + "\n")
    config = write_config(
        tmp_path / "daemon", password_broker.port, username=USER, password_file=secret
    )

    outcome = run_daemon(daemons, config)

    errors = assert_delivered_nothing(outcome, subscriber)
    assert any("not authori" in e.lower() or "bad user name" in e.lower() for e in errors), errors
    assert_secret_kept(wrong, outcome)


# -- TLS ----------------------------------------------------------------------------------------


def test_tls_verified_against_the_configured_ca_delivers(
    tmp_path: Path,
    tls_files: TlsFiles,
    tls_broker: Mosquitto,
    subscriber: Subscriber,
    daemons: list[subprocess.Popen[str]],
) -> None:
    assert tls_broker.url.startswith("mqtts://")
    config = write_config(
        tmp_path / "daemon", tls_broker.port, tls=True, tls_ca_file=tls_files.ca_file
    )

    outcome = run_daemon(daemons, config)

    assert_delivered_everything(outcome, subscriber)


def test_tls_with_another_ca_is_refused(
    tmp_path: Path,
    tls_broker: Mosquitto,
    subscriber: Subscriber,
    daemons: list[subprocess.Popen[str]],
) -> None:
    stranger = make_ca(tmp_path / "other-ca", "other-ca")
    config = write_config(
        tmp_path / "daemon", tls_broker.port, tls=True, tls_ca_file=stranger.cert_file
    )

    outcome = run_daemon(daemons, config)

    errors = assert_delivered_nothing(outcome, subscriber)
    assert any("certificate verify failed" in e.lower() for e in errors), errors
    assert "unknown ca" in tls_broker.log_text()


# -- configuration ------------------------------------------------------------------------------


def credential_config(tmp_path: Path) -> Path:
    """A config naming a systemd credential, for a broker that need not exist."""
    return write_config(
        tmp_path / "daemon", UNUSED_PORT, username=USER, password_credential=CREDENTIAL
    )


def test_check_config_does_not_read_the_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config validates the field but reads no password: outside systemd (where an
    operator runs it) there is no $CREDENTIALS_DIRECTORY to read it from."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert main(["check-config", str(credential_config(tmp_path))]) == EXIT_OK
    assert "OK" in capsys.readouterr().out


def test_run_without_credentials_directory_names_the_field(
    tmp_path: Path, daemons: list[subprocess.Popen[str]]
) -> None:
    outcome = run_daemon(daemons, credential_config(tmp_path))

    assert outcome.returncode == EXIT_BAD_INPUT
    assert "field mqtt.password_credential" in outcome.stderr
    assert "$CREDENTIALS_DIRECTORY is not set" in outcome.stderr


def test_check_config_reports_an_unreadable_password_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "absent-password"
    config = write_config(tmp_path / "daemon", UNUSED_PORT, username=USER, password_file=missing)
    assert main(["check-config", str(config)]) == EXIT_BAD_INPUT
    assert "field mqtt.password_file" in capsys.readouterr().err
