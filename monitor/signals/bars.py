"""Time bars (open, high, low, close) built from ticks on the New York session's minute grid.

A bar of ``minutes`` covers [start, start + minutes). Starts are the New York wall-clock
times ``anchor + k * minutes`` (default anchor 09:30), so 5-minute bars start at 09:30,
09:35, ... and the grid runs on through the night for instruments that trade then (the
floor is taken on the wall clock at the tick's own UTC offset, so a bar never straddles
two grid points in elapsed time; on the night DST changes one bar can cover an hour more
or less of wall-clock labels).

A bar is completed when the first tick of a later bar arrives (or ``flush`` is called at or
after its end). Bars in which no tick arrived are not invented: after a gap the next bar
in the history is simply the next one that had a tick, so consumers see fewer bars, never
flat synthetic ones. Non-finite prices are ignored, and so is a tick older than the last
accepted one (its bar may already be closed).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from monitor.domain.instruments import NEW_YORK

DEFAULT_HISTORY = 500
SESSION_OPEN = time(9, 30)
_MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True, slots=True)
class Bar:
    """``start`` is timezone-aware, in America/New_York; prices in the series' own units."""

    start: datetime
    open: float
    high: float
    low: float
    close: float


class BarBuilder:
    """Builds ``minutes``-long bars from ticks; ``history`` keeps the last completed ones."""

    def __init__(
        self,
        minutes: int,
        *,
        max_history: int = DEFAULT_HISTORY,
        anchor: time = SESSION_OPEN,
    ) -> None:
        if minutes < 1 or _MINUTES_PER_DAY % minutes:
            raise ValueError(f"bar minutes must divide a day (1440 minutes), got {minutes}")
        if max_history < 1:
            raise ValueError(f"max_history must be at least 1, got {max_history}")
        if anchor.tzinfo is not None:
            raise ValueError("anchor is a New York wall-clock time and must be naive")
        self.minutes = minutes
        self._width = timedelta(minutes=minutes)
        self._anchor = timedelta(hours=anchor.hour, minutes=anchor.minute, seconds=anchor.second)
        self.history: deque[Bar] = deque(maxlen=max_history)
        # The open bar, kept as plain fields so a tick does not allocate.
        self._start: datetime | None = None  # UTC
        self._open = self._high = self._low = self._close = math.nan
        self._last_tick: datetime | None = None
        self._closed_start: datetime | None = None  # UTC start of the last completed bar

    @property
    def current(self) -> Bar | None:
        """The open bar (not yet completed), or None before the first tick and after a flush."""
        if self._start is None:
            return None
        return Bar(self._start.astimezone(NEW_YORK), self._open, self._high, self._low, self._close)

    @property
    def ticks_seen(self) -> bool:
        return self._last_tick is not None

    def bar_start(self, moment: datetime) -> datetime:
        """Start (UTC) of the grid bar that contains ``moment``."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"tick time must be timezone-aware, got {moment!r}")
        local = moment.astimezone(NEW_YORK)
        offset = local.utcoffset() or timedelta(0)
        wall = local.replace(tzinfo=None)
        origin = wall.replace(hour=0, minute=0, second=0, microsecond=0) + self._anchor
        start_wall = origin + ((wall - origin) // self._width) * self._width
        return (start_wall - offset).replace(tzinfo=UTC)

    def update(self, moment: datetime, price: float) -> list[Bar]:
        """Add a tick; returns the bars it completed (zero or one)."""
        if not math.isfinite(price):
            return []
        if self._last_tick is not None and moment < self._last_tick:
            return []
        start = self.bar_start(moment)
        if self._closed_start is not None and start <= self._closed_start:
            return []  # belongs to a bar that is already completed (e.g. by warm-up)
        self._last_tick = moment
        completed: list[Bar] = []
        if self._start is not None and start > self._start:
            completed.append(self._complete())
        if self._start is None:
            self._start = start
            self._open = self._high = self._low = self._close = price
        else:
            # Same bar (or an earlier grid label across a DST change: joins the open bar).
            self._high = max(self._high, price)
            self._low = min(self._low, price)
            self._close = price
        return completed

    def flush(self, now: datetime) -> list[Bar]:
        """Completes the open bar if ``now`` has reached its end (e.g. at the session close)."""
        if self._start is None or self.bar_start(now) <= self._start:
            return []
        return [self._complete()]

    def seed(self, bars: Iterable[Bar]) -> list[Bar]:
        """Adds already-completed bars (e.g. recorded earlier) to the history, oldest first.

        Only before the first tick. Each bar must start on this builder's grid, after the
        previous one, or none is added; later ticks that fall in a seeded bar are ignored.
        Returns the bars added.
        """
        if self.ticks_seen:
            raise RuntimeError("bars can only be seeded before the first tick")
        added = list(bars)
        previous = self._closed_start
        for bar in added:
            start = self.bar_start(bar.start)
            if start != bar.start:
                raise ValueError(f"bar at {bar.start} is not on the {self.minutes}-minute grid")
            if previous is not None and start <= previous:
                raise ValueError(f"bar at {bar.start} is not after the previous seeded bar")
            prices = (bar.open, bar.high, bar.low, bar.close)
            if not all(math.isfinite(p) for p in prices):
                raise ValueError(f"bar at {bar.start} has a non-finite price")
            previous = start
        self._closed_start = previous
        self.history.extend(added)
        return added

    def _complete(self) -> Bar:
        bar = self.current
        if bar is None:
            raise RuntimeError("no open bar to complete")
        self.history.append(bar)
        self._closed_start = self._start
        self._start = None
        return bar


def on_grid(builder: BarBuilder, bars: Iterable[Bar]) -> list[Bar]:
    """The bars that start on ``builder``'s grid, oldest first, each once (others dropped:
    a source with another alignment, or a duplicate)."""
    out: list[Bar] = []
    for bar in sorted(bars, key=lambda b: b.start):
        if builder.bar_start(bar.start) == bar.start and (not out or bar.start > out[-1].start):
            out.append(bar)
    return out
