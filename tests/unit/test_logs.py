"""Log lines: JSON for journald, third-party loggers in the same shape, secrets never shown."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from monitor import logs


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
