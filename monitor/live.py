"""A live run: the IB feed, the book from the account, the same pipeline and delivery as a
replay. Rules are evaluated on every batch of ticks and, between ticks, every
``evaluation_interval_seconds`` of wall-clock time, so data-age rules fire in a silent feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import structlog

from monitor.app import Runtime, Stop, listening_for_stop, open_runtime, process
from monitor.assembly import warm_up_signals
from monitor.calendars import vix_future_expiries
from monitor.clock import Clock, LiveClock
from monitor.config import DaemonConfig, IbFeedConfig
from monitor.domain.instruments import NEW_YORK, Instrument, future_id, parse_instrument_id
from monitor.feeds.ib import IbFeed
from monitor.feeds.recorder import SessionRecorder
from monitor.market.hours import feed_window, next_open
from monitor.pipeline import LinkStatus
from monitor.portfolio.grouping import group_positions
from monitor.portfolio.model import Portfolio, log_portfolio_warnings
from monitor.rules.loader import RuleSet
from monitor.signals.bars import Bar, on_grid
from monitor.signals.warmup import recent_recordings

log = structlog.get_logger(__name__)

T = TypeVar("T")

POLL_SECONDS = 0.25  # how often the loop looks for a stop request while the feed is silent
INDEXES = ("SPX", "VIX", "AD-NYSE")


def with_underlyings(instruments: list[Instrument]) -> list[Instrument]:
    """``instruments`` plus the futures their options are priced on, each once, in order."""
    out: dict[str, Instrument] = {}
    for inst in instruments:
        out.setdefault(inst.id, inst)
        if inst.underlying and inst.underlying not in out:
            out[inst.underlying] = parse_instrument_id(inst.underlying)
    return list(out.values())


def base_instruments(feed: IbFeedConfig, today: datetime) -> list[Instrument]:
    """The indexes and the VIX futures curve (VX1 .. VXn) the monitor always watches."""
    curve = vix_future_expiries(today.astimezone(NEW_YORK).date(), feed.vix_futures)
    return [parse_instrument_id(i) for i in INDEXES] + [
        parse_instrument_id(future_id("VX", d)) for d in curve
    ]


async def run_live(
    config: DaemonConfig,
    file_portfolio: Portfolio,
    rules: RuleSet,
    *,
    config_path: Path | None,
    clock: Clock | None = None,
) -> None:
    """Runs until stopped; ``clock`` is the wall clock (replaced by tests of other hours).

    Everything but the book comes up before the broker answers: the HTTP endpoints (/readyz
    says why the feed is not there), MQTT's status, delivery and the rules, which run on a
    book that knows nothing until the first connection, so ``FeedNeverConnected`` pages when
    IB Gateway is down or its login failed."""
    feed_config = config.feed
    assert isinstance(feed_config, IbFeedConfig)  # the caller dispatched on the feed kind
    clock = clock or LiveClock()
    base = base_instruments(feed_config, clock.now())
    file_legs = [leg.instrument for leg in file_portfolio.legs]
    universe = with_underlyings(base + file_legs)
    feed = IbFeed(feed_config, universe, legs=[i.id for i in file_legs], clock=clock.now)
    follow_session(feed, feed_config, clock.now())  # idle from the first connection
    stopping = Stop()
    runtime: Runtime | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.enter_context(listening_for_stop(stopping))
            await stack.enter_async_context(feed)  # closed once the runtime is
            runtime = await stack.enter_async_context(
                open_runtime(
                    config,
                    file_portfolio,
                    rules,
                    {i.id: i for i in universe},
                    config_path=config_path,
                    live=True,
                    wall=clock.now,
                    stopping=stopping,
                )
            )
            runtime.pipeline.link_status = lambda: link_status(feed)
            connection = runtime.tasks.start(feed.run(), name="ib-feed")
            stack.push_async_callback(_cancel, connection)  # before the runtime closes
            if await _until_connected(feed, runtime, connection, clock, feed_config):
                book = await evaluating(
                    _first_book(feed_config, feed, runtime, file_portfolio, base=base, clock=clock),
                    runtime,
                    clock,
                    feed_config.evaluation_interval_seconds,
                )
                if book is not None:
                    await _serve(config, book, runtime, feed=feed, clock=clock)
    finally:
        if runtime is not None:
            log.info("live_end", run_id=runtime.run_id, snapshots=runtime.pipeline.stats.snapshots)
    runtime.tasks.raise_failure()  # a crashed background task: a non-zero exit


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def link_status(feed: IbFeed) -> LinkStatus:
    """The feed's connection as the pipeline, /readyz and the metrics see it."""
    state = feed.state
    return LinkStatus(
        state.connected and state.ib_connected,
        feed.denied,
        feed.data_types(),
        state.connections,
        feed.idle,
        failed_attempts=state.failed_attempts,
        last_error=state.last_error,
        address=f"{feed.config.host}:{feed.config.port}",
        delayed=feed.delayed(),
        delayed_data_minutes=feed.config.delayed_data_minutes,
        data_requested_at=state.data_requested_at,
        conflated_ticks=state.conflated_ticks,
    )


