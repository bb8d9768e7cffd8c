"""Our instruments as Interactive Brokers contract terms, and IB's contracts as ours (no
ib_async here).

| ours | secType | symbol | tradingClass | exchange | multiplier |
|---|---|---|---|---|---|
| ``SPX``, ``VIX`` | IND | SPX, VIX | | CBOE | |
| ``AD-NYSE`` | IND | AD-NYSE | | NYSE | |
| ``VX YYYYMMDD`` | FUT | VIX | VX | CFE | 1000 |
| ``SPX``/``SPXW YYYYMMDD P6400`` | OPT | SPX | SPX / SPXW | CBOE | 100 |
| ``VIX YYYYMMDD C22`` | OPT | VIX | VIX | CBOE | 100 |

Two dates: our contract ids carry the **expiration date** (the day the contract settles), IB's
``lastTradeDateOrContractMonth`` the **last trading day** ("For TWS messages being sent to the
API client, the value is always Last Trading Day", TWS API 9.72 release notes). They differ for
AM-settled options: an SPX monthly last trades on Thursday and settles on Friday's opening
quotation; a VIX option last trades on Tuesday and settles on Wednesday's VRO with its future.
IB sends the expiration date only in the contract details' ``realExpirationDate``, never in a
position. So:
- a position is identified by the details of its conId (``listing_instrument``);
- an instrument is asked for by its expiration **month** (``terms_for``) and the answer whose
  expiration date is ours is taken (``pick_listing``), so a leg written by expiration date is
  found however IB dates it;
- when IB leaves ``realExpirationDate`` empty, the expiration is derived from the last trading
  day: the next CBOE session for the AM-settled option classes (SPX, VIX), the same day
  otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

from monitor.calendars import Exchange, next_session
from monitor.domain.instruments import (
    CLASSES,
    Instrument,
    Kind,
    Right,
    Settlement,
    future_id,
    option_id,
    parse_instrument_id,
)

INDEX_EXCHANGES = {"SPX": "CBOE", "VIX": "CBOE", "AD-NYSE": "NYSE"}
OPTION_CLASSES = ("SPX", "SPXW", "VIX")
# The index-option opening, 08:30 Chicago time: a contract whose trading ends before it on its
# expiration day settles to an opening quotation (AM).
OPENING_CHICAGO = time(8, 30)
ZONE_HOURS_AHEAD_OF_CHICAGO = {"US/Eastern": 1, "America/New_York": 1, "EST5EDT": 1}


@dataclass(frozen=True, slots=True)
class IbTerms:
    sec_type: str
    symbol: str
    exchange: str
    currency: str = "USD"
    trading_class: str = ""
    expiry: str = ""  # YYYYMM, the expiration month (IB's contract month)
    right: str = ""
    strike: float = 0.0
    multiplier: str = ""


@dataclass(frozen=True, slots=True)
class IbListing:
    """One contract as IB describes it in a position or its contract details."""

    con_id: int
    sec_type: str
    symbol: str
    trading_class: str = ""
    last_trade_date: str = ""  # YYYYMMDD (IB's lastTradeDateOrContractMonth)
    real_expiration: str = ""  # YYYYMMDD (contract details only; "" in a position)
    right: str = ""
    strike: float = 0.0
    last_trade_time: str = ""  # e.g. "08:00:00" or "15:00", in ``time_zone``
    time_zone: str = ""  # IB's timeZoneId, e.g. "US/Central"
    local_symbol: str = ""


def terms_for(inst: Instrument) -> IbTerms:
    """What IB is asked for: options and futures by their expiration month."""
    if inst.kind is Kind.INDEX:
        return IbTerms("IND", inst.root, INDEX_EXCHANGES[inst.root])
    assert inst.expiry is not None  # futures and options have one
    month = f"{inst.expiry:%Y%m}"
    if inst.kind is Kind.FUTURE:
        return IbTerms("FUT", "VIX", "CFE", trading_class="VX", expiry=month, multiplier="1000")
    symbol = "VIX" if inst.root == "VIX" else "SPX"
    return IbTerms(
        "OPT",
        symbol,
        "CBOE",
        trading_class=inst.root,
        expiry=month,
        right=inst.right.value if inst.right else "",
        strike=float(inst.strike or 0.0),
        multiplier="100",
    )


def _day(text: str) -> date | None:
    try:
        return datetime.strptime(text[:8], "%Y%m%d").date()  # noqa: DTZ007 - a date
    except ValueError:
        return None


def _am_class(listing: IbListing) -> bool:
    facts = CLASSES.get(listing.trading_class)
    return listing.sec_type == "OPT" and facts is not None and facts.settlement is Settlement.AM


def expiration(listing: IbListing) -> date | None:
    """The expiration date: IB's ``realExpirationDate``, else derived from the last trading
    day (the next CBOE session for AM-settled option classes)."""
    real = _day(listing.real_expiration)
    if real is not None:
        return real
    last = _day(listing.last_trade_date)
    if last is None:
        return None
    if _am_class(listing):
        return next_session(Exchange.CBOE_INDEX_OPTIONS, last).day
    return last


def _clock(text: str) -> time | None:
    digits = text.replace(":", "")
    try:
        return time(int(digits[:2]), int(digits[2:4]))
    except (ValueError, IndexError):
        return None


def settlement_from(listing: IbListing) -> Settlement | None:
    """AM or PM as IB's dates say: trading that ends before the expiration day, or before the
    opening on it, settles to an opening quotation (AM); trading to the end of the
    expiration day settles to the close (PM). None when IB gives too little to tell."""
    expires, last = expiration(listing), _day(listing.last_trade_date)
    if expires is None or last is None:
        return None
    if last < expires:
        return Settlement.AM
    ends = _clock(listing.last_trade_time)
    if ends is None:
        return None
    ahead = ZONE_HOURS_AHEAD_OF_CHICAGO.get(listing.time_zone, 0)
    in_chicago = time((ends.hour - ahead) % 24, ends.minute)
    return Settlement.AM if in_chicago <= OPENING_CHICAGO else Settlement.PM


def listing_instrument(listing: IbListing) -> Instrument | None:
    """Our instrument for an IB contract, or None for one the monitor does not model (stocks,
    other classes). Dated by its expiration, not its last trading day."""
    if listing.sec_type == "IND":
        return parse_instrument_id(listing.symbol) if listing.symbol in INDEX_EXCHANGES else None
    when = expiration(listing)
    try:
        if (
            listing.sec_type == "FUT"
            and listing.symbol == "VIX"
            and listing.trading_class in {"VX", ""}
            and when
        ):
            return parse_instrument_id(future_id("VX", when))
        if listing.sec_type == "OPT" and listing.trading_class in OPTION_CLASSES and when:
            right = Right(listing.right[:1])
            return parse_instrument_id(
                option_id(listing.trading_class, when, right, listing.strike)
            )
    except ValueError:
        return None
    return None


def pick_listing(inst: Instrument, listings: Sequence[IbListing]) -> IbListing | None:
    """Among IB's answers to ``terms_for(inst)``, the one that is ``inst``."""
    for listing in listings:
        found = listing_instrument(listing)
        if found is not None and found.id == inst.id:
            return listing
    return None
