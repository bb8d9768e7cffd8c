"""Historical bars for the emulated gateway: stored bars, the reqHistoricalData request, dates.

The gateway's time zone is fixed to UTC: an endDateTime without a zone is read as UTC, and bar
dates with formatDate=1 are UTC wall-clock times (``YYYYMMDD  HH:MM:SS``, which ib_async parses
into naive datetimes). With formatDate=2 bar dates are epoch seconds, which ib_async parses into
UTC-aware datetimes. Bars of a day or longer are dated ``YYYYMMDD`` whatever the formatDate, as
IB dates them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ibemu.catalogue import ContractQuery

_END_DATE_TIME = re.compile(r"(\d{8})([ -])(\d{2}:\d{2}:\d{2})(?: +(\S+))?")
_DAILY_UNITS = frozenset({"day", "days", "week", "weeks", "month", "months"})


@dataclass(frozen=True, slots=True)
class HistoryBar:
    """One historical bar the gateway serves: its start (timezone-aware), OHLC and volume."""

    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError(f"bar start {self.start} has no time zone")


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """The fields of a reqHistoricalData message, by EClient parameter name (raw text).

    At server version 178 the message carries no version field: id, reqId, the 12 contract
    fields, includeExpired, endDateTime, barSizeSetting, durationStr, useRTH, whatToShow,
    formatDate, [combo legs for BAG], keepUpToDate, chartOptions.
    """

    req_id: int
    contract: ContractQuery
    include_expired: str
    end_date_time: str
    bar_size_setting: str
    duration_str: str
    use_rth: str
    what_to_show: str
    format_date: str
    keep_up_to_date: str
    chart_options: str

    @classmethod
    def from_fields(cls, fields: list[str]) -> HistoryRequest:
        """Parses a whole message (message id first)."""
        contract = ContractQuery.from_fields(fields[2:14])
        rest = fields[21:]
        if contract.sec_type == "BAG" and rest:
            rest = rest[1 + 4 * int(rest[0] or 0) :]
        rest = [*rest, "", ""]
        return cls(
            req_id=int(fields[1]),
            contract=contract,
            include_expired=fields[14],
            end_date_time=fields[15],
            bar_size_setting=fields[16],
            duration_str=fields[17],
            use_rth=fields[18],
            what_to_show=fields[19],
            format_date=fields[20],
            keep_up_to_date=rest[0],
            chart_options=rest[1],
        )

    def params(self) -> tuple[tuple[str, str], ...]:
        """The request's parameters as (EClient name, raw text) pairs, for the request log."""
        return (
            ("includeExpired", self.include_expired),
            ("endDateTime", self.end_date_time),
            ("durationStr", self.duration_str),
            ("barSizeSetting", self.bar_size_setting),
            ("whatToShow", self.what_to_show),
            ("useRTH", self.use_rth),
            ("formatDate", self.format_date),
            ("keepUpToDate", self.keep_up_to_date),
            ("chartOptions", self.chart_options),
        )

    @property
    def daily(self) -> bool:
        """Whether the bars are a day or longer (``1 day``, ``1 week``, ``1 month``)."""
        unit = self.bar_size_setting.split()[-1:]
        return bool(unit) and unit[0].lower() in _DAILY_UNITS


def parse_end_date_time(text: str) -> datetime | None:
    """An endDateTime as an aware datetime; None for an empty one (now).

    Accepts ``YYYYMMDD HH:MM:SS`` with an optional zone name (``UTC``, ``US/Eastern``; none means
    the gateway's zone, UTC) and ``YYYYMMDD-HH:MM:SS`` (UTC), which is what ib_async's
    ``util.formatIBDatetime`` and IB's documentation produce. ValueError for anything else.
    """
    text = text.strip()
    if not text:
        return None
    match = _END_DATE_TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"end date/time {text!r} is not YYYYMMDD HH:MM:SS [zone]")
    day, separator, clock, zone_name = match.groups()
    if separator == "-" and zone_name:
        raise ValueError(f"end date/time {text!r}: the dashed form is UTC and takes no zone")
    try:
        zone = ZoneInfo(zone_name) if zone_name else UTC
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"end date/time {text!r}: unknown time zone") from exc
    naive = datetime.strptime(day + clock, "%Y%m%d%H:%M:%S")  # noqa: DTZ007 - zone set next
    return naive.replace(tzinfo=zone)


def format_header_date(moment: datetime) -> str:
    """A start or end date of the historicalData header: ``YYYYMMDD  HH:MM:SS`` in UTC."""
    return moment.astimezone(UTC).strftime("%Y%m%d  %H:%M:%S")


def format_bar_date(start: datetime, format_date: str, *, daily: bool) -> str:
    """A bar's date as IB sends it for ``format_date`` (1: UTC wall clock, 2: epoch seconds);
    ``YYYYMMDD`` for daily and longer bars."""
    if daily:
        return start.astimezone(UTC).strftime("%Y%m%d")
    if format_date.strip() == "2":
        return str(int(start.timestamp()))
    return format_header_date(start)


def bars_before(bars: tuple[HistoryBar, ...], end: datetime | None) -> list[HistoryBar]:
    """The bars (sorted by start) that start before ``end``; all of them for None."""
    return [bar for bar in bars if end is None or bar.start < end]
