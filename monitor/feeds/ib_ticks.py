"""IB's market data as the monitor's events: pure functions over what ib_async decodes (a
ticker's prices and sizes, an option computation), with no connection.

IB marks what it has not got: -1 for a missing price (no bid), NaN sizes, and in an option
computation -1 (implied vol, underlying price) or -2 (delta, gamma, vega, theta) for "not
computed". ib_async turns most of them into None but passes vega and theta through, so every
field is checked here and a sentinel never reaches the numbers.
"""

from __future__ import annotations

import math
from typing import Protocol

from monitor.domain.instruments import Instrument, Kind
from monitor.domain.quotes import Event, FeedGreeks, IndexValue, Quote


class OptionComputation(Protocol):
    """The fields of ib_async's ``OptionComputation`` read here."""

    @property
    def impliedVol(self) -> float | None: ...  # noqa: N802 - ib_async's name
    @property
    def delta(self) -> float | None: ...
    @property
    def gamma(self) -> float | None: ...
    @property
    def vega(self) -> float | None: ...
    @property
    def theta(self) -> float | None: ...
    @property
    def undPrice(self) -> float | None: ...  # noqa: N802 - ib_async's name


class Ticker(Protocol):
    """The fields of ib_async's ``Ticker`` read here."""

    @property
    def bid(self) -> float: ...
    @property
    def ask(self) -> float: ...
    @property
    def bidSize(self) -> float: ...  # noqa: N802 - ib_async's name
    @property
    def askSize(self) -> float: ...  # noqa: N802 - ib_async's name
    @property
    def last(self) -> float: ...
    @property
    def close(self) -> float: ...
    @property
    def modelGreeks(self) -> OptionComputation | None: ...  # noqa: N802 - ib_async's name


def clean(
    value: float | None, sentinel: float, *, positive: bool = False, delta: bool = False
) -> float | None:
    """None for a missing value and for IB's "not computed" marker of the field."""
    if value is None or not math.isfinite(value) or value == sentinel:
        return None
    if positive and value <= 0.0:
        return None
    if delta and not -1.0 <= value <= 1.0:
        return None
    return float(value)


def feed_greeks(computation: OptionComputation | None) -> FeedGreeks | None:
    """IB's model greeks of an option, each None where IB did not compute it (a negative
    gamma or vega cannot be a long option's, so it is taken as not computed too)."""
    if computation is None:
        return None
    gamma = clean(computation.gamma, -2.0)
    vega = clean(computation.vega, -2.0)
    return FeedGreeks(
        iv=clean(computation.impliedVol, -1.0, positive=True),
        delta=clean(computation.delta, -2.0, delta=True),
        gamma=gamma if gamma is None or gamma >= 0.0 else None,
        vega=vega if vega is None or vega >= 0.0 else None,
        theta=clean(computation.theta, -2.0),
        underlying=clean(computation.undPrice, -1.0, positive=True),
    )


def price(value: float | None, *, allow_negative: bool = False) -> float | None:
    """A price, or None for IB's -1 (none) and NaN; negative values only where an
    instrument can print them (the NYSE advance-decline line)."""
    if value is None or not math.isfinite(value):
        return None
    if value < 0.0 and not allow_negative:
        return None
    return float(value)


def size(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) and value >= 0 else None


def event_of(inst: Instrument, ticker: Ticker) -> Event | None:
    """The ticker of ``inst`` as an event: an index's last value (its close before the first
    print of the day), or a quote with both sides, sizes, last and, for an option, IB's
    greeks. None for an index with no value yet."""
    if inst.kind is Kind.INDEX:
        value = price(ticker.last, allow_negative=inst.allows_negative)
        if value is None:
            value = price(ticker.close, allow_negative=inst.allows_negative)
        return IndexValue(inst.id, value) if value is not None else None
    return Quote(
        inst.id,
        bid=price(ticker.bid),
        ask=price(ticker.ask),
        bid_size=size(ticker.bidSize),
        ask_size=size(ticker.askSize),
        last=price(ticker.last),
        feed_greeks=feed_greeks(ticker.modelGreeks) if inst.is_option else None,
    )
