"""Book aggregation: per-leg dollar risk in the units traders read, summed by strategy.

Units (README.md, "Units"):
  delta   $ per SPX point (SPX-point-equivalent exposure) and $ per 1 % SPX move
  gamma   change of the $-per-1 % delta for a +1 % SPX move
  vega    $ per 1 SPX implied-vol point; the VIX layer's vega is $ per 1 point of its future
  theta   $ per calendar day
  vanna   change of the $-per-1 % delta for +1 SPX vol point
  charm   change of the $-per-1 % delta over one calendar day, nothing else moving
  beta-weighted delta   $ per 1 % SPX move, VIX instruments included through the VIX move
                        that comes with it (``vix_points_per_spx_pct``, times each future's
                        term-structure response)
SPX-family greeks are taken against the expiry's forward; a forward moves one-for-one with
the index over a day, so they are read as SPX points.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from monitor.domain.instruments import Kind
from monitor.portfolio.model import Leg, Portfolio, StrategyKind
from monitor.portfolio.pnl import StrategyPnl, strategy_pnl
from monitor.pricing.valuation import LegValue
from monitor.signals.term_structure import vx_response


@dataclass(frozen=True, slots=True)
class Risk:
    """Dollar risk of a position or a sum of positions; adds with ``+``.

    Each field reaches the rule variables, metrics, /state and docs through one row of
    ``monitor.measures``; a test fails for a field without one.
    """

    delta_usd_per_spx_point: float = 0.0
    delta_usd_per_pct: float = 0.0
    gamma_usd_per_pct: float = 0.0
    vega_usd_per_vol_point: float = 0.0
    vix_vega_usd_per_point: float = 0.0
    theta_usd_per_day: float = 0.0
    market_value_usd: float = 0.0
    beta_delta_usd_per_pct: float = 0.0
    # P&L of a coordinated +1 SPX-vol-point shock: SPX options by their vega, VIX futures and
    # options by their exposure times the response of their future's tenor (the hedge ratio).
    vol_shock_usd_per_point: float = 0.0
    # Change of delta_usd_per_pct for +1 SPX vol point (vanna) and over one calendar day with
    # nothing else moving (charm); VIX instruments carry no SPX delta, so none of either.
    vanna_usd_per_pct_per_vol_point: float = 0.0
    charm_usd_per_pct_per_day: float = 0.0
    # Mark now minus the entry: quantity x multiplier x (price - entry price); NaN where an
    # entry price is not known (``portfolio.pnl``).
    pnl_usd: float = 0.0

    def __add__(self, other: Risk) -> Risk:
        return Risk(*map(operator.add, _values(self), _values(other)))

    @classmethod
    def unknown(cls) -> Risk:
        """Every field NaN: nothing is valued."""
        return cls(*(math.nan for _ in _FIELDS))


_FIELDS = tuple(f.name for f in dataclasses.fields(Risk))
_values: Callable[[Risk], tuple[float, ...]] = operator.attrgetter(*_FIELDS)


def _summer() -> Callable[[Iterable[Risk]], Risk]:
    """``total``, written out for the fields of Risk as namedtuple and dataclasses write
    their methods: it runs for every strategy, group and the book of every snapshot, where a
    loop over the fields cost five times the additions. The text comes only from Risk's own
    field names."""
    names = [f"s{i}" for i in range(len(_FIELDS))]
    lines = [
        "def total(risks):",
        f"    {', '.join(names)} = {', '.join('0.0' for _ in names)}",
        "    for r in risks:",
        *(f"        {n} += r.{field}" for n, field in zip(names, _FIELDS, strict=True)),
        f"    return Risk({', '.join(names)})",
    ]
    scope: dict[str, Any] = {"Risk": Risk}
    exec("\n".join(lines), scope)  # noqa: S102 - generated from Risk's field names only
    summer: Callable[[Iterable[Risk]], Risk] = scope["total"]
    return summer


_total = _summer()


def total(risks: Iterable[Risk]) -> Risk:
    """The sum of ``risks``, field by field, left to right (as repeated ``+`` adds them)."""
    return _total(risks)


def leg_risk(
    leg: Leg,
    value: LegValue,
    spx: float,
    *,
    vix_points_per_spx_pct: float,
    vx_response_half_life_days: float,
) -> Risk:
    """Position risk of ``leg``: quantity x multiplier x the raw Black-76 greeks, in dollars.

    VIX instruments enter the beta-weighted delta through the VIX move of a +1 % SPX move
    ([pricing] ``vix_points_per_spx_pct``) times their future's response to it ([scenarios]
    ``vx_response_half_life_days``)."""
    size = leg.quantity * leg.instrument.multiplier
    inst = leg.instrument
    pnl = size * (value.price - leg.entry_price)
    if value.settling:  # its value is struck: P&L and worth kept, no risk left
        return Risk(market_value_usd=size * value.price, pnl_usd=pnl)
    if inst.underlying == "SPX":
        delta_pct = size * value.delta * spx * 0.01
        # vanna per unit of sigma and charm per year, scaled as delta is to $ per 1 % SPX,
        # then to one vol point (0.01) and one calendar day (1/365).
        per_pct = size * spx * 0.01
        return Risk(
            delta_usd_per_spx_point=size * value.delta,
            delta_usd_per_pct=delta_pct,
            gamma_usd_per_pct=size * value.gamma * spx * spx * 1e-4,
            vega_usd_per_vol_point=size * value.vega * 0.01,
            theta_usd_per_day=size * value.theta / 365.0,
            market_value_usd=size * value.price,
            beta_delta_usd_per_pct=delta_pct,
            vol_shock_usd_per_point=size * value.vega * 0.01,
            vanna_usd_per_pct_per_vol_point=per_pct * value.vanna * 0.01,
            charm_usd_per_pct_per_day=per_pct * value.charm / 365.0,
            pnl_usd=pnl,
        )
    # VIX futures and options: their "vega" for the book is the move with their future, in
    # dollars per VIX-future point; a VIX option's is its delta to that future.
    vix_vega = size if inst.kind is Kind.FUTURE else size * value.delta
    response = vx_response(value.years * 365.0, vx_response_half_life_days)
    return Risk(
        vix_vega_usd_per_point=vix_vega,
        theta_usd_per_day=0.0 if inst.kind is Kind.FUTURE else size * value.theta / 365.0,
        market_value_usd=size * value.price,
        beta_delta_usd_per_pct=vix_vega * response * vix_points_per_spx_pct,
        vol_shock_usd_per_point=vix_vega * response,
        pnl_usd=pnl,
    )


@dataclass(frozen=True, slots=True)
class LegRisk:
    leg: Leg
    value: LegValue
    risk: Risk
    data_delayed: bool = False  # its quotes come delayed from the feed (IB's delayed data)


@dataclass(frozen=True, slots=True)
class StrategyRisk:
    name: str
    kind: StrategyKind
    risk: Risk
    model_priced_legs: int
    unvalued_legs: int
    pnl: StrategyPnl = field(default_factory=StrategyPnl)  # against the entry (portfolio.pnl)


@dataclass(frozen=True, slots=True)
class GroupRisk:
    """Risk summed over a group of legs: an expiry ('SPX 2026-04-17') or an underlying."""

    name: str
    risk: Risk


@dataclass(frozen=True, slots=True)
class Book:
    """The valued book at one moment: each leg's value and dollar risk, summed by strategy,
    by expiry, by underlying and in total."""

    legs: tuple[LegRisk, ...]
    strategies: tuple[StrategyRisk, ...]
    total: Risk
    by_expiry: tuple[GroupRisk, ...] = ()
    by_underlying: tuple[GroupRisk, ...] = ()
    account_size_usd: float = math.nan  # from the portfolio file; NaN when not given

    @classmethod
    def unknown(cls, account_size_usd: float = math.nan) -> Book:
        """A book that knows nothing (no leg valued yet): every total NaN."""
        return cls((), (), Risk.unknown(), (), (), account_size_usd)

    def pct_of_account(self, dollars: float) -> float:
        return 100.0 * dollars / self.account_size_usd

    @property
    def model_priced_legs(self) -> int:
        return sum(s.model_priced_legs for s in self.strategies)

    @property
    def unvalued_legs(self) -> int:
        return sum(s.unvalued_legs for s in self.strategies)


def aggregate(
    portfolio: Portfolio,
    values: list[LegValue],
    spx: float,
    *,
    vix_points_per_spx_pct: float,
    vx_response_half_life_days: float,
) -> Book:
    """Sums leg risk into strategies, expiries, underlyings and the book.

    ``values`` follows ``portfolio.legs``; the VIX beta as in ``leg_risk``.
    """
    legs = tuple(
        LegRisk(
            leg,
            value,
            leg_risk(
                leg,
                value,
                spx,
                vix_points_per_spx_pct=vix_points_per_spx_pct,
                vx_response_half_life_days=vx_response_half_life_days,
            ),
        )
        for leg, value in zip(portfolio.legs, values, strict=True)
    )
    strategies = []
    for strategy in portfolio.strategies:
        mine = [lr for lr in legs if lr.leg.strategy == strategy.name]
        risk = total(lr.risk for lr in mine)
        strategies.append(
            StrategyRisk(
                strategy.name,
                strategy.kind,
                risk,
                sum(1 for lr in mine if lr.value.model_priced),
                sum(1 for lr in mine if lr.value.reason is not None),
                strategy_pnl(strategy.kind, strategy.legs, risk.pnl_usd),
            )
        )
    return Book(
        legs,
        tuple(strategies),
        total(s.risk for s in strategies),
        by_expiry=_grouped(legs, _expiry_key),
        by_underlying=_grouped(legs, _underlying_key),
        account_size_usd=portfolio.account_size_usd or math.nan,
    )


def _expiry_key(leg: LegRisk) -> str:
    inst = leg.leg.instrument
    family = "SPX" if inst.underlying == "SPX" else "VIX"
    return f"{family} {inst.expiry.isoformat() if inst.expiry else '-'}"


def _underlying_key(leg: LegRisk) -> str:
    return "SPX" if leg.leg.instrument.underlying == "SPX" else "VIX"


def _grouped(legs: tuple[LegRisk, ...], key: Callable[[LegRisk], str]) -> tuple[GroupRisk, ...]:
    names = sorted({key(lr) for lr in legs})
    return tuple(GroupRisk(n, total(lr.risk for lr in legs if key(lr) == n)) for n in names)
