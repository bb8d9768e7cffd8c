"""Prometheus metrics, read from the pipeline's latest snapshot at scrape time.

The only module that imports prometheus_client: the registry and its HTTP exposition are
built here too (``metrics_handler``), so the endpoints and the composition root never see
the library. Names follow Prometheus conventions: prefix ``condor_``, the unit in the name,
``_total`` for counters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any, TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import MetricsHandler
from prometheus_client.registry import Collector, CollectorRegistry

from monitor import __version__
from monitor.delivery.service import Delivery
from monitor.domain.quotes import FeedGreeks
from monitor.health import Readiness
from monitor.latency import cumulative
from monitor.measures import (
    EXPIRY_SCOPE,
    LEG_SCOPE,
    RISK_MEASURES,
    STRATEGY_SCOPE,
    UNDERLYING_SCOPE,
    Family,
    Reading,
    RiskScope,
    View,
)
from monitor.pipeline import LinkStatus, Pipeline, Published
from monitor.readings import JOURNAL, LEG_READINGS, SMILE_FIT_READINGS, STRATEGY_READINGS, VIEWS
from monitor.rules.engine import Phase
from monitor.snapshot import Snapshot

T = TypeVar("T")


def risk_families(snapshot: Snapshot) -> Iterator[Metric]:
    """The families of the table of measures: per strategy, per leg, per expiry and per
    underlying (the book is the sum of the strategies' or the underlyings')."""
    yield from _scope_families(STRATEGY_SCOPE, snapshot)
    yield from _scope_families(LEG_SCOPE, snapshot)
    yield from _scope_families(EXPIRY_SCOPE, snapshot)
    yield from _scope_families(UNDERLYING_SCOPE, snapshot)


def _scope_families(scope: RiskScope[T], snapshot: Snapshot) -> Iterator[Metric]:
    items = list(scope.items(snapshot))
    for measure in RISK_MEASURES:
        name = scope.family(measure)
        if name is None:
            continue
        family = GaugeMetricFamily(name, measure.help, labels=list(scope.labels))
        for item in items:
            family.add_metric(list(scope.label_values(item)), measure.get(scope.risk(item)))
        yield family


Samples = dict[str, GaugeMetricFamily | CounterMetricFamily]


def view_families(views: Sequence[View[Any]], snapshot: Snapshot) -> list[Metric]:
    """The families of the views' tables of readings, one sample per row; rows of several
    views in one family (the indicators of each series) make one family."""
    out: Samples = {}
    for view in views:
        add_samples(view, view.view(snapshot), out)
    return list(out.values())


def add_samples(view: View[T], item: T, out: Samples) -> None:
    """Adds the samples of ``item``'s rows to their families in ``out`` (made as needed)."""
    for r in view.readings:
        if r.family is None or not r.family.shown(item):
            continue
        labels, value = r.sample(item)
        _family(out, r.family).add_metric(list(labels), value)


def item_samples(
    scope: RiskScope[T], readings: Sequence[Reading[T]], snapshot: Snapshot, out: Samples
) -> None:
    """Adds the samples of each item of ``scope`` (a strategy, a leg), labelled by it."""
    labelled_samples(scope.items(snapshot), scope.label_values, readings, out)


def labelled_samples(
    items: Iterable[T],
    label_values: Callable[[T], tuple[str, ...]],
    readings: Sequence[Reading[T]],
    out: Samples,
) -> None:
    """Adds the samples of each of ``items`` (an expiry's smile), labelled by it."""
    listed = list(items)
    for r in readings:
        if r.family is None:
            continue
        family = _family(out, r.family)
        for item in listed:
            labels, value = r.sample(item)
            family.add_metric([*label_values(item), *labels], value)


def _family(out: Samples, family: Family[Any]) -> GaugeMetricFamily | CounterMetricFamily:
    metric = out.get(family.name)
    if metric is None:
        names = list(family.labels)
        metric = out[family.name] = (
            CounterMetricFamily(family.name, family.help, labels=names)
            if family.counter
            else GaugeMetricFamily(family.name, family.help, labels=names)
        )
    return metric


