"""Recording in replay format v1: what is written reads back as the same batches."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

from monitor import bundled
from monitor.domain.instruments import NEW_YORK
from monitor.domain.quotes import EventBatch, FeedGreeks, Quote
from monitor.feeds.recorder import SessionRecorder
from monitor.feeds.replay import ReplayReader


def test_recording_reads_back_as_the_same_batches(tmp_path: Path) -> None:
    source = ReplayReader(bundled.SESSION)
    batches = list(islice(source.batches(), 300))
    instruments = list(source.header.instruments.values())
    with_model = EventBatch(
        batches[-1].time + timedelta(seconds=1),
        (
            Quote(
                "SPX 20260417 P6425",
                31.9,
                32.4,
                12,
                7,
                32.1,
                FeedGreeks(iv=0.171, delta=-0.148, gamma=0.00031, vega=6.2, theta=-1.4),
            ),
        ),
    )
    recorder = SessionRecorder(tmp_path, instruments, "test recording")
    for batch in [*batches, with_model]:
        recorder.write(batch)
    recorder.close()
    (path,) = recorder.files
    assert path.name == "2026-03-03.jsonl"
    reader = ReplayReader(path)
    assert reader.header.source == "test recording"
    assert list(reader.batches()) == [*batches, with_model]
    assert reader.stats.bad_lines == 0


def test_a_new_day_starts_a_new_file_and_a_restart_does_not_overwrite(tmp_path: Path) -> None:
    source = ReplayReader(bundled.SESSION)
    instruments = list(source.header.instruments.values())
    first = next(iter(source.batches()))
    day_two = EventBatch(datetime(2026, 3, 4, 9, 30, tzinfo=NEW_YORK), first.events)
    recorder = SessionRecorder(tmp_path, instruments, "a")
    recorder.write(first)
    recorder.write(day_two)
    recorder.close()
    again = SessionRecorder(tmp_path, instruments, "b")
    again.write(first)
    again.close()
    names = [p.name for p in (*recorder.files, *again.files)]
    assert names == ["2026-03-03.jsonl", "2026-03-04.jsonl", "2026-03-03-2.jsonl"]
    assert [len(list(ReplayReader(tmp_path / n).batches())) for n in names] == [1, 1, 1]
