"""Replay files: whatever the bytes, a line is counted and skipped with a reason, or the file
is refused with ReplayFormatError naming it and line 1; nothing else (docs/replay-format.md)."""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz.conftest import FUZZ
from fuzz.strategies import JSON_VALUES, NUMBERS, mutated_lines, mutated_mapping
from monitor import bundled
from monitor.domain.quotes import Event, IndexValue, Quote
from monitor.errors import InputError, ReplayFormatError
from monitor.feeds.replay import (
    JUMP_CONFIRMING_LINES,
    JUMP_SECONDS,
    BadLineError,
    Header,
    ReplayReader,
    parse_event,
    parse_header,
)

# The reasons docs/replay-format.md gives for a skipped line, as the summary counts them.
BAD_LINE_KINDS = {
    "malformed JSON",
    "not an object",
    "bad field",
    "unknown field",
    "wrong type",
    "unknown instrument",
    "NaN price",
    "infinite price",
    "negative price",
    "bad timestamp",
    "time goes backwards",
    "time jump",
}


def _bundled_lines(count: int) -> list[bytes]:
    with gzip.open(bundled.SESSION, "rb") as stream:
        return [line.rstrip(b"\n") for line in islice(stream, count)]


SESSION_LINES = _bundled_lines(400)
HEADER_LINE = SESSION_LINES[0]
HEADER_OBJ: dict[str, Any] = json.loads(HEADER_LINE)
HEADER = parse_header(HEADER_LINE, Path("bundled"))
EVENT_OBJS: list[dict[str, Any]] = [json.loads(line) for line in SESSION_LINES[1:]]
QUOTES = [e for e in EVENT_OBJS if e["type"] == "quote"]
INDEXES = [e for e in EVENT_OBJS if e["type"] == "index"]
assert QUOTES
assert INDEXES

# Values that sit where a valid one would: other ids, other timestamps, numbers at the edges.
FIELD_VALUES = st.one_of(
    JSON_VALUES,
    NUMBERS,
    st.sampled_from(sorted(HEADER.instruments)),
    st.sampled_from(["quote", "index", "QUOTE", None]),
    st.sampled_from(
        [
            "2026-03-03T10:00:00-05:00",
            "2026-03-03T10:00:00",
            "2026-03-04T10:00:00-05:00",
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00",
            "2026-03-03T10:00:00+23:59",
            "2026-03-03",
            "",
        ]
    ),
)
EVENTS = st.one_of(
    st.sampled_from(EVENT_OBJS),
    st.sampled_from(QUOTES).flatmap(lambda q: mutated_mapping(q, FIELD_VALUES)),
    st.sampled_from(INDEXES).flatmap(lambda i: mutated_mapping(i, FIELD_VALUES)),
    JSON_VALUES,
)


def _line(obj: Any) -> bytes:
    # Python's json writes NaN and Infinity, as a careless writer would.
    return json.dumps(obj).encode("utf-8", "surrogatepass")


@st.composite
def event_lines(draw: st.DrawFn) -> bytes:
    """One event line: valid, mutated, or not JSON at all."""
    kind = draw(st.sampled_from(["json", "json", "bytes", "text"]))
    if kind == "json":
        return _line(draw(EVENTS))
    if kind == "bytes":
        return draw(st.binary(max_size=80)).replace(b"\n", b" ")
    line = draw(st.sampled_from(SESSION_LINES[1:])).decode()
    text = draw(mutated_lines(line)).rstrip("\n").replace("\n", " ")
    return text.encode("utf-8", "surrogatepass")


def check_event(stamp: datetime, event: Event, header: Header) -> None:
    """An event the reader accepts: declared, on the session day, every number usable."""
    assert stamp.tzinfo is not None
    inst = header.instruments[event.instrument]
    if isinstance(event, IndexValue):
        assert math.isfinite(event.value)
        assert event.value >= 0 or inst.allows_negative
        return
    assert isinstance(event, Quote)
    numbers = [event.bid, event.ask, event.bid_size, event.ask_size, event.last]
    for number in numbers:
        assert number is None or (math.isfinite(number) and number >= 0)
    greeks = event.feed_greeks
    if greeks is not None:
        for number in (greeks.iv, greeks.delta, greeks.gamma, greeks.vega, greeks.theta):
            assert number is None or math.isfinite(number)
        assert greeks.underlying is None or (
            math.isfinite(greeks.underlying) and greeks.underlying >= 0
        )