# The snapshot's views shown as metrics; the journal's rows are read from the published
# record instead (there before the first snapshot).
SNAPSHOT_VIEWS: tuple[View[Any], ...] = tuple(v for v in VIEWS if v is not JOURNAL)


class SnapshotCollector(Collector):
    """Reads the pipeline at scrape time: no gauge is set on the per-tick path."""

    def __init__(self, pipeline: Pipeline, ready: Callable[[], Readiness] | None = None) -> None:
        self.pipeline = pipeline
        self.ready = ready  # readiness at the session clock, as /readyz reports it

    def collect(self) -> Iterator[Metric]:
        # One record, published by the pipeline after its last evaluation: every family of
        # this scrape reads the same moment.
        view = self.pipeline.published
        yield InfoMetricFamily("condor_build", "Build information", value={"version": __version__})
        events = CounterMetricFamily("condor_events", "Market events processed", labels=["kind"])
        for kind in ("quote", "index"):
            events.add_metric([kind], view.events.get(kind, 0))
        yield events
        bad = CounterMetricFamily(
            "condor_replay_bad_lines", "Replay lines rejected", labels=["reason"]
        )
        for reason, count in sorted(view.bad_lines.items()):
            bad.add_metric([reason], count)
        yield bad
        rejected = CounterMetricFamily(
            "condor_quotes_rejected",
            "Quotes not usable: for a mid (crossed, zero bid, one-sided) or for an implied vol "
            "(mid below the discounted intrinsic value, above the no-arbitrage bound)",
            labels=["reason"],
        )
        for status, count in sorted(view.quotes_rejected.items()):
            rejected.add_metric([status], count)
        yield rejected
        yield CounterMetricFamily(
            "condor_snapshots", "Book snapshots computed", value=view.snapshots
        )
        alerts = CounterMetricFamily(
            "condor_alert_transitions",
            "Alert transitions emitted",
            labels=["rule", "severity", "state"],
        )
        for (rule, severity, state), count in sorted(view.alerts.items()):
            alerts.add_metric([rule, severity, state], count)
        yield alerts
        firing = GaugeMetricFamily(
            "condor_alerts_firing", "Alerts currently firing", labels=["rule"]
        )
        counts: dict[str, int] = dict.fromkeys(view.rules, 0)
        phases: dict[tuple[str, str], int] = {}
        for (rule, _labels), phase in view.alert_states.items():
            if phase is not Phase.PENDING:
                counts[rule] = counts.get(rule, 0) + 1
            key = (rule, phase.value.replace("-", "_"))
            phases[key] = phases.get(key, 0) + 1
        for rule, count in sorted(counts.items()):
            firing.add_metric([rule], count)
        yield firing
        states = GaugeMetricFamily(
            "condor_alert_states",
            "Alerts by rule and state (pending, firing, keep_firing); inactive ones are absent",
            labels=["rule", "state"],
        )
        for rule in sorted(counts):
            for phase in Phase:
                name = phase.value.replace("-", "_")
                states.add_metric([rule, name], phases.get((rule, name), 0))
        yield states
        yield from self._pipeline_health(view)
        yield from _fault_metrics(view)
        # The feed's link is reported before the first snapshot too: a live monitor started
        # outside the session shows it is connected (and idle) while it waits for the open.
        yield from _link_metrics(self.pipeline, view)
        yield from _snapshot_metrics(view)

    def _pipeline_health(self, view: Published) -> Iterator[Metric]:
        latency = HistogramMetricFamily(
            "condor_pipeline_latency_seconds",
            "Seconds from the pipeline taking a batch of ticks to its snapshot (stage=snapshot) "
            "and to its alert transitions handed to the sinks (stage=alert)",
            labels=["stage"],
        )
        for stage, (counts, total) in view.latency.items():
            latency.add_metric([stage], cumulative(counts), total)
        yield latency
        if view.progress_wall is not None:
            yield GaugeMetricFamily(
                "condor_pipeline_last_progress_timestamp_seconds",
                "Wall-clock time of the last rule evaluation (a batch or a timer), Unix seconds",
                value=view.progress_wall,
            )
        if self.ready is not None:
            state = self.ready()
            yield GaugeMetricFamily(
                "condor_ready", "1 while /readyz answers ready", value=float(state.ready)
            )
            yield GaugeMetricFamily(
                "condor_feed_data_age_seconds",
                "Seconds since the last market event at the session clock (wall clock live, "
                "replay time in a replay); what /readyz judges freshness by",
                value=state.data_age_seconds,
            )
            yield GaugeMetricFamily(
                "condor_market_open",
                "1 during the SPX options session (at the session clock)",
                value=float(state.market_open),
            )


