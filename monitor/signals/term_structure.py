"""VIX futures term structure: the two front monthly futures, their spread and ratio."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

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


class TermStructureTracker:
    """Picks VX1/VX2 among the declared monthly futures and keeps their last valid mids."""

    def __init__(self, universe: dict[str, Instrument]) -> None:
        self.futures = sorted(
            (i for i in universe.values() if i.kind is Kind.FUTURE and i.root == "VX"),
            key=settlement,
        )
        self.last_mid: dict[str, float] = {}

    def _price(self, inst: Instrument | None, market: MarketState) -> float:
        if inst is None:
            return math.nan
        mid = market.mid(inst.id)
        if mid is not None:
            self.last_mid[inst.id] = mid
            return mid
        return self.last_mid.get(inst.id, math.nan)

    def update(self, market: MarketState, now: datetime) -> TermStructure:
        live = [f for f in self.futures if settlement(f) > now]
        vx1 = live[0] if live else None
        vx2 = live[1] if len(live) > 1 else None
        days = (
            (settlement(vx1) - now.astimezone(UTC)).total_seconds() / 86_400.0 if vx1 else math.nan
        )
        vix = market.index("VIX")
        return TermStructure(
            vix if vix is not None else math.nan,
            self._price(vx1, market),
            self._price(vx2, market),
            vx1.id if vx1 else None,
            vx2.id if vx2 else None,
            days,
        )
