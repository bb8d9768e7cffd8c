"""Vol-coordinated stress: the whole book revalued at SPX moves with the volatility that comes
with them, now and at the close, and how much of the condors' loss the VIX layer gives back.

At each SPX move m (``[stress] spx_moves_pct``), with r = ln(1 + m):
  spot VIX      VIX x exp(beta x r), beta = ``vix_log_beta_down`` for a fall, ``vix_log_beta_up``
                for a rise: least squares through zero of daily ln(VIX) changes on daily SPX
                log returns (Cboe's VIX closes and SPX closes, 2012-09-28 to 2022-09-27;
                tests/fixtures/history/spx_vix_daily.csv, docs/rules.md "Stress")
  SPX options   forward x (1 + m); implied vol + the VIX change x (``vol_tenor_days`` / days to
                expiry) ^ ``vol_tenor_exponent``, at most ``vol_tenor_cap`` times it (short
                tenors move more than 30-day vol, long ones less), floored at 0.5 %; the
                smile is kept by strike (sticky strike)
  VIX futures   + the VIX change x the future's response by tenor (vx_response, [scenarios]
                vx_response_half_life_days), as the scenario grid and the hedge sizing
  VIX options   Black-76 on their moved future, their own implied vol unchanged
Two horizons: ``now`` (the move happens at once) and ``close`` (at the next close of the SPX,
16:00 ET or the early close, today's while the market has not closed, else the next
session's: time decays to it, weekends and holidays skipped by the NYSE calendar).

P&L is the change from the book's current model value, in dollars, per layer (the iron
condors, the second engine, the book). ``coverage`` is the second engine's gain over the
condors' loss (0.4: the layer gives back 40 % of it); NaN where the condors do not lose.
A leg that cannot be valued makes its points NaN, never zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from monitor.calendars import Exchange, next_session, session
from monitor.config import StressConfig
from monitor.domain.instruments import NEW_YORK, Kind
from monitor.portfolio.book import Book, LegRisk
from monitor.portfolio.model import StrategyKind
from monitor.pricing import black76
from monitor.pricing.expiry import SECONDS_PER_YEAR
from monitor.signals.term_structure import vx_response

FloatArray = NDArray[np.float64]
MIN_VOL = 0.005
DOWN5 = -5.0  # the move the default pack's stress rules read


class Horizon(StrEnum):
    NOW = "now"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class StressPoint:
    """One SPX move at one horizon: the market it assumes and the P&L of each layer."""

    spx_move_pct: float
    horizon: Horizon
    vix_after: float  # spot VIX after the move, VIX points (NaN without a VIX)
    condor_usd: float
    hedge_usd: float
    book_usd: float

    @property
    def coverage(self) -> float:
        """The second engine's P&L over the condors' loss (a ratio; NaN without a loss)."""
        if not self.condor_usd < 0.0 or math.isnan(self.hedge_usd):
            return math.nan
        return self.hedge_usd / -self.condor_usd


def _unknown_point(move: float, horizon: Horizon) -> StressPoint:
    nan = math.nan
    return StressPoint(move, horizon, nan, nan, nan, nan)


@dataclass(frozen=True, slots=True)
class StressView:
    """Every stress point of one snapshot, and the close the ``close`` points are valued at."""

    points: tuple[StressPoint, ...]
    close_at: datetime | None  # New York time
    account_size_usd: float = math.nan
    hours_to_close: float = math.nan

    @classmethod
    def unknown(cls, moves: Sequence[float] = (DOWN5,)) -> StressView:
        points = tuple(_unknown_point(m, h) for h in Horizon for m in sorted(set(moves)))
        return cls(points, None)

    def at(self, move: float, horizon: Horizon = Horizon.NOW) -> StressPoint:
        for point in self.points:
            if point.spx_move_pct == move and point.horizon is horizon:
                return point
        return _unknown_point(move, horizon)

    def worst(self, horizon: Horizon = Horizon.NOW) -> StressPoint:
        """The point of ``horizon`` where the book loses most (NaN points skipped)."""
        known = [p for p in self.points if p.horizon is horizon and not math.isnan(p.book_usd)]
        if not known:
            return _unknown_point(math.nan, horizon)
        return min(known, key=lambda p: p.book_usd)

    def pct_of_account(self, dollars: float) -> float:
        """``dollars`` as a % of the portfolio's account size (NaN without one)."""
        size = self.account_size_usd
        return 100.0 * dollars / size if size > 0.0 else math.nan


def next_close(now: datetime) -> datetime:
    """The next close of the SPX (the NYSE session's close, early closes included) at or
    after ``now``: today's while it is still ahead, else the next session's."""
    local = now.astimezone(NEW_YORK)
    today = session(Exchange.NYSE, local.date())
    if today is not None and local < today.close:
        return today.close
    return next_session(Exchange.NYSE, local.date()).close


