"""Reader of replay format v1 (docs/replay-format.md): JSON Lines, optionally gzip-compressed.

A missing or wrong header stops the reader with ReplayFormatError: without it no event can be
interpreted. A bad event line is reported with its line number and reason, counted and skipped.
A gzip stream cut short ends the replay with ``truncated`` set and the loss reported.

Time order (docs/replay-format.md, "Time order"): a line earlier than the last accepted one is
one bad line; so is a line far ahead of it that the lines after it do not follow, while a real
gap in the feed, which the lines after it confirm, is accepted. Deciding a jump takes a few
lines of look-ahead, never more than the jump's own batch and ``JUMP_CONFIRMING_LINES``.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import structlog

from monitor.domain.instruments import NEW_YORK, Instrument, Kind, parse_instrument_id
from monitor.domain.quotes import Event, EventBatch, FeedGreeks, IndexValue, Quote
from monitor.errors import ReplayFormatError
from monitor.pricing.expiry import settlement

FORMAT_NAME = "condor-replay"
FORMAT_VERSION = 1
GZIP_MAGIC = b"\x1f\x8b"
HEADER_KEYS = {"format", "version", "session_date", "source", "instruments"}
QUOTE_KEYS = {"t", "type", "id", "bid", "ask", "bid_size", "ask_size", "last", "model"}
INDEX_KEYS = {"t", "type", "id", "value"}
MODEL_KEYS = {"iv", "delta", "gamma", "vega", "theta", "underlying"}
KEPT_BAD_LINE_DETAILS = 50
# A line more than this ahead of the last accepted one is a jump: accepted once
# JUMP_CONFIRMING_LINES later lines follow it, one bad line ("time jump") otherwise.
JUMP_SECONDS = 300
JUMP_CONFIRMING_LINES = 3
TIME_JUMP = "time jump"
TIME_GOES_BACKWARDS = "time goes backwards"

log = structlog.get_logger(__name__)


def instrument_terms(inst: Instrument) -> dict[str, Any]:
    """The contract terms a header declares for an instrument (and the reader checks)."""
    terms: dict[str, Any] = {"id": inst.id, "kind": inst.kind.value, "multiplier": inst.multiplier}
    if inst.expiry is not None:
        terms["expiry"] = inst.expiry.isoformat()
        terms["settlement"] = inst.settlement.value if inst.settlement else None
    if inst.kind is Kind.OPTION:
        terms["class"] = inst.root
        terms["right"] = inst.right.value if inst.right else None
        terms["strike"] = inst.strike
        terms["underlying"] = inst.underlying
    return terms


@dataclass(frozen=True, slots=True)
class Header:
    session_date: date
    source: str
    instruments: dict[str, Instrument]


@dataclass(slots=True)
class ReplayStats:
    """What the reader saw: the replay summary and the metrics read these counts."""

    lines: int = 0
    events: int = 0
    batches: int = 0
    bad_lines: int = 0
    bad_by_reason: Counter[str] = field(default_factory=Counter)
    bad_details: list[tuple[int, str]] = field(default_factory=list)
    truncated: bool = False
    truncation_reason: str | None = None


class BadLineError(ValueError):
    """One event line that cannot be used; ``kind`` groups the reasons for the summary."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        super().__init__(detail)


