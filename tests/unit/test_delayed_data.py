"""Delayed market data: IB's 10167 marks an instrument delayed (not denied), a delayed leg is
marked in the snapshot, its quote age counts the delay, and alert messages about it say so."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import ib_async
import pytest
from conftest import run_pipeline

from monitor import bundled
from monitor.config import IbFeedConfig
from monitor.domain.alerts import AlertState
from monitor.domain.instruments import parse_instrument_id
from monitor.feeds.ib import IbFeed, MarketDataType
from monitor.feeds.ib_errors import IbErrorClass, classify
from monitor.pipeline import LinkStatus, Pipeline
from monitor.rules.engine import delayed_note
from monitor.rules.variables import Scope, leg_values
from monitor.state import state_document

SHORT_PUT = "SPX 20260417 P6425"
SHORT_CALL = "SPX 20260417 C7150"
MARKER = "[delayed data (15 min)]"

RULES = """
groups:
  - name: delayed
    rules:
      - alert: ShortLegDelayed
        for_each: short_leg
        expr: leg.data_delayed
        severity: info
        value: leg.strike
        unit: index points
        summary: "{strategy.name} short {leg.right} {leg.strike:.0f} quoted delayed"
      - alert: ShortLegHeld
        for_each: short_leg
        expr: leg.quantity < 0
        severity: info
        value: leg.quantity
        unit: contracts
        summary: "short {leg.right} {leg.strike:.0f}"
      - alert: CondorHeld
        for_each: strategy
        expr: strategy.kind == "iron_condor"
        severity: info
        value: strategy.model_priced_legs
        unit: legs
        summary: "{strategy.name} held"
      - alert: LayerHeld
        for_each: strategy
        expr: strategy.kind == "second_engine"
        severity: info
        value: strategy.model_priced_legs
        unit: legs
        summary: "{strategy.name} held"
      - alert: DelayedInstruments
        expr: feed.delayed_instruments > 0
        severity: info
        value: feed.delayed_instruments
        unit: instruments
        summary: "{value:.0f} instrument(s) quoted delayed"
