"""How far an option leg's strike is from the market, the way a condor trader reads it.

For an SPX-family option, against SPX spot S and its expiry's forward F, with the leg's own
vol sigma (the one it is valued at) and T years to settlement, each signed so that a strike
out of the money is positive (a put below spot, a call above it):

  distance, points     put: S - K, call: K - S
  distance, %          100 x points / S
  standard deviations  put: ln(F / K) / (sigma sqrt(T)), call: ln(K / F) / (sigma sqrt(T)),
                       the strike's distance in the lognormal move to expiry
  expected move        the ATM straddle of its expiry, index points (``LegValue.expected_move``)
  inside it            distance < expected move (a strike in the money is inside)
  in the money         distance < 0: spot past the strike (put: S < K, call: S > K)

NaN (and not inside) where a number is not known: a future, a VIX option (no spot here),
no vol, an expired leg, no quoted straddle.
"""

from __future__ import annotations

import math

from monitor.domain.instruments import Right
from monitor.portfolio.book import LegRisk


def _side(leg: LegRisk) -> float:
    inst = leg.leg.instrument
    if inst.strike is None or inst.underlying != "SPX":
        return math.nan
    return 1.0 if inst.right is Right.CALL else -1.0


def distance_points(leg: LegRisk) -> float:
    side, strike = _side(leg), leg.leg.instrument.strike or math.nan
    return side * (strike - leg.value.spot)


def distance_pct(leg: LegRisk) -> float:
    return 100.0 * distance_points(leg) / leg.value.spot


def distance_std_devs(leg: LegRisk) -> float:
    value = leg.value
    side, strike = _side(leg), leg.leg.instrument.strike or math.nan
    spread = value.iv * math.sqrt(value.years) if value.years > 0.0 else math.nan
    if not (spread > 0.0 and value.underlying_price > 0.0 and strike > 0.0):
        return math.nan
    return side * math.log(strike / value.underlying_price) / spread


def inside_expected_move(leg: LegRisk) -> bool:
    return distance_points(leg) < leg.value.expected_move


def in_the_money(leg: LegRisk) -> bool:
    """Spot is past the strike; false while the distance is unknown."""
    return distance_points(leg) < 0.0
