"""Rates of change: how far a number moved over a trailing window of session time."""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta


class Change:
    """Value now minus the value ``window`` ago (the newest sample at least that old).

    NaN until the history covers the window: no rate of change is invented at the open.
    """

    def __init__(self, window: timedelta) -> None:
        self.window = window
        self.samples: deque[tuple[datetime, float]] = deque()

    def update(self, moment: datetime, value: float) -> float:
        self.samples.append((moment, value))
        cutoff = moment - self.window
        # Keep exactly one sample at or before the cutoff: the base of the change.
        while len(self.samples) >= 2 and self.samples[1][0] <= cutoff:
            self.samples.popleft()
        then, base = self.samples[0]
        if then > cutoff:
            return math.nan
        return value - base
