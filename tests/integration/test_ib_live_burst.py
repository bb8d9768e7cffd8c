"""A burst of 100,000 ticks across 40 instruments through the live run itself (run_live, its
serve loop, ``process`` and the driver), in-process against the IB API emulator on the same
event loop, with the clock set inside the session and the pipeline slowed: what waits for the
pipeline stays bounded by the instruments, in count and in memory, the pipeline evaluates far
fewer batches than the network delivered packets, and the snapshot after the burst carries
every instrument's newest quote and the newest index values.

test_ib_burst.py shows the same on the feed alone, its consumer reading nothing; this one shows
that the daemon's own loop reads the feed that way while it is busy.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import signal
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness.bursts import heard_everything
from harness.waiting import until
from ibemu.catalogue import ContractSpec, index, option, vix_future
from ibemu.gateway import IBGateway
from test_ib_idle import SetClock

from monitor import live
from monitor.app import load_common
from monitor.calendars import vix_future_expiries
from monitor.config import load_config
from monitor.domain.alerts import AlertTransition
from monitor.domain.instruments import NEW_YORK, Instrument, Kind, parse_instrument_id
from monitor.domain.quotes import EventBatch
from monitor.driver import Driver
from monitor.feeds.ib import IbFeed
from monitor.pipeline import Pipeline
from monitor.pricing import black76

NOW = datetime(2026, 3, 3, 10, 30, tzinfo=NEW_YORK)  # a Tuesday, the options session open
CLIENT_ID = 43
SPX = 6800.0
RATE = 0.04
# The indexes, VX1 .. VX5 and eight SPXW iron condors (32 options): 40 instruments, the
# whole universe of the run (no import of positions; the file is the book).
CURVE = [f"{d:%Y%m%d}" for d in vix_future_expiries(NOW.date(), 5)]
EXPIRY = "20260320"
CONDORS = {
    f"IC-{n}": [
        (f"SPXW {EXPIRY} P{6000 + 40 * n}", 1),
        (f"SPXW {EXPIRY} P{6020 + 40 * n}", -1),
        (f"SPXW {EXPIRY} C{7000 + 40 * n}", -1),
        (f"SPXW {EXPIRY} C{7020 + 40 * n}", 1),
    ]
    for n in range(8)
}
INDEXES = ["SPX", "VIX", "AD-NYSE"]
KEYS = INDEXES + [f"VX {e}" for e in CURVE] + [k for legs in CONDORS.values() for k, _ in legs]
TICKS = 100_000
ROUNDS = TICKS // len(KEYS)  # one tick per instrument per round; one round per write
# Each batch costs this much more, awaited after the pipeline's step as a slow sink's delivery
# would be. An awaited wait, not a blocking one: the event loop keeps running, so ib_async reads
# packet after packet into the feed while the pipeline is busy, which is what the feed's bound
# is for. A blocking wait (time.sleep) would leave the bytes in the kernel's socket buffer and
# prove nothing about the feed.
SLOW_BATCH_SECONDS = 0.1
# What the burst may leave allocated in the daemon (the emulator's side not counted), per
# instrument: its pending event, the event of the batch in the pipeline's hands, its quote in the
# market state and snapshot, and what ib_async keeps of the last packet; and per batch evaluated:
# the 15-minute history of the book's delta keeps a sample per evaluation (about 150 B), and
# this clock stands still. A feed that queued one batch per packet would hold about 5 KB per
# packet, megabytes after 100,000 ticks.
RETAINED_BYTES_PER_INSTRUMENT = 4096
RETAINED_BYTES_PER_BATCH = 512
TRACED_FROM = TICKS // 2  # the burst's second half, a whole number of rounds
NOT_THE_DAEMON = (
    tracemalloc.Filter(False, "*/ibemu/*"),
    tracemalloc.Filter(False, tracemalloc.__file__),
)


def contracts() -> list[ContractSpec]:
    out = [index("SPX", "CBOE"), index("VIX", "CBOE"), index("AD-NYSE", "NYSE")]
    out += [vix_future(e) for e in CURVE]
    for legs in CONDORS.values():
        for key, _quantity in legs:
            _cls, expiry, rs = key.split()
            out.append(option("SPXW", expiry, rs[0], float(rs[1:])))
    return out


def opening(key: str) -> tuple[float, float]:
    """An instrument's level before the burst: an index's value as (value, 0), or a two-sided
    quote (bid, ask): VX in contango, options near a Black-76 value at 20 % vol."""
    inst = parse_instrument_id(key)
    if inst.kind is Kind.INDEX:
        return {"SPX": SPX, "VIX": 18.0, "AD-NYSE": 250.0}[key], 0.0
    if inst.kind is Kind.FUTURE:
        mid = 19.0 + 0.6 * CURVE.index(key.split()[1])
        return round(mid - 0.05, 2), round(mid + 0.05, 2)
    years = (datetime(2026, 3, 20, 16, 0, tzinfo=NEW_YORK) - NOW).days / 365.0
    forward = SPX * math.exp(RATE * years)
    assert inst.strike is not None
    value = float(black76.price(forward, inst.strike, years, RATE, 0.2, inst.is_call))
    return round(value * 0.98, 2), round(value * 1.02 + 0.05, 2)


def burst() -> tuple[list[tuple[str, str, float]], dict[str, tuple[float, float] | float]]:
    """Rounds 1 .. ROUNDS of one tick per instrument, instruments interleaved: an index moves
    its value, the others their bid (odd rounds) or ask (even rounds), a little each round.
    Also the newest value of each as the ticks leave it: an index's value, or (bid, ask)."""
    ticks: list[tuple[str, str, float]] = []
    levels = {key: opening(key) for key in KEYS}
    for r in range(1, ROUNDS + 1):
        for key in KEYS:
            first, second = levels[key]
            if key in INDEXES:
                step = 0.01 if key != "VIX" else 0.0001
                ticks.append((key, "last", round(first + r * step, 4)))
            elif r % 2:
                ticks.append((key, "bid", round(first + r * 0.0001, 4)))
            else:
                ticks.append((key, "ask", round(second + r * 0.0001, 4)))
    sides: dict[str, dict[str, float]] = {}
    for key, side, price in ticks:
        sides.setdefault(key, {})[side] = price
    newest: dict[str, tuple[float, float] | float] = {
        key: s["last"] if "last" in s else (s["bid"], s["ask"]) for key, s in sides.items()
    }
    return ticks, newest


