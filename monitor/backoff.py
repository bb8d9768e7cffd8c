"""Retry spacing shared by every reconnecting part: the IB feed, the MQTT link, the delivery
workers."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter: attempt n waits a uniform draw in
    [0, min(cap, initial * 2**(n-1))], so many clients retrying together spread out."""

    initial_seconds: float = 1.0
    cap_seconds: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.cap_seconds, self.initial_seconds * 2.0 ** max(attempt - 1, 0))
        return rng.uniform(0.0, ceiling)
