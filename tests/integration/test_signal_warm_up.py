"""Warm-up: a daemon started mid-day primed from the morning's recording has the same bar
signals at the close as one that saw the whole day; the futures' series restart at a roll."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from monitor import bundled
from monitor.config import PricingConfig
from monitor.domain.instruments import NEW_YORK
from monitor.errors import ReplayFormatError
from monitor.feeds.replay import ReplayReader
from monitor.pipeline import Pipeline
from monitor.portfolio.model import load_portfolio
from monitor.signals.board import Prices, SignalBoard
from monitor.signals.warmup import recent_recordings, warm_up

NOON = datetime(2026, 3, 3, 12, 0, tzinfo=NEW_YORK)


def split_day(tmp_path: Path) -> tuple[Path, Path]:
    """The bundled day cut at noon into a morning and an afternoon file."""
    with gzip.open(bundled.SESSION, "rb") as f:
        header, *events = f.read().splitlines()
    morning = [e for e in events if datetime.fromisoformat(json.loads(e)["t"]) < NOON]
    afternoon = events[len(morning) :]
    paths = (tmp_path / "2026-03-03.jsonl", tmp_path / "afternoon.jsonl")
    for path, lines in zip(paths, (morning, afternoon), strict=True):
        path.write_bytes(b"\n".join([header, *lines]) + b"\n")
    return paths


def replay(session: Path, warm: list[Path]) -> Pipeline:
    reader = ReplayReader(session)
    pipeline = Pipeline(
        universe=reader.header.instruments,
        portfolio=load_portfolio(bundled.PORTFOLIO),
        rules=[],
        pricing=PricingConfig(),
    )
    if warm:
        warm_up(pipeline.signals, warm, NOON)

    for batch in reader.batches():
        pipeline.step(batch)
    return pipeline


def test_warm_up_from_the_morning_recording_equals_the_whole_day(tmp_path: Path) -> None:
    morning, afternoon = split_day(tmp_path)
    whole = replay(bundled.SESSION, [])
    cold = replay(afternoon, [])
    warm = replay(afternoon, [morning])
    assert whole.latest is not None
    assert cold.latest is not None
    assert warm.latest is not None
    expected, got = whole.latest.signals, warm.latest.signals
    assert expected is not None
    assert got is not None
    for series in ("spx", "vix", "vx1", "vx2"):
        assert got.indicator(series) == expected.indicator(series), series
        # Cold, MACD has 4 hours of bars (48): a value, but not the whole day's.
        assert cold.latest.signals.indicator(series).macd != expected.indicator(series).macd
    assert got.breadth == expected.breadth
    assert len(warm.signals.indicators["vx1"].bars.history) == len(
        whole.signals.indicators["vx1"].bars.history
    )


def test_recent_recordings_are_found_oldest_first(tmp_path: Path) -> None:
    for name in (
        "2026-03-01.jsonl",
        "2026-03-03.jsonl",
        "2026-03-03-1.jsonl",
        "2026-03-03-10.jsonl",
        "2026-02-20.jsonl",
        "notes.txt",
        "2026-03-04.jsonl",
    ):
        (tmp_path / name).write_text("")  # fmt: skip
    found = recent_recordings(tmp_path, date(2026, 3, 3), 3)
    assert [p.name for p in found] == [
        "2026-03-01.jsonl",
        "2026-03-03.jsonl",
        "2026-03-03-1.jsonl",
        "2026-03-03-10.jsonl",
    ]
    assert recent_recordings(tmp_path, date(2026, 3, 3), 0) == []
    assert recent_recordings(tmp_path / "missing", date(2026, 3, 3), 3) == []


def test_a_bad_warm_up_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "2026-03-02.jsonl"
    bad.write_text('{"format": "something-else"}\n')
    with pytest.raises(ReplayFormatError, match=r"2026-03-02\.jsonl"):
        warm_up(SignalBoard(), [bad], NOON)


def test_futures_series_restart_when_vx1_settles() -> None:
    board = SignalBoard()
    start = datetime(2026, 3, 17, 9, 30, tzinfo=NEW_YORK)
    for i in range(40):
        moment = start + timedelta(minutes=5 * i, seconds=10)
        board.prices(moment, Prices(6800.0, 16.0 + i % 3, 17.0 + i % 2, 18.0, 0.0, "VX 20260318"))
    assert len(board.indicators["vx1"].bars.history) == 39
    vix_bars = len(board.indicators["vix"].bars.history)
    after = start + timedelta(days=1, minutes=10)
    board.prices(after, Prices(6800.0, 16.0, 18.0, 18.5, 0.0, "VX 20260415"))
    assert len(board.indicators["vx1"].bars.history) == 0  # April is a new series
    assert len(board.indicators["vx2"].bars.history) == 0
    assert len(board.indicators["vix"].bars.history) == vix_bars + 1  # spot VIX goes on
