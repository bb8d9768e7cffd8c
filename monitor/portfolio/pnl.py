"""A strategy's own mark-to-market P&L against what it was opened for, from our marks.

IB's portfolio values lag the market by minutes; these are computed from the monitor's own
marks (each leg's model price: the fitted smile's, or its mid's vol) and each leg's entry
price (the portfolio file's ``entry_price``, else IB's average cost over the multiplier).

  credit          premium received for the strategy's options when it was opened, $:
                  -sum(quantity x multiplier x entry price) over its option legs; negative
                  for a debit paid (a layer's call spreads), 0 for futures only
  P&L             mark now minus the entry, $: sum(quantity x multiplier x (mark - entry));
                  a leg's is its ``Risk.pnl_usd``
  iron condor     size = contracts per leg, width = the wider wing (SPX points), credit per
                  unit = credit / (size x multiplier):
    max loss      (width - credit per unit) x multiplier x size, $ (at expiry, past a wing)
    break-evens   short put - credit per unit and short call + credit per unit, SPX points
    P&L %         of the credit and of the max loss: 100 x P&L / credit, 100 x P&L / max
                  loss (negative while losing)

Every figure is NaN while a leg of the strategy has no entry price or no mark, and the
percentages and break-evens are NaN for strategies other than iron condors (their credit
and P&L are still given) and where the credit or max loss is not positive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.domain.instruments import Right
from monitor.portfolio.model import Leg, StrategyKind


@dataclass(frozen=True, slots=True)
class StrategyPnl:
    credit_usd: float = math.nan
    pnl_usd: float = math.nan
    max_loss_usd: float = math.nan
    pnl_pct_of_credit: float = math.nan
    pnl_pct_of_max_loss: float = math.nan
    break_even_low: float = math.nan  # SPX points
    break_even_high: float = math.nan  # SPX points


def strategy_pnl(kind: StrategyKind, legs: Sequence[Leg], pnl_usd: float) -> StrategyPnl:
    """The P&L figures of a strategy of ``legs`` whose summed leg P&L is ``pnl_usd``."""
    if not legs or not all(math.isfinite(leg.entry_price) for leg in legs):
        return StrategyPnl()
    credit = -sum(
        leg.quantity * leg.instrument.multiplier * leg.entry_price
        for leg in legs
        if leg.instrument.is_option
    )
    if kind is not StrategyKind.IRON_CONDOR:
        return StrategyPnl(credit, pnl_usd)
    puts = sorted(
        (leg.instrument.strike or 0.0) for leg in legs if leg.instrument.right is Right.PUT
    )
    calls = sorted(
        (leg.instrument.strike or 0.0) for leg in legs if leg.instrument.right is Right.CALL
    )
    (long_put, short_put), (short_call, long_call) = puts, calls
    size = abs(legs[0].quantity)
    multiplier = legs[0].instrument.multiplier
    per_unit = credit / (size * multiplier)
    width = max(short_put - long_put, long_call - short_call)
    max_loss = (width - per_unit) * multiplier * size
    return StrategyPnl(
        credit_usd=credit,
        pnl_usd=pnl_usd,
        max_loss_usd=max_loss,
        pnl_pct_of_credit=100.0 * pnl_usd / credit if credit > 0.0 else math.nan,
        pnl_pct_of_max_loss=100.0 * pnl_usd / max_loss if max_loss > 0.0 else math.nan,
        break_even_low=short_put - per_unit,
        break_even_high=short_call + per_unit,
    )
