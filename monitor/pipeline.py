"""The pipeline of one snapshot: market state -> valuation -> book -> views -> rules.

A synchronous step: ``step`` takes a batch, ``evaluate_at`` a moment without one, and each
returns the alert transitions; the sinks are the driver's (``monitor.driver``). Stepping a
batch at a time keeps a replay in lockstep, so the same file always gives the same snapshots
and alerts; a live feed conflates ticks in the market state between snapshots.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from monitor.config import (
    HedgeConfig,
    PricingConfig,
    ScenariosConfig,
    SignalsConfig,
    StressConfig,
)
from monitor.domain.account import AccountValues, AccountView
from monitor.domain.alerts import AlertTransition, InhibitRule, SavedAlert
from monitor.domain.health import FeedHealth, StorageHealth
from monitor.domain.instruments import Instrument
from monitor.domain.quotes import DELAYED_DATA_MINUTES, EventBatch, FeedGreeks, IndexValue
from monitor.latency import Latency
from monitor.market.hours import market_view
from monitor.market.state import MarketState, QuoteStatus
from monitor.portfolio.book import Book, LegRisk, aggregate
from monitor.portfolio.model import Portfolio
from monitor.portfolio.scenarios import ScenarioEngine
from monitor.portfolio.stress import StressEngine
from monitor.pricing.valuation import Valuer
from monitor.rules.engine import Phase, RuleEngine
from monitor.rules.loader import Rule
from monitor.signals.board import Prices, SignalBoard
from monitor.signals.events import EventCalendar, event_view, load_events
from monitor.signals.hedge import HedgeView, hedge_view
from monitor.signals.history import Change
from monitor.signals.term_structure import TermStructure, TermStructureTracker
from monitor.sinks.journal import Journal
from monitor.snapshot import Snapshot

log = structlog.get_logger(__name__)
DELTA_ACCELERATION_WINDOW = timedelta(minutes=15)

# Without new market data the rules still run this often, on the session clock: `for`
# durations complete and data-age rules fire in a gap.
EVALUATION_INTERVAL = timedelta(seconds=15)


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """A live feed's connection as the rules see it."""

    connected: bool
    denied: int
    # Instruments whose quotes the broker serves delayed, and by how much.
    delayed: frozenset[str] = field(default=frozenset(), kw_only=True)
    delayed_data_minutes: float = field(default=DELAYED_DATA_MINUTES, kw_only=True)
    # Subscribed instruments by the market data type IB reports for them (live, frozen,
    # delayed, delayed_frozen; "pending" before the first report), for metrics.
    data_types: Mapping[str, int] = field(default_factory=dict)
    connections: int = 0  # successful connections so far (reconnects are the rest)
    idle: bool = False  # outside the session: connected, market data not subscribed
    failed_attempts: int = 0  # connection attempts failed since the last connection
    last_error: str = ""  # why the last attempt failed, in words; empty once connected
    address: str = ""  # host:port of the broker
    # Session time the feed last started asking for market data (its first subscription, or
    # a wake for the session); None before. Before the first market event, the data age
    # counts from here.
    data_requested_at: datetime | None = None
    # Instrument updates replaced by a newer one before the pipeline took them (conflation).
    conflated_ticks: int = 0
    # The account's values as the feed received them (margin, liquidity); None: none yet.
    account: AccountValues | None = None


def marked_delayed(legs: tuple[LegRisk, ...], delayed: frozenset[str]) -> tuple[LegRisk, ...]:
    """The legs, each marked by whether the feed quotes its instrument delayed."""
    if not delayed and not any(lr.data_delayed for lr in legs):
        return legs
    return tuple(replace(lr, data_delayed=lr.leg.instrument.id in delayed) for lr in legs)


@dataclass(slots=True)
class BatchFailures:
    """Batches whose snapshot raised: the run goes on with the last good book."""

    total: int = 0
    in_row: int = 0  # since the last batch that gave a snapshot
    last_error: str = ""  # "ExceptionType: message" of the latest failure
    rules: int = 0  # evaluations in which the rule engine itself raised
    logged: set[str] = field(default_factory=set)  # error types logged with a traceback


