"""Warm-up: the bar signals primed from recorded sessions before the feed starts.

MACD (12, 26, 9) needs 34 bars and the hedge statistics a dozen; a daemon started mid-day
would otherwise be blind for hours. Recorded sessions (replay files, e.g. the ones
``[feed] record_dir`` writes) are read oldest first and their SPX, VIX, A/D and VIX futures
values fed to the price series, exactly as a replay would, up to ``until`` (the first
moment the feed will deliver). Hedge quality is not warmed: it needs the book's marks,
which a recording of another book does not give.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import structlog

from monitor.domain.instruments import Kind
from monitor.domain.quotes import EventBatch, IndexValue
from monitor.feeds.replay import ReplayReader
from monitor.market.state import MarketState
from monitor.signals.board import Prices, SignalBoard
from monitor.signals.term_structure import TermStructureTracker

log = structlog.get_logger(__name__)
_RECORDING = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:-(\d+))?\.jsonl(?:\.gz)?$")


@dataclass(frozen=True, slots=True)
class WarmUpReport:
    files: int
    events: int
    bars: dict[str, int]  # completed bars per series after the warm-up


def recent_recordings(directory: Path, today: date, days: int) -> list[Path]:
    """Recordings in ``directory`` (``YYYY-MM-DD[-N].jsonl``) from the last ``days`` days up
    to ``today`` included, oldest first."""
    if days <= 0 or not directory.is_dir():
        return []
    first = today - timedelta(days=days)
    found: list[tuple[date, int, Path]] = []
    for path in directory.iterdir():
        match = _RECORDING.match(path.name)
        if match is None:
            continue
        day = date.fromisoformat(match.group(1))
        if first <= day <= today:
            found.append((day, int(match.group(2) or 0), path))
    return [p for _, _, p in sorted(found)]


def _wanted(batch: EventBatch, futures: set[str]) -> EventBatch:
    events = tuple(e for e in batch.events if isinstance(e, IndexValue) or e.instrument in futures)
    return EventBatch(batch.time, events)


def warm_up(board: SignalBoard, sessions: Sequence[Path], until: datetime) -> WarmUpReport:
    """Feeds ``sessions`` (sorted by session date, then as given) to ``board`` up to ``until``.

    A file that cannot be read raises ReplayFormatError naming it; bad lines inside are
    skipped and counted as in a replay.
    """
    readers = sorted((ReplayReader(p) for p in sessions), key=lambda r: r.header.session_date)
    events = 0
    for reader in readers:
        universe = reader.header.instruments
        futures = {i.id for i in universe.values() if i.kind is Kind.FUTURE}
        market = MarketState(dict(universe))
        term = TermStructureTracker(universe, weeklies=board.config.weekly_vix_futures)
        for batch in reader.batches():
            if batch.time >= until:
                break
            market.apply(_wanted(batch, futures))
            events += len(batch.events)
            curve = term.update(market, batch.time)
            board.prices(batch.time, _prices(market, curve.vx1, curve.vx2, curve.vx1_id))
        log.info(
            "signals_warmed_up",
            file=str(reader.path),
            session_date=reader.header.session_date.isoformat(),
            bad_lines=reader.stats.bad_lines,
        )
    bars = {s: len(i.bars.history) for s, i in board.indicators.items()}
    return WarmUpReport(len(readers), events, bars)


def _prices(market: MarketState, vx1: float, vx2: float, vx1_id: str | None) -> Prices:
    def index(name: str) -> float:
        value = market.index(name)
        return value if value is not None else float("nan")

    return Prices(index("SPX"), index("VIX"), vx1, vx2, index("AD-NYSE"), vx1_id)
