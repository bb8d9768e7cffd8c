"""Settlement moments and time to expiry.

Settlement moments follow the contract and the exchange calendar:
  SPXW (PM)       the index close on expiry day (the NYSE close): 16:00 ET, 13:00 ET on
                  early-close days
  SPX (AM)        the opening special quotation, 09:30 ET on expiry day
  VIX options, VX the opening VIX settlement quotation (VRO), 09:30 ET on settlement day
An expiry that is not a trading day of its exchange is an error, not a guess: listed contracts
whose day falls on a holiday are moved by the exchange to the prior trading day.

Year fraction: actual seconds of calendar time to the settlement moment over a 365-day year
(ACT/365F to the second). Nights, weekends and holidays count as calendar time; this is the
convention of the rate and of Black-76 as usually quoted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from monitor.calendars import Exchange, previous_session, session
from monitor.domain.instruments import Instrument, Settlement

SECONDS_PER_YEAR = 365.0 * 86_400.0
INDEX_CLOSE_BEFORE_OPTIONS_CLOSE = timedelta(minutes=15)  # SPX closes 15 min before options


class ExpiryError(ValueError):
    """An expiry date that is not a trading day of the contract's exchange."""


@lru_cache(maxsize=4096)
def settlement(inst: Instrument) -> datetime:
    """The moment the instrument's settlement value is struck, in UTC.

    UTC because Python subtracts two datetimes that share a zone by wall clock, which
    would lose or gain the daylight-saving hour between now and expiry.
    """
    if inst.expiry is None:
        raise ExpiryError(f"{inst.id!r} does not expire")
    exchange = Exchange.CFE if inst.root == "VX" else Exchange.CBOE_INDEX_OPTIONS
    day = session(exchange, inst.expiry)
    if day is None:
        prior = previous_session(exchange, inst.expiry).day
        raise ExpiryError(
            f"{inst.id!r}: {inst.expiry.isoformat()} is not a {exchange.value} trading day; "
            f"an expiry on a holiday moves to the prior trading day ({prior.isoformat()})"
        )
    if inst.settlement is Settlement.PM:
        stocks = session(Exchange.NYSE, inst.expiry)
        close = stocks.close if stocks else day.close - INDEX_CLOSE_BEFORE_OPTIONS_CLOSE
        return close.astimezone(UTC)
    if exchange is Exchange.CFE:
        # CFE's calendar gives the trading day; the VRO is struck at the index-option open.
        index_day = session(Exchange.CBOE_INDEX_OPTIONS, inst.expiry)
        return (index_day or day).open.astimezone(UTC)
    return day.open.astimezone(UTC)


def year_fraction(inst: Instrument, now: datetime) -> float:
    """Years from ``now`` to the instrument's settlement; zero or negative once settled."""
    return (settlement(inst) - now.astimezone(UTC)).total_seconds() / SECONDS_PER_YEAR