"""


def test_10167_is_delayed_data_shown_and_10091_stays_an_entitlement_error() -> None:
    assert classify(10167) is IbErrorClass.DELAYED_SHOWN
    assert classify(10091) is IbErrorClass.ENTITLEMENT
    assert classify(354) is IbErrorClass.ENTITLEMENT


def test_10167_marks_the_instrument_delayed_not_denied_and_subscribes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [SHORT_PUT, SHORT_CALL]
    feed = IbFeed(IbFeedConfig(kind="ib"), [parse_instrument_id(i) for i in ids], legs=ids)
    asked: list[Any] = []
    monkeypatch.setattr(feed.ib, "reqMktData", lambda *args, **_: asked.append(args))
    for con_id, inst_id in enumerate(ids, start=1):
        feed._by_con_id[con_id] = inst_id
        feed.status[inst_id].subscribed = True
        feed.status[inst_id].market_data_type = MarketDataType.LIVE
    message = "Requested market data is not subscribed. Displaying delayed market data."
    feed._on_error(7, 10167, message, ib_async.Contract(conId=1))
    assert feed.delayed() == {SHORT_PUT}
    assert feed.status[SHORT_PUT].denied_code is None
    assert feed.denied == 0
    assert asked == []  # no resubscription, no fallback
    assert feed.data_types() == {"delayed": 1, "live": 1}
    # IB's market data type, once reported, decides: 4 (delayed-frozen) is delayed too.
    feed.status[SHORT_CALL].market_data_type = MarketDataType.DELAYED_FROZEN
    assert feed.delayed() == {SHORT_PUT, SHORT_CALL}
    feed.status[SHORT_CALL].subscribed = False  # a line that is gone is not delayed data
    assert feed.delayed() == {SHORT_PUT}


def pipeline_with_rules(tmp_path: Path) -> Pipeline:
    pack = tmp_path / "rules"
    pack.mkdir()
    (pack / "delayed.yaml").write_text(RULES)
    return run_pipeline(bundled.SESSION, bundled.PORTFOLIO, [pack], batches=200)


def test_a_delayed_legs_quote_age_counts_the_delay_and_the_feed_age_does_not(
    tmp_path: Path,
) -> None:
    pipeline = pipeline_with_rules(tmp_path)
    now = pipeline.market.time
    assert now is not None
    live = pipeline.feed_health(now)
    assert pipeline.latest is not None
    assert not any(lr.data_delayed for lr in pipeline.latest.book.legs)  # a replay has none
    assert live.delayed_instruments == frozenset()
    arrived = pipeline.market.age_seconds(SHORT_PUT, now)
    assert arrived < 60.0
    pipeline.link_status = lambda: LinkStatus(True, 0, delayed=frozenset({SHORT_PUT}))
    delayed = pipeline.feed_health(now)
    assert pipeline.quote_age_seconds(SHORT_PUT, now, pipeline.link_status()) == arrived + 900.0
    assert delayed.oldest_leg_quote_age_seconds >= arrived + 900.0
    assert live.oldest_leg_quote_age_seconds < 900.0
    # The configured delay is what is added.
    pipeline.link_status = lambda: LinkStatus(
        True, 0, delayed=frozenset({SHORT_PUT}), delayed_data_minutes=10.0
    )
    assert pipeline.quote_age_seconds(SHORT_PUT, now, pipeline.link_status()) == arrived + 600.0
    # The feed's liveness is the time since the last event, delayed data or not.
    later = now + timedelta(seconds=20)
    snapshot = pipeline._last_good_at(later)
    assert snapshot is not None
    assert snapshot.feed.data_age_seconds == 20.0


def test_delayed_legs_are_marked_and_their_alerts_say_delayed_data(tmp_path: Path) -> None:
    pipeline = pipeline_with_rules(tmp_path)
    assert pipeline.latest is not None
    before = {rule for rule, _ in pipeline.firing}
    assert {"ShortLegHeld", "CondorHeld", "LayerHeld"} <= before
    assert not {"ShortLegDelayed", "DelayedInstruments"} & before
    # The short put's line turns delayed; the next evaluation sees it.
    pipeline.link_status = lambda: LinkStatus(True, 0, delayed=frozenset({SHORT_PUT}))
    now = pipeline.latest.time + timedelta(seconds=15)
    transitions = pipeline.evaluate_at(now)
    snapshot = pipeline._last_good_at(now)
    assert snapshot is not None
    marked = {lr.leg.instrument.id: lr.data_delayed for lr in snapshot.book.legs}
    assert marked.pop(SHORT_PUT) is True
    assert len(marked) == 6  # the book's other legs
    assert not any(marked.values())
    by_leg = {lr.leg.instrument.id: lr for lr in snapshot.book.legs}
    assert leg_values(by_leg[SHORT_PUT], ["leg.data_delayed"]) == {"leg.data_delayed": True}
    assert leg_values(by_leg[SHORT_CALL], ["leg.data_delayed"]) == {"leg.data_delayed": False}
    fired = [(t.rule, dict(t.labels), t.message) for t in transitions]
    assert sorted(fired, key=lambda f: f[0]) == [
        ("DelayedInstruments", {}, f"1 instrument(s) quoted delayed {MARKER}"),
        (
            "ShortLegDelayed",
            {"leg": "P6425", "strategy": "IC-APR17"},
            f"IC-APR17 short put 6425 quoted delayed {MARKER}",
        ),
    ]
    # Which alerts are about a delayed leg: the leg's own, its strategy's, the book's.
    put = (("leg", "P6425"), ("strategy", "IC-APR17"))
    call = (("leg", "C7150"), ("strategy", "IC-APR17"))
    assert delayed_note(snapshot, Scope.SHORT_LEG, put) == f" {MARKER}"
    assert delayed_note(snapshot, Scope.SHORT_LEG, call) == ""
    assert delayed_note(snapshot, Scope.STRATEGY, (("strategy", "IC-APR17"),)) == f" {MARKER}"
    assert delayed_note(snapshot, Scope.STRATEGY, (("strategy", "SECOND-ENGINE"),)) == ""
    assert delayed_note(snapshot, Scope.BOOK, (("category", "feed"),)) == f" {MARKER}"
    # Back to live: nothing is marked, the leg alert resolves without the marker.
    pipeline.link_status = lambda: LinkStatus(True, 0)
    later = now + timedelta(seconds=15)
    resolved = pipeline.evaluate_at(later)
    assert {(t.rule, t.state) for t in resolved} == {
        ("ShortLegDelayed", AlertState.RESOLVED),
        ("DelayedInstruments", AlertState.RESOLVED),
    }
    assert not any(MARKER in t.message for t in resolved)
    # /state shows each leg's mark.
    doc = json.loads(json.dumps(state_document(snapshot, pipeline.firing, "test")))
    legs = {leg["contract"]: leg["data_delayed"] for leg in doc["legs"]}
    assert legs[SHORT_PUT] is True
    assert legs[SHORT_CALL] is False
    assert doc["feed_delayed_instruments"] == 1