def _fault_metrics(view: Published) -> Iterator[Metric]:
    """Bad ticks, failed batches and the journal's storage: what degrades, never stops."""
    ticks = CounterMetricFamily(
        "condor_ticks_rejected",
        "Prices and index values outside the sanity bounds, counted and never used",
        labels=["reason"],
    )
    for reason, count in sorted(view.ticks_rejected.items()):
        ticks.add_metric([reason], count)
    yield ticks
    yield CounterMetricFamily(
        "condor_batches_failed",
        "Batches whose snapshot raised; the rules ran on the last good book",
        value=view.failed_batches,
    )
    yield GaugeMetricFamily(
        "condor_batches_failed_in_row",
        "Failed batches since the last one that gave a snapshot",
        value=view.failed_batches_in_row,
    )
    yield CounterMetricFamily(
        "condor_rule_evaluations_failed",
        "Evaluations in which the rule engine itself raised (no alert could change)",
        value=view.failed_rule_evaluations,
    )
    journal: Samples = {}
    add_samples(JOURNAL, view.storage, journal)
    yield from journal.values()


def _snapshot_metrics(view: Published) -> Iterator[Metric]:
    snapshot = view.latest
    if snapshot is None:
        return
    yield GaugeMetricFamily(
        "condor_snapshot_time_seconds",
        "Session time of the latest snapshot, Unix seconds",
        value=snapshot.time.timestamp(),
    )
    yield from risk_families(snapshot)
    items: Samples = {}
    item_samples(STRATEGY_SCOPE, STRATEGY_READINGS, snapshot, items)
    item_samples(LEG_SCOPE, LEG_READINGS, snapshot, items)
    labelled_samples(snapshot.smile.chains, lambda c: (c.name,), SMILE_FIT_READINGS, items)
    yield from items.values()
    delayed = GaugeMetricFamily(
        "condor_strategy_delayed_legs",
        "Legs whose quotes the broker serves delayed",
        labels=["strategy"],
    )
    for strategy in snapshot.book.strategies:
        count = sum(
            lr.data_delayed for lr in snapshot.book.legs if lr.leg.strategy == strategy.name
        )
        delayed.add_metric([strategy.name], count)
    yield delayed
    yield from _scenario_cells(snapshot)
    yield from _stress_points(snapshot)
    yield from view_families(SNAPSHOT_VIEWS, snapshot)
    yield from _feed_metrics(snapshot, view)


def feed_model_differences(
    snapshot: Snapshot, feed_greeks: Mapping[str, FeedGreeks]
) -> dict[str, tuple[float, float]]:
    """By underlying class (SPX, VIX): the largest |our IV - the feed's IV| in vol points and
    the largest |our delta - the feed's delta| per option, over the book's option legs that
    the feed has model numbers for."""
    out: dict[str, tuple[float, float]] = {}
    for lr in snapshot.book.legs:
        inst = lr.leg.instrument
        theirs = feed_greeks.get(inst.id)
        if not inst.is_option or theirs is None:
            continue
        group = "VIX" if inst.root == "VIX" else "SPX"
        iv_diff, delta_diff = out.get(group, (0.0, 0.0))
        if theirs.iv is not None and math.isfinite(lr.value.iv):
            iv_diff = max(iv_diff, abs(lr.value.iv - theirs.iv) * 100.0)
        if theirs.delta is not None and math.isfinite(lr.value.delta):
            delta_diff = max(delta_diff, abs(lr.value.delta - theirs.delta))
        out[group] = (iv_diff, delta_diff)
    return out


