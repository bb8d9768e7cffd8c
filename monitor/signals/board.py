"""All bar-based signals of one run: MACD/RSI per series, breadth and hedge quality.

Series: SPX and spot VIX (index values), VX1 and VX2 (the front two monthly futures' mids).
When VX1 settles, the futures' series restart: the next month's price is a different
contract, and joining the two would draw a false move (and a false MACD cross) at the roll.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from monitor.config import SignalsConfig
from monitor.portfolio.book import Book
from monitor.signals.bars import Bar
from monitor.signals.breadth import BreadthTracker, BreadthView
from monitor.signals.indicators import IndicatorSet, IndicatorView, view
from monitor.signals.quality import HedgeQualityTracker, QualityView
from monitor.signals.term_structure import TermStructure

SERIES = ("spx", "vix", "vx1", "vx2")


@dataclass(frozen=True, slots=True)
class Prices:
    """One moment's inputs to the price series (NaN where unknown)."""

    spx: float
    vix: float
    vx1: float
    vx2: float
    ad_line: float
    vx1_id: str | None


@dataclass(frozen=True, slots=True)
class SignalsView:
    bar_minutes: int
    indicators: Mapping[str, IndicatorView]
    breadth: BreadthView
    quality: QualityView
    known: bool = True  # False for a moment without prices or a valued book (``unknown``)

    def indicator(self, series: str) -> IndicatorView:
        return self.indicators.get(series) or IndicatorView()


class SignalBoard:
    """The bar signals of ``config`` ([signals]); every tracker takes the same section."""

    def __init__(self, config: SignalsConfig | None = None) -> None:
        self.config = config = config or SignalsConfig()
        minutes = config.bar_minutes
        self.indicators = {s: IndicatorSet(minutes, name=s.upper()) for s in SERIES}
        self.breadth = BreadthTracker(config)
        self.quality = HedgeQualityTracker(config)
        self._vx1_id: str | None = None

    def prices(self, moment: datetime, prices: Prices) -> None:
        """Feeds the price series (also used to warm up from a recording)."""
        if prices.vx1_id is not None and prices.vx1_id != self._vx1_id:
            if self._vx1_id is not None:
                for series in ("vx1", "vx2"):
                    self.indicators[series] = IndicatorSet(
                        self.config.bar_minutes, name=series.upper()
                    )
            self._vx1_id = prices.vx1_id
        for series in SERIES:
            value = getattr(prices, series)
            if math.isfinite(value):
                self.indicators[series].update(moment, value)
        self.breadth.update(moment, prices.spx, prices.ad_line)

    def seed(self, series: str, bars: list[Bar]) -> int:
        """Primes one series with completed bars (e.g. the broker's history) before its first
        tick; returns how many were taken."""
        indicators = self.indicators[series]
        if indicators.bars.ticks_seen:
            return 0
        indicators.warm_up(bars)
        return len(bars)

    def update(
        self, moment: datetime, prices: Prices, book: Book, term: TermStructure
    ) -> SignalsView:
        """Takes one moment's prices and valued book; the view after it."""
        self.prices(moment, prices)
        return SignalsView(
            self.config.bar_minutes,
            {s: view(i) for s, i in self.indicators.items()},
            self.breadth.view(),
            self.quality.update(moment, book, term),
        )

    def unknown(self) -> SignalsView:
        """For a moment without prices or a valued book: every signal unknown (NaN)."""
        return SignalsView(
            self.config.bar_minutes,
            {s: IndicatorView() for s in SERIES},
            BreadthView(),
            QualityView(),
            known=False,
        )

    def book_changed(self) -> None:
        """Positions were traded: the layers' values jump, which is not P&L."""
        self.quality.reset()
