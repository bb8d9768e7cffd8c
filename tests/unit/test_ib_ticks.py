"""IB's market data messages to the monitor's events, without a connection: the fields of
tickPrice, tickSize and tickOptionComputation as the gateway sends them (built by the
emulator's message builders, in the decoder order of server version 178) go through
ib_async's own Decoder and Wrapper into a Ticker, and ``ib_ticks.event_of`` reads it. The
sentinels are IB's: -1 for a missing price or an uncomputed implied vol or underlying, -2 for
an uncomputed delta, gamma, vega or theta (TWS API "Tick Types" and "Option Greeks")."""

from __future__ import annotations

import math

import ib_async
from ib_async.decoder import Decoder
from ibemu import messages
from ibemu.protocol import GREEK_SENTINEL, PRICE_SENTINEL, SERVER_VERSION, TickType, format_field

from monitor.domain.instruments import parse_instrument_id
from monitor.domain.quotes import IndexValue, Quote
from monitor.feeds.ib_ticks import event_of

PUT = parse_instrument_id("SPX 20260417 P6425")


def decoded(contract: ib_async.Contract, *wire: list[object]) -> ib_async.Ticker:
    """The ticker ib_async makes of ``wire`` (one message per field list) for request 7."""
    ib = ib_async.IB()
    ticker = ib.wrapper.startTicker(7, contract, "mktData")
    decoder = Decoder(ib.wrapper, SERVER_VERSION)
    for fields in wire:
        decoder.interpret([format_field(f) for f in fields])  # type: ignore[arg-type]
    return ticker


def test_a_quote_with_no_bid_and_uncomputed_greeks() -> None:
    """An option offered at 32.40 with no bid (IB's -1) and a model computation IB could not
    make (every field its sentinel): a one-sided quote, and no feed greek at all."""
    sentinels = (
        PRICE_SENTINEL,  # implied vol
        GREEK_SENTINEL,  # delta
        PRICE_SENTINEL,  # option price
        PRICE_SENTINEL,  # PV dividend
        GREEK_SENTINEL,  # gamma
        GREEK_SENTINEL,  # vega (ib_async passes -2 through)
        GREEK_SENTINEL,  # theta (ib_async passes -2 through)
        PRICE_SENTINEL,  # underlying price
    )
    ticker = decoded(
        ib_async.Option("SPX", "20260416", 6425.0, "P", "CBOE", conId=700007),
        messages.tick_price(7, TickType.BID, -1.0, 0.0),
        messages.tick_price(7, TickType.ASK, 32.4, 7.0),
        messages.tick_option_computation(7, TickType.MODEL_OPTION, sentinels),
    )
    assert ticker.modelGreeks is not None
    assert ticker.modelGreeks.vega == -2.0  # what reaches us from ib_async
    event = event_of(PUT, ticker)
    assert isinstance(event, Quote)
    assert event.bid is None
    assert (event.ask, event.ask_size) == (32.4, 7.0)
    greeks = event.feed_greeks
    assert greeks is not None
    assert (greeks.iv, greeks.delta, greeks.gamma, greeks.vega, greeks.theta) == (None,) * 5
    assert greeks.underlying is None


def test_a_two_sided_quote_with_greeks() -> None:
    computed = (0.1834, -0.2107, 31.95, 0.0, 0.00041, 7.82, -1.35, 6801.25)
    ticker = decoded(
        ib_async.Option("SPX", "20260416", 6425.0, "P", "CBOE", conId=700007),
        messages.tick_price(7, TickType.BID, 31.9, 12.0),
        messages.tick_price(7, TickType.ASK, 32.4, 7.0),
        messages.tick_size(7, TickType.BID_SIZE, 15.0),
        messages.tick_option_computation(7, TickType.MODEL_OPTION, computed),
    )
    event = event_of(PUT, ticker)
    assert isinstance(event, Quote)
    assert (event.bid, event.ask, event.bid_size, event.ask_size) == (31.9, 32.4, 15.0, 7.0)
    greeks = event.feed_greeks
    assert greeks is not None
    assert (greeks.iv, greeks.delta, greeks.gamma, greeks.vega, greeks.theta) == (
        0.1834,
        -0.2107,
        0.00041,
        7.82,
        -1.35,
    )
    assert greeks.underlying == 6801.25


def test_an_index_before_its_first_print_reads_its_close() -> None:
    """Before the open IB sends SPX's close (tick 9) and no last: the index value is the
    close; a last, when it comes, wins."""
    contract = ib_async.Index("SPX", "CBOE", conId=700001)
    spx = parse_instrument_id("SPX")
    before = decoded(contract, messages.tick_price(7, TickType.CLOSE, 6790.5, 0.0))
    event = event_of(spx, before)
    assert event == IndexValue("SPX", 6790.5)
    after = decoded(
        contract,
        messages.tick_price(7, TickType.CLOSE, 6790.5, 0.0),
        messages.tick_price(7, TickType.LAST, 6801.25, 0.0),
    )
    assert event_of(spx, after) == IndexValue("SPX", 6801.25)
    assert event_of(spx, decoded(contract)) is None  # nothing yet: no event, not a zero


def test_the_advance_decline_line_keeps_its_sign() -> None:
    """AD-NYSE prints negative values (more decliners); a price of -350 is a value there,
    where for any other instrument it would be IB's 'no price'."""
    contract = ib_async.Index("AD-NYSE", "NYSE", conId=700003)
    ticker = decoded(contract, messages.tick_price(7, TickType.LAST, -350.0, 0.0))
    event = event_of(parse_instrument_id("AD-NYSE"), ticker)
    assert isinstance(event, IndexValue)
    assert event.value == -350.0
    assert not math.isnan(event.value)