def _link_metrics(pipeline: Pipeline, view: Published) -> Iterator[Metric]:
    if pipeline.link_status is not None:  # the feed's link as it is now
        link = pipeline.link_status()
    else:  # a replay: always connected, its instruments under their own data type
        replay = {"replay": view.instruments}
        link = LinkStatus(connected=True, denied=0, data_types=replay, connections=1)
    yield GaugeMetricFamily(
        "condor_feed_connected", "1 while the live feed is connected", value=float(link.connected)
    )
    yield GaugeMetricFamily(
        "condor_feed_idle",
        "1 while a live feed idles outside the session (connected, nothing subscribed)",
        value=float(link.idle),
    )
    types = GaugeMetricFamily(
        "condor_feed_instruments",
        "Instruments subscribed, by the market data type the broker reports, and refused",
        labels=["market_data_type"],
    )
    for name, count in sorted(link.data_types.items()):
        types.add_metric([name], count)
    types.add_metric(["denied"], link.denied)
    yield types
    yield GaugeMetricFamily(
        "condor_feed_failed_connection_attempts",
        "Connection attempts to the broker failed since the last connection (0 in a replay)",
        value=float(link.failed_attempts),
    )
    yield CounterMetricFamily(
        "condor_feed_reconnects",
        "Connections to the broker after the first (each one renews every subscription)",
        value=max(link.connections - 1, 0),
    )
    yield CounterMetricFamily(
        "condor_feed_conflated_ticks",
        "Instrument updates replaced by a newer one before the pipeline took them (0 in a replay)",
        value=link.conflated_ticks,
    )


def _feed_metrics(snapshot: Snapshot, view: Published) -> Iterator[Metric]:
    last = GaugeMetricFamily(
        "condor_feed_last_update_timestamp_seconds",
        "Time of the latest quote or value per instrument class, Unix seconds",
        labels=["kind"],
    )
    for kind, stamp in sorted(view.last_update_by_kind.items()):
        last.add_metric([kind], stamp.timestamp())
    yield last
    iv = GaugeMetricFamily(
        "condor_feed_model_iv_difference_max_vol_points",
        "Largest |our IV - the feed's model IV| over the book's options, vol points",
        labels=["underlying"],
    )
    delta = GaugeMetricFamily(
        "condor_feed_model_delta_difference_max",
        "Largest |our delta - the feed's model delta| over the book's options, per option",
        labels=["underlying"],
    )
    for group, (iv_diff, delta_diff) in sorted(
        feed_model_differences(snapshot, view.feed_greeks).items()
    ):
        iv.add_metric([group], iv_diff)
        delta.add_metric([group], delta_diff)
    yield iv
    yield delta


def _scenario_cells(snapshot: Snapshot) -> Iterator[Metric]:
    grid = snapshot.scenarios
    cells = GaugeMetricFamily(
        "condor_scenario_pnl_dollars",
        "Scenario P&L, dollars, by layer, SPX move (%) and SPX vol shock (vol points)",
        labels=["layer", "spx_move_pct", "vol_shock_points"],
    )
    layers = (("condor", grid.condor_usd), ("hedge", grid.hedge_usd), ("book", grid.book_usd))
    for layer, pnl in layers:
        for i, move in enumerate(grid.spx_moves_pct):
            for j, shock in enumerate(grid.vol_shocks_points):
                cells.add_metric([layer, f"{move:g}", f"{shock:g}"], float(pnl[i, j]))
    yield cells