@dataclass(slots=True)
class PipelineStats:
    events: Counter[str] = field(default_factory=Counter)  # by kind: quote, index
    snapshots: int = 0
    alerts: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # rule, sev, state
    # Lines the feed rejected, by reason: the feed's own counter, shared, never copied.
    bad_lines: Counter[str] = field(default_factory=Counter)


AlertKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class Published:
    """The pipeline as readers on other threads (metrics, /state, /readyz, systemd's
    watchdog) see it: built after each evaluation from the pipeline's own state and replaced
    whole, never mutated, so a scrape never reads a counter or a book half way through a
    batch. Counts are copies; the snapshot is immutable already."""

    latest: Snapshot | None = None  # the last good snapshot
    evaluated: Snapshot | None = None  # what the rules last saw: latest moved to its time
    evaluated_at: datetime | None = None  # session time of the last evaluation
    progress_wall: float | None = None  # Unix wall-clock time of the same
    last_event: datetime | None = None  # session time of the last market event
    instruments: int = 0  # in the market state (a replay's link reports them)
    rules: tuple[str, ...] = ()
    alert_states: Mapping[AlertKey, Phase] = field(default_factory=dict)
    events: Mapping[str, int] = field(default_factory=dict)  # by kind: quote, index
    bad_lines: Mapping[str, int] = field(default_factory=dict)  # by reason
    quotes_rejected: Mapping[str, int] = field(default_factory=dict)  # by quote status
    ticks_rejected: Mapping[str, int] = field(default_factory=dict)  # by reason
    snapshots: int = 0
    alerts: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    failed_batches: int = 0
    failed_batches_in_row: int = 0
    failed_rule_evaluations: int = 0
    storage: StorageHealth = field(default_factory=StorageHealth)
    # The newest quote or value per instrument kind; the feed's own greeks.
    last_update_by_kind: Mapping[str, datetime] = field(default_factory=dict)
    feed_greeks: Mapping[str, FeedGreeks] = field(default_factory=dict)
    # Per stage: the histogram's bucket counts (latency.BUCKETS, then above) and sum, seconds.
    latency: Mapping[str, tuple[tuple[int, ...], float]] = field(default_factory=dict)

    @property
    def firing(self) -> list[AlertKey]:
        """Alerts firing (keep-firing included) at the last evaluation."""
        return [k for k, phase in self.alert_states.items() if phase is not Phase.PENDING]