def write_config(tmp_path: Path, port: int) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "burst.yaml").write_text(
        "groups:\n  - name: burst\n    rules:\n"
        "      - alert: SpxBelow6500\n        expr: spx < 6500\n        severity: critical\n"
        '        value: spx\n        unit: index points\n        summary: "SPX {spx:,.2f}"\n'
    )
    strategies = "".join(
        f'[[strategies]]\nname = "{name}"\nkind = "iron_condor"\nlegs = ['
        + ", ".join(f'{{ contract = "{k}", quantity = {q} }}' for k, q in legs)
        + "]\n"
        for name, legs in CONDORS.items()
    )
    (tmp_path / "portfolio.toml").write_text("account_size_usd = 1_000_000\n" + strategies)
    path = tmp_path / "live.toml"
    path.write_text(
        'instance = "burst"\nportfolio = "portfolio.toml"\nrules = ["rules"]\n'
        f'[feed]\nkind = "ib"\nport = {port}\nclient_id = {CLIENT_ID}\n'
        "vix_futures = 5\nimport_positions = false\n"
        # No strike ladder: the universe is the book's 40 instruments and no more.
        "smile_ladder = false\n"
        "evaluation_interval_seconds = 0.2\nconnect_timeout_seconds = 5\n"
        f"[pricing]\nrate = {RATE}\n"
        '[signals]\nib_history = false\n[journal]\npath = "journal.sqlite"\n'
        "[metrics]\nenabled = false\n[console]\nenabled = false\n"
    )
    return path


