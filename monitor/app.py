"""Composition root: builds every component from a DaemonConfig and runs the session.

The only module that wires all layers together.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from monitor import bundled, logs
from monitor.assembly import build_pipeline, check_session, warm_up_signals
from monitor.clock import ReplayClock
from monitor.config import (
    ConsoleConfig,
    DaemonConfig,
    FeedConfig,
    JournalConfig,
    MetricsConfig,
    PricingConfig,
)
from monitor.delivery.chat import load_services
from monitor.delivery.service import Delivery, read_command_secret, read_password
from monitor.domain.instruments import NEW_YORK, Instrument
from monitor.domain.quotes import EventBatch
from monitor.driver import Driver
from monitor.endpoints import Endpoints
from monitor.errors import ConfigError, MonitorError
from monitor.feeds.replay import ReplayReader, ReplayStats
from monitor.health import Readiness, readiness
from monitor.instance_lock import InstanceLock
from monitor.market.hours import market_view
from monitor.metrics import DeliveryCollector, SnapshotCollector, metrics_handler
from monitor.pipeline import Pipeline
from monitor.portfolio.model import Portfolio, load_portfolio, log_portfolio_warnings
from monitor.rules.loader import RuleSet, load_rule_set
from monitor.rules.reload import RuleReloader
from monitor.signals.events import BUNDLED_EVENTS, load_events
from monitor.sinks.alerts_file import AlertsFileSink
from monitor.sinks.base import Sink
from monitor.sinks.console import ConsoleSink
from monitor.sinks.journal import Journal
from monitor.snapshot import Snapshot
from monitor.state import state_document
from monitor.systemd import Notifier, supervise
from monitor.tasks import BackgroundTaskError, TaskOwner

log = structlog.get_logger(__name__)
YIELD_EVERY_BATCHES = 64  # let signal handlers and other tasks run during a fast replay


def default_config(workdir: Path) -> DaemonConfig:
    """The embedded default: the bundled session, example portfolio and default rule pack;
    alerts to the console and a journal under ``workdir/state``; metrics on 127.0.0.1."""
    return DaemonConfig(
        instance="demo",
        feed=FeedConfig(session=bundled.SESSION),
        portfolio=bundled.PORTFOLIO,
        rules=[bundled.RULES],
        pricing=PricingConfig(),
        journal=JournalConfig(path=workdir / "state" / "journal.sqlite"),
        metrics=MetricsConfig(),
        console=ConsoleConfig(),
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    """Everything a config references, loaded and cross-checked, before anything runs."""

    config: DaemonConfig
    reader: ReplayReader
    portfolio: Portfolio
    rules: RuleSet
    config_path: Path | None = None


def prepare(config: DaemonConfig, *, config_path: Path | None = None) -> Prepared:
    """Loads the session header, portfolio and rules exactly as a run would.

    Raises ConfigError / ReplayFormatError naming the file and field at fault.
    """
    if not isinstance(config.feed, FeedConfig):
        raise ConfigError(config_path or config.portfolio, "field feed.kind: not a replay feed")
    portfolio, rules = load_common(config, config_path)
    reader = ReplayReader(config.feed.session)
    check_session(portfolio, reader, config_path)
    return Prepared(config, reader, portfolio, rules, config_path)


def load_common(config: DaemonConfig, config_path: Path | None) -> tuple[Portfolio, RuleSet]:
    """The portfolio file, the rule packs and the Apprise credentials, checked."""
    portfolio = load_portfolio(config.portfolio)
    rules = load_rule_set(config.rules)
    load_events(config.events.file or BUNDLED_EVENTS)  # ConfigError naming the field
    for path in config.signals.warm_up:
        ReplayReader(path)  # ReplayFormatError naming the file
    if config.notify is not None:
        try:
            load_services(config.notify.credentials)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                config_path or config.notify.credentials, f"field notify.credentials: {exc}"
            ) from None
    mqtt = config.mqtt
    # The password is read as a run reads it; a systemd credential only where systemd gives
    # one (an operator runs check-config outside the service).
    if mqtt.enabled and (mqtt.password_file is not None or os.environ.get("CREDENTIALS_DIRECTORY")):
        read_password(mqtt, config_path)
    if mqtt.enabled and (
        mqtt.command_secret_file is not None or os.environ.get("CREDENTIALS_DIRECTORY")
    ):
        read_command_secret(mqtt, config_path)  # a short or unreadable secret names its field
    return portfolio, rules


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stop:
    """The first SIGTERM or SIGINT ends the run cleanly (the outbox is flushed within its
    time, ``offline`` is published); a second one exits at once."""

    def __init__(self) -> None:
        self.requested = False
        self._signalled = False  # a first signal came: the next one exits at once
        self._event = asyncio.Event()

    def fail(self, failure: BackgroundTaskError) -> None:
        """A background task crashed: the run stops as for a signal, then exits non-zero. A
        signal during that shutdown is still the operator's first (a clean stop goes on)."""
        if self.requested:
            return
        self.requested = True
        self._event.set()
        log.error("stopping", reason=str(failure))

    def request(self, number: int) -> None:
        first = not self._signalled
        self._signalled = True
        if not first:
            log.warning("forced_exit", signal=signal.Signals(number).name)
            os._exit(128 + number)
        self.requested = True
        self._event.set()
        log.info("stopping", signal=signal.Signals(number).name)

    async def wait(self) -> None:
        """Returns once a stop is requested."""
        await self._event.wait()


