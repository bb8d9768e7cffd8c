"""Replay format v1 reader: every kind of bad input has its documented outcome."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import pytest
from conftest import WriteSession, header, t

from monitor.domain.quotes import IndexValue, Quote
from monitor.errors import ReplayFormatError
from monitor.feeds.replay import JUMP_CONFIRMING_LINES, JUMP_SECONDS, ReplayReader

GOOD_QUOTE = {"t": t(0), "type": "quote", "id": "SPX 20260417 P6425", "bid": 31.9, "ask": 32.4}
GOOD_INDEX = {"t": t(0), "type": "index", "id": "SPX", "value": 6800.25}


def read_all(path: Path) -> tuple[ReplayReader, list]:
    reader = ReplayReader(path)
    return reader, list(reader.batches())


def test_batches_group_events_by_timestamp(write_session: WriteSession) -> None:
    later = {**GOOD_INDEX, "t": t(5), "value": 6801.0}
    reader, batches = read_all(write_session([GOOD_INDEX, GOOD_QUOTE, later]))
    assert [len(b.events) for b in batches] == [2, 1]
    assert isinstance(batches[0].events[1], Quote)
    assert batches[0].events[1].bid == 31.9
    assert isinstance(batches[1].events[0], IndexValue)
    assert batches[1].events[0].value == 6801.0
    assert reader.stats.events == 3
    assert reader.stats.bad_lines == 0


def test_gzip_is_recognised_by_content(tmp_path: Path) -> None:
    path = tmp_path / "no-suffix"
    body = json.dumps(header()) + "\n" + json.dumps(GOOD_INDEX) + "\n"
    path.write_bytes(gzip.compress(body.encode()))
    _reader, batches = read_all(path)
    assert batches[0].events[0] == IndexValue("SPX", 6800.25)


def test_feed_model_greeks_are_kept(write_session: WriteSession) -> None:
    quote = {**GOOD_QUOTE, "model": {"iv": 0.17, "delta": -0.15, "underlying": 6823.5}}
    _reader, batches = read_all(write_session([quote]))
    event = batches[0].events[0]
    assert isinstance(event, Quote)
    assert event.feed_greeks is not None
    assert event.feed_greeks.delta == -0.15
    assert event.feed_greeks.gamma is None


@pytest.mark.parametrize(
    ("line", "kind", "fragment"),
    [
        (
            '{"t": "2026-03-03T09:30:00-05:00", "type": "quote", "id": ',
            "malformed JSON",
            "malformed JSON",
        ),
        ("[1, 2, 3]", "not an object", "not a JSON object"),
        (
            {**GOOD_QUOTE, "id": "SPX 20260417 P9999"},
            "unknown instrument",
            "unknown instrument 'SPX 20260417 P9999'",
        ),
        (
            (
                '{"t": "2026-03-03T09:30:00-05:00", "type": "quote", "id": "SPX 20260417 P6425", '
                '"bid": NaN, "ask": 32.4}'
            ),
            "NaN price",
            "field 'bid' is NaN",
        ),
        ({**GOOD_QUOTE, "ask": -1.5}, "negative price", "field 'ask' is negative (-1.5)"),
        ({**GOOD_INDEX, "value": -5.0}, "negative price", "field 'value' is negative"),
        (
            '{"t": "2026-03-03T09:30:00-05:00", "type": "index", "id": "VIX", "value": Infinity}',
            "infinite price",
            "infinite",
        ),
        ({**GOOD_QUOTE, "bid": "31.9"}, "bad field", "field 'bid' is not a number"),
        ({**GOOD_QUOTE, "bid": True}, "bad field", "field 'bid' is not a number"),
        ({**GOOD_QUOTE, "type": "trade"}, "bad field", "'quote' or 'index'"),
        ({**GOOD_QUOTE, "venue": "CBOE"}, "unknown field", "unknown field(s) ['venue']"),
        ({**GOOD_QUOTE, "t": "2026-03-03T09:30:00"}, "bad timestamp", "no UTC offset"),
        ({**GOOD_QUOTE, "t": "yesterday"}, "bad timestamp", "not ISO 8601"),
        ({**GOOD_QUOTE, "t": "2026-03-04T09:30:00-05:00"}, "bad timestamp", "session date"),
        ({**GOOD_QUOTE, "type": "index", "value": 3.0}, "unknown field", "unknown field"),
        (
            {"t": t(0), "type": "index", "id": "SPX 20260417 P6425", "value": 3.0},
            "wrong type",
            "not an index",
        ),
        (
            {"t": t(0), "type": "quote", "id": "SPX", "bid": 1.0, "ask": 2.0},
            "wrong type",
            "it has values, not quotes",
        ),
        ({**GOOD_QUOTE, "model": {"iv": 0.2, "rho": 1.0}}, "unknown field", "'model'"),
    ],
)
def test_bad_line_is_counted_skipped_and_named(
    write_session: WriteSession, line: dict | str, kind: str, fragment: str
) -> None:
    after = {**GOOD_INDEX, "t": t(1)}
    reader, batches = read_all(write_session([GOOD_INDEX, line, after]))
    assert reader.stats.bad_lines == 1
    assert reader.stats.bad_by_reason == {kind: 1}
    line_no, detail = reader.stats.bad_details[0]
    assert line_no == 3  # header is line 1, the good event line 2
    assert fragment in detail
    # The reader goes on: both good events arrive.
    assert [e for b in batches for e in b.events] == [
        IndexValue("SPX", 6800.25),
        IndexValue("SPX", 6800.25),
    ]


def test_negative_breadth_is_a_value_not_an_error(write_session: WriteSession) -> None:
    line = {"t": t(0), "type": "index", "id": "AD-NYSE", "value": -1850.0}
    reader, batches = read_all(write_session([line]))
    assert reader.stats.bad_lines == 0
    assert batches[0].events[0] == IndexValue("AD-NYSE", -1850.0)


def test_time_going_backwards_is_skipped(write_session: WriteSession) -> None:
    lines = [{**GOOD_INDEX, "t": t(10)}, {**GOOD_INDEX, "t": t(5)}, {**GOOD_INDEX, "t": t(11)}]
    reader, batches = read_all(write_session(lines))
    assert reader.stats.bad_by_reason == {"time goes backwards": 1}
    assert len(batches) == 2


def spx_at(*seconds: int) -> list[dict]:
    """An SPX value per time stamp (seconds after 09:30), the value telling them apart."""
    return [{**GOOD_INDEX, "t": t(s), "value": 6800.0 + n} for n, s in enumerate(seconds)]


def values(batches: list) -> list[float]:
    return [e.value for b in batches for e in b.events]


def test_one_line_far_ahead_is_one_bad_line_not_the_rest_of_the_file(
    write_session: WriteSession,
) -> None:
    # 11:00 among 09:45 lines: a clock glitch on one line, the file goes on at 09:45.
    seconds = [900, 901, 902, 5400, 903, 904, 905, 906, 907]
    reader, batches = read_all(write_session(spx_at(*seconds)))
    assert reader.stats.bad_by_reason == {"time jump": 1}
    ((line_no, detail),) = reader.stats.bad_details
    assert line_no == 5  # the header, three good lines, then the jump
    assert "jumps 75.0 min ahead of 2026-03-03T09:45:02-05:00" in detail
    assert "line 6 goes on from an earlier time" in detail
    assert values(batches) == [6800.0 + n for n in range(9) if n != 3]


def test_a_gap_in_the_feed_confirmed_by_the_lines_after_it_is_kept(
    write_session: WriteSession,
) -> None:
    seconds = [900, 901, 902, 2100, 2100, 2101, 2102, 2103, 2104]  # silent for 20 minutes
    reader, batches = read_all(write_session(spx_at(*seconds)))
    assert reader.stats.bad_lines == 0
    assert values(batches) == [6800.0 + n for n in range(9)]
    assert [len(b.events) for b in batches] == [1, 1, 1, 2, 1, 1, 1, 1]  # 10:05 is one batch


def test_a_jump_just_confirmed_and_one_just_not(write_session: WriteSession) -> None:
    after = list(range(2101, 2101 + JUMP_CONFIRMING_LINES))
    reader, _ = read_all(write_session(spx_at(900, 2100, *after)))
    assert reader.stats.bad_lines == 0
    reader, _ = read_all(write_session(spx_at(900, 2100, *after[:-1], 901)))
    assert reader.stats.bad_by_reason == {"time jump": JUMP_CONFIRMING_LINES}
    reader, _ = read_all(write_session(spx_at(900, 900 + JUMP_SECONDS, 901)))
    assert reader.stats.bad_by_reason == {"time goes backwards": 1}  # not a jump: accepted


def test_a_jump_at_the_end_of_the_file_is_one_bad_line(write_session: WriteSession) -> None:
    reader, batches = read_all(write_session(spx_at(900, 901, 902, 5400)))
    assert reader.stats.bad_by_reason == {"time jump": 1}
    ((line_no, detail),) = reader.stats.bad_details
    assert line_no == 5
    assert "the file ends before 3 later lines follow it" in detail
    assert values(batches) == [6800.0, 6801.0, 6802.0]


def test_a_whole_batch_stamped_ahead_is_refused_line_by_line(write_session: WriteSession) -> None:
    seconds = [900, 901, 5400, 5400, 5400, 5400, 902, 903]
    reader, batches = read_all(write_session(spx_at(*seconds)))
    assert reader.stats.bad_by_reason == {"time jump": 4}
    assert [n for n, _ in reader.stats.bad_details] == [4, 5, 6, 7]
    assert values(batches) == [6800.0, 6801.0, 6806.0, 6807.0]


def test_a_first_line_far_ahead_of_the_file_is_the_bad_one(write_session: WriteSession) -> None:
    reader, batches = read_all(write_session(spx_at(5400, 900, 901, 902, 903)))
    assert reader.stats.bad_by_reason == {"time jump": 1}
    assert reader.stats.bad_details[0][0] == 2
    assert values(batches) == [6801.0, 6802.0, 6803.0, 6804.0]


def test_a_line_going_back_while_a_jump_is_held_is_one_bad_line_of_its_own(
    write_session: WriteSession,
) -> None:
    seconds = [900, 910, 2100, 905, 2101, 2102, 2103]  # a gap, one line going back in it
    reader, batches = read_all(write_session(spx_at(*seconds)))
    assert reader.stats.bad_by_reason == {"time goes backwards": 1}
    assert reader.stats.bad_details[0][0] == 5
    assert values(batches) == [6800.0, 6801.0, 6802.0, 6804.0, 6805.0, 6806.0]


def test_bad_lines_while_a_jump_is_held_count_once_and_the_jump_goes_on(
    write_session: WriteSession,
) -> None:
    lines: list[dict | str] = [*spx_at(900, 2100), "{not json", *spx_at(2101, 2102, 2103)]
    reader, batches = read_all(write_session(lines))
    assert reader.stats.bad_by_reason == {"malformed JSON": 1}
    assert len(values(batches)) == 5


def test_a_sparse_file_is_kept_but_for_the_lines_nothing_can_confirm(
    write_session: WriteSession,
) -> None:
    seconds = [600 * n for n in range(11)]  # a line every ten minutes: each one a jump
    reader, batches = read_all(write_session(spx_at(*seconds)))
    assert values(batches) == [6800.0 + n for n in range(8)]
    assert reader.stats.bad_by_reason == {"time jump": JUMP_CONFIRMING_LINES}


def test_batches_are_read_lazily(write_session: WriteSession) -> None:
    reader = ReplayReader(write_session(spx_at(*range(900, 3900))))
    first = next(reader.batches())
    assert first.time == datetime.fromisoformat(t(900))
    assert reader.stats.lines <= JUMP_CONFIRMING_LINES + 2  # a look-ahead of a few lines


def test_crossed_zero_bid_and_one_sided_quotes_are_accepted_events(
    write_session: WriteSession,
) -> None:
    crossed = {**GOOD_QUOTE, "bid": 33.0, "ask": 32.0}
    zero = {**GOOD_QUOTE, "bid": 0.0}
    one_sided = {"t": t(0), "type": "quote", "id": "SPX 20260417 P6425", "bid": 31.0}
    reader, batches = read_all(write_session([crossed, zero, one_sided]))
    assert reader.stats.bad_lines == 0
    assert len(batches[0].events) == 3
    last = batches[0].events[2]
    assert isinstance(last, Quote)
    assert last.ask is None


def test_truncated_gzip_keeps_complete_lines_and_reports(tmp_path: Path) -> None:
    lines = [json.dumps(header())] + [
        json.dumps({**GOOD_INDEX, "t": t(i), "value": 6800.0 + i}) for i in range(2000)
    ]
    blob = gzip.compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(blob[: len(blob) // 2])
    reader, batches = read_all(path)
    assert reader.stats.truncated
    assert reader.stats.truncation_reason is not None
    assert "cut short" in reader.stats.truncation_reason
    values = [e.value for b in batches for e in b.events if isinstance(e, IndexValue)]
    assert 0 < len(values) < 2000
    assert values == [6800.0 + i for i in range(len(values))]  # nothing out of order or guessed


@pytest.mark.parametrize(
    ("first_line", "fragment"),
    [
        ("", "the file is empty"),
        ("this is not json", "not JSON"),
        (json.dumps({"format": "csv"}), "header object with format 'condor-replay'"),
        (json.dumps(header(version=2)), "unsupported version 2"),
        (json.dumps(header(session_date="March 3")), "session_date"),
        (json.dumps(header(instruments=[])), "non-empty list"),
        (json.dumps(header(colour="blue")), "unknown field(s) ['colour']"),
        (json.dumps(header(ids=["SPX", "SPX"])), "declared twice"),
        (
            json.dumps(header(ids=["SPX", "VIX 20260318 C22"])),
            "its underlying 'VX 20260318' is not declared",
        ),
        (
            json.dumps(header(ids=["SPX"]) | {"instruments": [{"id": "FOO 20260417 C1"}]}),
            "unknown option class 'FOO'",
        ),
        (json.dumps(GOOD_INDEX), "header object"),
    ],
)
def test_missing_or_wrong_header_is_an_error(
    tmp_path: Path, first_line: str, fragment: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(first_line + "\n" + json.dumps(GOOD_INDEX) + "\n")
    with pytest.raises(ReplayFormatError) as caught:
        ReplayReader(path)
    assert caught.value.line == 1
    assert str(path) in str(caught.value)
    assert fragment in str(caught.value)


def test_header_terms_that_contradict_contract_facts_are_refused(tmp_path: Path) -> None:
    head = header()
    head["instruments"][5]["multiplier"] = 10.0  # SPX options are $100 per point
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(head) + "\n")
    with pytest.raises(ReplayFormatError, match=r"multiplier 10.0 contradicts .*100.0"):
        ReplayReader(path)


def test_header_missing_a_term_is_refused(tmp_path: Path) -> None:
    head = header()
    del head["instruments"][5]["strike"]
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(head) + "\n")
    with pytest.raises(ReplayFormatError, match="missing field 'strike'"):
        ReplayReader(path)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReplayFormatError, match="no such replay file"):
        ReplayReader(tmp_path / "absent.jsonl")