@dataclass
class Watch:
    """The run's feed and pipeline as the test sees them, and what it counts: packets (each
    pendingTickersEvent of ib_async is one network read with ticker updates), the events they
    carried, the feed's pending depth after each, and the batches the pipeline evaluated."""

    feeds: list[IbFeed] = field(default_factory=list)
    pipeline: Pipeline | None = None
    packets: int = 0
    events_heard: int = 0
    most_pending: int = 0
    # Counted, not kept: a test that kept the batches would hold what the feed must not.
    batches: int = 0
    events_taken: int = 0
    last_batch_time: datetime | None = None
    busy: bool = False  # a batch in the pipeline's hands

    def reset(self) -> None:
        self.packets = self.events_heard = self.most_pending = 0
        self.batches = self.events_taken = 0
        self.last_batch_time = None

    @property
    def feed(self) -> IbFeed:
        (feed,) = self.feeds
        return feed


def observe(monkeypatch: pytest.MonkeyPatch, watch: Watch) -> None:
    """The run's own feed, watched from ib_async's event after the feed's handler (handlers run
    in the order they were added), and the driver's batch handling slowed and counted."""

    class WatchedFeed(IbFeed):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            watch.feeds.append(self)
            self.ib.pendingTickersEvent += self._after_packet

        def _after_packet(self, tickers: set[Any]) -> None:
            watch.packets += 1
            watch.events_heard += len(tickers)  # every line of this run is an instrument's
            watch.most_pending = max(watch.most_pending, self.pending)

    batch = Driver.batch

    async def slowed(driver: Driver, events: EventBatch) -> list[AlertTransition]:
        assert watch.pipeline in (None, driver.pipeline)  # one pipeline for the run
        watch.pipeline = driver.pipeline
        watch.busy = True
        try:
            transitions = await batch(driver, events)
            await asyncio.sleep(SLOW_BATCH_SECONDS)
            watch.batches += 1
            watch.events_taken += len(events.events)
            watch.last_batch_time = events.time
            return transitions
        finally:
            watch.busy = False

    monkeypatch.setattr(live, "IbFeed", WatchedFeed)
    monkeypatch.setattr(Driver, "batch", slowed)


def settled(watch: Watch) -> bool:
    """Nothing pending and no batch in the pipeline's hands."""
    return bool(watch.feeds) and watch.feed.pending == 0 and not watch.busy


def quoted(keys: Sequence[str]) -> list[str]:
    return [k for k in keys if k not in INDEXES]


