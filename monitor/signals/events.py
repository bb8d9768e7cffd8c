"""Scheduled US macro events that move SPX implied vol: FOMC decisions, CPI and PPI releases.

The calendar is a TOML file (the bundled ``monitor/bundled/events.toml`` or a user's copy)
of two kinds of table:

  ``[[series]]``  one kind's whole schedule for one year, as the Fed and the BLS publish it:
                  ``kind`` (fomc | cpi | ppi), ``year``, ``time`` (HH:MM, New York
                  wall-clock time), ``source`` (where the dates come from) and ``dates``
                  (TOML dates). A series says the calendar covers that kind in that year.
  ``[[events]]``  one more event: ``kind``, ``date``, ``time``; it covers nothing beyond itself.

Loading validates it and names the field at fault; the queries then answer "what comes next,
and how long until it" for a given moment, and whether the calendar covers that moment at
all (``EventCalendar.uncovered``): a replay of a year the file has no series for would
otherwise read as a quiet year.

Event times are New York times: ``ScheduledEvent.at`` carries America/New_York, so a 08:30
release is 13:30 UTC in winter and 12:30 UTC in summer. Queries take any timezone-aware
``now`` and refuse a naive one (an hour's error around a release is the whole point).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.bundled import HERE as BUNDLED_DIR
from monitor.domain.instruments import NEW_YORK
from monitor.tomlfile import load_toml

BUNDLED_EVENTS = BUNDLED_DIR / "events.toml"

_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_K = TypeVar("_K")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class EventKind(StrEnum):
    FOMC = "fomc"  # FOMC policy statement, second day of the meeting
    CPI = "cpi"  # BLS Consumer Price Index release
    PPI = "ppi"  # BLS Producer Price Index release


def _on_a_weekday(value: date) -> date:
    if value.weekday() >= 5:
        weekday = _WEEKDAYS[value.weekday()]
        raise ValueError(f"{value.isoformat()} is a {weekday}: scheduled releases fall on weekdays")
    return value


def _hh_mm(value: str) -> str:
    if _HHMM.fullmatch(value) is None:
        raise ValueError(f"must be HH:MM on a 24-hour New York clock, such as 08:30, not {value!r}")
    return value


class EventSpec(BaseModel):
    """One ``[[events]]`` table as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: EventKind
    date: date
    time: Annotated[str, Field(description="HH:MM, New York time")]

    _time = field_validator("time")(_hh_mm)
    _weekday = field_validator("date")(_on_a_weekday)

    def moment(self) -> datetime:
        hour, minute = (int(part) for part in self.time.split(":"))
        return datetime.combine(self.date, time(hour, minute), tzinfo=NEW_YORK)


def _repeated(named: Iterable[tuple[str, _K]]) -> tuple[str, str, _K] | None:
    """The first key given twice, as (its second name, its first name, the key)."""
    first: dict[_K, str] = {}
    for name, key in named:
        if key in first:
            return name, first[key], key
        first[key] = name
    return None


class SeriesSpec(BaseModel):
    """One ``[[series]]`` table: a kind's published schedule for one year."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: EventKind
    year: Annotated[int, Field(ge=1990, le=2100)]
    time: Annotated[str, Field(description="HH:MM, New York time")]
    source: Annotated[str, Field(min_length=1, description="where the dates come from")]
    dates: Annotated[list[date], Field(min_length=1)]

    _time = field_validator("time")(_hh_mm)

    @field_validator("dates")
    @classmethod
    def _weekdays(cls, value: list[date]) -> list[date]:
        for day in value:
            _on_a_weekday(day)
        return value

    @model_validator(mode="after")
    def _in_its_year(self) -> Self:
        for index, day in enumerate(self.dates):
            if day.year != self.year:
                raise ValueError(f"dates[{index}] {day.isoformat()} is not in year {self.year}")
        return self

    def specs(self) -> list[EventSpec]:
        return [EventSpec(kind=self.kind, date=day, time=self.time) for day in self.dates]


class EventFileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    series: list[SeriesSpec] = []
    events: list[EventSpec] = []

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if not self.model_fields_set & {"series", "events"}:
            raise ValueError("the file has neither [[series]] nor [[events]] tables")
        years = [(f"series[{i}]", (b.kind, b.year)) for i, b in enumerate(self.series)]
        if (twice := _repeated(years)) is not None:
            name, first, (kind, year) = twice
            raise ValueError(
                f"{name} repeats {kind.value} {year} (first at {first}); one series of a kind "
                "per year"
            )
        days = [
            (f"series[{i}].dates[{j}]", (spec.kind, spec.date))
            for i, block in enumerate(self.series)
            for j, spec in enumerate(block.specs())
        ] + [(f"events[{i}]", (spec.kind, spec.date)) for i, spec in enumerate(self.events)]
        if (again := _repeated(days)) is not None:
            name, first, (kind, day) = again
            raise ValueError(
                f"{name} repeats {kind.value} on {day.isoformat()} (first at {first}); one "
                "event of a kind per day"
            )
        return self

    def all_events(self) -> list[EventSpec]:
        return [spec for block in self.series for spec in block.specs()] + self.events

    def covered(self) -> frozenset[tuple[EventKind, int]]:
        return frozenset((block.kind, block.year) for block in self.series)


@dataclass(frozen=True, slots=True)
class ScheduledEvent:
    kind: EventKind
    at: datetime  # America/New_York

    @property
    def day(self) -> date:
        """The New York calendar day of the event."""
        return self.at.astimezone(NEW_YORK).date()


Kinds = EventKind | Iterable[EventKind] | None  # None: every kind


def _wanted(kinds: Kinds) -> frozenset[EventKind] | None:
    if kinds is None:
        return None
    if isinstance(kinds, EventKind):  # a StrEnum is iterable too, by character
        return frozenset((kinds,))
    return frozenset(EventKind(kind) for kind in kinds)


def _utc(now: datetime) -> datetime:
    """``now`` in UTC. Arithmetic and comparison go through UTC because Python subtracts and
    compares two datetimes of the same tzinfo on the wall clock, across a DST change too."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {now.isoformat()}")
    return now.astimezone(UTC)


