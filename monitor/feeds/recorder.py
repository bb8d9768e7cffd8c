"""Writes replay format v1 (docs/replay-format.md): the generator's files and live recordings.

A recording is one plain JSON Lines file per New York session day, named
``YYYY-MM-DD.jsonl`` in the recording directory (``YYYY-MM-DD-2.jsonl`` and so on when a
restarted daemon records the same day again, since its header may declare other
instruments). Each line is written through at once, so a killed daemon leaves a file that
replays up to its last complete line.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import IO, Any

import structlog

from monitor.domain.instruments import NEW_YORK, Instrument
from monitor.domain.quotes import EventBatch, FeedGreeks, IndexValue, Quote
from monitor.feeds.replay import FORMAT_NAME, FORMAT_VERSION, instrument_terms

log = structlog.get_logger(__name__)


def line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=True) + "\n").encode()


def header(session_date: date, source: str, instruments: Iterable[Instrument]) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "session_date": session_date.isoformat(),
        "source": source,
        "instruments": [instrument_terms(i) for i in instruments],
    }


def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _model(greeks: FeedGreeks) -> dict[str, float]:
    fields = {
        "iv": greeks.iv,
        "delta": greeks.delta,
        "gamma": greeks.gamma,
        "vega": greeks.vega,
        "theta": greeks.theta,
        "underlying": greeks.underlying,
    }
    return {k: v for k, v in fields.items() if v is not None and math.isfinite(v)}


def event_records(batch: EventBatch) -> list[dict[str, Any]]:
    t = batch.time.astimezone(NEW_YORK).isoformat(timespec="milliseconds")
    out: list[dict[str, Any]] = []
    for event in batch.events:
        if isinstance(event, IndexValue):
            out.append({"t": t, "type": "index", "id": event.instrument, "value": event.value})
            continue
        record: dict[str, Any] = {"t": t, "type": "quote", "id": event.instrument}
        for key in ("bid", "ask", "bid_size", "ask_size", "last"):
            value = _num(getattr(event, key))
            if value is not None:
                record[key] = value
        if isinstance(event, Quote) and event.feed_greeks is not None:
            model = _model(event.feed_greeks)
            if model:
                record["model"] = model
        out.append(record)
    return out


class SessionRecorder:
    """Appends batches to the file of their session day, starting a new file each day."""

    def __init__(self, directory: Path, instruments: Iterable[Instrument], source: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.instruments = tuple(instruments)
        self.source = source
        self.files: list[Path] = []
        self._day: date | None = None
        self._out: IO[bytes] | None = None
        self.unrecorded_batches = 0  # lost to write errors
        self._failing = False

    def _open(self, day: date) -> IO[bytes]:
        self.close()
        path = self.directory / f"{day.isoformat()}.jsonl"
        n = 1
        while path.exists():
            n += 1
            path = self.directory / f"{day.isoformat()}-{n}.jsonl"
        out = path.open("wb", buffering=0)
        out.write(line(header(day, self.source, self.instruments)))
        self._day, self._out = day, out
        self.files.append(path)
        return out

    def redeclare(self, instruments: Iterable[Instrument]) -> None:
        """New instruments (a changed book): the next batch starts a new file declaring them."""
        self.instruments = tuple(instruments)
        self.close()
        self._day = None

    def write(self, batch: EventBatch) -> None:
        """Appends the batch. A write that fails (a full disk) never stops the run: the batch
        is counted as not recorded, and the next one starts a new file (a line cut short
        stays one bad line of the old file)."""
        day = batch.time.astimezone(NEW_YORK).date()
        try:
            out = self._out if day == self._day and self._out is not None else self._open(day)
            out.write(b"".join(line(r) for r in event_records(batch)))
        except OSError as exc:
            self.unrecorded_batches += 1
            if not self._failing:
                log.exception(
                    "recording_failed",
                    directory=str(self.directory),
                    error=exc.strerror or str(exc),
                    note="alerts go on; recording resumes in a new file when it can",
                )
            self._failing = True
            with contextlib.suppress(OSError):
                self.close()
            self._out, self._day = None, None
            return
        if self._failing:
            log.warning("recording_resumed", file=str(self.files[-1]))
            self._failing = False

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
