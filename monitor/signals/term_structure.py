"""VIX futures term structure: the front monthly futures, spreads, a 30-day constant-maturity
blend and roll yield.

Definitions (docs/rules.md):
- contango: VX2 above VX1; backwardation (``inverted``): VX1 above VX2.
- 30-day constant maturity: VX1 and VX2 blended linearly in days to settlement so the
  blend's tenor is 30 days, w1 = (d2 - 30) / (d2 - d1), clamped to [0, 1].
- roll yield, VIX points per calendar day: VX1's is (VX1 - VIX) / d1, the daily drift
  toward spot an unchanged curve implies; VX2's is (VX2 - VX1) / (d2 - d1). Positive in
  contango: what a long future loses per day if the curve holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.calendars import vix_future_expiry
from monitor.domain.instruments import Instrument, Kind
from monitor.market.state import MarketState
from monitor.pricing.expiry import settlement


@dataclass(frozen=True, slots=True)
class TermStructure:
    """Prices in VIX points; NaN where the future has had no valid two-sided quote yet."""

    vix: float
    vx1: float
    vx2: float
    vx1_id: str | None
    vx2_id: str | None
    vx1_days: float  # calendar days to VX1 settlement
    vx2_days: float = math.nan
    vx3: float = math.nan
    vx4: float = math.nan
    # The whole monthly curve VX1..VX4 as (id, calendar days, price), for per-future roll.
    curve: tuple[tuple[str, float, float], ...] = ()

    @classmethod
    def unknown(cls) -> TermStructure:
        """No futures priced: every point NaN."""
        return cls(math.nan, math.nan, math.nan, None, None, math.nan)

    @property
    def contango(self) -> bool:
        return self.vx2 > self.vx1

    @property
    def constant_maturity_30d(self) -> float:
        d1, d2 = self.vx1_days, self.vx2_days
        if not d2 > d1:
            return math.nan
        w1 = min(max((d2 - 30.0) / (d2 - d1), 0.0), 1.0)
        return w1 * self.vx1 + (1.0 - w1) * self.vx2

    @property
    def vx1_roll_points_per_day(self) -> float:
        return (self.vx1 - self.vix) / self.vx1_days if self.vx1_days > 0 else math.nan

    @property
    def vx2_roll_points_per_day(self) -> float:
        gap = self.vx2_days - self.vx1_days
        return (self.vx2 - self.vx1) / gap if gap > 0 else math.nan

    def roll_points_per_day(self, future: str) -> float:
        """Roll of one monthly future, VIX points per day: its price minus the next-shorter
        point of the curve (spot VIX before VX1), over the days between them; NaN for a
        future that is not on the curve."""
        previous = (0.0, self.vix)
        for ident, days, price in self.curve:
            if ident == future:
                gap = days - previous[0]
                return (price - previous[1]) / gap if gap > 0 else math.nan
            previous = (days, price)
        return math.nan

    @property
    def vx1_minus_vx2(self) -> float:
        return self.vx1 - self.vx2

    @property
    def vx1_vx2_ratio(self) -> float:
        return self.vx1 / self.vx2 if self.vx2 > 0 else math.nan

    @property
    def vix_minus_vx1(self) -> float:
        return self.vix - self.vx1

    @property
    def inverted(self) -> bool:
        """Backwardation: the front future above the second (NaN compares false)."""
        return self.vx1 > self.vx2


def is_monthly(inst: Instrument) -> bool:
    """A monthly VIX future: it settles on its month's CFE monthly date (not a weekly)."""
    expiry = inst.expiry
    return expiry is not None and expiry == vix_future_expiry(expiry.year, expiry.month)


class TermStructureTracker:
    """Picks VX1..VX4 among the declared monthly futures (weeklies too when ``weeklies``),
    priced at their last valid mids."""

    def __init__(self, universe: dict[str, Instrument], *, weeklies: bool = False) -> None:
        self.futures = sorted(
            (
                i
                for i in universe.values()
                if i.kind is Kind.FUTURE and i.root == "VX" and (weeklies or is_monthly(i))
            ),
            key=settlement,
        )

    @staticmethod
    def _price(inst: Instrument | None, market: MarketState) -> float:
        mid = market.mid_or_last(inst.id) if inst is not None else None
        return mid if mid is not None else math.nan

    def update(self, market: MarketState, now: datetime) -> TermStructure:
        live = [f for f in self.futures if settlement(f) > now]
        curve = [*live[:4], *([None] * (4 - len(live[:4])))]
        vx1, vx2 = curve[0], curve[1]

        def days(inst: Instrument | None) -> float:
            if inst is None:
                return math.nan
            return (settlement(inst) - now.astimezone(UTC)).total_seconds() / 86_400.0

        vix = market.index("VIX")
        points = tuple(
            (inst.id, days(inst), self._price(inst, market)) for inst in curve if inst is not None
        )
        return TermStructure(
            vix if vix is not None else math.nan,
            self._price(vx1, market),
            self._price(vx2, market),
            vx1.id if vx1 else None,
            vx2.id if vx2 else None,
            days(vx1),
            days(vx2),
            self._price(curve[2], market),
            self._price(curve[3], market),
            points,
        )


def vx_response(days: float, half_life_days: float) -> float:
    """Points a VIX future moves per point of a spot-VIX (30-day SPX vol) shock.

    Longer-dated futures respond less: the response halves every ``half_life_days`` of
    tenor (1 for an expiring future); ``half_life_days`` is [scenarios]
    vx_response_half_life_days. With its default of 60 days: VX1 at 15 days 0.84, VX2 at
    43 days 0.61, VX4 at 106 days 0.29.
    """
    return float(0.5 ** (max(days, 0.0) / half_life_days))
