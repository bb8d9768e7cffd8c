"""Latest market per instrument. Newer events overwrite older ones (conflation), and every
quote is classified so that pricing takes a mid only from a valid, fresh two-sided market."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from monitor.domain.instruments import Instrument
from monitor.domain.quotes import EventBatch, FeedGreeks, IndexValue, Quote
from monitor.market.hygiene import TickFilter
from monitor.market.prints import SettlementPrints


class QuoteStatus(StrEnum):
    VALID = "valid"
    CROSSED = "crossed"  # bid above ask
    ZERO_BID = "zero_bid"  # no buyer: the mid would be half the ask, not a price
    ONE_SIDED = "one_sided"  # a side is missing


def classify(quote: Quote) -> QuoteStatus:
    if quote.bid is None or quote.ask is None:
        return QuoteStatus.ONE_SIDED
    if quote.bid > quote.ask:
        return QuoteStatus.CROSSED
    if quote.bid == 0.0:
        return QuoteStatus.ZERO_BID
    return QuoteStatus.VALID


@dataclass(frozen=True, slots=True)
class QuoteState:
    quote: Quote
    time: datetime
    status: QuoteStatus

    @property
    def mid(self) -> float | None:
        if self.status is not QuoteStatus.VALID:
            return None
        assert self.quote.bid is not None
        assert self.quote.ask is not None
        return 0.5 * (self.quote.bid + self.quote.ask)


@dataclass(slots=True)
class MarketState:
    """Mutable latest-value store, owned by the pipeline task alone."""

    instruments: dict[str, Instrument]
    max_quote_age: timedelta = timedelta(minutes=5)  # an older quote is stale
    quotes: dict[str, QuoteState] = field(default_factory=dict)
    last_valid_mid: dict[str, float] = field(default_factory=dict)
    index_values: dict[str, float] = field(default_factory=dict)
    index_times: dict[str, datetime] = field(default_factory=dict)
    rejected: Counter[QuoteStatus] = field(default_factory=Counter)
    feed_greeks: dict[str, FeedGreeks] = field(default_factory=dict)  # the feed's own model
    prints: SettlementPrints = field(default_factory=SettlementPrints)  # what legs settle at
    time: datetime | None = None
    # The time of the newest admitted event per instrument kind (index, future, option).
    kind_times: dict[str, datetime] = field(default_factory=dict)
    # Sanity bounds: a tick no market could print is counted there and never stored here.
    ticks: TickFilter = field(init=False)
    _kinds: dict[str, str] = field(init=False, default_factory=dict)  # id -> its kind

    def __post_init__(self) -> None:
        self.ticks = TickFilter(self.instruments)

    def apply(self, batch: EventBatch) -> None:
        kinds, kind_times = self._kinds, self.kind_times
        for event in batch.events:
            if not self.ticks.admit(event, batch.time):
                continue
            kind = kinds.get(event.instrument)
            if kind is None:
                inst = self.instruments.get(event.instrument)
                if inst is not None:  # an id's kind never changes: kept once known
                    kind = kinds[event.instrument] = inst.kind.value
            if kind is not None:
                kind_times[kind] = batch.time
            if isinstance(event, IndexValue):
                self.index_values[event.instrument] = event.value
                self.index_times[event.instrument] = batch.time
                self.prints.observe(event.instrument, batch.time, event.value)
            else:
                status = classify(event)
                state = QuoteState(event, batch.time, status)
                if status is QuoteStatus.VALID:
                    self.last_valid_mid[event.instrument] = state.mid or 0.0
                else:
                    self.rejected[status] += 1
                self.quotes[event.instrument] = state
                if event.feed_greeks is not None:
                    self.feed_greeks[event.instrument] = event.feed_greeks
        self.time = batch.time

    def mid(self, instrument: str) -> float | None:
        """The mid of a valid two-sided quote no older than ``max_quote_age``, else None."""
        state = self.quotes.get(instrument)
        if state is None or self.time is None or self.time - state.time > self.max_quote_age:
            return None
        return state.mid

    def mid_or_last(self, instrument: str) -> float | None:
        """The fresh mid, else the last valid mid ever seen (for a future under an option)."""
        mid = self.mid(instrument)
        return mid if mid is not None else self.last_valid_mid.get(instrument)

    def index(self, instrument: str) -> float | None:
        return self.index_values.get(instrument)

    def age_seconds(self, instrument: str, now: datetime) -> float:
        """Seconds since the instrument's last quote or value (inf: never seen)."""
        state = self.quotes.get(instrument)
        seen = state.time if state is not None else self.index_times.get(instrument)
        return (now - seen).total_seconds() if seen is not None else float("inf")
