"""Exchange sessions (holidays, early closes) from pandas_market_calendars, the only importer.

Three calendars matter: CBOE index options (SPX, SPXW, and the VIX settlement quotation,
struck from SPX option opening prices), CFE (VIX futures) and NYSE (the SPX close, and with it
PM settlement, follows the stock market's close, 13:00 ET on early-close days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache

import pandas_market_calendars as mcal

from monitor.domain.instruments import NEW_YORK


class Exchange(StrEnum):
    CBOE_INDEX_OPTIONS = "CBOE_Index_Options"
    CFE = "CFE"
    NYSE = "NYSE"  # the SPX constituents: the index closes when they do


@dataclass(frozen=True, slots=True)
class Session:
    day: date
    open: datetime  # New York time
    close: datetime  # New York time; 13:15 ET on early-close days for index options


@lru_cache(maxsize=64)
def _year(exchange: Exchange, year: int) -> dict[date, Session]:
    schedule = mcal.get_calendar(exchange.value).schedule(date(year, 1, 1), date(year, 12, 31))
    sessions = {}
    for stamp, row in schedule.iterrows():
        day = stamp.date()
        sessions[day] = Session(
            day,
            row["market_open"].to_pydatetime().astimezone(NEW_YORK),
            row["market_close"].to_pydatetime().astimezone(NEW_YORK),
        )
    return sessions


def session(exchange: Exchange, day: date) -> Session | None:
    """The exchange's session on ``day``, or None on a weekend or holiday."""
    return _year(exchange, day.year).get(day)


def previous_session(exchange: Exchange, day: date) -> Session:
    """The last session strictly before ``day``."""
    probe = day - timedelta(days=1)
    while (found := session(exchange, probe)) is None:
        probe -= timedelta(days=1)
    return found


def next_session(exchange: Exchange, day: date) -> Session:
    """The first session strictly after ``day``."""
    probe = day + timedelta(days=1)
    while (found := session(exchange, probe)) is None:
        probe += timedelta(days=1)
    return found


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def vix_future_expiry(year: int, month: int) -> date:
    """Final settlement date of the VIX future of ``month`` (CFE rule): the Wednesday 30 days
    before the third Friday of the following month, the standard SPX option expiration. When
    that Friday is not a CBOE session, the session before it counts; when the Wednesday is
    not a CFE session, the session before it is the settlement day."""
    following = (year + month // 12, month % 12 + 1)
    friday = _third_friday(*following)
    if session(Exchange.CBOE_INDEX_OPTIONS, friday) is None:
        friday = previous_session(Exchange.CBOE_INDEX_OPTIONS, friday).day
    wednesday = friday - timedelta(days=30)
    if session(Exchange.CFE, wednesday) is None:
        wednesday = previous_session(Exchange.CFE, wednesday).day
    return wednesday


def vix_future_expiries(today: date, count: int) -> list[date]:
    """The next ``count`` monthly VIX future settlement dates on or after ``today``
    (VX1, VX2, ...); weeklies are not listed here."""
    out: list[date] = []
    year, month = today.year, today.month
    while len(out) < count:
        expiry = vix_future_expiry(year, month)
        if expiry >= today:
            out.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out
