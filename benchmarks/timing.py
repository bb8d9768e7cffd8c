"""Median-of-repeats timing: each sample loops long enough to be measurable on a busy host."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

MIN_SAMPLE_SECONDS = 0.005


def median_seconds(fn: Callable[[], object], *, repeats: int = 15) -> float:
    """Median wall time of one call of ``fn`` over ``repeats`` samples."""
    fn()  # warm-up: imports, caches, allocations
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        if time.perf_counter() - start >= MIN_SAMPLE_SECONDS or loops >= 1 << 16:
            break
        loops *= 2
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - start) / loops)
    return statistics.median(samples)
