"""Book aggregation: per-leg dollar risk in the units traders read, summed by strategy.

Units (README.md, "Units"):
  delta   $ per SPX point (SPX-point-equivalent exposure) and $ per 1 % SPX move
  gamma   change of the $-per-1 % delta for a +1 % SPX move
  vega    $ per 1 SPX implied-vol point; the VIX layer's vega is $ per 1 point of its future
  theta   $ per calendar day
SPX-family greeks are taken against the expiry's forward; a forward moves one-for-one with
the index over a day, so they are read as SPX points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from monitor.domain.instruments import Kind
from monitor.portfolio.model import Leg, Portfolio, StrategyKind
from monitor.pricing.valuation import LegValue
from monitor.signals.term_structure import TermStructure


@dataclass(frozen=True, slots=True)
class Risk:
    """Dollar risk of a position or a sum of positions; adds with ``+``."""

    delta_usd_per_spx_point: float = 0.0
    delta_usd_per_pct: float = 0.0
    gamma_usd_per_pct: float = 0.0
    vega_usd_per_vol_point: float = 0.0
    vix_vega_usd_per_point: float = 0.0
    theta_usd_per_day: float = 0.0
    market_value_usd: float = 0.0

    def __add__(self, other: Risk) -> Risk:
        return Risk(
            self.delta_usd_per_spx_point + other.delta_usd_per_spx_point,
            self.delta_usd_per_pct + other.delta_usd_per_pct,
            self.gamma_usd_per_pct + other.gamma_usd_per_pct,
            self.vega_usd_per_vol_point + other.vega_usd_per_vol_point,
            self.vix_vega_usd_per_point + other.vix_vega_usd_per_point,
            self.theta_usd_per_day + other.theta_usd_per_day,
            self.market_value_usd + other.market_value_usd,
        )


def leg_risk(leg: Leg, value: LegValue, spx: float) -> Risk:
    """Position risk of ``leg``: quantity x multiplier x the raw Black-76 greeks, in dollars."""
    size = leg.quantity * leg.instrument.multiplier
    inst = leg.instrument
    if inst.kind is Kind.FUTURE:
        return Risk(vix_vega_usd_per_point=size, market_value_usd=size * value.price)
    theta = size * value.theta / 365.0
    worth = size * value.price
    if inst.underlying == "SPX":
        return Risk(
            delta_usd_per_spx_point=size * value.delta,
            delta_usd_per_pct=size * value.delta * spx * 0.01,
            gamma_usd_per_pct=size * value.gamma * spx * spx * 1e-4,
            vega_usd_per_vol_point=size * value.vega * 0.01,
            theta_usd_per_day=theta,
            market_value_usd=worth,
        )
    # VIX options: their "vega" for the book is the move with their future, one VIX point.
    return Risk(
        vix_vega_usd_per_point=size * value.delta, theta_usd_per_day=theta, market_value_usd=worth
    )


@dataclass(frozen=True, slots=True)
class LegRisk:
    leg: Leg
    value: LegValue
    risk: Risk


@dataclass(frozen=True, slots=True)
class StrategyRisk:
    name: str
    kind: StrategyKind
    risk: Risk
    model_priced_legs: int
    unvalued_legs: int


@dataclass(frozen=True, slots=True)
class FeedHealth:
    events: int = 0
    bad_lines: int = 0
    crossed_quotes: int = 0
    zero_bid_quotes: int = 0
    one_sided_quotes: int = 0


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """Everything the rules, metrics and sinks see of one moment."""

    time: datetime
    spx: float
    vix: float
    ad_nyse: float
    term: TermStructure
    legs: tuple[LegRisk, ...]
    strategies: tuple[StrategyRisk, ...]
    book: Risk
    feed: FeedHealth = field(default_factory=FeedHealth)

    @property
    def model_priced_legs(self) -> int:
        return sum(s.model_priced_legs for s in self.strategies)

    @property
    def unvalued_legs(self) -> int:
        return sum(s.unvalued_legs for s in self.strategies)


def aggregate(
    portfolio: Portfolio,
    values: list[LegValue],
    *,
    time: datetime,
    spx: float,
    vix: float,
    ad_nyse: float,
    term: TermStructure,
    feed: FeedHealth,
) -> BookSnapshot:
    """Sums leg risk into strategies and the book; ``values`` follows ``portfolio.legs``."""
    legs = tuple(
        LegRisk(leg, value, leg_risk(leg, value, spx))
        for leg, value in zip(portfolio.legs, values, strict=True)
    )
    strategies = []
    for strategy in portfolio.strategies:
        mine = [lr for lr in legs if lr.leg.strategy == strategy.name]
        total = Risk()
        for lr in mine:
            total = total + lr.risk
        strategies.append(
            StrategyRisk(
                strategy.name,
                strategy.kind,
                total,
                sum(1 for lr in mine if lr.value.model_priced),
                sum(1 for lr in mine if lr.value.reason is not None),
            )
        )
    book = Risk()
    for s in strategies:
        book = book + s.risk
    return BookSnapshot(time, spx, vix, ad_nyse, term, legs, tuple(strategies), book, feed)
