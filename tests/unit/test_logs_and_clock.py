"""Logs are JSON lines off a terminal; the replay clock follows session time and paces."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta

import pytest
import structlog

from monitor import logs
from monitor.clock import ReplayClock
from monitor.domain.instruments import NEW_YORK


def test_logs_are_json_lines_when_not_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info")
    structlog.get_logger("t").warning("replay_bad_line", line=7, reason="malformed JSON")
    structlog.get_logger("t").debug("hidden")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "replay_bad_line"
    assert record["line"] == 7
    assert record["level"] == "warning"
    assert "timestamp" in record


START = datetime(2026, 3, 3, 9, 30, tzinfo=NEW_YORK)


def test_fast_replay_clock_moves_to_each_batch_and_never_back() -> None:
    clock = ReplayClock(START)

    async def go() -> None:
        await clock.advance_to(START + timedelta(hours=6))
        assert clock.now() == START + timedelta(hours=6)
        await clock.advance_to(START)  # an older moment does not move the clock back
        assert clock.now() == START + timedelta(hours=6)

    began = time.monotonic()
    asyncio.run(go())
    assert time.monotonic() - began < 5.0  # six session hours did not wait in real time


def test_paced_replay_waits_at_least_session_time_over_speed() -> None:
    clock = ReplayClock(START, speed=20.0)

    async def go() -> None:
        await clock.advance_to(START + timedelta(seconds=1))
        await clock.advance_to(START + timedelta(seconds=4))

    began = time.monotonic()
    asyncio.run(go())
    assert time.monotonic() - began >= 4 / 20.0  # a sleep never returns early
    assert clock.now() == START + timedelta(seconds=4)
