"""Breadth: the NYSE advance-decline line against SPX, and a divergence detector.

The A/D line here is the day's NYSE net advances (advancing minus declining issues, the
``AD-NYSE`` index IB publishes): the cumulative line since the open. Both series are taken
on the signal bars (``[signals] bar_minutes``), closes only.

Divergence over the last ``breadth_lookback_bars`` completed bars (one more closes), with
the ``breadth_*`` keys of ``[signals]``:
- bearish (-1): SPX has risen by at least ``breadth_min_spx_move_pct`` since the window's
  first close and closes at, or within ``breadth_near_extreme_pct`` of, the window's highest
  close, while the A/D line has fallen by at least ``breadth_ad_threshold_issues``: the
  index makes highs on fewer stocks.
- bullish (+1): SPX has fallen by at least ``breadth_min_spx_move_pct`` to at or near the
  window's lowest close while the A/D line has risen by at least the threshold.
- 0 otherwise; NaN until both series have enough bars.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.config import SignalsConfig
from monitor.signals.bars import BarBuilder


@dataclass(frozen=True, slots=True)
class BreadthView:
    ad_line: float = math.nan  # issues, latest value
    ad_change: float = math.nan  # issues, over the lookback
    spx_change_pct: float = math.nan  # percent, over the lookback
    divergence: float = math.nan  # -1 bearish, +1 bullish, 0 none; NaN while warming up
    lookback_minutes: float = math.nan


def divergence(
    spx: Sequence[float], ad: Sequence[float], config: SignalsConfig
) -> tuple[float, float, float]:
    """(SPX change in %, A/D change in issues, divergence) over closes oldest first.

    Both sequences hold the same bars' closes; only the last ``breadth_lookback_bars + 1``
    are used.
    """
    n = config.breadth_lookback_bars + 1
    if len(spx) != len(ad):
        raise ValueError("SPX and A/D closes must pair up")
    if len(spx) < n:
        return (math.nan, math.nan, math.nan)
    window_spx, window_ad = list(spx)[-n:], list(ad)[-n:]
    last = window_spx[-1]
    spx_change = 100.0 * (last / window_spx[0] - 1.0)
    ad_change = window_ad[-1] - window_ad[0]
    band = config.breadth_near_extreme_pct / 100.0
    move = config.breadth_min_spx_move_pct
    rose = spx_change >= move and last >= max(window_spx) * (1.0 - band)
    fell = spx_change <= -move and last <= min(window_spx) * (1.0 + band)
    signal = 0.0
    if rose and ad_change <= -config.breadth_ad_threshold_issues:
        signal = -1.0
    elif fell and ad_change >= config.breadth_ad_threshold_issues:
        signal = 1.0
    return (spx_change, ad_change, signal)


class BreadthTracker:
    """SPX and A/D bars side by side (``config.bar_minutes``); a bar counts once both series
    completed it."""

    def __init__(self, config: SignalsConfig) -> None:
        self.config = config
        self.bar_minutes = bar_minutes = config.bar_minutes
        self._spx = BarBuilder(bar_minutes)
        self._ad = BarBuilder(bar_minutes)
        keep = config.breadth_lookback_bars + 1
        self._pairs: deque[tuple[datetime, float, float]] = deque(maxlen=keep)
        self._ad_closes: dict[datetime, float] = {}
        self._ad_line = math.nan

    def update(self, moment: datetime, spx: float, ad_line: float) -> None:
        if math.isfinite(ad_line):
            self._ad_line = ad_line
        for bar in self._ad.update(moment, ad_line):
            self._ad_closes[bar.start] = bar.close
        for bar in self._spx.update(moment, spx):
            self._pair(bar.start, bar.close)

    def _pair(self, start: datetime, spx_close: float) -> None:
        ad_close = self._ad_closes.pop(start, None)
        # Older unpaired A/D bars (SPX had no tick in them) are dropped.
        for stale in [s for s in self._ad_closes if s < start]:
            del self._ad_closes[stale]
        if ad_close is not None:
            self._pairs.append((start, spx_close, ad_close))

    def view(self) -> BreadthView:
        spx_change, ad_change, signal = divergence(
            [p[1] for p in self._pairs], [p[2] for p in self._pairs], self.config
        )
        return BreadthView(
            self._ad_line,
            ad_change,
            spx_change,
            signal,
            float(self.config.breadth_lookback_bars * self.bar_minutes),
        )
