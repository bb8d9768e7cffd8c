"""The run's own health as the rules and metrics see it: the journal's storage."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StorageHealth:
    """Whether the journal takes writes, and the room left for it."""

    available: bool = True  # the last write went through
    free_bytes: float = math.nan  # free space of the state directory's filesystem
    held_transitions: int = 0  # in memory, written when the journal takes writes again
    dropped_transitions: int = 0  # let go past the hold limit since the start
    unavailable_since: float | None = None  # Unix seconds
    error: str = ""  # the last write error
