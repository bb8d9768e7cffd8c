"""Log lines: JSON for journald, third-party loggers in the same shape, secrets never shown."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

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


@pytest.fixture(autouse=True)
def fresh_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers its own secrets; none outlive it."""
    monkeypatch.setattr(logs, "_secrets", logs._Registry())


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
    assert out[0]["url"] == "json://***:***@***"  # a one-word host may be a topic: masked
    assert out[1]["event"] == "mqtt said: bad password ***"
    assert out[2]["event"] == "Failed to send to tgram://***/1"


SERVICE_URLS = [
    "json://alice42:pw9@notify.example.com:8443/api/hook?format=text&token=q1w2e3r4",
    "tgram://123456789:AAbbCCddEEffGGhhIIjj/98765",
    "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
    "slack://T1JJ3T3L2/A1BRTD4JD/TJ2HEGH3L3JFH3",
    "ntfy://alerts",
]


@pytest.fixture
def debug_json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    logs.configure("debug", "stderr")
    capsys.readouterr()
    yield capsys
    logs.configure("warning", "stderr")


def test_every_credential_segment_is_masked_at_debug_level(
    debug_json_logs: pytest.CaptureFixture[str],
) -> None:
    logs.register_url_secrets(SERVICE_URLS)
    log = structlog.get_logger("t")
    for url in SERVICE_URLS:
        log.debug("service", url=url)
    log.debug("login refused for alice42 (password pw9)")  # pw9: too short to mask alone
    log.debug("slack said: channel TJ2HEGH3L3JFH3 is archived")
    logging.getLogger("urllib3.connectionpool").debug(
        'https://api.telegram.org:443 "POST /bot123456789:AAbbCCddEEffGGhhIIjj/sendMessage"'
    )
    logging.getLogger("apprise").debug("webhook 4174216298 answered 404 to chat 98765")
    out = lines(debug_json_logs)
    text = json.dumps(out)
    for secret in (
        "alice42",
        ":pw9@",
        "q1w2e3r4",
        "AAbbCCddEEffGGhhIIjj",
        "98765",
        "4174216298",
        "JHMHI8qBe7bk2ZwO5U711o3dV_js",
        "T1JJ3T3L2",
        "A1BRTD4JD",
        "TJ2HEGH3L3JFH3",
        "ntfy://alerts",
    ):
        assert secret not in text, secret
    assert [line["url"] for line in out[:5]] == [
        "json://***:***@notify.example.com:8443/api/hook?format=text&token=***",
        "tgram://***/***",
        "discord://***/***",
        "slack://***/***/***",
        "ntfy://***",
    ]
    assert out[5]["event"] == "login refused for *** (password pw9)"
    assert out[6]["event"] == "slack said: channel *** is archived"
    assert out[7]["event"] == 'https://api.telegram.org:443 "POST /bot***/sendMessage"'
    assert out[8]["event"] == "webhook *** answered 404 to chat ***"


def test_common_words_of_a_url_stay_readable_elsewhere(
    json_logs: pytest.CaptureFixture[str],
) -> None:
    logs.register_url_secrets(
        ["json://admin:hunter22@host.example.com/api/notify", "ntfy://alerts"]
    )
    log = structlog.get_logger("t")
    message = "admin asked the api to notify alerts via host.example.com port 8443"
    log.info(message)
    log.info("hunter22 and xhunter22y")  # a short secret: as a whole word only
    out = lines(json_logs)
    assert out[0]["event"] == message
    assert out[1]["event"] == "*** and xhunter22y"


def test_the_user_and_password_of_any_url_are_masked(json_logs: pytest.CaptureFixture[str]) -> None:
    logging.getLogger("aiomqtt").warning("cannot reach mqtt://bob:x@broker.lan:1883/condor")
    structlog.get_logger("t").info("posting", to="https://token@hooks.example.com/x")
    out = lines(json_logs)
    assert out[0]["event"] == "cannot reach mqtt://***:***@broker.lan:1883/condor"
    assert out[1]["to"] == "https://***@hooks.example.com/x"


def test_short_strings_are_not_taken_for_secrets(json_logs: pytest.CaptureFixture[str]) -> None:
    logs.register_secret("abc")
    logs.register_secret(None)
    logs.register_secret("")
    structlog.get_logger("t").info("abc cab")
    assert lines(json_logs)[0]["event"] == "abc cab"