async def _until_connected(
    feed: IbFeed,
    runtime: Runtime,
    connection: asyncio.Task[None],
    clock: Clock,
    feed_config: IbFeedConfig,
) -> bool:
    """Waits for the first connection, the rules evaluated every interval meanwhile (the
    first at once); False when a stop came first, or the feed crashed (the run's task owner
    reports that and stops the run)."""

    async def connected() -> bool:
        while not (feed.is_connected and feed.state.connected):
            if connection.done():
                return False
            await asyncio.sleep(POLL_SECONDS)
        return True

    interval = feed_config.evaluation_interval_seconds
    return bool(await evaluating(connected(), runtime, clock, interval, at_once=True))


async def evaluating(
    work: Awaitable[T],
    runtime: Runtime,
    clock: Clock,
    interval: float,
    *,
    at_once: bool = False,
) -> T | None:
    """``work``'s result, the rules evaluated every ``interval`` while it runs (on the last
    book, or on one that knows nothing; the first evaluation ``at_once`` or an interval in),
    so the feed and journal rules and systemd's watchdog go on while IB is slow to answer;
    None when a stop came first (``work`` cancelled)."""
    task = asyncio.ensure_future(work)
    last_evaluation = -math.inf if at_once else time.monotonic()
    try:
        while not runtime.stopping.requested:
            if time.monotonic() - last_evaluation >= interval:
                await runtime.driver.at(clock.now())
                last_evaluation = time.monotonic()
            done, _ = await asyncio.wait({task}, timeout=POLL_SECONDS)
            if done:
                return task.result()
        return None
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _first_book(
    feed_config: IbFeedConfig,
    feed: IbFeed,
    runtime: Runtime,
    file_portfolio: Portfolio,
    *,
    base: list[Instrument],
    clock: Clock,
) -> Book:
    """The book once connected: the account's positions joined to the file's strategies."""
    feed.positions_changed = False
    portfolio = (
        await imported(feed, file_portfolio) if feed_config.import_positions else file_portfolio
    )
    log.info(
        "book_imported",
        strategies={s.name: s.kind.value for s in portfolio.strategies},
        legs=len(portfolio.legs),
    )
    log_portfolio_warnings(portfolio, clock.now().astimezone(NEW_YORK).date())
    legs = [leg.instrument for leg in portfolio.legs]
    universe = with_underlyings(base + legs)
    await feed.set_instruments(universe, [i.id for i in legs])
    if _shape(portfolio) != _shape(file_portfolio):
        runtime.pipeline.replace_portfolio(portfolio, {i.id: i for i in universe})
    return Book(portfolio, file_portfolio, base, universe)


async def imported(feed: IbFeed, file_portfolio: Portfolio) -> Portfolio:
    """The account's positions grouped into strategies, the portfolio file overriding."""
    positions, skipped = await feed.positions()
    grouping = group_positions(positions, file_portfolio, source=Path("IB account"))
    for difference in grouping.differences:
        log.warning("portfolio_quantity_differs", detail=difference)
    for joined in grouping.joined:
        log.info("portfolio_position_joined", detail=joined)
    if skipped:
        log.info("positions_not_modelled", positions=skipped)
    return grouping.portfolio


@dataclass(slots=True)
class Book:
    portfolio: Portfolio
    file_portfolio: Portfolio
    base: list[Instrument]
    universe: list[Instrument]


def _shape(portfolio: Portfolio) -> list[tuple[str, str, int]]:
    return sorted((leg.strategy, leg.instrument.id, leg.quantity) for leg in portfolio.legs)


