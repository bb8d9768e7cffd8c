"""Stopping: a crashed background task stops the run; the operator's first signal during
that shutdown is still a first signal (the clean stop goes on), the second exits at once."""

from __future__ import annotations

import asyncio
import signal

import pytest

from monitor import app
from monitor.tasks import BackgroundTaskError


def test_a_signal_after_a_task_failure_is_still_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []

    def exit_now(code: int) -> None:
        exits.append(code)

    monkeypatch.setattr(app.os, "_exit", exit_now)

    async def scenario() -> None:
        stop = app.Stop()
        stop.fail(BackgroundTaskError("deliver-desk", RuntimeError("boom")))
        assert stop.requested
        stop.request(signal.SIGTERM)  # during the shutdown the failure started
        assert exits == []
        stop.request(signal.SIGTERM)
        assert exits == [128 + signal.SIGTERM]

    asyncio.run(scenario())