@given(EVENTS)
@example({**QUOTES[0], "bid": 10**400})
@example({**QUOTES[0], "ask": float("nan")})
@example({**QUOTES[0], "t": "0001-01-01T00:00:00+05:00"})
@example({**QUOTES[0], "t": "9999-12-31T23:59:59-05:00"})
@example({**QUOTES[0], "model": {"iv": 10**400}})
@FUZZ
def test_event_is_valid_or_a_bad_line_with_a_reason(obj: Any) -> None:
    check_line(obj)


def check_line(obj: Any) -> None:
    try:
        stamp, event = parse_event(obj, HEADER)
    except BadLineError as exc:
        bad = exc
    else:
        check_event(stamp, event, HEADER)
        return
    assert bad.kind in BAD_LINE_KINDS
    assert str(bad)


@given(st.sampled_from(SESSION_LINES[1:]).map(bytes.decode).flatmap(mutated_lines))
@FUZZ
def test_mutated_line_text_is_valid_or_a_bad_line(text: str) -> None:
    try:
        obj = json.loads(text)
    except ValueError:
        return  # the reader counts it as malformed JSON; the file tests below check that
    check_line(obj)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-replay-") as name:
        yield Path(name)


def read(path: Path) -> tuple[ReplayReader, list[Event]] | None:
    """Reads ``path`` to the end, checking every documented outcome; None when refused."""
    try:
        reader = ReplayReader(path)
    except ReplayFormatError as exc:
        refused = exc
    else:
        return reader, read_batches(reader)
    assert refused.path == str(path)
    assert refused.line == 1
    assert str(refused).startswith(f"{path}:1: ")
    return None


def read_batches(reader: ReplayReader) -> list[Event]:
    """Every event of ``reader``, checking batches and the counts of the summary."""
    events: list[Event] = []
    previous: datetime | None = None
    for batch in reader.batches():
        assert batch.events
        assert previous is None or batch.time > previous
        previous = batch.time
        for event in batch.events:
            check_event(batch.time, event, reader.header)
        events.extend(batch.events)
    stats = reader.stats
    assert stats.events == len(events)
    assert stats.bad_lines == sum(stats.bad_by_reason.values())
    assert set(stats.bad_by_reason) <= BAD_LINE_KINDS
    assert len(stats.bad_details) == min(stats.bad_lines, 50)
    for line_no, detail in stats.bad_details:
        assert 2 <= line_no <= stats.lines + 1
        assert detail
    if stats.truncated:
        assert stats.truncation_reason
        assert "cut short" in stats.truncation_reason
    return events


@given(lines=st.lists(event_lines() | st.just(b""), max_size=25))
@example(lines=[b"[" * 5000, b"1" * 5000, b'{"t": ' + b"9" * 5000 + b"}"])
@FUZZ
def test_file_of_fuzzed_lines_skips_and_counts_what_is_bad(
    workdir: Path, lines: list[bytes]
) -> None:
    path = workdir / "session.jsonl"
    path.write_bytes(b"\n".join([HEADER_LINE, *lines]) + b"\n")
    result = read(path)
    assert result is not None  # the header is valid: the file is never refused
    reader, _events = result
    assert reader.stats.lines == len(lines)
    blank = sum(1 for line in lines if not line.strip())
    assert reader.stats.events + reader.stats.bad_lines + blank == len(lines)


@given(
    head=st.sampled_from([b"", HEADER_LINE + b"\n"]),
    body=st.binary(max_size=300),
    compress=st.booleans(),
)
@FUZZ
def test_file_of_random_bytes(workdir: Path, head: bytes, body: bytes, compress: bool) -> None:
    path = workdir / "random.jsonl"
    data = head + body
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    result = read(path)
    if head:
        assert result is not None


# Steps between time stamps: the same batch, ticks, a quiet minute, gaps around the jump limit.
STEPS = st.sampled_from([0, 0, 1, 1, 1, 60, JUMP_SECONDS - 1, JUMP_SECONDS, JUMP_SECONDS + 1, 1200])
OPEN = datetime.fromisoformat("2026-03-03T10:30:00-05:00")


