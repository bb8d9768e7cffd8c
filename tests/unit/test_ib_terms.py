"""IB contract terms for each instrument class and back; IB error codes classified."""

from __future__ import annotations

import pytest

from monitor.domain.instruments import parse_instrument_id
from monitor.feeds.ib_contracts import IbTerms, instrument_from, terms_for
from monitor.feeds.ib_errors import FARM_RECOVERY, IbErrorClass, classify


@pytest.mark.parametrize(
    ("contract", "terms"),
    [
        ("SPX", IbTerms("IND", "SPX", "CBOE")),
        ("AD-NYSE", IbTerms("IND", "AD-NYSE", "NYSE")),
        (
            "VX 20260415",
            IbTerms("FUT", "VIX", "CFE", trading_class="VX", expiry="20260415", multiplier="1000"),
        ),
        (
            "SPXW 20260410 C7000",
            IbTerms(
                "OPT",
                "SPX",
                "CBOE",
                trading_class="SPXW",
                expiry="20260410",
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
                expiry="20260318",
                right="C",
                strike=22.5,
                multiplier="100",
            ),
        ),
    ],
)
def test_terms_round_trip(contract: str, terms: IbTerms) -> None:
    inst = parse_instrument_id(contract)
    assert terms_for(inst) == terms
    back = instrument_from(
        terms.sec_type,
        terms.symbol,
        trading_class=terms.trading_class,
        expiry=terms.expiry,
        right=terms.right,
        strike=terms.strike,
    )
    assert back == inst


def test_real_expiration_wins_over_last_trade_date() -> None:
    # IB reports AM-settled SPX options with the Thursday as last trade date.
    inst = instrument_from(
        "OPT",
        "SPX",
        trading_class="SPX",
        expiry="20260416",
        right="P",
        strike=6425.0,
        real_expiry="20260417",
    )
    assert inst is not None
    assert inst.id == "SPX 20260417 P6425"


@pytest.mark.parametrize(
    ("sec_type", "symbol", "trading_class"),
    [("STK", "AAPL", ""), ("OPT", "SPY", "SPY"), ("FUT", "ES", "ES"), ("IND", "NDX", "")],
)
def test_contracts_outside_the_model_are_none(
    sec_type: str, symbol: str, trading_class: str
) -> None:
    assert (
        instrument_from(
            sec_type,
            symbol,
            trading_class=trading_class,
            expiry="20260417",
            right="C",
            strike=100.0,
        )
        is None
    )


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
