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
