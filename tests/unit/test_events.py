"""Event calendar: the bundled file matches its sources; next-event times worked by hand."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from monitor.domain.instruments import NEW_YORK
from monitor.errors import ConfigError
from monitor.signals.events import (
    BUNDLED_EVENTS,
    EventCalendar,
    EventKind,
    ScheduledEvent,
    load_events,
)

FOMC, CPI, PPI = EventKind.FOMC, EventKind.CPI, EventKind.PPI


def ny(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


@pytest.fixture(scope="module")
def calendar() -> EventCalendar:
    return load_events()


def days_of(calendar: EventCalendar, kind: EventKind, year: int) -> list[date]:
    return [e.day for e in calendar.events if e.kind is kind and e.day.year == year]


def test_bundled_file_loads(calendar: EventCalendar) -> None:
    assert calendar.source == BUNDLED_EVENTS
    covered = calendar.covered or frozenset()
    assert {year for kind, year in covered if kind is FOMC} == set(range(2015, 2028))
    assert {year for kind, year in covered if kind is CPI} == set(range(2015, 2027))
    assert {year for kind, year in covered if kind is PPI} == set(range(2017, 2027))
    # Eight scheduled FOMC decisions a year (seven in 2020: March 17-18 became the
    # unscheduled Sunday cut of March 15); twelve CPI releases a year, eleven in 2025 (the
    # October 2025 CPI was never published); PPI 2025 ten, 2026 thirteen (two in January).
    for kind, year in covered:
        expected = {
            (FOMC, 2020): 7,
            (CPI, 2025): 11,
            (PPI, 2025): 10,
            (PPI, 2026): 13,
        }.get((kind, year), 8 if kind is FOMC else 12)
        assert len(days_of(calendar, kind, year)) == expected, (kind, year)
    assert list(calendar.events) == sorted(calendar.events, key=lambda e: e.at)
    for event in calendar.events:
        assert event.at.tzinfo is NEW_YORK
        expected = (14, 0) if event.kind is FOMC else (8, 30)
        assert (event.at.hour, event.at.minute) == expected


def test_fomc_dates_match_the_fed_schedules(calendar: EventCalendar) -> None:
    # Fed press releases of 2024-08-09 (2026) and 2025-09-05 (2027): the second meeting day.
    assert days_of(calendar, FOMC, 2026) == [
        date(2026, 1, 28),
        date(2026, 3, 18),
        date(2026, 4, 29),
        date(2026, 6, 17),
        date(2026, 7, 29),
        date(2026, 9, 16),
        date(2026, 10, 28),
        date(2026, 12, 9),
    ]
    assert days_of(calendar, FOMC, 2027) == [
        date(2027, 1, 27),
        date(2027, 3, 17),
        date(2027, 4, 28),
        date(2027, 6, 9),
        date(2027, 7, 28),
        date(2027, 9, 15),
        date(2027, 10, 27),
        date(2027, 12, 8),
    ]


def test_bls_spot_checks(calendar: EventCalendar) -> None:
    cpi_2026 = days_of(calendar, CPI, 2026)
    assert len(cpi_2026) == 12
    assert date(2026, 1, 13) in cpi_2026  # December 2025 CPI
    assert date(2026, 2, 13) in cpi_2026  # January 2026 CPI, a Friday after the shutdown
    assert date(2026, 11, 10) in cpi_2026  # October 2026 CPI (not Veterans Day, Nov 11)
    ppi_2026 = days_of(calendar, PPI, 2026)
    assert ppi_2026[:3] == [date(2026, 1, 14), date(2026, 1, 30), date(2026, 2, 27)]
    assert date(2026, 12, 15) in ppi_2026
    assert not days_of(calendar, CPI, 2027)  # not published in the sources searched
    assert not days_of(calendar, PPI, 2027)
    release = calendar.next_event(ny(2026, 2, 13, 0, 0), CPI)
    assert release is not None
    assert release.at == datetime(2026, 2, 13, 13, 30, tzinfo=UTC)  # 08:30 EST


def test_next_event_worked_by_hand(calendar: EventCalendar) -> None:
    now = ny(2026, 3, 16, 10, 0)  # Monday
    # Next of any kind: February PPI, Wednesday 2026-03-18 08:30 = 2 days - 1.5 h = 46.5 h.
    event = calendar.next_event(now)
    assert event == ScheduledEvent(PPI, ny(2026, 3, 18, 8, 30))
    assert calendar.hours_until_next(now) == pytest.approx(46.5)
    # Next FOMC: the same day at 14:00 = 48 h + 4 h = 52 h.
    assert calendar.next_event(now, FOMC) == ScheduledEvent(FOMC, ny(2026, 3, 18, 14, 0))
    assert calendar.hours_until_next(now, [FOMC]) == pytest.approx(52.0)
    assert calendar.days_until_next(now, kinds={FOMC}) == pytest.approx(52.0 / 24)
    # The same moment given in UTC (EDT is UTC-4) gives the same answers.
    in_utc = datetime(2026, 3, 16, 14, 0, tzinfo=UTC)
    assert calendar.hours_until_next(in_utc, FOMC) == pytest.approx(52.0)
    # Next CPI: April 10 08:30 = 25 days (15 left in March + 10) - 1.5 h.
    assert calendar.hours_until_next(now, CPI) == pytest.approx(25 * 24 - 1.5)


def test_hours_across_the_spring_clock_change(calendar: EventCalendar) -> None:
    # Saturday 2026-03-07 12:00 EST to the CPI on Wednesday 2026-03-11 08:30 EDT: 92.5 h on
    # the wall clock, less the hour skipped on Sunday 2026-03-08.
    saturday = ny(2026, 3, 7, 12, 0)
    assert calendar.hours_until_next(saturday) == pytest.approx(91.5)
    assert [e.kind for e in calendar.within(saturday, 91.5 / 24)] == [CPI]
    assert calendar.within(saturday, 91.4 / 24) == []


def test_hours_across_the_autumn_clock_change(calendar: EventCalendar) -> None:
    # Saturday 2026-10-31 12:00 EDT to the CPI on Tuesday 2026-11-10 08:30 EST: 236.5 h on
    # the wall clock, plus the hour repeated on Sunday 2026-11-01.
    assert calendar.hours_until_next(ny(2026, 10, 31, 12, 0)) == pytest.approx(237.5)


def test_at_the_minute_and_after_the_last(calendar: EventCalendar) -> None:
    at = ny(2026, 1, 28, 14, 0)
    assert calendar.next_event(at) == ScheduledEvent(FOMC, at)  # "at or after"
    assert calendar.hours_until_next(at) == 0.0
    after = at + timedelta(seconds=1)
    assert calendar.next_event(after) == ScheduledEvent(PPI, ny(2026, 1, 30, 8, 30))
    last = calendar.events[-1]
    assert last == ScheduledEvent(FOMC, ny(2027, 12, 8, 14, 0))
    assert calendar.next_event(last.at + timedelta(minutes=1)) is None
    assert math.isnan(calendar.hours_until_next(last.at + timedelta(minutes=1)))
    assert math.isnan(calendar.days_until_next(last.at + timedelta(minutes=1)))
    assert math.isnan(calendar.hours_until_next(ny(2027, 1, 1, 0, 0), CPI))  # no 2027 CPI


def test_is_event_day(calendar: EventCalendar) -> None:
    assert calendar.is_event_day(date(2026, 3, 18))
    assert calendar.is_event_day(date(2026, 3, 18), FOMC)
    assert calendar.is_event_day(date(2026, 3, 18), [PPI])
    assert not calendar.is_event_day(date(2026, 3, 18), CPI)
    assert not calendar.is_event_day(date(2026, 3, 17))  # the FOMC's first meeting day
    assert not calendar.is_event_day(date(2026, 3, 21))


def test_within(calendar: EventCalendar) -> None:
    now = ny(2026, 3, 16, 10, 0)
    assert calendar.within(now, 2.0) == [
        ScheduledEvent(PPI, ny(2026, 3, 18, 8, 30)),  # 46.5 h: inside 48 h
    ]
    assert [e.kind for e in calendar.within(now, 52.0 / 24)] == [PPI, FOMC]  # end included
    assert calendar.within(now, 30.0, CPI) == [ScheduledEvent(CPI, ny(2026, 4, 10, 8, 30))]
    assert calendar.within(now, 0.0) == []
    assert calendar.within(ny(2026, 3, 18, 8, 30), 0.0) == [
        ScheduledEvent(PPI, ny(2026, 3, 18, 8, 30))
    ]
    with pytest.raises(ValueError, match="days must be zero or more"):
        calendar.within(now, -1.0)
    with pytest.raises(ValueError, match="days must be zero or more"):
        calendar.within(now, math.nan)


def test_naive_now_refused(calendar: EventCalendar) -> None:
    naive = datetime(2026, 3, 16, 10, 0)  # noqa: DTZ001 - the case under test
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.next_event(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.within(naive, 1.0)


def test_empty_calendar(tmp_path: Path) -> None:
    path = tmp_path / "events.toml"
    path.write_text("events = []\n")
    empty = load_events(path)
    now = ny(2026, 3, 16, 10, 0)
    assert len(empty) == 0
    assert empty.next_event(now) is None
    assert math.isnan(empty.hours_until_next(now))
    assert empty.within(now, 365.0) == []


GOOD = """
[[events]]
kind = "fomc"
date = 2026-01-28
time = "14:00"

