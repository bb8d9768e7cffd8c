"""Our instruments as Interactive Brokers contract terms, and back (no ib_async here).

| ours | secType | symbol | tradingClass | exchange | multiplier |
|---|---|---|---|---|---|
| ``SPX``, ``VIX`` | IND | SPX, VIX | | CBOE | |
| ``AD-NYSE`` | IND | AD-NYSE | | NYSE | |
| ``VX YYYYMMDD`` | FUT | VIX | VX | CFE | 1000 |
| ``SPX``/``SPXW YYYYMMDD P6400`` | OPT | SPX | SPX / SPXW | CBOE | 100 |
| ``VIX YYYYMMDD C22`` | OPT | VIX | VIX | CBOE | 100 |

Options and futures are asked for by their expiry date (``lastTradeDateOrContractMonth``);
an answer is accepted when its trading class, right, strike and expiry (last trade date or
real expiration date) agree with ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from monitor.domain.instruments import (
    Instrument,
    Kind,
    Right,
    future_id,
    option_id,
    parse_instrument_id,
)

INDEX_EXCHANGES = {"SPX": "CBOE", "VIX": "CBOE", "AD-NYSE": "NYSE"}


@dataclass(frozen=True, slots=True)
class IbTerms:
    sec_type: str
    symbol: str
    exchange: str
    currency: str = "USD"
    trading_class: str = ""
    expiry: str = ""  # YYYYMMDD
    right: str = ""
    strike: float = 0.0
    multiplier: str = ""


def terms_for(inst: Instrument) -> IbTerms:
    if inst.kind is Kind.INDEX:
        return IbTerms("IND", inst.root, INDEX_EXCHANGES[inst.root])
    assert inst.expiry is not None  # futures and options have one
    expiry = f"{inst.expiry:%Y%m%d}"
    if inst.kind is Kind.FUTURE:
        return IbTerms("FUT", "VIX", "CFE", trading_class="VX", expiry=expiry, multiplier="1000")
    symbol = "VIX" if inst.root == "VIX" else "SPX"
    return IbTerms(
        "OPT",
        symbol,
        "CBOE",
        trading_class=inst.root,
        expiry=expiry,
        right=inst.right.value if inst.right else "",
        strike=float(inst.strike or 0.0),
        multiplier="100",
    )


def _day(text: str) -> date | None:
    try:
        return datetime.strptime(text[:8], "%Y%m%d").date()  # noqa: DTZ007 - a date
    except ValueError:
        return None


def instrument_from(
    sec_type: str,
    symbol: str,
    *,
    trading_class: str = "",
    expiry: str = "",
    right: str = "",
    strike: float = 0.0,
    real_expiry: str = "",
) -> Instrument | None:
    """Our instrument for an IB contract (a position, a qualified contract), or None for a
    contract the monitor does not model (stocks, other classes)."""
    when = _day(real_expiry) or _day(expiry)
    try:
        if sec_type == "IND" and symbol in INDEX_EXCHANGES:
            return parse_instrument_id(symbol)
        if sec_type == "FUT" and symbol == "VIX" and trading_class in {"VX", ""} and when:
            return parse_instrument_id(future_id("VX", when))
        if sec_type == "OPT" and trading_class in {"SPX", "SPXW", "VIX"} and when:
            return parse_instrument_id(option_id(trading_class, when, Right(right[:1]), strike))
    except ValueError:
        return None
    return None