class EventCalendar:
    """Events sorted by time; every query may be narrowed to some ``kinds``."""

    def __init__(
        self,
        events: Iterable[ScheduledEvent],
        *,
        source: Path | None = None,
        covered: Iterable[tuple[EventKind, int]] | None = None,
    ) -> None:
        """``covered``: the (kind, year) pairs whose whole schedule is in ``events``; None
        claims every year of every kind (a calendar made in code)."""
        ordered = sorted(events, key=lambda e: (_utc(e.at), e.kind.value))
        self.events: tuple[ScheduledEvent, ...] = tuple(ordered)
        self.source = source
        self.covered = None if covered is None else frozenset(covered)
        self._times = [_utc(event.at) for event in self.events]  # sorted

    def __len__(self) -> int:
        return len(self.events)

    def _from(self, now: datetime, kinds: Kinds) -> Iterator[ScheduledEvent]:
        """Events at or after ``now``, in order, of the given kinds (all when None)."""
        wanted = _wanted(kinds)
        start = bisect.bisect_left(self._times, _utc(now))
        for event in self.events[start:]:
            if wanted is None or event.kind in wanted:
                yield event

    def next_event(self, now: datetime, kinds: Kinds = None) -> ScheduledEvent | None:
        """The first event at or after ``now`` (of ``kinds``), or None when none is scheduled."""
        return next(iter(self._from(now, kinds)), None)

    def hours_until_next(self, now: datetime, kinds: Kinds = None) -> float:
        """Hours from ``now`` to the next event (0 at its minute); NaN when none is scheduled."""
        event = self.next_event(now, kinds)
        if event is None:
            return math.nan
        return (_utc(event.at) - _utc(now)).total_seconds() / 3600.0

    def days_until_next(self, now: datetime, kinds: Kinds = None) -> float:
        """Days (of 24 hours) from ``now`` to the next event; NaN when none is scheduled."""
        return self.hours_until_next(now, kinds) / 24.0

    def is_event_day(self, day: date, kinds: Kinds = None) -> bool:
        """Whether an event (of ``kinds``) falls on ``day``, a New York calendar day."""
        wanted = _wanted(kinds)
        return any(
            event.day == day and (wanted is None or event.kind in wanted) for event in self.events
        )

    def uncovered(self, now: datetime) -> list[str]:
        """The kinds this calendar has no schedule for in ``now``'s New York year, as
        'cpi 2027'; empty when it covers them all."""
        if self.covered is None:
            return []
        year = _utc(now).astimezone(NEW_YORK).year
        return [f"{k.value} {year}" for k in EventKind if (k, year) not in self.covered]

    def within(self, now: datetime, days: float, kinds: Kinds = None) -> list[ScheduledEvent]:
        """Events from ``now`` up to and including ``now + days``, in order."""
        if not days >= 0:  # refuses NaN as well
            raise ValueError(f"days must be zero or more, not {days}")
        end = _utc(now) + timedelta(days=days)
        out: list[ScheduledEvent] = []
        for event in self._from(now, kinds):
            if _utc(event.at) > end:
                break
            out.append(event)
        return out


def load_events(path: Path = BUNDLED_EVENTS) -> EventCalendar:
    """Reads and validates an event file; raises ConfigError naming the file and the field."""
    spec = load_toml(path, EventFileSpec, context={})
    return EventCalendar(
        (ScheduledEvent(event.kind, event.moment()) for event in spec.all_events()),
        source=path,
        covered=spec.covered(),
    )


@dataclass(frozen=True, slots=True)
class EventView:
    """The next scheduled events as rules see them (NaN hours when the calendar runs out)."""

    next_kind: str  # "fomc", "cpi", "ppi", or "" when none is left
    hours_to_next: float
    hours_to_next_fomc: float
    event_today: bool
    uncovered: str = ""  # the kinds without a schedule this year: "cpi 2027, ppi 2027"
    uncovered_kinds: int = 0  # how many they are


def event_view(calendar: EventCalendar, now: datetime) -> EventView:
    upcoming = calendar.next_event(now)
    missing = calendar.uncovered(now)
    return EventView(
        upcoming.kind.value if upcoming else "",
        calendar.hours_until_next(now),
        calendar.hours_until_next(now, EventKind.FOMC),
        calendar.is_event_day(now.astimezone(NEW_YORK).date()),
        ", ".join(missing),
        len(missing),
    )
