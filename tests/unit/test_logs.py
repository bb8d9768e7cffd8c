"""Log lines: JSON for journald, third-party loggers in the same shape, secrets never shown."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog

from monitor import logs
from monitor.domain.alerts import AlertState, AlertTransition, Severity
from monitor.sinks.console import ConsoleSink


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    logs.configure("info")  # stdout is not a terminal under pytest: JSON
    capsys.readouterr()
    return capsys


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_our_events_are_json_with_level_and_time(json_logs: pytest.CaptureFixture[str]) -> None:
    structlog.get_logger("t").info("alert", rule="FeedStale", value=75.0)
    (line,) = lines(json_logs)
    assert line["event"] == "alert"
    assert line["level"] == "info"
    assert line["rule"] == "FeedStale"
    assert str(line["timestamp"]).endswith("Z")


def test_third_party_loggers_come_out_the_same_way(json_logs: pytest.CaptureFixture[str]) -> None:
    logging.getLogger("ib_async.client").warning("Peer closed connection %s", "clientId 7")
    logging.getLogger("aiomqtt").debug("per-packet chatter")  # below info: dropped
    (line,) = lines(json_logs)
    assert line["event"] == "Peer closed connection clientId 7"
    assert line["level"] == "warning"
    assert line["logger"] == "ib_async.client"


def test_secrets_are_masked_everywhere(json_logs: pytest.CaptureFixture[str]) -> None:
    logs.register_secret("s3cret-Pa55")
    logs.register_url_secrets(["tgram://123456789:AAbbCCddEEffGGhh/12345", "json://u:pw99@host"])
    log = structlog.get_logger("t")
    fields = {"password": "plain", "mqtt_password_file": "/etc/x", "url": "json://u:pw99@host"}
    log.info("connecting", **fields)
    log.info("mqtt said: bad password s3cret-Pa55")
    logging.getLogger("apprise").error("Failed to send to tgram://123456789:AAbbCCddEEffGGhh/1")
    out = lines(json_logs)
    text = json.dumps(out)
    for secret in ("plain", "s3cret-Pa55", "pw99", "123456789:AAbbCCddEEffGGhh"):
        assert secret not in text
    assert out[0]["password"] == logs.MASK
    assert out[0]["url"] == "json://u:***@host"
    assert out[1]["event"] == "mqtt said: bad password ***"
    assert out[2]["event"] == "Failed to send to tgram://***/1"


def test_short_strings_are_not_taken_for_secrets() -> None:
    before = set(logs._secrets)
    logs.register_secret("abc")
    logs.register_secret(None)
    assert logs._secrets == before


@pytest.fixture
def restore_stderr_logs() -> Iterator[None]:
    yield
    logs.configure("warning", "stderr")


@pytest.mark.usefixtures("restore_stderr_logs")
@pytest.mark.parametrize(
    ("stream", "journal", "on_stdout"),
    [
        ("auto", None, False),
        ("auto", "8:12345", True),  # systemd set JOURNAL_STREAM: the journal reads stdout
        ("stdout", None, True),
        ("stderr", "8:12345", False),
    ],
)
def test_the_log_stream_is_stdout_under_systemd_or_when_asked(
    stream: logs.Stream,
    journal: str | None,
    on_stdout: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if journal is None:
        monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    else:
        monkeypatch.setenv("JOURNAL_STREAM", journal)
    logs.configure("info", stream)
    capsys.readouterr()
    structlog.get_logger("t").info("hello", n=1)
    logging.getLogger("aiomqtt").warning("broker gone")
    captured = capsys.readouterr()
    text, other = (captured.out, captured.err) if on_stdout else (captured.err, captured.out)
    assert other == ""
    events = [json.loads(line)["event"] for line in text.splitlines()]
    assert events == ["hello", "broker gone"]
    assert logs.to_stdout() is on_stdout


@pytest.mark.usefixtures("restore_stderr_logs")
def test_alerts_are_json_log_lines_whatever_the_level_when_logs_share_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("error", "stdout")  # info and warning log lines are filtered out
    sink = ConsoleSink(sys.stdout, as_log=logs.to_stdout())
    t = AlertTransition(
        rule="FeedStale",
        severity=Severity.CRITICAL,
        state=AlertState.FIRING,
        labels=(("category", "feed"),),
        value=75.0,
        unit="seconds since the last market event",
        message="no market data for 75 s",
        time=datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
    )
    asyncio.run(sink.emit([t]))
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (line["event"], line["level"], line["rule"]) == ("alert", "critical", "FeedStale")
    assert line["alert_time"] == "2026-03-03T10:00:00.000-05:00"
    assert line["value"] == 75.0
    assert line["unit"] == "seconds since the last market event"
    assert line["labels"] == {"category": "feed"}
    assert str(line["timestamp"]).endswith("Z")
