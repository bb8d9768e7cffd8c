"""Clocks: everything that asks "what time is it" asks one of these, injected at start-up."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def advance_to(self, moment: datetime) -> None:
        """Returns when ``moment`` has come (a replay clock moves there, pacing if asked)."""
        ...


class LiveClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def advance_to(self, moment: datetime) -> None:
        delay = (moment - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


class ReplayClock:
    """Session time taken from the replay; ``speed`` 0 runs as fast as the CPU allows,
    N > 0 paces the replay at N times real time."""

    def __init__(self, start: datetime, *, speed: float = 0.0) -> None:
        self._now = start
        self.speed = speed
        self._origin: tuple[datetime, float] | None = None

    def now(self) -> datetime:
        return self._now

    async def advance_to(self, moment: datetime) -> None:
        if moment < self._now:
            return
        if self.speed > 0:
            if self._origin is None:
                self._origin = (self._now, time.monotonic())
            session_start, wall_start = self._origin
            due = wall_start + (moment - session_start).total_seconds() / self.speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        self._now = moment