[[events]]
kind = "cpi"
date = 2026-02-13
time = "08:30"
"""


def test_small_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "events.toml"
    path.write_text(GOOD)
    assert load_events(path).events == (
        ScheduledEvent(FOMC, ny(2026, 1, 28, 14, 0)),
        ScheduledEvent(CPI, ny(2026, 2, 13, 8, 30)),
    )


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ('kind = "cpi"', 'kind = "nfp"', "field events[1].kind: Input should be 'fomc', 'cpi'"),
        ('time = "08:30"', 'time = "8:30"', "field events[1].time: must be HH:MM"),
        ('time = "08:30"', 'time = "24:00"', "field events[1].time: must be HH:MM"),
        ('time = "08:30"', 'time = "08:30:00"', "field events[1].time: must be HH:MM"),
        ('time = "08:30"', "time = 08:30:00", "field events[1].time: Input should be a valid str"),
        ("date = 2026-02-13", 'date = "13/02/2026"', "field events[1].date"),
        (
            "date = 2026-02-13",
            "date = 2026-02-14",
            "field events[1].date: 2026-02-14 is a Saturday",
        ),
        ('kind = "cpi"\n', 'kind = "cpi"\nsource = "bls"\n', "events[1].source: unknown field"),
        ('kind = "cpi"\ndate = 2026-02-13', 'kind = "cpi"', "field events[1].date: Field required"),
        (
            'kind = "cpi"\ndate = 2026-02-13',
            'kind = "fomc"\ndate = 2026-01-28',
            "field (top level): events[1] repeats fomc on 2026-01-28 (first at events[0])",
        ),
        ("[[events]]", "[[event]]", "field event: unknown field"),
        ('time = "08:30"', 'time = "08:30"\n[extra]', "field extra: unknown field"),
    ],
)
def test_bad_event_file(tmp_path: Path, old: str, new: str, fragment: str) -> None:
    assert old in GOOD
    path = tmp_path / "events.toml"
    path.write_text(GOOD.replace(old, new, 1) if old != "[[events]]" else GOOD.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_events(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert fragment in message


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_events(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[events]]\nkind = fomc\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_events(broken)
    blank = tmp_path / "blank.toml"
    blank.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="neither \\[\\[series\\]\\] nor \\[\\[events\\]\\]"):
        load_events(blank)


def test_history_spot_checks(calendar: EventCalendar) -> None:
    """Dates from the Fed's historical calendars and the BLS schedules of those years."""
    assert days_of(calendar, FOMC, 2022) == [
        date(2022, 1, 26),
        date(2022, 3, 16),
        date(2022, 5, 4),
        date(2022, 6, 15),
        date(2022, 7, 27),
        date(2022, 9, 21),
        date(2022, 11, 2),
        date(2022, 12, 14),
    ]
    assert date(2020, 3, 18) not in days_of(calendar, FOMC, 2020)  # no scheduled decision
    assert date(2015, 9, 17) in days_of(calendar, FOMC, 2015)  # a Thursday
    cpi_2022 = days_of(calendar, CPI, 2022)
    assert cpi_2022[:3] == [date(2022, 1, 12), date(2022, 2, 10), date(2022, 3, 10)]
    assert date(2022, 9, 13) in cpi_2022  # the August 2022 CPI
    assert days_of(calendar, CPI, 2015)[0] == date(2015, 1, 16)
    cpi_2025 = days_of(calendar, CPI, 2025)
    assert cpi_2025[-2:] == [date(2025, 10, 24), date(2025, 12, 18)]  # after the lapse
    assert date(2025, 11, 25) in days_of(calendar, PPI, 2025)  # September 2025 PPI
    assert days_of(calendar, PPI, 2022)[:3] == [
        date(2022, 1, 13),
        date(2022, 2, 15),
        date(2022, 3, 15),
    ]
    assert date(2018, 11, 9) in days_of(calendar, PPI, 2018)  # the October 2018 PPI
    assert len(days_of(calendar, PPI, 2015)) == 10  # the confirmed ones; 2015 not covered
    assert calendar.uncovered(ny(2015, 6, 1, 10, 0)) == ["ppi 2015"]
    # A replay of 2019 sees the FOMC decision of July 31 coming.
    assert calendar.next_event(ny(2019, 7, 30, 15, 0), FOMC) == ScheduledEvent(
        FOMC, ny(2019, 7, 31, 14, 0)
    )


