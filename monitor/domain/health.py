"""The run's own health as the rules and metrics see it: the feed and the journal's storage."""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitor.domain.quotes import DELAYED_DATA_MINUTES


@dataclass(frozen=True, slots=True)
class StorageHealth:
    """Whether the journal takes writes, and the room left for it."""

    available: bool = True  # the last write went through
    free_bytes: float = math.nan  # free space of the state directory's filesystem
    held_transitions: int = 0  # in memory, written when the journal takes writes again
    dropped_transitions: int = 0  # let go past the hold limit since the start
    unavailable_since: float | None = None  # Unix seconds
    error: str = ""  # the last write error


@dataclass(frozen=True, slots=True)
class FeedHealth:
    data_age_seconds: float = 0.0  # since the last market event; grows between ticks
    events: int = 0
    bad_lines: int = 0
    crossed_quotes: int = 0
    zero_bid_quotes: int = 0
    one_sided_quotes: int = 0
    connected: bool = True  # to the broker, and the broker to its servers (live feeds)
    denied_instruments: int = 0  # without market data entitlement (live feeds)
    delayed_instruments: frozenset[str] = frozenset()  # quoted delayed by the feed (live feeds)
    delayed_data_minutes: float = DELAYED_DATA_MINUTES  # how far behind those quotes are
    oldest_leg_quote_age_seconds: float = 0.0  # the book leg quoted longest ago (inf: never)
    rejected_ticks: int = 0  # prices and values outside the sanity bounds (market/hygiene.py)
    failed_batches: int = 0  # batches whose snapshot raised; the run went on
    failed_batches_in_row: int = 0  # since the last batch that gave a snapshot
    never_connected: bool = False  # a live feed that has not reached its broker once yet
    failed_connection_attempts: int = 0  # since the last connection (live feeds)