class StressEngine:
    """Revalues a book over ``[stress]``'s SPX moves at both horizons, in one Black-76 call
    per horizon, at ``rate`` ([pricing])."""

    def __init__(self, config: StressConfig, rate: float, vx_half_life_days: float) -> None:
        self.config = config
        self.rate = rate
        self.vx_half_life_days = vx_half_life_days
        self.moves_pct = tuple(sorted(set(config.spx_moves_pct)))
        self.moves = np.asarray(self.moves_pct, dtype=float) / 100.0

    def unknown(self) -> StressView:
        return StressView.unknown(self.moves_pct)

    def vix_after(self, vix: float) -> FloatArray:
        """Spot VIX after each move (VIX points)."""
        r = np.log1p(self.moves)
        c = self.config
        beta = np.where(r < 0.0, c.vix_log_beta_down, c.vix_log_beta_up)
        return np.asarray(vix * np.exp(beta * r), dtype=float)

    def tenor_factor(self, days: FloatArray) -> FloatArray:
        """How many vol points an SPX option's implied vol moves per point of spot VIX."""
        c = self.config
        ratio = c.vol_tenor_days / np.maximum(days, 1e-9)
        return np.asarray(np.minimum(ratio**c.vol_tenor_exponent, c.vol_tenor_cap), dtype=float)

    def view(self, book: Book, vix: float, now: datetime) -> StressView:
        close = next_close(now)
        to_close = max((close.astimezone(UTC) - now.astimezone(UTC)).total_seconds(), 0.0)
        if not (math.isfinite(vix) and vix > 0.0):
            vix = math.nan  # no VIX to move: the vols' response is unknown, not zero
        vix_after = self.vix_after(vix)
        dvix = vix_after - vix
        kinds = {s.name: s.kind for s in book.strategies}
        points: list[StressPoint] = []
        for horizon, decay in ((Horizon.NOW, 0.0), (Horizon.CLOSE, to_close / SECONDS_PER_YEAR)):
            layers = {kind: np.zeros(len(self.moves)) for kind in StrategyKind}
            for kind, pnl in self._legs(book.legs, kinds, dvix, decay):
                layers[kind] = layers[kind] + pnl
            condor = layers[StrategyKind.IRON_CONDOR]
            hedge = layers[StrategyKind.SECOND_ENGINE]
            whole = condor + hedge + layers[StrategyKind.OTHER]
            points += [
                StressPoint(
                    m,
                    horizon,
                    float(vix_after[i]),
                    float(condor[i]),
                    float(hedge[i]),
                    float(whole[i]),
                )
                for i, m in enumerate(self.moves_pct)
            ]
        return StressView(tuple(points), close, book.account_size_usd, to_close / 3600.0)

    def _legs(
        self,
        legs: Sequence[LegRisk],
        kinds: dict[str, StrategyKind],
        dvix: FloatArray,
        decay: float,
    ) -> list[tuple[StrategyKind, FloatArray]]:
        """Each leg's P&L per move (dollars), with its strategy's kind; the options in one
        Black-76 call, shape (options, moves)."""
        out: list[tuple[StrategyKind, FloatArray]] = []
        legs = [lr for lr in legs if not lr.value.settling]  # struck: no move changes them
        options = [
            lr
            for lr in legs
            if lr.leg.instrument.kind is Kind.OPTION and lr.leg.instrument.strike is not None
        ]
        for lr in legs:
            inst = lr.leg.instrument
            if inst.kind is Kind.FUTURE:
                tenor = max(lr.value.years, 0.0) * 365.0
                move = dvix * vx_response(tenor, self.vx_half_life_days)
                kind = kinds.get(lr.leg.strategy, StrategyKind.OTHER)
                out.append((kind, lr.leg.quantity * inst.multiplier * move))
        if not options:
            return out
        values = [lr.value for lr in options]
        years = np.array([v.years for v in values])[:, None]
        days = np.maximum(years, 0.0) * 365.0
        underlying = np.array([v.underlying_price for v in values])[:, None]
        iv = np.array([v.iv for v in values])[:, None]
        on_spx = np.array([lr.leg.instrument.underlying == "SPX" for lr in options])[:, None]
        response = 0.5 ** (days / self.vx_half_life_days)
        forward = np.where(
            on_spx,
            underlying * (1.0 + self.moves[None, :]),
            np.maximum(underlying + dvix[None, :] * response, 0.01),
        )
        shifted = np.maximum(iv + dvix[None, :] / 100.0 * self.tenor_factor(days), MIN_VOL)
        vol = np.where(on_spx, shifted, iv)
        strike = np.array([lr.leg.instrument.strike for lr in options], dtype=float)[:, None]
        is_call = np.array([lr.leg.instrument.is_call for lr in options])[:, None]
        later = np.maximum(years - decay, 0.0)
        prices = black76.price(forward, strike, later, self.rate, vol, is_call)
        base = np.array([v.price for v in values])[:, None]
        sizes = np.array([lr.leg.quantity * lr.leg.instrument.multiplier for lr in options])
        pnl = (prices - base) * sizes[:, None]
        for lr, row in zip(options, pnl, strict=True):
            out.append((kinds.get(lr.leg.strategy, StrategyKind.OTHER), np.asarray(row, float)))
        return out