def test_uncovered_years_are_named(calendar: EventCalendar) -> None:
    assert calendar.uncovered(ny(2026, 3, 3, 10, 0)) == []
    assert calendar.uncovered(ny(2027, 1, 4, 10, 0)) == ["cpi 2027", "ppi 2027"]
    assert calendar.uncovered(ny(2014, 6, 2, 10, 0)) == ["fomc 2014", "cpi 2014", "ppi 2014"]
    # New York's year: 23:30 on December 31 in New York is already January 1 in UTC.
    assert calendar.uncovered(datetime(2027, 1, 1, 4, 30, tzinfo=UTC)) == []
    # A calendar made in code claims every year; a file of single events claims none.
    assert EventCalendar([]).uncovered(ny(2040, 1, 2, 10, 0)) == []


SERIES = """
[[series]]
kind = "cpi"
year = 2026
time = "08:30"
source = "BLS"
dates = [2026-01-13, 2026-02-13]
"""


def test_a_series_covers_its_year(tmp_path: Path) -> None:
    path = tmp_path / "events.toml"
    fomc_only = GOOD.split("[[events]]")[1]
    path.write_text(f"{SERIES}\n[[events]]{fomc_only}")
    loaded = load_events(path)
    assert loaded.covered == {(CPI, 2026)}
    assert [e.day for e in loaded.events] == [
        date(2026, 1, 13),
        date(2026, 1, 28),
        date(2026, 2, 13),
    ]
    assert loaded.uncovered(ny(2026, 5, 1, 9, 0)) == ["fomc 2026", "ppi 2026"]


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        (
            "dates = [2026-01-13, 2026-02-13]",
            "dates = [2026-01-13, 2025-12-10]",
            "field series[0]: dates[1] 2025-12-10 is not in year 2026",
        ),
        (
            "dates = [2026-01-13, 2026-02-13]",
            "dates = []",
            "field series[0].dates: List should have at least 1 item",
        ),
        ("dates = [2026-01-13, 2026-02-13]", "dates = [2026-01-17]", "2026-01-17 is a Saturday"),
        ('source = "BLS"\n', "", "field series[0].source: Field required"),
        ('time = "08:30"', 'time = "8:30"', "field series[0].time: must be HH:MM"),
        (
            "year = 2026",
            "year = 26",
            "field series[0].year: Input should be greater than or equal to 1990",
        ),
    ],
)
def test_bad_series(tmp_path: Path, old: str, new: str, fragment: str) -> None:
    assert old in SERIES
    path = tmp_path / "events.toml"
    path.write_text(SERIES.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_events(path)
    assert fragment in str(info.value)


def test_a_series_and_an_event_on_one_day_or_two_series_of_a_year(tmp_path: Path) -> None:
    path = tmp_path / "events.toml"
    path.write_text(SERIES + GOOD)
    with pytest.raises(
        ConfigError,
        match=r"events\[1\] repeats cpi on 2026-02-13 \(first at series\[0\]\.dates\[1\]\)",
    ):
        load_events(path)
    path.write_text(SERIES + SERIES.replace("2026-01-13, 2026-02-13", "2026-03-11"))
    with pytest.raises(ConfigError, match=r"series\[1\] repeats cpi 2026 \(first at series\[0\]\)"):
        load_events(path)
