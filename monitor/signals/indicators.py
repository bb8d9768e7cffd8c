"""Streaming MACD and RSI on bar closes, and a set tying them to a bar builder for one series.

Conventions (StockCharts ChartSchool; TA-Lib's EMA and RSI start the same way):
- EMA(n): alpha = 2 / (n + 1), seeded with the simple mean of the first n inputs, so the
  first value comes on the n-th input. TA-Lib's MACD function differs slightly: it seeds
  the fast EMA on the closes just before the slow EMA's first value rather than on the first
  fast-period closes; the difference decays by (1 - 2/13) per bar.
- MACD(fast, slow, signal): line = EMA(fast) - EMA(slow) from the slow-th close on; the
  signal line is an EMA(signal) of the line seeded with the mean of its first ``signal``
  values; histogram = line - signal. First value on close slow + signal - 1.
- RSI(n), Wilder: the first average gain (loss) is the simple mean of the first n gains
  (losses, as positive numbers); then avg = (prev * (n - 1) + x) / n. RSI = 100 * gain /
  (gain + loss), which is 100 - 100 / (1 + RS), and 100 when the average loss is 0 and the
  average gain is not. First value on close n + 1. Where the last n closes did not move at
  all (a flat series, or a stale feed repeating one price), RSI is 50, neutral: with no
  change it is 0/0, and the 100 of the formula (average loss 0) would read as a spike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time

from monitor.signals.bars import DEFAULT_HISTORY, SESSION_OPEN, Bar, BarBuilder


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"indicator input must be finite, got {value}")
    return value


def _period(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


class Ema:
    """Exponential moving average, alpha = 2 / (period + 1), seeded with an SMA."""

    def __init__(self, period: int) -> None:
        self.period = _period("EMA period", period)
        self.alpha = 2.0 / (period + 1)
        self.value: float | None = None
        self._seed_sum = 0.0
        self._seed_count = 0

    def update(self, x: float) -> float | None:
        x = _finite(x)
        if self.value is None:
            self._seed_sum += x
            self._seed_count += 1
            if self._seed_count == self.period:
                self.value = self._seed_sum / self.period
            return self.value
        self.value += self.alpha * (x - self.value)
        return self.value


@dataclass(frozen=True, slots=True)
class MacdValue:
    """``cross``: +1 when the line crossed above the signal on this bar, -1 below, else 0."""

    macd: float
    signal: float
    histogram: float
    cross: int


class Macd:
    """MACD line, signal line, histogram and signal-line crossovers, one close at a time.

    A cross is a change of the histogram's sign against the last bar on which it was non-zero,
    so touching the signal line and turning back is not a cross. The first value has cross 0.
    """

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        if not _period("fast", fast) < _period("slow", slow):
            raise ValueError(f"fast period must be shorter than slow, got {fast} and {slow}")
        self.fast = Ema(fast)
        self.slow = Ema(slow)
        self.signal = Ema(_period("signal", signal))
        self.warm_up_closes = slow + signal - 1
        self.value: MacdValue | None = None
        self._side = 0  # sign of the last non-zero histogram

    def update(self, close: float) -> MacdValue | None:
        close = _finite(close)
        fast = self.fast.update(close)
        slow = self.slow.update(close)
        if fast is None or slow is None:
            return None
        line = fast - slow
        signal = self.signal.update(line)
        if signal is None:
            return None
        histogram = line - signal
        side = (histogram > 0) - (histogram < 0)
        cross = side if side and self._side and side != self._side else 0
        if side:
            self._side = side
        self.value = MacdValue(line, signal, histogram, cross)
        return self.value


class Rsi:
    """Wilder's RSI, one close at a time; 0-100."""

    def __init__(self, period: int = 14) -> None:
        self.period = _period("RSI period", period)
        self.value: float | None = None
        self._previous: float | None = None
        self._gain = 0.0
        self._loss = 0.0
        self._changes = 0
        self._still = 0  # closes in a row equal to the one before

    def update(self, close: float) -> float | None:
        close = _finite(close)
        previous, self._previous = self._previous, close
        if previous is None:
            return None
        change = close - previous
        self._still = self._still + 1 if change == 0.0 else 0
        gain, loss = max(change, 0.0), max(-change, 0.0)
        n = self.period
        if self._changes < n:
            self._changes += 1
            self._gain += gain
            self._loss += loss
            if self._changes < n:
                return None
            self._gain /= n
            self._loss /= n
        else:
            self._gain = (self._gain * (n - 1) + gain) / n
            self._loss = (self._loss * (n - 1) + loss) / n
        total = self._gain + self._loss
        if self._still >= n or total == 0.0:
            self.value = 50.0
        else:
            self.value = 100.0 if self._loss == 0 else 100.0 * self._gain / total
        return self.value


