"""The index prints the book's legs settle against, caught as the feed delivers them.

An SPX or VIX derivative settles against one print of its index at its settlement moment
(``pricing.expiry.settlement``):

  PM (SPXW)        the index close: the last SPX value at or before the moment (16:00 ET,
                   13:00 on an early close)
  AM (SPX, VIX,    the opening quotation: the first index value at or after the moment
  VX)              (09:30 ET)

each within ``PRINT_WINDOW`` of the moment (a value from long before the close, or long
after the open, is not that print).

The exchange's official settlement values (SPX's special opening quotation, computed from
each component's opening trade; VIX's VRO, from SPX options' opening prices) are published
later and differ from these prints by a few points at most on a normal morning. Until a
feed carries them, the first index print after the open is the estimate, and a leg marked
against it says so (``LegValue.settling``).

A print not seen (the feed started after the moment, or had no value in the window) stays
unknown: a leg is then left unvalued with the reason, never marked at a later price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from monitor.domain.instruments import Instrument, Kind, Settlement
from monitor.pricing.expiry import ExpiryError, settlement

PRINT_WINDOW = timedelta(minutes=5)


class Side(StrEnum):
    CLOSE = "close"  # the last value at or before the moment
    OPEN = "open"  # the first value at or after the moment


@dataclass(frozen=True, slots=True)
class PrintKey:
    index: str  # "SPX" or "VIX"
    moment: datetime  # UTC
    side: Side


def settlement_key(inst: Instrument) -> PrintKey | None:
    """Which print ``inst`` settles against; None for what does not expire or has no index
    (an expiry on a holiday is refused by the portfolio, so it is not guessed at here)."""
    if inst.expiry is None or inst.kind not in (Kind.OPTION, Kind.FUTURE):
        return None
    try:
        moment = settlement(inst)
    except ExpiryError:
        return None
    index = "SPX" if inst.underlying == "SPX" else "VIX"
    side = Side.CLOSE if inst.settlement is Settlement.PM else Side.OPEN
    return PrintKey(index, moment, side)


@dataclass(slots=True)
class SettlementPrints:
    """The prints of the watched settlement moments, caught from the index values applied."""

    seen: dict[PrintKey, float] = field(default_factory=dict)
    _watched: dict[str, list[PrintKey]] = field(default_factory=dict)  # index -> keys

    def watch(self, instruments: list[Instrument]) -> None:
        """Catch the prints ``instruments`` settle against, from the next index value on."""
        for inst in instruments:
            key = settlement_key(inst)
            if key is not None and key not in self._watched.get(key.index, []):
                self._watched.setdefault(key.index, []).append(key)

    def observe(self, index: str, at: datetime, value: float) -> None:
        for key in self._watched.get(index, ()):
            if key.side is Side.OPEN:
                if key not in self.seen and key.moment <= at <= key.moment + PRINT_WINDOW:
                    self.seen[key] = value
            elif key.moment - PRINT_WINDOW <= at <= key.moment:
                self.seen[key] = value

    def print_of(self, inst: Instrument) -> float | None:
        """The print ``inst`` settled against, once its moment has passed; None before it
        or when it was not seen."""
        key = settlement_key(inst)
        return self.seen.get(key) if key is not None else None
