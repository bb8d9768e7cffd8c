"""Latest market per instrument. Newer events overwrite older ones (conflation), and every
quote is classified so that pricing takes a mid only from a valid two-sided market."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from monitor.domain.instruments import Instrument
from monitor.domain.quotes import EventBatch, IndexValue, Quote


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
    quotes: dict[str, QuoteState] = field(default_factory=dict)
    index_values: dict[str, float] = field(default_factory=dict)
    index_times: dict[str, datetime] = field(default_factory=dict)
    rejected: Counter[QuoteStatus] = field(default_factory=Counter)
    time: datetime | None = None

    def apply(self, batch: EventBatch) -> None:
        for event in batch.events:
            if isinstance(event, IndexValue):
                self.index_values[event.instrument] = event.value
                self.index_times[event.instrument] = batch.time
            else:
                status = classify(event)
                if status is not QuoteStatus.VALID:
                    self.rejected[status] += 1
                self.quotes[event.instrument] = QuoteState(event, batch.time, status)
        self.time = batch.time

    def mid(self, instrument: str) -> float | None:
        state = self.quotes.get(instrument)
        return state.mid if state is not None else None

    def index(self, instrument: str) -> float | None:
        return self.index_values.get(instrument)