class IndicatorSet:
    """A bar builder feeding a MACD and an RSI, for one series at one bar size.

    ``last_cross`` is the MACD cross of the last completed bar; ``bars_since_cross`` counts
    completed bars since the last non-zero cross (0 on the bar of the cross, None before
    any cross).
    """

    def __init__(
        self,
        minutes: int,
        *,
        fast: int = 12,
        slow: int = 26,
        signal: int = 9,
        rsi_period: int = 14,
        max_history: int = DEFAULT_HISTORY,
        anchor: time = SESSION_OPEN,
        name: str = "",
    ) -> None:
        self.name = name
        self.bars = BarBuilder(minutes, max_history=max_history, anchor=anchor)
        self.macd = Macd(fast, slow, signal)
        self.rsi = Rsi(rsi_period)
        self.last_macd: MacdValue | None = None
        self.last_rsi: float | None = None
        self.last_cross = 0
        self.bars_since_cross: int | None = None

    @property
    def minutes(self) -> int:
        return self.bars.minutes

    def update(self, moment: datetime, price: float) -> list[Bar]:
        """Add a tick; returns the bars it completed, already fed to the indicators."""
        completed = self.bars.update(moment, price)
        for bar in completed:
            self._feed(bar)
        return completed

    def flush(self, now: datetime) -> list[Bar]:
        """Completes the open bar if ``now`` has reached its end, and feeds it."""
        completed = self.bars.flush(now)
        for bar in completed:
            self._feed(bar)
        return completed

    def warm_up(self, bars: Iterable[Bar]) -> None:
        """Primes from completed bars, oldest first, before the first tick.

        The bars join the builder's history; ticks that fall in them later are ignored.
        """
        for bar in self.bars.seed(bars):
            self._feed(bar)

    def _feed(self, bar: Bar) -> None:
        value = self.macd.update(bar.close)
        rsi = self.rsi.update(bar.close)
        if value is not None:
            self.last_macd = value
        if rsi is not None:
            self.last_rsi = rsi
        self.last_cross = value.cross if value is not None else 0
        if self.last_cross:
            self.bars_since_cross = 0
        elif self.bars_since_cross is not None:
            self.bars_since_cross += 1


@dataclass(frozen=True, slots=True)
class IndicatorView:
    """One series' indicators after its last completed bar (NaN while warming up)."""

    macd: float = math.nan
    signal: float = math.nan
    histogram: float = math.nan
    cross: int = 0  # +1 / -1 on the bar MACD crossed its signal line, else 0
    bars_since_cross: float = math.nan
    rsi: float = math.nan


def view(indicators: IndicatorSet) -> IndicatorView:
    m = indicators.last_macd
    since = indicators.bars_since_cross
    return IndicatorView(
        m.macd if m else math.nan,
        m.signal if m else math.nan,
        m.histogram if m else math.nan,
        indicators.last_cross,
        float(since) if since is not None else math.nan,
        indicators.last_rsi if indicators.last_rsi is not None else math.nan,
    )
