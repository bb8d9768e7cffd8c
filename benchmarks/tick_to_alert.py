"""Live-mode latency: a received tick to its alert acknowledged by a local Mosquitto broker.

A real broker is started on a free loopback port (tests/harness/mosquitto.py). The daemon's
runtime is opened as a live run opens it (``monitor.app.open_runtime``: journal, pipeline,
delivery with its MQTT link and worker) with the example book, the default rule pack and
one more rule that fires when SPX is at or above a level and resolves below it. After a
warm-up on the bundled session, each tick moves SPX across that level, so every tick makes
one transition (firing, then resolved, then firing ...), which goes journal -> outbox ->
MQTT worker -> QoS 1 publish. The clock starts when the tick is handed to
``monitor.app.process`` and stops when the publish of that alert returns, that is when the
broker's PUBACK arrived. The next tick is sent only then, so samples do not queue.

Without the mosquitto binary the result is null with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.replay import percentile
from monitor import bundled, logs
from monitor.app import open_runtime, process
from monitor.config import (
    ConsoleConfig,
    DaemonConfig,
    FeedConfig,
    JournalConfig,
    MetricsConfig,
    MqttConfig,
)
from monitor.domain.alerts import AlertTransition, SavedAlert
from monitor.domain.quotes import EventBatch, IndexValue
from monitor.feeds.replay import ReplayReader
from monitor.portfolio.model import load_portfolio
from monitor.rules.loader import load_rule_set

TESTS = Path(__file__).resolve().parent.parent / "tests"
RULE_NAME = "BenchTickToAlert"
WARM_UP_BATCHES = 120  # of the bundled session: forwards, vols and signals settle
DISCARDED_SAMPLES = 10  # first ticks: connection buffers, code paths warming up
LEVEL_STEP = 10.0  # SPX points above and below the rule's level: a small move
ACK_TIMEOUT_SECONDS = 5.0
BENCH_RULES = """\
groups:
  - name: benchmark
    rules:
      - alert: {name}
        expr: spx >= {level}
        clear: spx < {level}
        severity: info
        labels: {{category: benchmark}}
        value: spx
        unit: index points
        summary: "SPX {{spx:,.2f}} crossed {level}"
"""


def _broker_class() -> Any:
    """The harness's Mosquitto class, or a RuntimeError saying why there is none."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from harness.mosquitto import Mosquitto, find_mosquitto  # noqa: PLC0415 - tests/ on the path

    find_mosquitto()  # RuntimeError naming the install step when the binary is missing
    return Mosquitto


