"""Hedge quality: does the second-engine layer move against the condors, and what it costs.

Rolling beta and correlation (docs/rules.md, "Hedge quality"): on the signal bars, each
layer's P&L per bar is the change of its mark-to-model value (the sum of its strategies'
``market_value_usd``) from one bar close to the next. Over the last ``quality_lookback_bars`` bar
P&Ls, taken about zero, not about their means: beta = sum(hedge x condor) / sum(condor^2)
(the regression of the layer's P&L on the condors' through the origin: $ the layer makes
per $ the condors make) and correlation = sum(hedge x condor) / sqrt(sum(hedge^2) x
sum(condor^2)). A working hedge has negative beta and correlation: it gains on the bars the
condors lose. About the means, a steady selloff in which the condors lose on every bar and
the layer gains on every bar reads near +1 whenever the losses shrink while the gains grow
(or the reverse): that measures how the two curves bend, not whether one offsets the other.
NaN until ``quality_min_bars`` P&Ls are in, and when a layer did not move at all. A change of the
book (positions traded) starts the series again, since a value jump from a trade is not P&L.

Carry, dollars per calendar day if nothing but time moves:
- a VIX future rolls toward spot along the curve: its roll (VIX points per day) is its
  price minus the next-shorter point of the curve (spot VIX for the front month), over the
  days between them (``TermStructure.roll_points_per_day``), and a long future loses
  quantity x multiplier x roll;
- a VIX option decays by its theta and rolls with its future by its delta;
- carry ratio = the second-engine layer's carry (a cost, so negative carry) as a share of
  the condors' theta (a gain): 100 * -hedge carry / condor theta, in percent, both averaged
  over the snapshots of the last completed bar (the condors' theta moves with every quote
  of their legs; a ratio of two instantaneous values would flap). NaN unless the condors
  earn theta.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from monitor.config import SignalsConfig
from monitor.domain.instruments import Kind, future_id
from monitor.portfolio.book import Book
from monitor.portfolio.model import StrategyKind
from monitor.signals.bars import BarBuilder
from monitor.signals.term_structure import TermStructure


@dataclass(frozen=True, slots=True)
class QualityView:
    beta: float = math.nan  # hedge P&L per $ of condor P&L, per bar
    correlation: float = math.nan  # -1 .. +1
    bars: int = 0  # bar P&Ls in the window
    hedge_carry_usd_per_day: float = math.nan  # negative: the layer costs this per day
    condor_theta_usd_per_day: float = math.nan
    carry_ratio_pct: float = math.nan  # share of the condors' theta the layer costs


def beta_correlation(hedge: Sequence[float], condor: Sequence[float]) -> tuple[float, float]:
    """Beta of ``hedge`` on ``condor`` through the origin and their correlation about zero
    (the module's docstring says why not about the means)."""
    if len(hedge) != len(condor):
        raise ValueError("hedge and condor P&Ls must pair up")
    if len(hedge) < 2:
        return (math.nan, math.nan)
    h = np.asarray(hedge, dtype=float)
    c = np.asarray(condor, dtype=float)
    sum_c = float(np.dot(c, c))
    sum_h = float(np.dot(h, h))
    cross = float(np.dot(h, c))
    beta = cross / sum_c if sum_c > 0.0 else math.nan
    corr = cross / math.sqrt(sum_c * sum_h) if sum_c > 0.0 and sum_h > 0.0 else math.nan
    return (beta, max(-1.0, min(1.0, corr)) if math.isfinite(corr) else math.nan)


def layer_values(book: Book) -> tuple[float, float]:
    """(condor, second-engine) mark-to-model values, dollars."""
    condor = hedge = 0.0
    for s in book.strategies:
        if s.kind is StrategyKind.IRON_CONDOR:
            condor += s.risk.market_value_usd
        elif s.kind is StrategyKind.SECOND_ENGINE:
            hedge += s.risk.market_value_usd
    return (condor, hedge)


def carry(book: Book, term: TermStructure) -> tuple[float, float, float]:
    """(second-engine carry $/day, condor theta $/day, carry ratio %)."""
    condor_theta = sum(
        s.risk.theta_usd_per_day for s in book.strategies if s.kind is StrategyKind.IRON_CONDOR
    )
    engines = {s.name for s in book.strategies if s.kind is StrategyKind.SECOND_ENGINE}
    hedge = 0.0
    for lr in book.legs:
        inst = lr.leg.instrument
        if lr.leg.strategy not in engines or inst.root not in {"VX", "VIX"}:
            continue
        if inst.kind is Kind.FUTURE:
            future: str | None = inst.id
        else:
            future = future_id("VX", inst.expiry) if inst.expiry else None
        roll = term.roll_points_per_day(future) if future else math.nan
        hedge += -lr.risk.vix_vega_usd_per_point * roll + lr.risk.theta_usd_per_day
    ratio = 100.0 * -hedge / condor_theta if condor_theta > 0.0 else math.nan
    return (hedge, condor_theta, ratio)


class HedgeQualityTracker:
    """Bar closes of both layers' values (``config.bar_minutes``) and the rolling statistics
    of their changes over ``quality_lookback_bars``, from ``quality_min_bars`` on."""

    def __init__(self, config: SignalsConfig) -> None:
        self.config = config
        self.bar_minutes = config.bar_minutes
        self.reset()

    def reset(self) -> None:
        self._condor = BarBuilder(self.bar_minutes)
        self._hedge = BarBuilder(self.bar_minutes)
        self._last: tuple[float, float] | None = None  # previous (condor, hedge) closes
        self._pnl: deque[tuple[float, float]] = deque(maxlen=self.config.quality_lookback_bars)
        # Carry and theta summed over the open bar's snapshots, and the last bar's ratio.
        self._carry_bar: datetime | None = None
        self._carry_sums = (0.0, 0.0)
        self._carry_ratio = math.nan

    def update(self, moment: datetime, book: Book, term: TermStructure) -> QualityView:
        """Takes one valued book; the view after it."""
        condor_value, hedge_value = layer_values(book)
        if math.isfinite(condor_value) and math.isfinite(hedge_value):
            closed_c = self._condor.update(moment, condor_value)
            closed_h = self._hedge.update(moment, hedge_value)
            for bc, bh in zip(closed_c, closed_h, strict=True):
                if self._last is not None:
                    self._pnl.append((bc.close - self._last[0], bh.close - self._last[1]))
                self._last = (bc.close, bh.close)
        hedge_carry, condor_theta, _ = carry(book, term)
        self._average_carry(moment, hedge_carry, condor_theta)
        bars = len(self._pnl)
        beta = corr = math.nan
        if bars >= self.config.quality_min_bars:
            beta, corr = beta_correlation([p[1] for p in self._pnl], [p[0] for p in self._pnl])
        return QualityView(beta, corr, bars, hedge_carry, condor_theta, self._carry_ratio)

    def _average_carry(self, moment: datetime, hedge_carry: float, condor_theta: float) -> None:
        start = self._condor.bar_start(moment)
        if self._carry_bar is not None and start > self._carry_bar:
            total_carry, total_theta = self._carry_sums
            self._carry_ratio = (
                100.0 * -total_carry / total_theta if total_theta > 0.0 else math.nan
            )
            self._carry_sums = (0.0, 0.0)
        if self._carry_bar is None or start > self._carry_bar:
            self._carry_bar = start
        if math.isfinite(hedge_carry) and math.isfinite(condor_theta):
            total_carry, total_theta = self._carry_sums
            self._carry_sums = (total_carry + hedge_carry, total_theta + condor_theta)