class Pipeline:
    def __init__(
        self,
        *,
        universe: dict[str, Instrument],
        portfolio: Portfolio,
        rules: list[Rule],
        pricing: PricingConfig,
        bad_lines: Counter[str] | None = None,
        scenarios: ScenariosConfig | None = None,
        inhibit_rules: Sequence[InhibitRule] = (),
        journal: Journal | None = None,
        restore_alert_state: bool = False,
        hedge: HedgeConfig | None = None,
        events: EventCalendar | None = None,
        signals: SignalsConfig | None = None,
        stress: StressConfig | None = None,
    ) -> None:
        """The config's sections are taken as they are (no copy): a missing one is its
        defaults. Values one component takes from another's section (the rate, the VIX
        futures' half-life) are passed to it as arguments."""
        self.portfolio = portfolio
        self.link_status: Callable[[], LinkStatus] | None = None  # set by a live feed
        self.market = MarketState(
            universe, max_quote_age=timedelta(seconds=pricing.max_quote_age_seconds)
        )
        self.pricing = pricing
        scenarios = scenarios or ScenariosConfig()
        self.hedge = hedge or HedgeConfig()
        self.signals = SignalBoard(signals)
        # The bundled calendar unless the config names another (replays and backtests too).
        self.events = events if events is not None else load_events()
        self.valuer = Valuer([leg.instrument for leg in portfolio.legs], universe, pricing)
        self.market.prints.watch(self.valuer.legs)
        self.term = TermStructureTracker(universe, weeklies=self.signals.config.weekly_vix_futures)
        self.engine = RuleEngine(rules, inhibit_rules=inhibit_rules, silences=journal)
        self.journal = journal
        # Firing alerts of a previous run, taken back at the first batch (its time is "now"):
        # a book that knows nothing (a live run not connected yet) would resolve them. Until
        # then they are kept in the journal with the alerts of that book.
        self._to_restore = journal.load_state() if journal and restore_alert_state else None
        self.delta_change = Change(DELTA_ACCELERATION_WINDOW)
        self.scenarios = ScenarioEngine(scenarios, pricing.rate)
        self.stress = StressEngine(
            stress or StressConfig(), pricing.rate, scenarios.vx_response_half_life_days
        )
        self.stats = PipelineStats(bad_lines=bad_lines if bad_lines is not None else Counter())
        self.failures = BatchFailures()
        self.latest: Snapshot | None = None
        self.alert_states: Mapping[AlertKey, Phase] = {}
        self.evaluated_at: datetime | None = None  # session time of the last evaluation
        self.evaluated: Snapshot | None = None  # what the rules last saw (latest, carried on)
        self.progress_wall: float | None = None  # Unix wall-clock time of the same
        self.latency = Latency()
        self.storage = StorageHealth()  # the journal at the last evaluation, for metrics
        # For readers on other threads: replaced whole after each evaluation.
        self.published = Published()
        self.publish()

    def feed_health(self, now: datetime) -> FeedHealth:
        rejected = self.market.rejected
        link = self.link_status() if self.link_status else None
        return FeedHealth(
            rejected_ticks=sum(self.market.ticks.rejected.values()),
            failed_batches=self.failures.total,
            failed_batches_in_row=self.failures.in_row,
            events=sum(self.stats.events.values()),
            bad_lines=sum(self.stats.bad_lines.values()),
            crossed_quotes=rejected[QuoteStatus.CROSSED],
            zero_bid_quotes=rejected[QuoteStatus.ZERO_BID],
            one_sided_quotes=rejected[QuoteStatus.ONE_SIDED],
            # Unknown (NaN) before the first market event: a live run not connected yet.
            oldest_leg_quote_age_seconds=max(
                (
                    self.quote_age_seconds(leg.instrument.id, now, link)
                    for leg in self.portfolio.legs
                ),
                default=0.0,
            )
            if self.market.time is not None
            else math.nan,
            delayed_instruments=link.delayed if link else frozenset(),
            delayed_data_minutes=link.delayed_data_minutes if link else DELAYED_DATA_MINUTES,
            connected=link.connected if link else True,
            denied_instruments=link.denied if link else 0,
            data_age_seconds=self._data_age_seconds(now, link),
            never_connected=link is not None and link.connections == 0,
            failed_connection_attempts=link.failed_attempts if link else 0,
        )

    def _data_age_seconds(self, now: datetime, link: LinkStatus | None) -> float:
        """Session seconds since the last market event; before the first one, since the live
        feed asked for market data (a connection that never brings a quote ages too), and
        unknown (NaN) before it asked."""
        last = self.market.time
        if last is None and link is not None:
            last = link.data_requested_at
        return (now - last).total_seconds() if last is not None else math.nan

    def quote_age_seconds(self, instrument: str, now: datetime, link: LinkStatus | None) -> float:
        """How old the instrument's latest quote is as a market price: the time since it arrived,
        plus the feed's delay when the broker serves it delayed."""
        age = self.market.age_seconds(instrument, now)
        if link is not None and instrument in link.delayed:
            age += link.delayed_data_minutes * 60.0
        return age

    def storage_health(self) -> StorageHealth:
        """The journal's health (a replay without a journal has nothing to lose)."""
        return self.journal.health() if self.journal is not None else StorageHealth()

    def snapshot(self) -> Snapshot:
        """The snapshot of the market state as it is: the book valued, then every view of
        it, built whole."""
        now = self.market.time
        if now is None:
            raise RuntimeError("no market data yet")
        spx, vix, ad_nyse = (self._index(name) for name in ("SPX", "VIX", "AD-NYSE"))
        term = self.term.update(self.market, now)
        feed = self.feed_health(now)
        book = aggregate(
            self.portfolio,
            self.valuer.value(self.market, now),
            spx,
            vix_points_per_spx_pct=self.pricing.vix_points_per_spx_pct,
            vx_response_half_life_days=self.scenarios.config.vx_response_half_life_days,
        )
        book = replace(book, legs=marked_delayed(book.legs, feed.delayed_instruments))
        prices = Prices(spx, vix, term.vx1, term.vx2, ad_nyse, term.vx1_id)
        return Snapshot(
            time=now,
            spx=spx,
            vix=vix,
            ad_nyse=ad_nyse,
            term=term,
            book=book,
            feed=feed,
            storage=self.storage_health(),
            scenarios=self.scenarios.grid(book),
            stress=self.stress.view(book, vix, now),
            hedge=hedge_view(
                book,
                term,
                now,
                self.market,
                self.hedge,
                rate=self.pricing.rate,
                vx_response_half_life_days=self.scenarios.config.vx_response_half_life_days,
            ),
            signals=self.signals.update(now, prices, book, term),
            events=event_view(self.events, now),
            market=market_view(now),
            delta_change_15m_usd_per_pct=self.delta_change.update(
                now, book.total.delta_usd_per_pct
            ),
            smile=self.valuer.smile_view(now),
            account=self.account_view(now),
        )

    def account_view(self, now: datetime) -> AccountView:
        """The account's margin and liquidity from a live feed's link (NaN in a replay)."""
        link = self.link_status() if self.link_status else None
        return AccountView.of(link.account if link else None, now, live=link is not None)

    def _index(self, name: str) -> float:
        value = self.market.index(name)
        return value if value is not None else math.nan

    def _unvalued_at(self, now: datetime) -> Snapshot:
        """For failures before the first good snapshot: a book that knows nothing (no legs
        valued, every number NaN), built without the valuation or aggregation that may be
        what fails, so the rules on the feed, the journal and failures still run."""
        nan = math.nan
        return Snapshot(
            time=now,
            spx=nan,
            vix=nan,
            ad_nyse=nan,
            term=TermStructure.unknown(),
            book=Book.unknown(self.portfolio.account_size_usd or nan),
            feed=self.feed_health(now),
            storage=self.storage_health(),
            scenarios=self.scenarios.unknown(),
            stress=self.stress.unknown(),
            hedge=HedgeView.unknown(self.hedge),
            signals=self.signals.unknown(),
            events=event_view(self.events, now),
            market=market_view(now),
            account=self.account_view(now),
        )

    def replace_portfolio(self, portfolio: Portfolio, universe: dict[str, Instrument]) -> None:
        """A changed book (positions traded during the day): new legs are valued from the next
        batch on; vols solved so far and the forward ratios are kept. Alerts of strategies or
        legs that are gone resolve at the next evaluation."""
        self.portfolio = portfolio
        self._revalue(universe)
        self.signals.book_changed()

    def replace_universe(self, universe: dict[str, Instrument]) -> None:
        """Other instruments quoted around the same book (the strike ladder re-centred): the
        chains and put-call parity pairs of valuation take them from the next batch on.
        Nothing about the book changes: the hedge-quality history is kept."""
        self._revalue(universe)

    def _revalue(self, universe: dict[str, Instrument]) -> None:
        """A new Valuer for the book's legs whose chains are ``universe`` (the instruments
        quoted now; those dropped since no longer count in a smile), keeping the vols solved
        so far and the forward ratios."""
        old = self.valuer
        self.market.instruments.update(universe)
        legs = [leg.instrument for leg in self.portfolio.legs]
        chains = {**universe, **{i.id: i for i in legs}}
        self.valuer = Valuer(legs, chains, self.pricing)
        self.market.prints.watch(legs)
        self.valuer.last_iv.update(old.last_iv)
        self.valuer.quote_iv.update(old.quote_iv)
        self.valuer.forward_ratio.update(old.forward_ratio)
        self.valuer.smiles.update(old.smiles)
        self.valuer.unusable_quotes.update(old.unusable_quotes)

    def unusable_quotes(self) -> dict[str, int]:
        """Quotes no leg could use, by reason: those the market state refuses for a mid
        (crossed, zero bid, one-sided) and valid ones whose mid no vol reproduces (below the
        discounted intrinsic value, above the no-arbitrage bound)."""
        counts = {status.value: n for status, n in self.market.rejected.items()}
        counts.update(self.valuer.unusable_quotes)
        return counts

    def acknowledge(self, alert_id: str) -> str | None:
        """Acknowledges a firing alert (kept in the journal); how it reads, or None."""
        key = self.engine.acknowledge(alert_id)
        if key is None:
            return None
        if self.journal is not None:
            self.journal.save_state(self.alert_state_to_save())
        rule, labels = key
        return " ".join([rule, *(f"{k}={v}" for k, v in labels)])

    def add_silence(
        self, matchers: dict[str, str], starts: datetime, ends: datetime, comment: str
    ) -> int:
        if self.journal is None:
            raise RuntimeError("silences are kept in the journal; this pipeline has none")
        return self.journal.add_silence(matchers, starts, ends, comment, starts)

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        return self.journal is not None and self.journal.expire_silence(silence_id, now)

    def timer_moments(self, until: datetime) -> Iterator[datetime]:
        """The timer evaluations due before ``until`` since the last snapshot of market data,
        or since the last evaluation when that is later (batches failing since the last
        good one are evaluated too: the gap starts at the latest of them)."""
        if self.latest is None:
            return
        start = self.latest.time
        if self.evaluated_at is not None and self.evaluated_at > start:
            start = self.evaluated_at
        moment = start + EVALUATION_INTERVAL
        while moment < until:
            yield moment
            moment += EVALUATION_INTERVAL

    def evaluate_at(self, now: datetime) -> list[AlertTransition]:
        """Evaluates the rules at ``now`` without new market data: ``for`` durations complete
        and data-age rules fire even when no tick arrives."""
        latest, last_event = self.latest, self.market.time
        blind = self.link_status is not None and latest is None
        if not blind and (last_event is None or (latest is None and not self.failures.in_row)):
            return []  # a replay before its first data: nothing to judge
        # A live run without a book yet (not connected, or idling before the open) evaluates a
        # book that knows nothing: the feed, journal and market-hours rules still run.
        if latest is not None and now <= latest.time:
            return []
        snapshot = self._last_good_at(now)
        return self._evaluate(snapshot) if snapshot is not None else []

    @property
    def firing(self) -> list[AlertKey]:
        """Alerts firing (keep-firing included) at the last evaluation; any thread."""
        return self.published.firing

    def publish(self) -> None:
        """Replaces ``published`` with the pipeline's state now (the loop's thread only)."""
        stats, failures, market = self.stats, self.failures, self.market
        self.published = Published(
            latest=self.latest,
            evaluated=self.evaluated,
            evaluated_at=self.evaluated_at,
            progress_wall=self.progress_wall,
            last_event=market.time,
            instruments=len(market.instruments),
            rules=tuple(r.name for r in self.engine.rules),
            alert_states=self.alert_states,
            events=dict(stats.events),
            bad_lines=dict(stats.bad_lines),
            quotes_rejected=self.unusable_quotes(),
            ticks_rejected=dict(market.ticks.rejected),
            snapshots=stats.snapshots,
            alerts=dict(stats.alerts),
            failed_batches=failures.total,
            failed_batches_in_row=failures.in_row,
            failed_rule_evaluations=failures.rules,
            storage=self.storage,
            last_update_by_kind=dict(market.kind_times),
            feed_greeks=dict(market.feed_greeks),
            latency={
                stage: (tuple(buckets.counts), buckets.total)
                for stage, buckets in self.latency.stages.items()
            },
        )

    def _evaluate(self, snapshot: Snapshot) -> list[AlertTransition]:
        try:
            transitions = self.engine.evaluate(snapshot)
        except Exception as exc:  # the engine's own fault: logged, the next batch tries again
            self.failures.rules += 1
            if "rules" not in self.failures.logged:
                self.failures.logged.add("rules")
                log.exception("rules_failed", time=snapshot.time.isoformat())
            else:
                # The traceback once, then one line per failure.
                log.error("rules_failed", time=snapshot.time.isoformat(), error=repr(exc))  # noqa: TRY400
            self.publish()
            return []
        self.alert_states = self.engine.states()
        self.evaluated = snapshot
        self.storage = snapshot.storage
        self.evaluated_at = snapshot.time
        self.progress_wall = time.time()
        for t in transitions:
            self.stats.alerts[(t.rule, t.severity.value, t.state.value)] += 1
            log.debug(  # the console sink writes each transition (a JSON line on a service)
                "alert_transition",
                rule=t.rule,
                state=t.state.value,
                severity=t.severity.value,
                labels=dict(t.labels),
                value=t.value,
                unit=t.unit,
                notify=t.notify,
            )
        # Readers see this evaluation from here (the alert stage's latency of a batch is
        # observed after its delivery, so it shows from the next evaluation on).
        self.publish()
        return transitions

    def alert_state_to_save(self) -> list[SavedAlert]:
        """The firing alerts for the journal: the engine's, and those of the previous run not
        taken back yet (no market data so far) unless the engine has the same alert."""
        saved = self.engine.export()
        if self._to_restore:
            held = {(a.rule, a.labels) for a in saved}
            saved += [a for a in self._to_restore if (a.rule, a.labels) not in held]
        return saved

    def step(self, batch: EventBatch) -> list[AlertTransition]:
        """One batch: its snapshot (``latest``) and alert transitions. A batch whose snapshot
        raises is counted and logged (``feed.failed_batches*``), and the rules run on the last
        good book at this batch's time, so feed, storage and failure alerts still fire."""
        started = time.perf_counter()
        for event in batch.events:
            self.stats.events["index" if isinstance(event, IndexValue) else "quote"] += 1
        in_row, self.failures.in_row = self.failures.in_row, 0  # this batch's snapshot says 0
        try:
            self.market.apply(batch)
            snapshot = self.snapshot()
        except Exception as exc:  # noqa: BLE001 - one bad batch never ends a run
            self.failures.in_row = in_row
            self._failed(batch, exc)
            degraded = self._last_good_at(batch.time)
            return self._evaluate(degraded) if degraded is not None else []
        if self._to_restore is not None:
            # At the first good snapshot, not before: on a book that knows nothing (a failed
            # first batch) the alerts of legs and strategies would resolve, falsely.
            restored = self.engine.restore(self._to_restore, batch.time)
            log.info("alert_state_restored", alerts=restored, stored=len(self._to_restore))
            self._to_restore = None
        self.latest = snapshot
        self.stats.snapshots += 1
        self.latency.observe("snapshot", time.perf_counter() - started)
        return self._evaluate(snapshot)

    def _failed(self, batch: EventBatch, exc: Exception) -> None:
        """Counts and logs a failed batch (called from its except clause)."""
        failures = self.failures
        failures.total += 1
        failures.in_row += 1
        failures.last_error = f"{type(exc).__name__}: {exc}"
        kind = type(exc).__name__
        fields = {
            "time": batch.time.isoformat(),
            "events": len(batch.events),
            "in_row": failures.in_row,
            "total": failures.total,
            "error": failures.last_error,
        }
        if kind not in failures.logged:  # the traceback once per kind of error
            failures.logged.add(kind)
            log.error("batch_failed", exc_info=exc, **fields)
        else:
            log.error("batch_failed", **fields)

    def _last_good_at(self, now: datetime) -> Snapshot | None:
        """The last good book, moved to ``now`` with the feed's health as it is now."""
        latest = self.latest
        if latest is None:
            return self._unvalued_at(now)
        if now < latest.time:
            return None
        feed = self.feed_health(now)
        book = latest.book
        return replace(
            latest,
            time=now,
            book=replace(book, legs=marked_delayed(book.legs, feed.delayed_instruments)),
            feed=feed,
            storage=self.storage_health(),
            market=market_view(now),
            events=event_view(self.events, now),
        )
