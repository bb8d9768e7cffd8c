"""The pipeline of one snapshot: market state -> valuation -> book -> rules -> sinks.

Each stage is a synchronous core; this module only sequences them. Feeding a batch and
awaiting ``process`` keeps a replay in lockstep, so the same file always gives the same
snapshots and alerts; a live feed conflates ticks in the market state between snapshots.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from monitor.domain.alerts import AlertTransition, InhibitRule
from monitor.domain.instruments import Instrument
from monitor.domain.quotes import EventBatch, IndexValue
from monitor.latency import Latency
from monitor.market.hours import market_view
from monitor.market.state import MarketState, QuoteStatus
from monitor.portfolio.book import BetaSettings, BookSnapshot, FeedHealth, aggregate
from monitor.portfolio.model import Portfolio
from monitor.portfolio.scenarios import ScenarioEngine, ScenarioSpec
from monitor.pricing.valuation import PricingSettings, Valuer
from monitor.rules.engine import Phase, RuleEngine
from monitor.rules.loader import Rule
from monitor.signals.board import SignalBoard, SignalSettings
from monitor.signals.events import EventCalendar, event_view, load_events
from monitor.signals.hedge import HedgeSettings, hedge_view
from monitor.signals.history import Change
from monitor.signals.term_structure import TermStructureTracker
from monitor.sinks.base import Sink
from monitor.sinks.journal import Journal

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
    # Subscribed instruments by the market data type IB reports for them (live, frozen,
    # delayed, delayed_frozen; "pending" before the first report), for metrics.
    data_types: Mapping[str, int] = field(default_factory=dict)
    connections: int = 0  # successful connections so far (reconnects are the rest)
    idle: bool = False  # outside the session: connected, market data not subscribed


@dataclass(slots=True)
class PipelineStats:
    events: Counter[str] = field(default_factory=Counter)  # by kind: quote, index
    snapshots: int = 0
    alerts: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # rule, sev, state
    # Lines the feed rejected, by reason: the feed's own counter, shared, never copied.
    bad_lines: Counter[str] = field(default_factory=Counter)


class Pipeline:
    def __init__(
        self,
        *,
        universe: dict[str, Instrument],
        portfolio: Portfolio,
        rules: list[Rule],
        sinks: list[Sink],
        pricing: PricingSettings,
        bad_lines: Counter[str] | None = None,
        beta: BetaSettings | None = None,
        scenarios: ScenarioSpec | None = None,
        inhibit_rules: Sequence[InhibitRule] = (),
        journal: Journal | None = None,
        restore_alert_state: bool = False,
        hedge: HedgeSettings | None = None,
        events: EventCalendar | None = None,
        signals: SignalSettings | None = None,
    ) -> None:
        self.portfolio = portfolio
        self.link_status: Callable[[], LinkStatus] | None = None  # set by a live feed
        self.market = MarketState(
            universe, max_quote_age=timedelta(seconds=pricing.max_quote_age_seconds)
        )
        self.pricing = pricing
        self.hedge_settings = hedge or HedgeSettings(rate=pricing.rate)
        self.signals = SignalBoard(signals)
        # The bundled calendar unless the config names another (replays and backtests too).
        self.events = events if events is not None else load_events()
        self.valuer = Valuer([leg.instrument for leg in portfolio.legs], universe, pricing)
        self.term = TermStructureTracker(
            universe, weeklies=self.signals.settings.weekly_vix_futures
        )
        self.engine = RuleEngine(rules, inhibit_rules=inhibit_rules, silences=journal)
        self.journal = journal
        # Firing alerts of a previous run, taken back at the first batch (its time is "now").
        self._to_restore = journal.load_state() if journal and restore_alert_state else None
        self.beta = beta or BetaSettings()
        self.delta_change = Change(DELTA_ACCELERATION_WINDOW)
        self.scenarios = ScenarioEngine(scenarios or ScenarioSpec(), pricing.rate)
        self.sinks = sinks
        self.stats = PipelineStats(bad_lines=bad_lines if bad_lines is not None else Counter())
        self.latest: BookSnapshot | None = None
        # Published after each evaluation for readers on other threads (metrics, /state):
        # replaced whole, never mutated.
        self.alert_states: Mapping[tuple[str, tuple[tuple[str, str], ...]], Phase] = {}
        self.evaluated_at: datetime | None = None  # session time of the last evaluation
        self.progress_wall: float | None = None  # Unix wall-clock time of the same
        self.latency = Latency()

    def feed_health(self, now: datetime) -> FeedHealth:
        rejected = self.market.rejected
        link = self.link_status() if self.link_status else None
        return FeedHealth(
            events=sum(self.stats.events.values()),
            bad_lines=sum(self.stats.bad_lines.values()),
            crossed_quotes=rejected[QuoteStatus.CROSSED],
            zero_bid_quotes=rejected[QuoteStatus.ZERO_BID],
            one_sided_quotes=rejected[QuoteStatus.ONE_SIDED],
            oldest_leg_quote_age_seconds=max(
                (self.market.age_seconds(leg.instrument.id, now) for leg in self.portfolio.legs),
                default=0.0,
            ),
            connected=link.connected if link else True,
            denied_instruments=link.denied if link else 0,
        )

    def snapshot(self) -> BookSnapshot:
        now = self.market.time
        if now is None:
            raise RuntimeError("no market data yet")
        values = self.valuer.value(self.market, now)

        def index(name: str) -> float:
            value = self.market.index(name)
            return value if value is not None else math.nan

        snapshot = aggregate(
            self.portfolio,
            values,
            time=now,
            spx=index("SPX"),
            vix=index("VIX"),
            ad_nyse=index("AD-NYSE"),
            term=self.term.update(self.market, now),
            feed=self.feed_health(now),
            beta=self.beta,
        )
        change = self.delta_change.update(now, snapshot.book.delta_usd_per_pct)
        return replace(
            snapshot,
            scenarios=self.scenarios.grid(snapshot),
            delta_change_15m_usd_per_pct=change,
            hedge=hedge_view(snapshot, self.market, self.hedge_settings),
            signals=self.signals.update(snapshot),
            events=event_view(self.events, now),
            market=market_view(now),
        )

    def replace_portfolio(self, portfolio: Portfolio, universe: dict[str, Instrument]) -> None:
        """A changed book (positions traded during the day): new legs are valued from the next
        batch on; vols solved so far and the forward ratios are kept. Alerts of strategies or
        legs that are gone resolve at the next evaluation."""
        old = self.valuer
        self.portfolio = portfolio
        self.market.instruments.update(universe)
        legs = [leg.instrument for leg in portfolio.legs]
        self.valuer = Valuer(legs, self.market.instruments, self.pricing)
        self.valuer.last_iv.update(old.last_iv)
        self.valuer.quote_iv.update(old.quote_iv)
        self.valuer.forward_ratio.update(old.forward_ratio)
        self.signals.book_changed()

    def acknowledge(self, alert_id: str) -> str | None:
        """Acknowledges a firing alert (kept in the journal); how it reads, or None."""
        key = self.engine.acknowledge(alert_id)
        if key is None:
            return None
        if self.journal is not None:
            self.journal.save_state(self.engine.export())
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
        """The timer evaluations due before ``until`` since the last snapshot of market data."""
        if self.latest is None:
            return
        moment = self.latest.time + EVALUATION_INTERVAL
        while moment < until:
            yield moment
            moment += EVALUATION_INTERVAL

    async def tick(self, now: datetime) -> list[AlertTransition]:
        """Evaluates the rules at ``now`` without new market data: ``for`` durations complete
        and data-age rules fire even when no tick arrives."""
        latest, last_event = self.latest, self.market.time
        if latest is None or last_event is None or now <= latest.time:
            return []
        age = (now - last_event).total_seconds()
        snapshot = replace(
            latest,
            time=now,
            feed=replace(self.feed_health(now), data_age_seconds=age),
            market=market_view(now),
            events=event_view(self.events, now),
        )
        return await self._evaluate(snapshot)

    @property
    def firing(self) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        """Alerts firing (keep-firing included) at the last evaluation; any thread."""
        return [k for k, phase in self.alert_states.items() if phase is not Phase.PENDING]

    async def _evaluate(self, snapshot: BookSnapshot) -> list[AlertTransition]:
        transitions = self.engine.evaluate(snapshot)
        self.alert_states = self.engine.states()
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
        if transitions:
            for sink in self.sinks:
                await sink.emit(transitions)
            if self.journal is not None:
                self.journal.save_state(self.engine.export())
        return transitions

    async def process(self, batch: EventBatch) -> list[AlertTransition]:
        started = time.perf_counter()
        for event in batch.events:
            self.stats.events["index" if isinstance(event, IndexValue) else "quote"] += 1
        self.market.apply(batch)
        if self._to_restore is not None:
            restored = self.engine.restore(self._to_restore, batch.time)
            log.info("alert_state_restored", alerts=restored, stored=len(self._to_restore))
            self._to_restore = None
        snapshot = self.snapshot()
        self.latest = snapshot
        self.stats.snapshots += 1
        self.latency.observe("snapshot", time.perf_counter() - started)
        transitions = await self._evaluate(snapshot)
        self.latency.observe("alert", time.perf_counter() - started)
        return transitions
