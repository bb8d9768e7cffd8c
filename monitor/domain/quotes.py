"""Market events: two-sided quotes for tradables and values for indexes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# How far behind a broker's delayed quotes are by default: IB delays US index options, indexes
# and futures 10-15 minutes (by exchange); the larger figure errs towards older.
DELAYED_DATA_MINUTES = 15.0


@dataclass(frozen=True, slots=True)
class FeedGreeks:
    """The feed's own model numbers for an option, kept next to ours for comparison."""

    iv: float | None = None
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    underlying: float | None = None


@dataclass(frozen=True, slots=True)
class Quote:
    """A quote for a future or an option; a side that is missing is None."""

    instrument: str
    bid: float | None
    ask: float | None
    bid_size: float | None = None
    ask_size: float | None = None
    last: float | None = None
    feed_greeks: FeedGreeks | None = None


@dataclass(frozen=True, slots=True)
class IndexValue:
    """A published index value (SPX, VIX, NYSE net advances)."""

    instrument: str
    value: float


Event = Quote | IndexValue


@dataclass(frozen=True, slots=True)
class EventBatch:
    """The events that share one timestamp: they are applied together, then priced once."""

    time: datetime
    events: tuple[Event, ...]
