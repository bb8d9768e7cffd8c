"""A live run: the IB feed, the book from the account, the same pipeline and delivery as a
replay. Rules are evaluated on every batch of ticks and, between ticks, every
``evaluation_interval_seconds`` of wall-clock time, so data-age rules fire in a silent feed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import structlog

from monitor.app import close_runtime, open_runtime, process
from monitor.calendars import vix_future_expiries
from monitor.config import DaemonConfig, IbFeedConfig
from monitor.delivery.worker import Backoff
from monitor.domain.instruments import NEW_YORK, Instrument, future_id, parse_instrument_id
from monitor.feeds.ib import IbFeed, IbSettings, MarketDataType
from monitor.feeds.recorder import SessionRecorder
from monitor.pipeline import LinkStatus
from monitor.portfolio.grouping import group_positions
from monitor.portfolio.model import Portfolio
from monitor.rules.loader import RuleSet

log = structlog.get_logger(__name__)

POLL_SECONDS = 0.25  # how often the loop looks for a stop request while the feed is silent
INDEXES = ("SPX", "VIX", "AD-NYSE")


def settings_from(feed: IbFeedConfig) -> IbSettings:
    return IbSettings(
        host=feed.host,
        port=feed.port,
        client_id=feed.client_id,
        client_id_attempts=feed.client_id_attempts,
        account=feed.account,
        market_data_type=MarketDataType[feed.market_data_type.upper()],
        fall_back_to_delayed=feed.fall_back_to_delayed,
        max_lines=feed.max_lines,
        connect_timeout_seconds=feed.connect_timeout_seconds,
        backoff=Backoff(1.0, 60.0),
    )


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
    config: DaemonConfig, file_portfolio: Portfolio, rules: RuleSet, *, config_path: Path | None
) -> None:
    feed_config = config.feed
    assert isinstance(feed_config, IbFeedConfig)  # the caller dispatched on the feed kind
    base = base_instruments(feed_config, datetime.now(UTC))
    file_legs = [leg.instrument for leg in file_portfolio.legs]
    feed = IbFeed(
        settings_from(feed_config),
        with_underlyings(base + file_legs),
        legs=[i.id for i in file_legs],
    )
    connection = asyncio.create_task(feed.run(), name="ib-feed")
    try:
        while not feed.ib.isConnected() or not feed.state.connected:
            if connection.done():
                connection.result()  # raises what stopped it
            await asyncio.sleep(POLL_SECONDS)
        portfolio = file_portfolio
        if feed_config.import_positions:
            positions, skipped = feed.positions()
            grouping = group_positions(positions, file_portfolio, source=Path("IB account"))
            portfolio = grouping.portfolio
            for difference in grouping.differences:
                log.warning("portfolio_quantity_differs", detail=difference)
            if skipped:
                log.info("positions_not_modelled", positions=skipped)
            log.info(
                "book_imported",
                strategies={s.name: s.kind.value for s in portfolio.strategies},
                legs=len(portfolio.legs),
            )
        legs = [leg.instrument for leg in portfolio.legs]
        universe = with_underlyings(base + legs)
        await feed.add_instruments(universe, [i.id for i in legs])
        await _serve(config, portfolio, rules, universe, feed=feed, config_path=config_path)
    finally:
        connection.cancel()
        await asyncio.gather(connection, return_exceptions=True)
        await feed.close()


async def _serve(
    config: DaemonConfig,
    portfolio: Portfolio,
    rules: RuleSet,
    universe: list[Instrument],
    *,
    feed: IbFeed,
    config_path: Path | None,
) -> None:
    feed_config = config.feed
    assert isinstance(feed_config, IbFeedConfig)
    runtime = await open_runtime(
        config, portfolio, rules, {i.id: i for i in universe}, config_path=config_path
    )
    pipeline = runtime.pipeline
    pipeline.link_status = lambda: LinkStatus(
        feed.state.connected and feed.state.ib_connected, feed.denied
    )
    recorder = (
        SessionRecorder(
            feed_config.record_dir, universe, f"condor-monitor record: IB {feed_config.host}"
        )
        if feed_config.record_dir is not None
        else None
    )
    interval = feed_config.evaluation_interval_seconds
    last_evaluation = time.monotonic()
    log.info("live_start", run_id=runtime.run_id, instruments=len(universe))
    try:
        while not runtime.stopping.requested:
            batch = await feed.next_batch(min(POLL_SECONDS, interval))
            if batch is not None:
                if recorder is not None:
                    recorder.write(batch)
                await process(runtime, batch)
                last_evaluation = time.monotonic()
            elif time.monotonic() - last_evaluation >= interval:
                await pipeline.tick(datetime.now(UTC))
                last_evaluation = time.monotonic()
    finally:
        if recorder is not None:
            recorder.close()
        await close_runtime(runtime)
        log.info("live_end", run_id=runtime.run_id, snapshots=pipeline.stats.snapshots)