async def _follow_positions(
    book: Book, feed: IbFeed, runtime: Runtime, recorder: SessionRecorder | None
) -> None:
    """Applies position changes reported during the day to the running book."""
    feed.positions_changed = False
    portfolio = await imported(feed, book.file_portfolio)
    if _shape(portfolio) == _shape(book.portfolio):
        return
    legs = [leg.instrument for leg in portfolio.legs]
    book.universe = with_underlyings(book.base + legs)
    await feed.set_instruments(book.universe, [i.id for i in legs])
    runtime.pipeline.replace_portfolio(portfolio, {i.id: i for i in book.universe})
    if recorder is not None:
        recorder.redeclare(book.universe)
    book.portfolio = portfolio
    log.info(
        "book_changed",
        strategies={s.name: s.kind.value for s in portfolio.strategies},
        legs=len(portfolio.legs),
    )


def follow_session(feed: IbFeed, config: IbFeedConfig, now: datetime) -> None:
    """Idles the feed outside the session window (``idle_outside_session``) and wakes it
    ``wake_minutes_before_open`` ahead of the next open."""
    if not config.idle_outside_session:
        return
    awake = feed_window(
        now,
        before_open=timedelta(minutes=config.wake_minutes_before_open),
        after_close=timedelta(minutes=config.idle_minutes_after_close),
    )
    if awake and feed.idle:
        feed.wake()
        log.info("feed_awake", instruments=len(feed.instruments))
    elif not awake and not feed.idle:
        feed.go_idle()
        upcoming = next_open(now)
        wake_at = (
            upcoming - timedelta(minutes=config.wake_minutes_before_open)
            if upcoming is not None
            else None
        )
        log.info(
            "feed_idle",
            next_open=upcoming.isoformat() if upcoming is not None else None,
            wake_at=wake_at.isoformat() if wake_at is not None else None,
        )


async def _warm_up(config: DaemonConfig, runtime: Runtime, feed: IbFeed, now: datetime) -> None:
    """Primes the bar signals: IB's recent bars where it has them, then the recordings (their
    ticks continue each series after its last bar), then the live ticks."""
    feed_config = config.feed
    assert isinstance(feed_config, IbFeedConfig)
    signals = config.signals
    pipeline = runtime.pipeline
    if signals.ib_history:
        term = pipeline.term.update(pipeline.market, now)
        series = {"spx": "SPX", "vix": "VIX", "vx1": term.vx1_id, "vx2": term.vx2_id}
        days = 3 if signals.bar_minutes == 15 else 2
        asked = {name: inst_id for name, inst_id in series.items() if inst_id is not None}
        # Together: a slow or silent history farm costs one timeout, not one per series.
        answers = await asyncio.gather(
            *(feed.history(i, signals.bar_minutes, days=days) for i in asked.values())
        )
        board = pipeline.signals
        for (name, inst_id), rows in zip(asked.items(), answers, strict=True):
            bars = [Bar(t.astimezone(NEW_YORK), o, hi, lo, c) for t, o, hi, lo, c in rows]
            taken = board.seed(name, on_grid(board.indicators[name].bars, bars))
            log.info("signals_history", series=name, instrument=inst_id, bars=taken)
    files = list(signals.warm_up)
    if feed_config.record_dir is not None:
        today = now.astimezone(NEW_YORK).date()
        files += recent_recordings(feed_config.record_dir, today, signals.warm_up_recording_days)
    warm_up_signals(pipeline, files, now)


async def _serve(
    config: DaemonConfig, book: Book, runtime: Runtime, *, feed: IbFeed, clock: Clock
) -> None:
    feed_config = config.feed
    assert isinstance(feed_config, IbFeedConfig)
    recorder = (
        SessionRecorder(
            feed_config.record_dir, book.universe, f"condor-monitor record: IB {feed_config.host}"
        )
        if feed_config.record_dir is not None
        else None
    )
    interval = feed_config.evaluation_interval_seconds
    await evaluating(_warm_up(config, runtime, feed, clock.now()), runtime, clock, interval)
    last_evaluation = time.monotonic()
    log.info("live_start", run_id=runtime.run_id, instruments=len(book.universe))
    try:
        while not runtime.stopping.requested:
            try:
                follow_session(feed, feed_config, clock.now())
                if feed.positions_changed and feed_config.import_positions:
                    await _follow_positions(book, feed, runtime, recorder)
            except Exception:  # the loop's edge: the book and the session are followed next turn
                log.exception("live_step_failed", note="the run goes on")
            batch = await feed.next_batch(min(POLL_SECONDS, interval))
            if batch is not None:
                if recorder is not None:
                    recorder.write(batch)
                await process(runtime, batch)
                last_evaluation = time.monotonic()
            elif time.monotonic() - last_evaluation >= interval:
                await runtime.driver.at(clock.now())
                last_evaluation = time.monotonic()
    finally:
        if recorder is not None:
            recorder.close()