def test_a_value_is_capped_with_the_count_of_what_was_cut(
    debug_json_logs: pytest.CaptureFixture[str],
) -> None:
    huge = "x" * 1_000_000
    log = structlog.get_logger("t")
    log.debug("replay_bad_line", reason=huge, payload=huge.encode(), nested={"text": [huge]})
    logging.getLogger("aiomqtt").debug("payload %s", huge)
    log.info("quantity", value=10**2000)
    first, second, third = lines(debug_json_logs)
    cap = logs.MAX_VALUE_CHARS
    assert first["reason"] == "x" * cap + f"…[+{1_000_000 - cap} chars]"
    assert str(first["payload"]).startswith("b'xxx")
    assert str(first["payload"]).endswith(f"…[+{1_000_003 - cap} chars]")  # b'...' is longer
    assert first["nested"] == {"text": ["x" * cap + f"…[+{1_000_000 - cap} chars]"]}
    assert len(str(second["event"])) < cap + 30
    assert third["value"] == f"<integer of {(10**2000).bit_length()} bits>"


class _Pair(NamedTuple):
    name: str
    text: str


def test_named_tuples_and_other_values_are_masked_and_capped(
    json_logs: pytest.CaptureFixture[str],
) -> None:
    logs.register_secret("hunter22")
    log = structlog.get_logger("t")
    log.info("pair", pair=_Pair("hunter22", "p" * 600), path=Path("/srv/hunter22"))
    (line,) = lines(json_logs)
    assert line["pair"] == [logs.MASK, "p" * 512 + "…[+88 chars]"]
    assert line["path"] == "PosixPath('/srv/***')"


def test_a_secret_across_the_cut_is_masked_whole(json_logs: pytest.CaptureFixture[str]) -> None:
    bot = "Zq8RkT3vLp0WmN5xYc7B"  # 20 characters, from position 500: across the cut at 512
    logs.register_url_secrets([f"tgram://{bot}/55501"])
    value = "x" * 500 + bot + "y" * 1000
    structlog.get_logger("t").warning("odd", value=value)
    (line,) = lines(json_logs)
    shown = str(line["value"])
    assert bot[:12] not in shown
    assert shown == "x" * 500 + logs.MASK + "y" * 9 + f"…[+{len(value) - 17 - 512} chars]"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_console_renderer_is_masked_and_capped_too(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    logs.configure("debug", "stderr")
    try:
        logs.register_secret("hunter22")
        structlog.get_logger("t").debug("bad_line", text="z" * 5000, note="hunter22 said no")
        logging.getLogger("apprise").debug("x" * 5000)
    finally:
        monkeypatch.undo()
        logs.configure("warning", "stderr")
    out = terminal.getvalue()
    assert "hunter22" not in out
    assert "*** said no" in out
    assert "z" * 512 + f"…[+{5000 - 512} chars]" in out
    assert "x" * 512 + f"…[+{5000 - 512} chars]" in out
    assert "z" * 513 not in out
    assert "x" * 513 not in out


def _fail() -> None:
    raise ValueError("login hunter22 failed " + "w" * 20_000 + " at the end")


def test_an_exception_is_text_masked_and_capped(json_logs: pytest.CaptureFixture[str]) -> None:
    logs.register_secret("hunter22")
    log = structlog.get_logger("t")
    try:
        _fail()
    except ValueError as exc:
        log.exception("send_failed")
        logging.getLogger("apprise").exception("apprise failed")
        error = exc
    log.warning("send_failed", error=error)
    out = lines(json_logs)
    assert "hunter22" not in json.dumps(out)
    for traceback in (str(out[0]["exception"]), str(out[1]["exception"])):
        assert traceback.startswith("[")  # cut at the front: the error at the end is kept
        assert traceback.rstrip().endswith("w at the end")
        assert len(traceback) < logs.MAX_EXCEPTION_CHARS + 30
    assert str(out[2]["error"]).startswith("ValueError('login *** failed www")
    assert len(str(out[2]["error"])) < logs.MAX_VALUE_CHARS + 30


def test_lines_written_whatever_the_level_are_masked_and_capped() -> None:
    logs.register_secret("hunter22")
    line = json.loads(logs.json_line("alert", "info", "t", {"message": "hunter22 " + "m" * 600}))
    assert line["message"] == "*** " + "m" * 508 + "…[+92 chars]"


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
