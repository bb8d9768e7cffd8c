"""Market hours of the book: the SPX index-options session, from the exchange calendars.

The regular session of SPX options runs 09:30 to 16:15 New York time, to 13:15 on early-close
days: 15 minutes past the stock market's close. Both ends count as open (the closing print
is at 16:15:00). Sessions come from the CBOE index-options
calendar; where the NYSE calendar closes earlier (pandas_market_calendars' CBOE calendar
lacks some early closes its NYSE calendar has, e.g. 2026-12-24), the close is the NYSE
close plus 15 minutes. Weekends and holidays have no session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from monitor.calendars import Exchange, Session, session
from monitor.domain.instruments import NEW_YORK

OPTIONS_AFTER_STOCKS = timedelta(minutes=15)
REGULAR_CLOSE = (16, 15)
_LOOK_AHEAD_DAYS = 14


@lru_cache(maxsize=256)
def options_session(day: date) -> Session | None:
    """The SPX options session on ``day`` (New York date), or None."""
    options = session(Exchange.CBOE_INDEX_OPTIONS, day)
    if options is None:
        return None
    stocks = session(Exchange.NYSE, day)
    close = options.close
    if stocks is not None and stocks.close + OPTIONS_AFTER_STOCKS < close:
        close = stocks.close + OPTIONS_AFTER_STOCKS
    return Session(day, options.open, close)


@dataclass(frozen=True, slots=True)
class MarketView:
    """The session at one moment, as rules see it."""

    open: bool
    minutes_to_close: float  # NaN while closed
    minutes_to_open: float  # 0 while open; to the next session's open otherwise
    early_close: bool  # today's session closes before 16:15


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60.0


def next_open(now: datetime) -> datetime | None:
    """The next session's open at or after ``now`` (None past the calendar's range)."""
    local = now.astimezone(NEW_YORK)
    for offset in range(_LOOK_AHEAD_DAYS):
        day = local.date() + timedelta(days=offset)
        found = options_session(day)
        if found is not None and found.open >= local:
            return found.open
    return None


def market_view(now: datetime) -> MarketView:
    local = now.astimezone(NEW_YORK)
    today = options_session(local.date())
    early = today is not None and (today.close.hour, today.close.minute) < REGULAR_CLOSE
    if today is not None and today.open <= local <= today.close:
        return MarketView(
            open=True,
            minutes_to_close=_minutes(today.close - local),
            minutes_to_open=0.0,
            early_close=early,
        )
    upcoming = next_open(local)
    until = _minutes(upcoming - local) if upcoming is not None else math.nan
    return MarketView(
        open=False, minutes_to_close=math.nan, minutes_to_open=until, early_close=early
    )


def feed_window(now: datetime, *, before_open: timedelta, after_close: timedelta) -> bool:
    """Whether a live feed should be subscribed at ``now``: from ``before_open`` ahead of a
    session's open to ``after_close`` past its close (each at most a few hours, so only
    yesterday's, today's and tomorrow's sessions can contain ``now``)."""
    local = now.astimezone(NEW_YORK)
    for offset in (-1, 0, 1):
        found = options_session(local.date() + timedelta(days=offset))
        if found is not None and found.open - before_open <= local <= found.close + after_close:
            return True
    return False
