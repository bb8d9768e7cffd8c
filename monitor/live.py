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
from dataclasses import dataclass, field
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
from monitor.feeds.ladder import (
    ChainKey,
    Ladder,
    book_chains,
    fit_to_lines,
    ladder_for,
    needs_recentre,
    underlying_of,
)
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
        account=feed.account,
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
    book = Book(portfolio, file_portfolio, base, [])
    await _subscribe_book(book, feed, feed_config)
    if _shape(portfolio) != _shape(file_portfolio):
        runtime.pipeline.replace_portfolio(portfolio, book.universe_by_id)
    else:
        runtime.pipeline.replace_universe(book.universe_by_id)
    return book


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
    """The running book and what the feed watches for it: the base instruments, the legs and
    their underlyings, and the strike ladder of each option expiry (``universe``, every
    instrument quoted; the ladder's options are never legs)."""

    portfolio: Portfolio
    file_portfolio: Portfolio
    base: list[Instrument]
    universe: list[Instrument]
    ladders: dict[ChainKey, Ladder] = field(default_factory=dict)

    @property
    def universe_by_id(self) -> dict[str, Instrument]:
        return {i.id: i for i in self.universe}


async def _subscribe_book(
    book: Book, feed: IbFeed, config: IbFeedConfig, *, recentre: frozenset[ChainKey] = frozenset()
) -> None:
    """Makes the book's universe the feed's: the base instruments, the legs with their
    underlyings, then the ladders (new expiries get one, expiries no longer held lose theirs,
    those in ``recentre`` are built again around the underlying's price) in the lines left.
    Only the lines that change are touched; ladder strikes IB does not list are dropped."""
    legs = [leg.instrument for leg in book.portfolio.legs]
    core = with_underlyings(book.base + legs)
    book.ladders = await strike_ladders(feed, config, legs, book.ladders, recentre=recentre)
    room = max(config.max_lines - len(core), 0)
    fitted = fit_to_lines(list(book.ladders.values()), room, {i.id for i in core})
    if fitted.left_out:
        log.warning(
            "smile_ladder_budget",
            max_lines=config.max_lines,
            lines_left=room,
            subscribed=len(fitted.taken),
            left_out=fitted.left_out,
            note="the book's legs, the indexes and the VX curve come first",
        )
    ladder = [i.id for i in fitted.taken]
    await feed.set_instruments([*core, *fitted.taken], [i.id for i in legs], ladder=ladder)
    book.universe = [i for i in [*core, *fitted.taken] if i.id in feed.instruments]


async def strike_ladders(
    feed: IbFeed,
    config: IbFeedConfig,
    legs: list[Instrument],
    ladders: dict[ChainKey, Ladder],
    *,
    recentre: frozenset[ChainKey] = frozenset(),
) -> dict[ChainKey, Ladder]:
    """The ladder of every option expiry of ``legs``: the one in ``ladders`` when it is still
    held and not to be re-centred, else a new one on IB's listed strikes, centred on the
    underlying's price (the SPX index, the VX future of a VIX option's expiry) or, before
    it is known, the middle of the book's strikes on that expiry."""
    if not config.smile_ladder:
        return {}
    chains = book_chains(legs)
    kept = {k: v for k, v in ladders.items() if k in chains and k not in recentre}
    todo = [k for k in chains if k not in kept]
    symbols = sorted({"VIX" if root == "VIX" else "SPX" for root, _ in todo})
    listed = {symbol: await feed.listed_strikes(symbol) for symbol in symbols}
    out = dict(kept)
    for key in todo:
        root, expiry = key
        strikes = listed["VIX" if root == "VIX" else "SPX"].get(root, ())
        if not strikes:
            log.warning("smile_ladder_no_strikes", chain=f"{root} {expiry:%Y%m%d}")
            continue
        book_strikes = chains[key]
        price = feed.price(underlying_of(key))
        centre = price if price is not None else (book_strikes[0] + book_strikes[-1]) / 2.0
        ladder = ladder_for(
            key,
            book_strikes,
            strikes,
            centre,
            pairs=config.smile_ladder_pairs,
            wings=config.smile_ladder_wings,
        )
        log.info(
            "smile_ladder",
            chain=ladder.label,
            centre=round(centre, 2),
            centred_on=underlying_of(key) if price is not None else "book strikes",
            step=ladder.step,
            strikes=sorted({i.strike for i in ladder.rungs if i.strike is not None}),
        )
        out[key] = ladder
    return dict(sorted(out.items()))


async def _follow_ladders(
    book: Book,
    feed: IbFeed,
    runtime: Runtime,
    recorder: SessionRecorder | None,
    config: IbFeedConfig,
) -> None:
    """Re-centres each ladder whose underlying has moved more than ``smile_recentre_steps``
    strike steps from its centre: the new strikes are subscribed, the far ones cancelled."""
    if not book.ladders or feed.idle or not feed.is_connected:
        return
    moved: dict[ChainKey, float] = {}
    for key, ladder in book.ladders.items():
        price = feed.price(underlying_of(key))
        if needs_recentre(ladder, price, config.smile_recentre_steps):
            assert price is not None
            moved[key] = price
    if not moved:
        return
    before = {i.id for i in book.universe}
    for key, price in moved.items():
        ladder = book.ladders[key]
        log.info(
            "smile_ladder_recentring",
            chain=ladder.label,
            centre=round(ladder.centre, 2),
            underlying=round(price, 2),
            steps=round(abs(price - ladder.centre) / ladder.step, 1),
        )
    await _subscribe_book(book, feed, config, recentre=frozenset(moved))
    after = {i.id for i in book.universe}
    if after == before:
        return
    runtime.pipeline.replace_universe(book.universe_by_id)
    if recorder is not None:
        recorder.redeclare(book.universe)
    log.info(
        "smile_ladder_recentred",
        added=sorted(after - before),
        removed=sorted(before - after),
        instruments=len(after),
    )


def _shape(portfolio: Portfolio) -> list[tuple[str, str, int]]:
    return sorted((leg.strategy, leg.instrument.id, leg.quantity) for leg in portfolio.legs)


async def _follow_positions(
    book: Book,
    feed: IbFeed,
    runtime: Runtime,
    recorder: SessionRecorder | None,
    config: IbFeedConfig,
) -> None:
    """Applies position changes reported during the day to the running book."""
    feed.positions_changed = False
    portfolio = await imported(feed, book.file_portfolio)
    if _shape(portfolio) == _shape(book.portfolio):
        return
    book.portfolio = portfolio
    await _subscribe_book(book, feed, config)
    runtime.pipeline.replace_portfolio(portfolio, book.universe_by_id)
    if recorder is not None:
        recorder.redeclare(book.universe)
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
                    await _follow_positions(book, feed, runtime, recorder, feed_config)
                await _follow_ladders(book, feed, runtime, recorder, feed_config)
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
