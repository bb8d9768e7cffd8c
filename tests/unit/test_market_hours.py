"""Market hours of the SPX options session, against the exchanges' published 2026 calendars
(holidays: Cboe/NYSE 2026 holiday schedule; early closes 13:15 for index options)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from monitor.domain.instruments import NEW_YORK
from monitor.market.hours import feed_window, market_view, next_open, options_session


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def test_a_regular_day() -> None:
    assert not market_view(ny(2026, 3, 3, 9, 29, 59)).open
    opened = market_view(ny(2026, 3, 3, 9, 30))
    assert opened.open
    assert opened.minutes_to_close == 405.0  # 6 h 45 min to 16:15
    assert opened.minutes_to_open == 0.0
    assert not opened.early_close
    assert market_view(ny(2026, 3, 3, 16, 15)).open  # the closing print
    after = market_view(ny(2026, 3, 3, 16, 15, 1))
    assert not after.open
    assert math.isnan(after.minutes_to_close)
    assert after.minutes_to_open == pytest.approx(17 * 60 + 15 - 1 / 60)


def test_weekend_and_holidays() -> None:
    # Friday 2026-03-06 after the close: Monday 09:30, 65 h 15 min away.
    assert market_view(ny(2026, 3, 6, 16, 15, 0, 1)).minutes_to_open == pytest.approx(
        65 * 60 + 15, abs=0.01
    )
    assert options_session(ny(2026, 4, 3).date()) is None  # Good Friday
    assert options_session(ny(2026, 12, 25).date()) is None  # Christmas
    assert next_open(ny(2026, 12, 25, 12, 0)) == ny(2026, 12, 28, 9, 30)
    assert not market_view(ny(2026, 7, 3, 11, 0)).open  # Independence Day observed


@pytest.mark.parametrize(
    "day",
    [
        ny(2026, 11, 27),  # the day after Thanksgiving
        ny(2026, 12, 24),  # Christmas Eve: NYSE closes at 13:00, SPX options at 13:15
    ],
)
def test_early_closes(day: datetime) -> None:
    session = options_session(day.date())
    assert session is not None
    assert (session.close.hour, session.close.minute) == (13, 15)
    noon = market_view(day.replace(hour=12))
    assert noon.open
    assert noon.early_close
    assert noon.minutes_to_close == 75.0
    assert not market_view(day.replace(hour=13, minute=16)).open


def test_summer_time_does_not_move_the_session() -> None:
    # 2026-03-09 is the first Monday of daylight saving time: still 09:30 New York.
    assert next_open(ny(2026, 3, 7, 12, 0)) == ny(2026, 3, 9, 9, 30)
    assert market_view(datetime.fromisoformat("2026-03-09T13:30:00+00:00")).open  # 09:30 EDT
    assert not market_view(datetime.fromisoformat("2026-03-09T13:29:00+00:00")).open


def window(moment: datetime, before: float = 15, after: float = 15) -> bool:
    return feed_window(
        moment, before_open=timedelta(minutes=before), after_close=timedelta(minutes=after)
    )


def test_the_feed_window_around_a_regular_session() -> None:
    assert not window(ny(2026, 3, 3, 9, 14, 59))
    assert window(ny(2026, 3, 3, 9, 15))  # 15 minutes before the open
    assert window(ny(2026, 3, 3, 16, 30))  # 15 minutes after the 16:15 close
    assert not window(ny(2026, 3, 3, 16, 30, 1))
    assert not window(ny(2026, 3, 3, 9, 20), before=0)
    assert window(ny(2026, 3, 3, 9, 30), before=0)


def test_the_feed_window_on_holidays_weekends_and_early_closes() -> None:
    assert not window(ny(2026, 11, 26, 12, 0))  # Thanksgiving
    # The day after closes at 13:15 (index options; stocks at 13:00): awake until 13:30.
    assert window(ny(2026, 11, 27, 13, 30))
    assert not window(ny(2026, 11, 27, 13, 31))
    assert not window(ny(2026, 11, 28, 9, 30))  # Saturday
    assert not window(ny(2026, 11, 30, 9, 14))
    assert window(ny(2026, 11, 30, 9, 15))  # Monday
    # Long margins reach into the evening and the early morning.
    assert window(ny(2026, 3, 3, 20, 15), after=240)
    assert window(ny(2026, 3, 4, 5, 30), before=240)
