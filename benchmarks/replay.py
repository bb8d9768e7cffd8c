"""End-to-end replay of the standard day through the real pipeline, in this process.

The file is read by the replay reader and every batch goes through ``monitor.app.process``
(market state -> valuation -> book -> signals -> rules -> sinks: the journal, as in a run),
with the default rule pack and the timer evaluations of a replay. Measured:

* throughput over the day: events per second and times faster than real time;
* per-snapshot latency (one batch through ``process``), p50 and p99;
* peak resident memory (``ru_maxrss``) and resident memory sampled along an eight-hour-
  equivalent run: the day, then its first hours again, shifted to follow it in time. The
  growth is the last sample against the sample at the end of the warm-up.

Run on its own (``python -m benchmarks.replay [--quick]``) it prints one JSON line; `make
bench` runs it in a child process so that the peak memory is the replay's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import tempfile
import time
from array import array
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from benchmarks import workload
from monitor import bundled, logs
from monitor.app import open_runtime, process
from monitor.config import ConsoleConfig, DaemonConfig, FeedConfig, JournalConfig, MetricsConfig
from monitor.domain.quotes import EventBatch
from monitor.feeds.replay import ReplayReader
from monitor.portfolio.model import load_portfolio
from monitor.rules.loader import load_rule_set

WARM_UP = timedelta(minutes=30)  # session time before the memory baseline is taken
RSS_SAMPLE_BATCHES = 500  # every 125 s of session time at 4 batches per second
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
YIELD_EVERY_BATCHES = 64  # as monitor.app's replay loop: other tasks get the loop


def rss_mb() -> float:
    """Resident set size now, from /proc (Linux); the peak from getrusage elsewhere."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return peak_rss_mb()
    return pages * PAGE_BYTES / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def config(day: workload.Workload, state: Path) -> DaemonConfig:
    return DaemonConfig(
        instance="bench",
        feed=FeedConfig(session=day.session),
        portfolio=day.portfolio,
        rules=[bundled.RULES],
        journal=JournalConfig(path=state / "journal.sqlite", restore_alert_state=False),
        metrics=MetricsConfig(enabled=False),
        console=ConsoleConfig(enabled=False),
    )


async def _replay(day: workload.Workload, state: Path) -> dict[str, float]:
    cfg = config(day, state)
    reader = ReplayReader(day.session)
    async with open_runtime(
        cfg,
        load_portfolio(cfg.portfolio),
        load_rule_set(cfg.rules),
        reader.header.instruments,
        config_path=None,
        bad_lines=reader.stats.bad_by_reason,
    ) as runtime:
        pipeline = runtime.pipeline
        latencies = array("d")
        rss: list[tuple[float, float]] = []  # (session hours since the open, MB)
        first: EventBatch | None = None
        warm_rss: float | None = None
        count = 0
        perf = time.perf_counter

        async def feed(batch: EventBatch, *, timed: bool) -> None:
            nonlocal count, warm_rss
            for moment in pipeline.timer_moments(batch.time):
                await runtime.driver.at(moment)
            started = perf()
            await process(runtime, batch)
            if timed:
                latencies.append(perf() - started)
            count += 1
            if count % YIELD_EVERY_BATCHES == 0:
                await asyncio.sleep(0)
            if count % RSS_SAMPLE_BATCHES == 0:
                assert first is not None
                elapsed = batch.time - first.time
                rss.append((elapsed.total_seconds() / 3600.0, rss_mb()))
                if warm_rss is None and elapsed >= WARM_UP:
                    warm_rss = rss[-1][1]

        started = perf()
        for batch in reader.batches():
            if first is None:
                first = batch
            await feed(batch, timed=True)
        day_seconds = perf() - started
        day_events = reader.stats.events
        assert first is not None
        session_seconds = (pipeline.market.time - first.time).total_seconds()  # type: ignore[operator]
        # The rest of eight hours: the day's first hours again, moved to follow the day.
        shift = pipeline.market.time - first.time + timedelta(seconds=0.25)  # type: ignore[operator]
        extra = timedelta(hours=workload.RSS_RUN_HOURS * day.hours / workload.STANDARD_HOURS)
        extra -= timedelta(seconds=session_seconds)
        again = ReplayReader(day.session)
        for batch in again.batches():
            if batch.time - first.time > extra:
                break
            await feed(replace(batch, time=batch.time + shift), timed=False)
        alerts = sum(pipeline.stats.alerts.values())
    ordered = sorted(latencies)
    final_rss = rss[-1][1] if rss else rss_mb()
    base = warm_rss if warm_rss is not None else (rss[0][1] if rss else final_rss)
    return {
        "workload_hours": day.hours,
        "workload_instruments": float(day.instruments),
        "workload_events": float(day_events),
        "workload_snapshots": float(len(latencies)),
        "replay_seconds": day_seconds,
        "replay_events_per_s": day_events / day_seconds,
        "replay_x_realtime": session_seconds / day_seconds,
        "replay_alert_transitions": float(alerts),
        "snapshot_p50_ms": percentile(ordered, 50) * 1e3,
        "snapshot_p99_ms": percentile(ordered, 99) * 1e3,
        "snapshot_mean_ms": statistics.fmean(ordered) * 1e3,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_warm_up_mb": base,
        "rss_end_mb": final_rss,
        "rss_growth_pct": (final_rss - base) / base * 100.0,
        "rss_run_hours": (count / workload.QUOTES_PER_SECOND) / 3600.0,
    }


def run(*, quick: bool = False) -> dict[str, float]:
    day = workload.ensure(quick=quick)
    with tempfile.TemporaryDirectory(prefix="condor-bench-") as state:
        return asyncio.run(_replay(day, Path(state)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a one-hour day instead of 6.5 h")
    args = parser.parse_args()
    logs.configure("warning", "stderr")  # as the daemon runs by default
    print(json.dumps(run(quick=args.quick), sort_keys=True))


if __name__ == "__main__":
    main()
