"""A live pipeline before its first quote, with the default pack: a connection that never
brings market data in the session goes stale like one that stopped, and the firing alerts
of the previous run outlive a restart made while the broker was down (no book to judge
them on) until the first batch takes them back.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from pathlib import Path

from conftest import REPO

from monitor import bundled
from monitor.config import PricingConfig
from monitor.domain.alerts import AlertState, AlertTransition, SavedAlert
from monitor.domain.instruments import NEW_YORK
from monitor.driver import Driver
from monitor.feeds.replay import ReplayReader
from monitor.pipeline import LinkStatus, Pipeline
from monitor.portfolio.model import load_portfolio
from monitor.rules.loader import load_rule_set
from monitor.sinks.journal import Journal

PACK = REPO / "rules" / "second-engine.yaml"
DAY = datetime(2026, 3, 3, tzinfo=NEW_YORK)  # the bundled session's day
STEP = timedelta(seconds=15)


def pipeline(journal: Journal | None = None) -> Pipeline:
    rule_set = load_rule_set([PACK])
    return Pipeline(
        universe=ReplayReader(bundled.SESSION).header.instruments,
        portfolio=load_portfolio(bundled.PORTFOLIO),
        rules=rule_set.rules,
        inhibit_rules=rule_set.inhibit_rules,
        journal=journal,
        restore_alert_state=journal is not None,
        pricing=PricingConfig(),
    )


def ticks(p: Pipeline, start: datetime, end: datetime) -> list[AlertTransition]:
    """The daemon's timer from ``start`` to ``end``, every 15 s, with no market data; the
    transitions delivered (the journal keeps the alert state after them)."""
    driver = Driver(p, [p.journal] if p.journal is not None else [])

    async def run() -> list[AlertTransition]:
        out, moment = [], start
        while moment <= end:
            out.extend(await driver.at(moment))
            moment += STEP
        return out

    return asyncio.run(run())


def test_a_connection_that_never_brings_a_quote_goes_stale_in_the_session() -> None:
    """Connected at 10:00, subscribed, and not one market event (a dead farm IB did not
    report): FeedStale pages once the age since the request passes 60 s, and its message
    gives that age; before the request nothing is said to be stale."""
    p = pipeline()
    asked = DAY.replace(hour=10)
    clock = [asked]
    p.link_status = lambda: LinkStatus(
        connected=True,
        denied=0,
        connections=1,
        data_requested_at=asked if clock[-1] >= asked else None,
    )
    out: list[AlertTransition] = []
    moment = asked - timedelta(minutes=2)
    while moment <= asked + timedelta(minutes=3):
        clock.append(moment)
        out.extend(ticks(p, moment, moment))
        moment += STEP
    stale = [t for t in out if t.rule == "FeedStale"]
    assert [t.state for t in stale] == [AlertState.FIRING]
    assert stale[0].time == asked + timedelta(seconds=75)  # the first evaluation past 60 s
    assert stale[0].value == 75.0
    assert "No market data for 75 s" in stale[0].message
    assert not [t for t in out if t.rule in ("FeedDisconnected", "FeedNeverConnected")]


def test_an_unknown_data_age_is_not_stale() -> None:
    """Connected while idle and never asked for data: the age is unknown, not zero and not
    stale."""
    p = pipeline()
    p.link_status = lambda: LinkStatus(connected=True, denied=0, connections=1, idle=True)
    out = ticks(p, DAY.replace(hour=10), DAY.replace(hour=10, minute=5))
    assert not [t for t in out if t.rule == "FeedStale"]
    assert p.feed_health(DAY.replace(hour=10)).data_age_seconds != 0.0


def test_firing_alerts_outlive_a_restart_made_while_the_broker_is_down(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    since = DAY.replace(hour=15, minute=50) - timedelta(days=1)  # the day before, at 15:50
    vega = SavedAlert(
        "BookVegaLimit", (("category", "greeks"),), since, True, since, acknowledged=True
    )
    first = Journal(path)
    first.save_state([vega])
    asyncio.run(first.close())

    # Restart while IB Gateway is down: FeedNeverConnected fires at 09:17 and is journaled;
    # the vega alert is not judged on a book that knows nothing, and not dropped either.
    down = Journal(path)
    blind = pipeline(down)
    blind.link_status = lambda: LinkStatus(connected=False, denied=0, connections=0)
    out = ticks(blind, DAY.replace(hour=9), DAY.replace(hour=9, minute=20))
    assert [(t.rule, t.state) for t in out] == [
        ("MarketClosed", AlertState.FIRING),
        ("FeedNeverConnected", AlertState.FIRING),
    ]
    saved = {a.rule: a for a in down.load_state()}
    assert saved.keys() == {"BookVegaLimit", "MarketClosed", "FeedNeverConnected"}
    assert saved["BookVegaLimit"] == vega  # acknowledged, and since the day before
    asyncio.run(down.close())

    # A second restart, and the gateway is up: the first batch takes both back.
    up = Journal(path)
    live = pipeline(up)
    live.link_status = lambda: LinkStatus(connected=True, denied=0, connections=1)
    batch = next(iter(ReplayReader(bundled.SESSION).batches()))
    out = asyncio.run(Driver(live, [up]).batch(batch))
    taken = {key[0] for key in live.engine.states()}
    resolved = {t.rule for t in out if t.state is AlertState.RESOLVED}
    assert "BookVegaLimit" in taken | resolved
    assert "FeedNeverConnected" in resolved  # connected now: it resolves and says so
    assert all(t.notify for t in out if t.rule == "FeedNeverConnected")
    asyncio.run(up.close())


def test_a_failed_first_batch_after_a_restart_resolves_nothing(tmp_path: Path) -> None:
    """The previous run's short-strike alert is firing; the first batch after the restart
    cannot be valued. The rules then run on a book that knows nothing, which has no legs:
    the alert is not judged there (no false all-clear), and the first good batch takes it
    back."""
    path = tmp_path / "journal.sqlite"
    since = DAY.replace(hour=15, minute=50) - timedelta(days=1)
    labels = (("category", "greeks"), ("leg", "P6425"), ("strategy", "IC-APR17"))
    short = SavedAlert("ShortStrikeDeltaWarning", labels, since, True, since)
    first = Journal(path)
    first.save_state([short])
    asyncio.run(first.close())
    journal = Journal(path)
    p = pipeline(journal)
    healthy = p.valuer.value
    calls = [0]

    def value(*args: object) -> object:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("valuation fault injected by the test")
        return healthy(*args)  # type: ignore[arg-type]

    p.valuer.value = value  # type: ignore[method-assign]
    driver = Driver(p, [journal])
    batches = iter(ReplayReader(bundled.SESSION).batches())
    failed = asyncio.run(driver.batch(next(batches)))
    assert p.failures.total == 1
    assert not [t for t in failed if t.rule == "ShortStrikeDeltaWarning"]
    assert short in journal.load_state()  # still kept for the next start
    second = asyncio.run(driver.batch(next(batches)))
    # Taken back and judged on a valued book: the put's delta at the open is below the
    # warning, so it resolves on its own numbers, not as "no longer evaluated".
    (resolved,) = [t for t in second if t.rule == "ShortStrikeDeltaWarning"]
    assert resolved.state is AlertState.RESOLVED
    assert resolved.labels == labels
    assert "no longer evaluated" not in resolved.message
    assert math.isfinite(resolved.value)
    asyncio.run(journal.close())


def test_a_book_that_knows_nothing_reads_nan_not_zero() -> None:
    """Hedge sizing, band, signal crosses and bar counts of the unvalued book are unknown:
    0 would read as 'nothing to add' or 'no cross'."""
    from monitor.rules.variables import book_values

    p = pipeline()
    values = book_values(p._unvalued_at(DAY.replace(hour=10)))
    for name in (
        "hedge.vx2_futures_to_add",
        "hedge.call_spreads_to_add",
        "hedge.band_low_pct",
        "hedge.quality_bars",
        "signals.vix_macd_cross",
        "book.delta_usd_per_pct",
    ):
        value = values[name]
        assert isinstance(value, float)
        assert math.isnan(value), name