def _stress_points(snapshot: Snapshot) -> Iterator[Metric]:
    labels = ["spx_move_pct", "horizon"]
    pnl = GaugeMetricFamily(
        "condor_stress_pnl_dollars",
        "Stress P&L, dollars, by layer, SPX move (%) and horizon (now, close), VIX and SPX "
        "vols moved with SPX",
        labels=["layer", *labels],
    )
    coverage = GaugeMetricFamily(
        "condor_stress_hedge_coverage_ratio",
        "Second engine's stress gain over the condors' stress loss (ratio), by SPX move (%) "
        "and horizon",
        labels=labels,
    )
    vix = GaugeMetricFamily(
        "condor_stress_vix_points",
        "Spot VIX the stress assumes after each SPX move (%), VIX points",
        labels=["spx_move_pct"],
    )
    for p in snapshot.stress.points:
        at = [f"{p.spx_move_pct:g}", p.horizon.value]
        for layer, value in (
            ("condor", p.condor_usd),
            ("hedge", p.hedge_usd),
            ("book", p.book_usd),
        ):
            pnl.add_metric([layer, *at], value)
        coverage.add_metric(at, p.coverage)
        if p.horizon.value == "now":
            vix.add_metric([at[0]], p.vix_after)
    yield pnl
    yield coverage
    yield vix


class DeliveryCollector(Collector):
    """Per-channel delivery from the outbox, and the MQTT link, at scrape time."""

    def __init__(self, delivery: Delivery, wall_clock: Callable[[], float] = time.time) -> None:
        self.delivery = delivery
        self.wall_clock = wall_clock

    def collect(self) -> Iterator[Metric]:
        label = ["channel"]
        sent = CounterMetricFamily("condor_delivery_sent", "Alert messages delivered", labels=label)
        failed = CounterMetricFamily(
            "condor_delivery_failed", "Failed delivery attempts, per message", labels=label
        )
        retried = CounterMetricFamily(
            "condor_delivery_retried",
            "Delivery attempts after the first, per message",
            labels=label,
        )
        backlog = GaugeMetricFamily(
            "condor_delivery_backlog_messages",
            "Messages in the outbox not delivered yet",
            labels=label,
        )
        oldest = GaugeMetricFamily(
            "condor_delivery_oldest_undelivered_age_seconds",
            "Age of the oldest undelivered message, seconds (0 when none)",
            labels=label,
        )
        success = GaugeMetricFamily(
            "condor_delivery_last_success_timestamp_seconds",
            "Unix time of the last delivery (absent before the first)",
            labels=label,
        )
        now = self.wall_clock()
        for worker in self.delivery.workers:
            st, name = worker.stats, [worker.channel]
            sent.add_metric(name, st.sent)
            failed.add_metric(name, st.failed)
            retried.add_metric(name, st.retried)
            backlog.add_metric(name, st.backlog_messages)
            age = 0.0 if st.oldest_created is None else max(now - st.oldest_created, 0.0)
            oldest.add_metric(name, age)
            if st.last_success is not None:
                success.add_metric(name, st.last_success)
        yield from (sent, failed, retried, backlog, oldest, success)
        link = self.delivery.link
        if link is not None:
            yield GaugeMetricFamily(
                "condor_mqtt_connected",
                "1 while connected to the MQTT broker",
                value=float(link.connected),
            )
            yield CounterMetricFamily(
                "condor_mqtt_connections",
                "Successful connections to the MQTT broker",
                value=link.connects,
            )
        commands = self.delivery.commands
        if commands is not None:
            family = CounterMetricFamily(
                "condor_mqtt_commands", "Commands received over MQTT", labels=["outcome"]
            )
            family.add_metric(["accepted"], commands.accepted)
            family.add_metric(["rejected"], commands.rejected)
            yield family
            refused = CounterMetricFamily(
                "condor_mqtt_commands_refused",
                "Commands refused over MQTT, by reason (disabled, signature, stale, replayed, "
                "rate_limited, capped, invalid, not_found, failed)",
                labels=["reason"],
            )
            for reason, count in sorted(dict(commands.rejections).items()):
                refused.add_metric([reason], count)
            yield refused


def metrics_handler(*collectors: Collector) -> type[BaseHTTPRequestHandler]:
    """An HTTP request handler whose GET answers with what ``collectors`` read at that
    moment, in the exposition format the scraper asks for (Prometheus text or OpenMetrics,
    gzipped when accepted). The collectors get a registry of their own."""
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    handler: type[BaseHTTPRequestHandler] = MetricsHandler.factory(registry)
    return handler