@st.composite
def in_order_times(draw: st.DrawFn) -> list[datetime]:
    """Times in order, each gap longer than JUMP_SECONDS followed by enough later lines."""
    steps: list[int] = []
    for step in draw(st.lists(STEPS, min_size=1, max_size=30)):
        steps.append(step)
        if step > JUMP_SECONDS:
            steps += [1] * JUMP_CONFIRMING_LINES
    seconds = 0
    times = []
    for step in steps:
        seconds += step
        times.append(OPEN + timedelta(seconds=seconds))
    return times


def read_times(workdir: Path, times: list[datetime]) -> tuple[ReplayReader, list[float]]:
    """A file of SPX values (the value is the line's index) at ``times``; the values read."""
    lines = [
        _line({"t": stamp.isoformat(), "type": "index", "id": "SPX", "value": float(n)})
        for n, stamp in enumerate(times)
    ]
    path = workdir / "times.jsonl"
    path.write_bytes(b"\n".join([HEADER_LINE, *lines]) + b"\n")
    reader = ReplayReader(path)
    events = read_batches(reader)
    return reader, [e.value for e in events if isinstance(e, IndexValue)]


@given(in_order_times())
@FUZZ
def test_lines_in_order_are_all_kept_whatever_the_gaps(
    workdir: Path, times: list[datetime]
) -> None:
    reader, values = read_times(workdir, times)
    assert reader.stats.bad_lines == 0
    assert values == [float(n) for n in range(len(times))]


@given(in_order_times(), st.data())
@FUZZ
def test_one_line_far_ahead_is_the_only_bad_line(
    workdir: Path, times: list[datetime], data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(times)))
    ahead = max(times) + timedelta(seconds=data.draw(st.integers(JUMP_SECONDS + 1, 7200)))
    reader, values = read_times(workdir, [*times[:at], ahead, *times[at:]])
    assert reader.stats.bad_by_reason == {"time jump": 1}
    assert reader.stats.bad_details[0][0] == at + 2  # after the header and ``at`` lines
    assert values == [float(n) for n in range(len(times) + 1) if n != at]


@given(in_order_times(), st.data())
@FUZZ
def test_one_line_going_back_is_the_only_bad_line(
    workdir: Path, times: list[datetime], data: st.DataObject
) -> None:
    at = data.draw(st.integers(1, len(times)))
    back = times[0] - timedelta(seconds=data.draw(st.integers(1, JUMP_SECONDS)))
    reader, values = read_times(workdir, [*times[:at], back, *times[at:]])
    assert reader.stats.bad_by_reason == {"time goes backwards": 1}
    assert values == [float(n) for n in range(len(times) + 1) if n != at]


HEADER_VALUES = st.one_of(
    FIELD_VALUES,
    st.sampled_from(["condor-replay", 1, 2, "1", "2026-03-03", "2026-02-30", "26-03-03"]),
    st.lists(st.sampled_from(HEADER_OBJ["instruments"]), max_size=4),
)


@st.composite
def fuzzed_headers(draw: st.DrawFn) -> Any:
    obj = draw(mutated_mapping(HEADER_OBJ, HEADER_VALUES) | st.just(dict(HEADER_OBJ)))
    if isinstance(obj.get("instruments"), list) and obj["instruments"] and draw(st.booleans()):
        instruments = list(obj["instruments"])
        at = draw(st.integers(0, len(instruments) - 1))
        if isinstance(instruments[at], dict):
            instruments[at] = draw(
                mutated_mapping(instruments[at], HEADER_VALUES | st.from_regex(INSTRUMENT_ID))
            )
        obj["instruments"] = instruments
    return obj


# Contract ids, mostly well formed: odd dates (holidays, year 1 and 9999) and strikes.
INSTRUMENT_ID = (
    r"\A(SPX|SPXW|VIX|VX|AD-NYSE|XYZ)( (0001|2026|9999)[01][0-9][0-3][0-9])?( [CP][0-9.]{1,6})?\Z"
)