async def _advance(clock: ReplayClock, moment: datetime, stopping: Stop) -> bool:
    """Moves the replay clock to ``moment``, pacing as configured; False when a stop request
    ends the wait first (a slow replay can wait minutes between two recorded ticks)."""
    if clock.speed <= 0.0:
        await clock.advance_to(moment)
        return not stopping.requested
    pacing = asyncio.ensure_future(clock.advance_to(moment))
    stopped = asyncio.ensure_future(stopping.wait())
    await asyncio.wait((pacing, stopped), return_when=asyncio.FIRST_COMPLETED)
    for task in (pacing, stopped):
        task.cancel()
    await asyncio.gather(pacing, stopped, return_exceptions=True)
    return not stopping.requested


@contextlib.contextmanager
def _signal_handler(number: int, handler: Callable[..., object], *args: object) -> Iterator[None]:
    """``handler`` called on the signal ``number`` while the block runs; the default after."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(number, handler, *args)
    try:
        yield
    finally:
        loop.remove_signal_handler(number)


@contextlib.contextmanager
def listening_for_stop(stopping: Stop) -> Iterator[None]:
    """Routes SIGTERM and SIGINT to ``stopping`` while the block runs. A live run enters it
    before connecting, so a stop while the gateway is awaited is clean too."""
    with contextlib.ExitStack() as stack:
        for number in STOP_SIGNALS:
            stack.enter_context(_signal_handler(number, stopping.request, number))
        yield


@dataclass(slots=True)
class RunSummary:
    session: Path
    session_date: str
    wall_seconds: float
    replay: ReplayStats
    events: Counter[str]
    rejected_quotes: dict[str, int]
    snapshots: int
    fired: dict[str, int]
    final: Snapshot | None
    journal: Path
    alerts_out: Path | None
    metrics_url: str | None
    undelivered: int = 0  # messages left in the outbox at the end, sent at the next start
    rejected_ticks: dict[str, int] = field(default_factory=dict)  # by reason (market/hygiene)
    failed_batches: int = 0


@contextlib.asynccontextmanager
async def _sinks(config: DaemonConfig, journal: Journal) -> AsyncIterator[list[Sink]]:
    """The journal first: a transition is recorded before anything tries to send it. On the
    way out they are closed in that order (those opened, when a later one fails to open)."""
    sinks: list[Sink] = [journal]
    try:
        if config.console.enabled:
            colour = {"auto": None, "always": True, "never": False}[config.console.colour]
            sinks.append(ConsoleSink(colour=colour, as_log=logs.to_stdout()))
        if config.alerts_out is not None:
            sinks.append(AlertsFileSink(config.alerts_out))
        yield sinks
    finally:
        for sink in sinks:
            await sink.close()


@dataclass(slots=True)
class Runtime:
    """Everything a run owns besides its feed, opened and closed in one place."""

    run_id: str
    journal: Journal
    sinks: list[Sink]
    pipeline: Pipeline
    driver: Driver  # steps the pipeline and delivers to the sinks
    tasks: TaskOwner  # every background task of the run
    delivery: Delivery
    reloader: RuleReloader
    stopping: Stop
    endpoints: Endpoints  # serving when [metrics] is enabled
    notifier: Notifier
    lock: InstanceLock  # the state directory's, released last
    metrics_url: str | None = None
    undelivered: int = 0  # messages left in the outbox, counted as the run closes

    def count_undelivered(self) -> None:
        """Once delivery has stopped: what waits in the outbox for the next start."""
        self.undelivered = sum(w.outbox.backlog(w.channel).messages for w in self.delivery.workers)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _serve_endpoints(
    config: DaemonConfig, runtime: Runtime, *, live: bool, wall: Callable[[], datetime]
) -> int:
    """Starts /metrics, /healthz, /readyz and /state; the bound port."""
    pipeline = runtime.pipeline
    started = time.time()

    def session_now() -> datetime:
        # Live: the wall clock. A replay: its own clock, the time of its last evaluation.
        evaluated_at = pipeline.published.evaluated_at
        if live or evaluated_at is None:
            return wall()
        return evaluated_at

    def ready() -> Readiness:
        return readiness(pipeline, session_now(), config.metrics.ready_max_data_age_seconds)

    def healthz() -> tuple[int, dict[str, Any]]:
        return 200, {
            "status": "ok",
            "run_id": runtime.run_id,
            "uptime_seconds": round(time.time() - started, 3),
        }

    def readyz() -> tuple[int, dict[str, Any]]:
        state = ready()
        return (200 if state.ready else 503), state.document()

    def state() -> tuple[int, dict[str, Any]]:
        view = pipeline.published
        if view.latest is None:
            return 503, {"error": "no book snapshot yet", "ready": ready().document()}
        # What the rules last saw: the last good book carried to the last evaluation, with
        # the feed's health (its data age) as it was then.
        document = state_document(view.evaluated or view.latest, view.firing, config.instance)
        document["ready"] = ready().document()
        return 200, document

    metrics = metrics_handler(
        SnapshotCollector(pipeline, ready), DeliveryCollector(runtime.delivery)
    )
    routes = {"/healthz": healthz, "/readyz": readyz, "/state": state}
    return runtime.endpoints.start(
        metrics, routes, host=config.metrics.host, port=config.metrics.port
    )


@contextlib.asynccontextmanager
async def open_runtime(
    config: DaemonConfig,
    portfolio: Portfolio,
    rules: RuleSet,
    universe: Mapping[str, Instrument],
    *,
    config_path: Path | None,
    bad_lines: Counter[str] | None = None,
    live: bool = False,
    wall: Callable[[], datetime] = _utc_now,
    stopping: Stop | None = None,
) -> AsyncIterator[Runtime]:
    """The run for the ``async with`` block: the instance lock, journal, sinks, pipeline,
    delivery, metrics server, signal handlers and background tasks. ``wall`` is the live
    clock (replaced in tests that run a live day at another time); ``stopping``, a stop
    already listening (``listening_for_stop``) before the feed connected.

    Whatever was opened is closed in reverse order, whatever fails: systemd hears STOPPING,
    SIGHUP is let go, delivery stops (the outbox flushed), then SIGTERM and SIGINT; the
    undelivered messages are counted (``Runtime.undelivered``); the sinks close, then the
    endpoints and the background tasks; the lock is released last."""
    run_id = uuid.uuid4().hex
    stopping = stopping or Stop()
    notifier = Notifier()
    async with contextlib.AsyncExitStack() as stack:
        lock = stack.enter_context(InstanceLock(config.journal.path))
        tasks = await stack.enter_async_context(TaskOwner(stopping.fail))
        # Before the sinks, though started after them: it answers until they have closed.
        endpoints = stack.enter_context(Endpoints())
        journal = Journal(config.journal.path, run_id=run_id)
        sinks = await stack.enter_async_context(_sinks(config, journal))
        pipeline = build_pipeline(
            config, portfolio, rules, universe, journal=journal, bad_lines=bad_lines
        )

        def now() -> datetime:
            return pipeline.latest.time if pipeline.latest is not None else datetime.now(UTC)

        delivery = Delivery(config, journal, pipeline, now=now, config_path=config_path)
        runtime = Runtime(
            run_id,
            journal,
            sinks,
            pipeline,
            Driver(pipeline, sinks),
            tasks,
            delivery,
            RuleReloader(config.rules, pipeline.engine),
            stopping,
            endpoints,
            notifier,
            lock,
        )
        if config.metrics.enabled:
            try:
                port = _serve_endpoints(config, runtime, live=live, wall=wall)
            except OSError as exc:
                raise MonitorError(
                    f"cannot serve metrics on {config.metrics.host}:{config.metrics.port} "
                    f"({exc.strerror}); set [metrics] port, or enabled = false"
                ) from None
            base = f"http://{config.metrics.host}:{port}"
            runtime.metrics_url = f"{base}/metrics"
            log.info(
                "metrics_serving",
                url=runtime.metrics_url,
                endpoints=f"{base}/{{healthz,readyz,state}}",
            )
        stack.callback(runtime.count_undelivered)
        stack.enter_context(listening_for_stop(stopping))
        await stack.enter_async_context(delivery)  # stopped (flushed) once SIGHUP is let go
        if hasattr(signal, "SIGHUP"):
            stack.enter_context(_signal_handler(signal.SIGHUP, runtime.reloader.request))
        await delivery.start(tasks)  # SIGHUP already handled: the broker may take seconds
        supervisor = supervise(
            notifier,
            is_ready=lambda: _ready_status(pipeline, live=live, now=wall()),
            last_progress=lambda: pipeline.published.progress_wall,
        )
        tasks.start(supervisor, name="systemd-notify")
        stack.callback(notifier.stopping)
        yield runtime


def _ready_status(pipeline: Pipeline, *, live: bool, now: datetime) -> str | None:
    """What READY=1 says once the monitor watches the book, else None."""
    latest = pipeline.latest
    if latest is not None:
        since = latest.time.astimezone(NEW_YORK)
        return (
            f"watching {len(latest.book.strategies)} strategies from {since:%Y-%m-%d %H:%M:%S} ET"
        )
    link = pipeline.link_status() if pipeline.link_status else None
    if live and link is not None and link.connected and not market_view(now).open:
        return "connected; the market is closed, waiting for the session"
    if live and link is not None and link.connections == 0 and link.failed_attempts:
        # Up and alerting (FeedNeverConnected) though blind: a start that waited for the
        # broker would be killed by systemd's start timeout and page nobody.
        return f"not connected to the broker at {link.address}: {link.last_error}; retrying"
    return None


async def process(runtime: Runtime, batch: EventBatch) -> None:
    """One batch through the pipeline, with a reload check and the MQTT state. The loop's
    edge: nothing raised here ends a run (the pipeline counts its own failed batches)."""
    pipeline = runtime.pipeline
    try:
        runtime.reloader.maybe_reload()
    except Exception:  # the old rules stay; the reloader reports its own errors
        log.exception("rule_reload_failed")
    await runtime.driver.batch(batch)
    if pipeline.latest is not None:
        try:
            runtime.delivery.offer_state(pipeline.latest, pipeline.firing)
        except Exception:  # the next interval tries again
            log.exception("state_not_offered")


async def run(prepared: Prepared) -> RunSummary:
    config = prepared.config
    reader = prepared.reader
    assert isinstance(config.feed, FeedConfig)  # prepare() made a reader for it
    async with open_runtime(
        config,
        prepared.portfolio,
        prepared.rules,
        reader.header.instruments,
        config_path=prepared.config_path,
        bad_lines=reader.stats.bad_by_reason,
    ) as runtime:
        pipeline = runtime.pipeline
        log_portfolio_warnings(prepared.portfolio, reader.header.session_date)
        session_start = datetime.combine(reader.header.session_date, datetime.min.time(), NEW_YORK)
        warm_up_signals(pipeline, config.signals.warm_up, session_start)
        started = time.perf_counter()
        log.info(
            "replay_start",
            session=str(config.feed.session),
            run_id=runtime.run_id,
            speed=config.feed.speed,
            rules=len(prepared.rules.rules),
        )
        clock: ReplayClock | None = None
        stopping = runtime.stopping
        for count, batch in enumerate(reader.batches()):
            if stopping.requested:
                break
            if clock is None:
                clock = ReplayClock(batch.time, speed=config.feed.speed)
            for moment in pipeline.timer_moments(batch.time):
                if not await _advance(clock, moment, stopping):
                    break
                await runtime.driver.at(moment)
            if not await _advance(clock, batch.time, stopping):
                break
            await process(runtime, batch)
            if count % YIELD_EVERY_BATCHES == 0:
                await asyncio.sleep(0)
    current = asyncio.current_task()
    log.info(
        "replay_end",
        run_id=runtime.run_id,
        snapshots=pipeline.stats.snapshots,
        bad_lines=reader.stats.bad_lines,
        truncated=reader.stats.truncated,
        # Everything the run started is closed by now: a name here is a leaked task.
        tasks_left=sorted(t.get_name() for t in asyncio.all_tasks() if t is not current),
    )
    runtime.tasks.raise_failure()  # a crashed background task: a non-zero exit
    return RunSummary(
        session=config.feed.session,
        session_date=reader.header.session_date.isoformat(),
        wall_seconds=time.perf_counter() - started,
        replay=reader.stats,
        events=pipeline.stats.events,
        rejected_quotes=pipeline.unusable_quotes(),
        snapshots=pipeline.stats.snapshots,
        fired=dict(pipeline.engine.fired),
        final=pipeline.latest,
        journal=config.journal.path,
        alerts_out=config.alerts_out,
        metrics_url=runtime.metrics_url,
        undelivered=runtime.undelivered,
        rejected_ticks=dict(pipeline.market.ticks.rejected),
        failed_batches=pipeline.failures.total,
    )
