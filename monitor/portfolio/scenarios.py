"""Scenario grid: SPX moves x SPX implied-vol shocks, every leg fully revalued (vectorized).

In each cell:
  SPX options   forward x (1 + move); implied vol + shock (sticky strike, floored at 0.5 %)
  VIX futures   + shock x the future's term-structure response (a +1 point SPX-vol shock is
                taken as +1 point of spot VIX; longer futures move less, see vx_response)
  VIX options   Black-76 on their shocked future, their own implied vol unchanged
  time          optionally advanced by ``decay_days`` (one day of theta)
P&L is the change from the current model value, in dollars, for the condor layer (iron
condors), the hedge layer (second engine) and the book. A leg that cannot be valued makes
its cells NaN: a grid is never filled with made-up numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from monitor.config import ScenariosConfig
from monitor.domain.instruments import Kind
from monitor.portfolio.book import Book, LegRisk
from monitor.portfolio.model import Leg, StrategyKind
from monitor.pricing import black76

FloatArray = NDArray[np.float64]
MIN_VOL = 0.005


@dataclass(frozen=True, slots=True)
class ScenarioGrid:
    """P&L in dollars, indexed [spx move, vol shock]."""

    spx_moves_pct: tuple[float, ...]
    vol_shocks_points: tuple[float, ...]
    condor_usd: FloatArray
    hedge_usd: FloatArray
    book_usd: FloatArray

    def worst(self, layer: FloatArray) -> tuple[float, float, float]:
        """(P&L, SPX move %, vol shock points) of the worst cell; NaN cells are skipped."""
        if np.all(np.isnan(layer)):
            return (float("nan"), float("nan"), float("nan"))
        i, j = np.unravel_index(int(np.nanargmin(layer)), layer.shape)
        return (float(layer[i, j]), self.spx_moves_pct[i], self.vol_shocks_points[j])


@dataclass(frozen=True, slots=True)
class _OptionTerms:
    """What the grid needs of the option legs that does not change between snapshots."""

    legs: tuple[Leg, ...]
    kinds: tuple[StrategyKind, ...]
    strike: FloatArray
    is_call: NDArray[np.bool_]
    on_spx: NDArray[np.bool_]
    size: FloatArray
    masks: dict[StrategyKind, NDArray[np.bool_]]

    def same(self, legs: Sequence[LegRisk], kinds: tuple[StrategyKind, ...]) -> bool:
        return (
            kinds == self.kinds
            and len(legs) == len(self.legs)
            and all(lr.leg is leg for lr, leg in zip(legs, self.legs, strict=True))
        )


def _option_terms(legs: Sequence[LegRisk], kinds: tuple[StrategyKind, ...]) -> _OptionTerms:
    return _OptionTerms(
        legs=tuple(lr.leg for lr in legs),
        kinds=kinds,
        strike=np.array([lr.leg.instrument.strike for lr in legs], dtype=float),
        is_call=np.array([lr.leg.instrument.is_call for lr in legs], dtype=bool),
        on_spx=np.array([lr.leg.instrument.underlying == "SPX" for lr in legs], dtype=bool),
        size=np.array([lr.leg.quantity * lr.leg.instrument.multiplier for lr in legs], float),
        masks={kind: np.array([k is kind for k in kinds], dtype=bool) for kind in StrategyKind},
    )


class ScenarioEngine:
    """Revalues a book's legs over the grid of ``config`` ([scenarios]) in one Black-76 call,
    at ``rate`` ([pricing])."""

    def __init__(self, config: ScenariosConfig, rate: float) -> None:
        self.config = config
        self.rate = rate
        # The grid's axes as the grids carry them (the config's lists are not for sharing).
        self.spx_moves_pct = tuple(config.spx_moves_pct)
        self.vol_shocks_points = tuple(config.vol_shocks_points)
        self.moves = np.asarray(self.spx_moves_pct, dtype=float)[:, None, None] / 100.0
        self.shocks = np.asarray(self.vol_shocks_points, dtype=float)[None, :, None]
        # The option legs' fixed terms, kept while the book's legs are the same objects.
        self._terms: _OptionTerms | None = None

    def _terms_for(self, legs: Sequence[LegRisk], kinds: tuple[StrategyKind, ...]) -> _OptionTerms:
        terms = self._terms
        if terms is None or not terms.same(legs, kinds):
            terms = self._terms = _option_terms(legs, kinds)
        return terms

    def unknown(self) -> ScenarioGrid:
        """The grid of a book that knows nothing: every cell NaN, never zero."""
        shape = (len(self.spx_moves_pct), len(self.vol_shocks_points))
        cells = np.full(shape, np.nan)
        return ScenarioGrid(self.spx_moves_pct, self.vol_shocks_points, cells, cells, cells)

    def grid(self, book: Book) -> ScenarioGrid:
        kinds = {s.name: s.kind for s in book.strategies}
        legs = [lr for lr in book.legs if not lr.value.settling]  # struck: no shock moves them
        options = [lr for lr in legs if lr.leg.instrument.kind is Kind.OPTION]
        futures = [lr for lr in legs if lr.leg.instrument.kind is Kind.FUTURE]
        shape = (len(self.spx_moves_pct), len(self.vol_shocks_points))
        layers = {kind: np.zeros(shape) for kind in StrategyKind}
        if options:
            terms = self._terms_for(options, tuple(kinds[lr.leg.strategy] for lr in options))
            pnl = self._options(options, terms)
            for kind in StrategyKind:
                layers[kind] = layers[kind] + pnl[:, :, terms.masks[kind]].sum(axis=2)
        for lr in futures:
            size = lr.leg.quantity * lr.leg.instrument.multiplier
            move = self.shocks[:, :, 0] * self._response(np.array([lr.value.years]))[0]
            kind = kinds[lr.leg.strategy]
            layers[kind] = layers[kind] + np.broadcast_to(size * move, shape)
        condor = layers[StrategyKind.IRON_CONDOR]
        hedge = layers[StrategyKind.SECOND_ENGINE]
        whole = sum((layers[kind] for kind in StrategyKind), np.zeros(shape))
        return ScenarioGrid(self.spx_moves_pct, self.vol_shocks_points, condor, hedge, whole)

    def _response(self, years: FloatArray) -> FloatArray:
        days = np.maximum(years * 365.0, 0.0)
        return np.asarray(0.5 ** (days / self.config.vx_response_half_life_days), dtype=float)

    def _options(self, legs: Sequence[LegRisk], terms: _OptionTerms) -> FloatArray:
        """P&L per cell and leg, shape (moves, shocks, legs)."""
        values = [lr.value for lr in legs]
        forward = np.array([v.underlying_price for v in values])
        strike, is_call, on_spx, size = terms.strike, terms.is_call, terms.on_spx, terms.size
        years = np.array([v.years for v in values])
        vol = np.array([v.iv for v in values])
        base = np.array([v.price for v in values])
        vix_move = self.shocks * self._response(years)  # VIX futures under the VIX options
        shocked_forward = np.where(
            on_spx, forward * (1.0 + self.moves), np.maximum(forward + vix_move, 0.01)
        )
        shocked_vol = np.where(on_spx, np.maximum(vol + self.shocks / 100.0, MIN_VOL), vol)
        later = np.maximum(years - self.config.decay_days / 365.0, 0.0)
        prices = black76.price(shocked_forward, strike, later, self.rate, shocked_vol, is_call)
        return np.asarray((prices - base) * size, dtype=float)
