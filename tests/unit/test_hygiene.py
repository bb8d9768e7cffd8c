"""Sanity bounds on ticks: what no market can print is counted, logged once, never used."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
from structlog.testing import capture_logs

from monitor.domain.instruments import NEW_YORK, parse_instrument_id
from monitor.domain.quotes import Event, EventBatch, IndexValue, Quote
from monitor.market.hygiene import BOUNDS, JUMP_CONFIRMATIONS, TickFilter
from monitor.market.state import MarketState

IDS = ("SPX", "VIX", "AD-NYSE", "VX 20260415", "SPX 20260417 P6425", "VIX 20260318 C22")
UNIVERSE = {i: parse_instrument_id(i) for i in IDS}
START = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)


def apply(market: MarketState, *events: Event, second: int = 0) -> None:
    market.apply(EventBatch(START + timedelta(seconds=second), tuple(events)))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0.0, "below_floor"),
        (-1.0, "negative"),
        (math.nan, "not_finite"),
        (math.inf, "not_finite"),
        (1e300, "above_cap"),
        (42.0, "below_floor"),  # an SPX of 42 points is no SPX
    ],
)
def test_an_impossible_spx_value_is_rejected_and_the_last_good_one_kept(
    value: float, reason: str
) -> None:
    market = MarketState(dict(UNIVERSE))
    apply(market, IndexValue("SPX", 6600.0))
    apply(market, IndexValue("SPX", value), second=1)
    assert market.index("SPX") == 6600.0
    assert market.index_times["SPX"] == START  # the bad tick did not refresh it
    assert market.ticks.rejected == {reason: 1}


@pytest.mark.parametrize(
    ("quote", "reason"),
    [
        (Quote("SPX 20260417 P6425", 1e-300, 20.0), "below_floor"),
        (Quote("SPX 20260417 P6425", 19.0, 1e300), "above_cap"),
        (Quote("SPX 20260417 P6425", 7000.0, 7001.0), "above_strike"),  # a put above 6425
        (Quote("SPX 20260417 P6425", -0.05, 20.0), "negative"),
        (Quote("SPX 20260417 P6425", 19.0, math.nan), "not_finite"),
        (Quote("SPX 20260417 P6425", 19.0, 20.0, last=math.inf), "not_finite"),
        (Quote("VIX 20260318 C22", 0.5, 300.0), "above_cap"),
        (Quote("VX 20260415", 0.01, 20.0), "below_floor"),
    ],
)
def test_an_impossible_quote_is_rejected_whole(quote: Quote, reason: str) -> None:
    market = MarketState(dict(UNIVERSE))
    good = Quote(quote.instrument, 1.0 if quote.instrument != "VX 20260415" else 20.0, 21.0)
    apply(market, good)
    apply(market, quote, second=1)
    assert market.quotes[quote.instrument].quote == good
    assert market.ticks.rejected == {reason: 1}


def test_a_zero_bid_and_a_one_sided_quote_are_not_ticks_to_reject() -> None:
    """No buyer, or no side: real markets print these; the state classifies them."""
    market = MarketState(dict(UNIVERSE))
    apply(market, Quote("SPX 20260417 P6425", 0.0, 0.05), Quote("VIX 20260318 C22", None, 0.1))
    assert market.ticks.rejected == {}
    assert set(market.quotes) == {"SPX 20260417 P6425", "VIX 20260318 C22"}


def test_net_advances_may_be_negative_but_not_beyond_the_exchange() -> None:
    market = MarketState(dict(UNIVERSE))
    apply(market, IndexValue("AD-NYSE", -2400.0))
    apply(market, IndexValue("AD-NYSE", 0.0), second=1)
    apply(market, IndexValue("AD-NYSE", -1e9), second=2)
    assert market.index("AD-NYSE") == 0.0
    assert market.ticks.rejected == {"above_cap": 1}


def test_a_lone_jump_is_rejected_and_a_lasting_one_is_taken_from_its_confirmation() -> None:
    market = MarketState(dict(UNIVERSE))
    apply(market, IndexValue("VIX", 18.0))
    apply(market, IndexValue("VIX", 180.0), second=1)  # ten times: a bad print
    apply(market, IndexValue("VIX", 18.2), second=2)
    assert market.index("VIX") == 18.2
    assert market.ticks.rejected == {"jump": 1}
    # SPX a third lower at once (a feed that restarted on another day, a bad scale...):
    apply(market, IndexValue("SPX", 6600.0), second=3)
    for n in range(JUMP_CONFIRMATIONS):
        apply(market, IndexValue("SPX", 4000.0 + n), second=4 + n)
        expected = 6600.0 if n < JUMP_CONFIRMATIONS - 1 else 4000.0 + n
        assert market.index("SPX") == expected
    assert market.ticks.rejected == {"jump": JUMP_CONFIRMATIONS}


def test_a_bad_print_within_the_absolute_bounds_is_judged_by_the_time_since_the_last() -> None:
    """SPX a quarter lower five seconds after 6,817 is no market; a fast real fall, tick by
    tick, is; so is -20 % after a 15-minute halt."""
    market = MarketState(dict(UNIVERSE))
    apply(market, IndexValue("SPX", 6817.0))
    apply(market, IndexValue("SPX", 5200.0), second=5)
    assert market.index("SPX") == 6817.0
    assert market.ticks.rejected == {"jump": 1}
    level = 6817.0
    for second in range(10, 40):  # -1 % a second for half a minute: a crash, accepted
        level *= 0.99
        apply(market, IndexValue("SPX", level), second=second)
        assert market.index("SPX") == pytest.approx(level)
    apply(market, IndexValue("SPX", level * 0.8), second=40 + 15 * 60)
    assert market.index("SPX") == pytest.approx(level * 0.8)
    assert market.ticks.rejected == {"jump": 1}


def test_a_walk_of_accepted_steps_cannot_carry_spx_anywhere() -> None:
    market = MarketState(dict(UNIVERSE))
    apply(market, IndexValue("SPX", 6800.0))
    for n, value in enumerate((9000.0, 11900.0, 15800.0), start=1):
        apply(market, IndexValue("SPX", value), second=n)
    assert market.index("SPX") == 6800.0


@pytest.mark.parametrize(
    ("quote", "reason"),
    [
        (Quote("VX 20260415", 10.0, 150.0), "wide_spread"),  # a mid of 80 from no market
        (Quote("VX 20260415", 5.0, 5.5), "jump"),  # a third of the last, five seconds on
        (Quote("VX 20260415", 80.0, 82.0), "jump"),
    ],
)
def test_a_future_quote_must_be_a_market_near_the_last(quote: Quote, reason: str) -> None:
    market = MarketState(dict(UNIVERSE))
    apply(market, Quote("VX 20260415", 16.85, 16.95))
    apply(market, quote, second=5)
    assert market.mid("VX 20260415") == pytest.approx(16.9)
    assert market.ticks.rejected == {reason: 1}
    apply(market, Quote("VX 20260415", 17.4, 17.6), second=10)  # a real move, taken
    assert market.mid("VX 20260415") == pytest.approx(17.5)


def test_each_instrument_and_reason_is_logged_once_and_counted_always() -> None:
    market = MarketState(dict(UNIVERSE))
    with capture_logs() as logs:
        for second in range(5):
            apply(market, IndexValue("SPX", 0.0), IndexValue("VIX", 0.0), second=second)
        apply(market, IndexValue("SPX", math.nan), second=6)
    rejected = [(e["instrument"], e["reason"]) for e in logs if e["event"] == "tick_rejected"]
    assert rejected == [("SPX", "below_floor"), ("VIX", "below_floor"), ("SPX", "not_finite")]
    assert market.ticks.rejected == {"below_floor": 10, "not_finite": 1}


def test_every_class_of_the_contract_table_has_bounds() -> None:
    kinds = {(inst.kind, inst.root) for inst in UNIVERSE.values()}
    kinds.add((parse_instrument_id("SPXW 20260417 P6425").kind, "SPXW"))
    assert kinds <= set(BOUNDS)


def test_the_filter_keeps_no_level_for_a_rejected_tick() -> None:
    ticks = TickFilter(dict(UNIVERSE))
    assert not ticks.admit(IndexValue("SPX", 0.0), START)
    assert ticks.last_good("SPX") is None
    assert ticks.admit(IndexValue("SPX", 6600.0), START)
    assert ticks.last_good("SPX") == 6600.0


def test_a_real_level_shift_is_taken_through_outliers_and_stale_prints() -> None:
    """SPX reopens a quarter lower (a halt, a restart on another day); among its first values
    an outlier and a stale print of the old level: the new level is still taken."""
    market = MarketState(dict(UNIVERSE))
    apply(market, IndexValue("SPX", 6800.0))
    for second, value in enumerate((5000.0, 5001.0, 90_000.0, 6800.0, 5002.0), start=1):
        apply(market, IndexValue("SPX", value), second=second)
    assert market.index("SPX") == 5002.0


def test_outliers_far_apart_in_time_never_make_a_level() -> None:
    market = MarketState(dict(UNIVERSE))
    for minute in range(6):  # a good print every minute, a bad one of 3,000 between
        apply(market, IndexValue("SPX", 6800.0 + minute), second=60 * minute)
        apply(market, IndexValue("SPX", 3000.0 + minute), second=60 * minute + 30)
    assert market.index("SPX") == 6805.0
    assert market.ticks.rejected == {"jump": 6}