def _open(path: Path) -> io.BufferedIOBase:
    """Opens plain or gzip JSON Lines, recognised by the gzip magic bytes, not the name."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else path.open("rb")


def _number(obj: dict[str, Any], key: str, *, negative_ok: bool = False) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is float and math.isfinite(value) and (value >= 0.0 or negative_ok):
        return value  # the usual case, checked in one step
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadLineError("bad field", f"field {key!r} is not a number: {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer literal beyond the float range
        raise BadLineError("infinite price", f"field {key!r} is too large") from None
    if math.isnan(number):
        raise BadLineError("NaN price", f"field {key!r} is NaN")
    if math.isinf(number):
        raise BadLineError("infinite price", f"field {key!r} is infinite")
    if number < 0 and not negative_ok:
        raise BadLineError("negative price", f"field {key!r} is negative ({number:g})")
    return number


def _timestamp(obj: dict[str, Any], session: date) -> datetime:
    text = obj.get("t")
    if not isinstance(text, str):
        raise BadLineError("bad timestamp", "field 't' (timestamp) is missing or not a string")
    return _stamp(text, session)


@lru_cache(maxsize=64)
def _stamp(text: str, session: date) -> datetime:
    """The time of ``text`` (a batch's lines share one: parsed once; errors are not cached)."""
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise BadLineError("bad timestamp", f"field 't' is not ISO 8601: {text!r}") from None
    if stamp.tzinfo is None:
        raise BadLineError("bad timestamp", f"field 't' has no UTC offset: {text!r}")
    try:
        day = stamp.astimezone(NEW_YORK).date()
    except OverflowError:  # year 1 or 9999 shifted past the calendar's ends
        raise BadLineError("bad timestamp", f"field 't' is out of range: {text!r}") from None
    if day != session:
        raise BadLineError(
            "bad timestamp", f"timestamp {text} is not on the session date {session.isoformat()}"
        )
    return stamp


def _feed_greeks(value: Any) -> FeedGreeks | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadLineError("bad field", "field 'model' is not an object")
    unknown = set(value) - MODEL_KEYS
    if unknown:
        raise BadLineError("unknown field", f"unknown field(s) in 'model': {sorted(unknown)}")
    return FeedGreeks(
        iv=_number(value, "iv"),
        delta=_number(value, "delta", negative_ok=True),
        gamma=_number(value, "gamma", negative_ok=True),
        vega=_number(value, "vega", negative_ok=True),
        theta=_number(value, "theta", negative_ok=True),
        underlying=_number(value, "underlying"),
    )


def parse_event(obj: Any, header: Header) -> tuple[datetime, Event]:
    """Validates one decoded event line; raises BadLineError naming the field at fault."""
    if not isinstance(obj, dict):
        raise BadLineError("not an object", "the line is not a JSON object")
    stamp = _timestamp(obj, header.session_date)
    kind = obj.get("type")
    inst_id = obj.get("id")
    if not isinstance(inst_id, str):
        raise BadLineError("bad field", "field 'id' (instrument) is missing or not a string")
    inst = header.instruments.get(inst_id)
    if inst is None:
        raise BadLineError(
            "unknown instrument", f"unknown instrument {inst_id!r} (not declared in the header)"
        )
    if kind == "index":
        if not obj.keys() <= INDEX_KEYS:
            unknown = set(obj) - INDEX_KEYS
            raise BadLineError("unknown field", f"unknown field(s) {sorted(unknown)}")
        if inst.kind is not Kind.INDEX:
            raise BadLineError("wrong type", f"{inst_id!r} is a {inst.kind.value}, not an index")
        value = _number(obj, "value", negative_ok=inst.allows_negative)
        if value is None:
            raise BadLineError("bad field", "field 'value' is missing")
        return stamp, IndexValue(inst_id, value)
    if kind == "quote":
        if not obj.keys() <= QUOTE_KEYS:
            unknown = set(obj) - QUOTE_KEYS
            raise BadLineError("unknown field", f"unknown field(s) {sorted(unknown)}")
        if inst.kind is Kind.INDEX:
            raise BadLineError("wrong type", f"{inst_id!r} is an index: it has values, not quotes")
        quote = Quote(
            inst_id,
            bid=_number(obj, "bid"),
            ask=_number(obj, "ask"),
            bid_size=_number(obj, "bid_size"),
            ask_size=_number(obj, "ask_size"),
            last=_number(obj, "last"),
            feed_greeks=_feed_greeks(obj.get("model")),
        )
        return stamp, quote
    raise BadLineError("bad field", f"field 'type' must be 'quote' or 'index', not {kind!r}")


class _Line(NamedTuple):
    """An event line that parsed, waiting for the time-order check."""

    number: int
    stamp: datetime
    event: Event


def _backwards(stamp: datetime, previous: datetime) -> str:
    return f"timestamp {stamp.isoformat()} is before {previous.isoformat()}"


class _TimeOrder:
    """Decides which event lines come in time order (docs/replay-format.md, "Time order").

    ``accepted`` is the time of the last accepted line. A line more than ``JUMP_SECONDS``
    after it, or the first event line of the file, is held as the candidate of a new time,
    with the lines after it, until ``JUMP_CONFIRMING_LINES`` of them are later than it
    (accepted) or one goes on from the old time (every held line is a bad line). The reader
    checks the common case, a line at or shortly after ``accepted``, itself.
    """

    def __init__(self, bad: Callable[[int, str, str], None]) -> None:
        self.accepted: datetime | None = None
        self.horizon: datetime | None = None  # accepted + JUMP_SECONDS
        self.held: list[_Line] = []  # the candidate first, then the lines after it
        self._later = 0  # held lines later than the candidate
        self._bad = bad

    def accept(self, stamp: datetime) -> None:
        self.accepted = stamp
        self.horizon = stamp + timedelta(seconds=JUMP_SECONDS)

    def push(self, line: _Line) -> list[_Line]:
        """The lines accepted now that ``line`` has arrived, in file order."""
        return self._run(deque([line]))

    def finish(self) -> list[_Line]:
        """At the end of the file: the held lines, accepted or refused for good."""
        out: list[_Line] = []
        while self.held:
            group, self.held = self.held, []
            if self.accepted is None:  # the file's first lines: nothing went before them
                self.accept(group[0].stamp)
                out.append(group[0])
                out += self._run(deque(group[1:]))
            else:
                self._refuse(
                    group,
                    f"and the file ends before {JUMP_CONFIRMING_LINES} later lines follow it",
                )
        return out

    def _run(self, queue: deque[_Line]) -> list[_Line]:
        out: list[_Line] = []
        while queue:
            line = queue.popleft()
            stamp, accepted = line.stamp, self.accepted
            if not self.held:
                if accepted is not None and stamp < accepted:
                    self._bad(line.number, TIME_GOES_BACKWARDS, _backwards(stamp, accepted))
                elif accepted is not None and self.horizon is not None and stamp <= self.horizon:
                    self.accept(stamp)
                    out.append(line)
                else:
                    self.held = [line]
                    self._later = 0
                continue
            candidate = self.held[0].stamp
            if stamp >= candidate:
                self.held.append(line)
                if stamp > candidate:
                    self._later += 1
                if self._later == JUMP_CONFIRMING_LINES:  # confirmed: a real gap in the feed
                    group, self.held = self.held, []
                    self.accept(candidate)
                    out.append(group[0])
                    queue.extendleft(reversed(group[1:]))  # checked again, from the new time
                continue
            if accepted is None:  # the first line is the candidate
                refutes = candidate - stamp > timedelta(seconds=JUMP_SECONDS)
            else:
                refutes = stamp >= accepted
            if refutes:
                self._refuse(self.held, f"and line {line.number} goes on from an earlier time")
                self.held = []
                queue.appendleft(line)  # checked again, against the old time
            else:
                self._bad(
                    line.number, TIME_GOES_BACKWARDS, _backwards(stamp, accepted or candidate)
                )
        return out

    def _refuse(self, held: list[_Line], why: str) -> None:
        for line in held:
            if self.accepted is None:
                ahead = f"is more than {JUMP_SECONDS} s ahead of the lines after it"
            else:
                since = self.accepted
                ahead = f"jumps {_span(line.stamp - since)} ahead of {since.isoformat()}"
            self._bad(line.number, TIME_JUMP, f"timestamp {line.stamp.isoformat()} {ahead}, {why}")


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _decode(line: bytes) -> Any:
    """One JSON value. Raises ValueError for everything that is not: json's own errors, bytes
    that are not UTF-8, integers past Python's digit limit, and nesting too deep to decode."""
    try:
        return json.loads(line)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def parse_header(line: bytes, path: Path) -> Header:
    def fail(reason: str) -> ReplayFormatError:
        return ReplayFormatError(path, f"header: {reason}", line=1)

    try:
        obj = _decode(line)
    except ValueError as exc:
        raise fail(f"not JSON ({exc})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
        raise fail(f"the first line must be a header object with format {FORMAT_NAME!r}")
    if obj.get("version") != FORMAT_VERSION:
        raise fail(
            f"unsupported version {obj.get('version')!r} (this reader reads {FORMAT_VERSION})"
        )
    unknown = set(obj) - HEADER_KEYS
    if unknown:
        raise fail(f"unknown field(s) {sorted(unknown)}")
    try:
        session = date.fromisoformat(str(obj.get("session_date")))
    except ValueError:
        raise fail(f"session_date {obj.get('session_date')!r} is not YYYY-MM-DD") from None
    entries = obj.get("instruments")
    if not isinstance(entries, list) or not entries:
        raise fail("'instruments' must be a non-empty list")
    instruments: dict[str, Instrument] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise fail(f"instruments[{index}] must be an object with a string 'id'")
        try:
            inst = parse_instrument_id(entry["id"])
            if inst.expiry is not None:
                settlement(inst)
        except ValueError as exc:
            raise fail(f"instruments[{index}]: {exc}") from None
        expected = instrument_terms(inst)
        for key in set(expected) | set(entry):
            if key not in expected:
                raise fail(f"instruments[{index}] {inst.id!r}: unknown field {key!r}")
            if key not in entry:
                raise fail(f"instruments[{index}] {inst.id!r}: missing field {key!r}")
            if entry[key] != expected[key]:
                raise fail(
                    f"instruments[{index}] {inst.id!r}: {key} {entry[key]!r} contradicts the "
                    f"contract facts ({expected[key]!r})"
                )
        if inst.id in instruments:
            raise fail(f"instruments[{index}]: {inst.id!r} is declared twice")
        instruments[inst.id] = inst
    for inst in instruments.values():
        if inst.underlying is not None and inst.underlying not in instruments:
            raise fail(f"{inst.id!r}: its underlying {inst.underlying!r} is not declared")
    source = obj.get("source", "")
    return Header(session, str(source), instruments)


class ReplayReader:
    """Iterates a replay file as batches of events that share a timestamp."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stats = ReplayStats()
        if not path.is_file():
            raise ReplayFormatError(path, "no such replay file")
        with _open(path) as stream:
            try:
                first = stream.readline()
            except (OSError, EOFError, zlib.error) as exc:
                raise ReplayFormatError(path, f"cannot read the header ({exc})", line=1) from None
        if not first.strip():
            raise ReplayFormatError(path, "header: the file is empty", line=1)
        self.header = parse_header(first, path)

    def _bad(self, line_no: int, kind: str, detail: str) -> None:
        self.stats.bad_lines += 1
        self.stats.bad_by_reason[kind] += 1
        if len(self.stats.bad_details) < KEPT_BAD_LINE_DETAILS:
            self.stats.bad_details.append((line_no, detail))
        log.warning("replay_bad_line", file=str(self.path), line=line_no, reason=detail)

    def _lines(self, stream: io.BufferedIOBase) -> Iterator[tuple[int, bytes]]:
        line_no = 0
        try:
            for raw in stream:
                line_no += 1
                yield line_no, raw
        except (EOFError, zlib.error, OSError) as exc:
            self.stats.truncated = True
            self.stats.truncation_reason = (
                f"compressed stream cut short after line {line_no} ({exc}); "
                "the rest of the session is lost"
            )
            log.error(  # noqa: TRY400 - the cut is the news; a traceback adds nothing
                "replay_truncated", file=str(self.path), after_line=line_no, reason=str(exc)
            )

    def batches(self) -> Iterator[EventBatch]:
        """The events in time order, a batch per time stamp; read lazily, line by line."""
        previous: datetime | None = None
        pending: list[Event] = []
        for _number, stamp, event in self._in_order():
            if stamp != previous and pending and previous is not None:
                yield self._batch(previous, pending)
                pending = []
            previous = stamp
            pending.append(event)
            self.stats.events += 1
        if pending and previous is not None:
            yield self._batch(previous, pending)

    def _in_order(self) -> Iterator[_Line]:
        """The event lines that parse and come in time order; the others reported as bad."""
        order = _TimeOrder(self._bad)
        with _open(self.path) as stream:
            lines = self._lines(stream)
            next(lines, None)  # the header, already parsed
            for line_no, raw in lines:
                self.stats.lines += 1
                if not raw.strip():
                    continue
                try:
                    try:
                        obj = _decode(raw)
                    except ValueError as exc:
                        raise BadLineError("malformed JSON", f"malformed JSON: {exc}") from None
                    stamp, event = parse_event(obj, self.header)
                except BadLineError as exc:
                    self._bad(line_no, exc.kind, str(exc))
                    continue
                accepted, horizon = order.accepted, order.horizon
                if (
                    not order.held
                    and accepted is not None
                    and horizon is not None
                    and accepted <= stamp <= horizon
                ):  # the usual case: at or shortly after the line before
                    if stamp != accepted:
                        order.accept(stamp)
                    yield _Line(line_no, stamp, event)
                else:
                    yield from order.push(_Line(line_no, stamp, event))
        yield from order.finish()

    def _batch(self, stamp: datetime, events: list[Event]) -> EventBatch:
        self.stats.batches += 1
        return EventBatch(stamp, tuple(events))