def test_a_burst_through_the_slowed_live_run_is_conflated_and_the_next_snapshot_is_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks, newest = burst()
    assert len(ticks) == TICKS
    assert len(set(KEYS)) == 40
    watch = Watch()
    observe(monkeypatch, watch)
    clock = SetClock(NOW.astimezone(UTC))

    async def scenario() -> None:
        # On the run's loop: each of the gateway's writes is read as one packet (burst).
        async with IBGateway(contracts()) as gw:
            config_path = write_config(tmp_path, gw.port)
            config = load_config(config_path)
            portfolio, rules = load_common(config, config_path)
            run = asyncio.create_task(
                live.run_live(config, portfolio, rules, config_path=config_path, clock=clock)
            )
            try:
                lines = set(KEYS)
                await until(lambda: run.done() or gw.subscribed_keys(CLIENT_ID) == lines, "lines")
                assert not run.done()
                universe: list[Instrument] = list(watch.feed.instruments.values())
                assert sorted(i.id for i in universe) == sorted(KEYS)

                # The opening market, a snapshot of all of it, then nothing waiting.
                for key in KEYS:
                    first, second = opening(key)
                    if key in INDEXES:
                        gw.tick(key, last=first)
                    else:
                        gw.tick(key, bid=first, ask=second, bid_size=5, ask_size=5)

                def opened() -> bool:
                    market = watch.pipeline.market if watch.pipeline else None
                    return (
                        settled(watch)
                        and market is not None
                        and len(market.quotes) == len(quoted(KEYS))
                        and len(market.index_values) == len(INDEXES)
                    )

                await until(opened, "the opening snapshot")
                pipeline, feed = watch.pipeline, watch.feed
                assert pipeline is not None
                conflated_before = feed.state.conflated_ticks
                watch.reset()

                # Memory is traced over the burst's second half only (tracing costs several
                # times the work of each allocation): a feed that kept anything per packet would
                # still keep it for 1,250 packets.
                started = time.monotonic()
                reached = await gw.burst(ticks[:TRACED_FROM], per_write=len(KEYS))
                tracemalloc.start()
                reached += await gw.burst(ticks[TRACED_FROM:], per_write=len(KEYS))
                await until(lambda: heard_everything(feed, gw, newest), "the end of the burst")
                gc.collect()
                # What was allocated during the burst and is still there (what it freed of
                # older blocks is not subtracted): an upper bound of what the burst added.
                kept = tracemalloc.take_snapshot().filter_traces(NOT_THE_DAEMON)
                tracemalloc.stop()
                retained = sum(stat.size for stat in kept.statistics("filename"))

                def figures() -> str:
                    conflated = feed.state.conflated_ticks - conflated_before
                    return (
                        f"{watch.packets} packets, {watch.batches} batches, at most "
                        f"{watch.most_pending} pending, {retained} B retained, {conflated} "
                        f"conflated, {time.monotonic() - started:.1f} s"
                    )

                assert reached == TICKS, figures()  # each tick reached its one subscription
                # While the burst came in, what waited for the pipeline was one event per
                # instrument at most, ...
                assert 0 < watch.most_pending <= len(KEYS), figures()
                # ... and what it left allocated is by instrument (and evaluation), not by tick.
                allowance = (
                    RETAINED_BYTES_PER_INSTRUMENT * len(KEYS)
                    + RETAINED_BYTES_PER_BATCH * watch.batches  # more than while traced
                )
                assert retained < allowance, figures()
                await until(lambda: settled(watch), "the pipeline to take what was pending")
                print(figures())
                conflated = feed.state.conflated_ticks - conflated_before
                # The pipeline evaluated far fewer batches than the packets that came in, and
                # every event heard was either taken in a batch or replaced (counted).
                assert watch.packets >= TICKS // len(KEYS) // 2, figures()
                assert 0 < watch.batches <= watch.packets // 10, figures()
                assert conflated == watch.events_heard - watch.events_taken, figures()
                assert conflated > TICKS // 2, figures()
                assert pipeline.link_status is not None
                assert pipeline.link_status().conflated_ticks == feed.state.conflated_ticks

                # The snapshot after the burst is the last batch's, and carries the newest
                # value of every instrument; nothing was refused or failed on the way.
                snapshot = pipeline.latest
                assert snapshot is not None
                assert pipeline.published.latest is snapshot
                assert snapshot.time == watch.last_batch_time
                assert pipeline.failures.total == 0
                assert not pipeline.market.ticks.rejected
                assert not pipeline.market.rejected
                assert (snapshot.spx, snapshot.vix, snapshot.ad_nyse) == (
                    newest["SPX"],
                    newest["VIX"],
                    newest["AD-NYSE"],
                )
                for key in quoted(KEYS):
                    quote = pipeline.market.quotes[key].quote
                    assert (quote.bid, quote.ask) == newest[key], key
                    assert (quote.bid_size, quote.ask_size) == (5, 5), key
                curve = {inst_id: price for inst_id, _days, price in snapshot.term.curve}
                for e in CURVE[:4]:  # VX1 .. VX4 at their newest mids
                    sides = newest[f"VX {e}"]
                    assert isinstance(sides, tuple)
                    bid, ask = sides
                    assert curve[f"VX {e}"] == pytest.approx(0.5 * (bid + ask), abs=1e-12)

                # Stopped as an operator stops the daemon, by SIGTERM to this process (run_live
                # routes it to its Stop while it runs), not by cancelling the task as the other
                # in-process tests do: the run then ends on its own, and without an error.
                assert not run.done()
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.wait_for(asyncio.shield(run), 20.0)
                assert run.result() is None
                assert not feed.is_connected
            finally:
                if not run.done():
                    run.cancel()
                await asyncio.gather(run, return_exceptions=True)

    asyncio.run(scenario())