async def _measure(port: int, work: Path, samples: int) -> dict[str, float]:
    reader = ReplayReader(bundled.SESSION)
    batches = reader.batches()
    warm = [next(batches) for _ in range(WARM_UP_BATCHES)]
    spx = next(
        e.value
        for b in reversed(warm)
        for e in b.events
        if isinstance(e, IndexValue) and e.instrument == "SPX"
    )
    level = round(spx)
    rules_dir = work / "rules"
    rules_dir.mkdir()
    (rules_dir / "bench.yaml").write_text(BENCH_RULES.format(name=RULE_NAME, level=level))
    config = DaemonConfig(
        instance="bench",
        feed=FeedConfig(session=bundled.SESSION),
        portfolio=bundled.PORTFOLIO,
        rules=[bundled.RULES, rules_dir],
        journal=JournalConfig(path=work / "state" / "journal.sqlite", restore_alert_state=False),
        metrics=MetricsConfig(enabled=False),
        console=ConsoleConfig(enabled=False),
        mqtt=MqttConfig(enabled=True, host="127.0.0.1", port=port, client_id="condor-bench"),
    )
    async with open_runtime(
        config,
        load_portfolio(config.portfolio),
        load_rule_set(config.rules),
        reader.header.instruments,
        config_path=None,
        live=True,
    ) as runtime:
        link = runtime.delivery.link
        assert link is not None
        if not link.connected:
            raise RuntimeError(f"the MQTT link did not connect to 127.0.0.1:{port}")
        acked = asyncio.Event()
        acked_at = [0.0]
        publish = link.publish
        marker = f'"rule": "{RULE_NAME}"'.encode()

        async def timed_publish(topic: str, payload: bytes, *, retain: bool = False) -> None:
            await publish(topic, payload, retain=retain)  # returns on the broker's PUBACK
            if marker in payload:
                acked_at[0] = time.perf_counter()
                acked.set()

        link.publish = timed_publish  # type: ignore[method-assign]
        # The journal's share: the transition row and outbox entry, then the alert state, each a
        # committed SQLite transaction (synchronous=FULL: an fsync each).
        journal = runtime.journal
        in_journal = [0.0]
        emit, save_state = journal.emit, journal.save_state

        async def timed_emit(transitions: list[AlertTransition]) -> None:
            started = time.perf_counter()
            await emit(transitions)
            in_journal[0] += time.perf_counter() - started

        def timed_save_state(alerts: Sequence[SavedAlert]) -> None:
            started = time.perf_counter()
            save_state(alerts)
            in_journal[0] += time.perf_counter() - started

        journal.emit = timed_emit  # type: ignore[method-assign]
        journal.save_state = timed_save_state  # type: ignore[method-assign]
        total: list[float] = []
        journal_part: list[float] = []
        pipeline_part: list[float] = []
        for batch in warm:
            await process(runtime, batch)
        now = warm[-1].time
        for n in range(samples + DISCARDED_SAMPLES):
            now += timedelta(milliseconds=250)
            value = level + (LEVEL_STEP if n % 2 == 0 else -LEVEL_STEP)
            tick = EventBatch(now, (IndexValue("SPX", value),))
            acked.clear()
            in_journal[0] = 0.0
            started = time.perf_counter()
            await process(runtime, tick)
            processed = time.perf_counter()
            await asyncio.wait_for(acked.wait(), ACK_TIMEOUT_SECONDS)
            if n >= DISCARDED_SAMPLES:
                total.append(acked_at[0] - started)
                pipeline_part.append(processed - started)
                journal_part.append(in_journal[0])
    total.sort()
    pipeline_part.sort()
    journal_part.sort()
    return {
        "tick_to_alert_samples": float(len(total)),
        "p50_tick_to_alert_ms": percentile(total, 50) * 1e3,
        "p99_tick_to_alert_ms": percentile(total, 99) * 1e3,
        "max_tick_to_alert_ms": total[-1] * 1e3,
        # Of which: the pipeline, journal write included, before delivery takes over.
        "p50_tick_to_journal_ms": percentile(pipeline_part, 50) * 1e3,
        "p99_tick_to_journal_ms": percentile(pipeline_part, 99) * 1e3,
        # Of which: the journal's two SQLite commits.
        "p50_journal_write_ms": percentile(journal_part, 50) * 1e3,
        "p99_journal_write_ms": percentile(journal_part, 99) * 1e3,
    }


def run(*, quick: bool = False) -> dict[str, Any]:
    """The latencies, or the same keys as null and ``tick_to_alert_skipped`` with the reason."""
    keys = ("p50_tick_to_alert_ms", "p99_tick_to_alert_ms")
    try:
        broker_class = _broker_class()
    except (ImportError, RuntimeError) as exc:
        return {**dict.fromkeys(keys), "tick_to_alert_skipped": str(exc)}
    samples = 100 if quick else 400
    with tempfile.TemporaryDirectory(prefix="condor-bench-live-") as tmp:
        work = Path(tmp)
        with broker_class(work / "broker") as broker:
            return asyncio.run(_measure(broker.port, work, samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 samples instead of 400")
    args = parser.parse_args()
    logs.configure("warning", "stderr")  # as the daemon runs by default
    print(json.dumps(run(quick=args.quick), sort_keys=True))


if __name__ == "__main__":
    main()