@given(fuzzed_headers())
@FUZZ
def test_header_is_valid_or_refused_naming_file_and_line_1(obj: Any) -> None:
    path = Path("fuzzed.jsonl")
    try:
        header = parse_header(_line(obj), path)
    except ReplayFormatError as exc:
        refused = exc
    else:
        assert header.instruments
        for inst in header.instruments.values():
            assert inst.underlying is None or inst.underlying in header.instruments
        return
    assert refused.line == 1
    assert str(refused).startswith("fuzzed.jsonl:1: header: ")


@given(st.sampled_from([HEADER_LINE.decode()]).flatmap(mutated_lines))
@FUZZ
def test_mutated_header_text_is_valid_or_refused(text: str) -> None:
    line = text.encode("utf-8", "surrogatepass")
    try:
        parse_header(line, Path("h.jsonl"))
    except ReplayFormatError as exc:
        refused = exc
    else:
        return
    assert str(refused).startswith("h.jsonl:1: header: ")


GZIPPED = gzip.compress(b"\n".join(SESSION_LINES[:80]) + b"\n", mtime=0)


@given(cut=st.integers(0, len(GZIPPED)), flip=st.none() | st.integers(0, len(GZIPPED) - 1))
@example(cut=len(GZIPPED) - 4, flip=None)  # the trailer's size field is missing
@example(cut=len(GZIPPED), flip=len(GZIPPED) - 6)  # a wrong CRC
@FUZZ
def test_truncated_or_corrupt_gzip(workdir: Path, cut: int, flip: int | None) -> None:
    data = bytearray(GZIPPED[:cut])
    if flip is not None and flip < len(data):
        data[flip] ^= 0x55
    path = workdir / "cut.jsonl.gz"
    path.write_bytes(bytes(data))
    result = read(path)
    if result is None or flip is not None:
        return
    reader, events = result
    full = [parse_event(json.loads(line), HEADER)[1] for line in SESSION_LINES[1:80]]
    assert events == full[: len(events)]
    assert reader.stats.bad_lines <= 1  # at most the line the cut went through
    assert reader.stats.truncated is (cut < len(GZIPPED))


def test_missing_file_is_an_input_error(workdir: Path) -> None:
    with pytest.raises(InputError, match="no such replay file") as caught:
        ReplayReader(workdir / "absent.jsonl")
    assert caught.value.path == str(workdir / "absent.jsonl")


@pytest.mark.parametrize(
    ("changes", "kind", "detail"),
    [
        ({"bid": 10**400}, "infinite price", "field 'bid' is too large"),
        ({"model": {"vega": -(10**400)}}, "infinite price", "field 'vega' is too large"),
        ({"t": "0001-01-01T00:00:00+05:00"}, "bad timestamp", "field 't' is out of range"),
        ({"t": "9999-12-31T23:59:59-05:00"}, "bad timestamp", "field 't' is out of range"),
    ],
)
def test_regression_events(changes: dict[str, Any], kind: str, detail: str) -> None:
    with pytest.raises(BadLineError) as caught:
        parse_event({**QUOTES[0], **changes}, HEADER)
    assert caught.value.kind == kind
    assert str(caught.value).startswith(detail)


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        (b"[" * 5000, "malformed JSON: nested too deeply"),
        (b"1" * 5000, "malformed JSON: Exceeds the limit (4300 digits)"),
    ],
)
def test_regression_lines(workdir: Path, line: bytes, detail: str) -> None:
    path = workdir / "regression.jsonl"
    path.write_bytes(HEADER_LINE + b"\n" + line + b"\n")
    reader = ReplayReader(path)
    assert list(reader.batches()) == []
    assert reader.stats.bad_by_reason == {"malformed JSON": 1}
    ((line_no, text),) = reader.stats.bad_details
    assert line_no == 2
    assert text.startswith(detail)


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        (b"[" * 5000, "header: not JSON (nested too deeply)"),
        (b"1" * 5000, "header: not JSON (Exceeds the limit (4300 digits)"),
    ],
)
def test_regression_headers(workdir: Path, line: bytes, detail: str) -> None:
    path = workdir / "regression-header.jsonl"
    path.write_bytes(line + b"\n")
    with pytest.raises(ReplayFormatError) as caught:
        ReplayReader(path)
    assert str(caught.value).startswith(f"{path}:1: {detail}")
