"""Latency of the pipeline's stages, counted into fixed buckets (exported as histograms).

Stages, timed from the moment the pipeline takes a batch of ticks: ``snapshot`` (market state
applied, legs valued, book aggregated, signals updated) and ``alert`` (rules evaluated and
their transitions handed to every sink: journal, console, outbox).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

# Seconds: 100 µs to 1 s; a snapshot of the example book takes about a millisecond.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
STAGES = ("snapshot", "alert")


@dataclass(slots=True)
class Buckets:
    """Cumulative-ready counts: ``counts[i]`` observations in (BUCKETS[i-1], BUCKETS[i]]; the
    last slot is above the largest bucket."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    observations: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.observations += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, count at or below it) pairs, "+Inf" last, as Prometheus wants."""
        return cumulative(self.counts)


def cumulative(counts: Sequence[int]) -> list[tuple[str, int]]:
    """Bucket counts as (upper bound, count at or below it) pairs, "+Inf" last."""
    out: list[tuple[str, int]] = []
    running = 0
    for bound, count in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
        running += count
        out.append((bound, running))
    return out


@dataclass(slots=True)
class Latency:
    stages: dict[str, Buckets] = field(default_factory=lambda: {s: Buckets() for s in STAGES})

    def observe(self, stage: str, seconds: float) -> None:
        self.stages[stage].observe(seconds)
