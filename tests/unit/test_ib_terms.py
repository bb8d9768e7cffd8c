"""IB contract terms for each instrument class and back; IB error codes classified."""

from __future__ import annotations

from datetime import date

import pytest

from monitor.domain.instruments import Settlement, parse_instrument_id
from monitor.feeds.ib_contracts import (
    IbListing,
    IbTerms,
    expiration,
    listing_instrument,
    pick_listing,
    settlement_from,
    terms_for,
)
from monitor.feeds.ib_errors import FARM_RECOVERY, IbErrorClass, classify


@pytest.mark.parametrize(
    ("contract", "terms"),
    [
        ("SPX", IbTerms("IND", "SPX", "CBOE")),
        ("AD-NYSE", IbTerms("IND", "AD-NYSE", "NYSE")),
        (
            "VX 20260415",
            IbTerms("FUT", "VIX", "CFE", trading_class="VX", expiry="202604", multiplier="1000"),
        ),
        (
            "SPXW 20260410 C7000",
            IbTerms(
                "OPT",
                "SPX",
                "CBOE",
                trading_class="SPXW",
                expiry="202604",
                right="C",
                strike=7000.0,
                multiplier="100",
            ),
        ),
        (
            "VIX 20260318 C22.5",
            IbTerms(
                "OPT",
                "VIX",
                "CBOE",
                trading_class="VIX",
                expiry="202603",
                right="C",
                strike=22.5,
                multiplier="100",
            ),
        ),
    ],
)
def test_instruments_are_asked_for_by_expiration_month(contract: str, terms: IbTerms) -> None:
    assert terms_for(parse_instrument_id(contract)) == terms


# (our id, IB's lastTradeDateOrContractMonth, realExpirationDate, lastTradeTime, zone, settles)
# as IB reports them: an AM monthly and a VIX option last trade the day before they expire.
LISTINGS = [
    ("SPX 20261218 P6400", "OPT", "SPX", "20261217", "20261218", "15:15", "US/Central", "AM"),
    ("SPXW 20261218 P6400", "OPT", "SPXW", "20261218", "20261218", "15:00", "US/Central", "PM"),
    ("SPXW 20261203 C7000", "OPT", "SPXW", "20261203", "20261203", "16:00", "US/Eastern", "PM"),
    ("VIX 20261216 C22", "OPT", "VIX", "20261215", "20261216", "15:15", "US/Central", "AM"),
    ("VX 20261216", "FUT", "VX", "20261216", "20261216", "08:00:00", "US/Central", "AM"),
]


@pytest.mark.parametrize("case", LISTINGS, ids=[c[0] for c in LISTINGS])
def test_listings_are_dated_by_expiration_and_their_settlement_derived(
    case: tuple[str, ...],
) -> None:
    ours, sec_type, trading_class, last, real, at, zone, settles = case
    inst = parse_instrument_id(ours)
    symbol = "SPX" if trading_class.startswith("SPX") else "VIX"
    right, strike = (
        (ours.split()[2][0], float(ours.split()[2][1:])) if sec_type == "OPT" else ("", 0.0)
    )
    listing = IbListing(7, sec_type, symbol, trading_class, last, real, right, strike, at, zone)
    assert listing_instrument(listing) == inst
    assert settlement_from(listing) == Settlement(settles) == inst.settlement
    # A position carries no realExpirationDate: derived from the last trading day.
    from_position = IbListing(7, sec_type, symbol, trading_class, last, "", right, strike)
    assert listing_instrument(from_position) == inst
    assert expiration(from_position) == inst.expiry
    # A VIX option's underlying is the future that settles with it.
    if inst.root == "VIX":
        assert inst.underlying == "VX 20261216"


def test_a_holiday_moves_the_derived_expiration_to_the_next_session() -> None:
    # 2026-04-03 is Good Friday (CBOE closed): an AM option last trading on Thursday 2 April
    # with no realExpirationDate would expire on Monday 6 April.
    listing = IbListing(1, "OPT", "SPX", "SPX", "20260402", "", "P", 6000.0)
    assert expiration(listing) == date(2026, 4, 6)


def test_pick_listing_takes_the_answer_with_our_expiration() -> None:
    inst = parse_instrument_id("SPXW 20261218 P6400")
    month = [
        IbListing(n, "OPT", "SPX", "SPXW", f"202612{d:02d}", f"202612{d:02d}", "P", 6400.0)
        for n, d in enumerate((16, 17, 18, 21), start=1)
    ]
    chosen = pick_listing(inst, month)
    assert chosen is not None
    assert chosen.con_id == 3
    assert pick_listing(parse_instrument_id("SPXW 20261219 P6400"), month) is None


@pytest.mark.parametrize(
    ("sec_type", "symbol", "trading_class"),
    [("STK", "AAPL", ""), ("OPT", "SPY", "SPY"), ("FUT", "ES", "ES"), ("IND", "NDX", "")],
)
def test_contracts_outside_the_model_are_none(
    sec_type: str, symbol: str, trading_class: str
) -> None:
    listing = IbListing(1, sec_type, symbol, trading_class, "20260417", "20260417", "C", 100.0)
    assert listing_instrument(listing) is None


def test_error_classes() -> None:
    assert classify(2104) is IbErrorClass.FARM_OK
    assert classify(2103) is IbErrorClass.FARM_BROKEN
    assert {classify(c) for c in (354, 10089, 10090, 10091, 10168, 10197)} == {
        IbErrorClass.ENTITLEMENT
    }
    assert classify(1100) is IbErrorClass.CONNECTIVITY_LOST
    assert classify(1101) is IbErrorClass.RESTORED_DATA_LOST
    assert classify(1102) is IbErrorClass.RESTORED_DATA_KEPT
    assert classify(326) is IbErrorClass.CLIENT_ID_IN_USE
    assert classify(399) is IbErrorClass.OTHER
    assert all(classify(ok) is IbErrorClass.FARM_OK for ok in FARM_RECOVERY.values())
