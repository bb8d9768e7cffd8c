"""Silences, inhibition, repeat intervals and restarts: who gets paged, and when."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from monitor.domain.alerts import AlertState, InhibitRule, Matcher, Silence
from monitor.domain.instruments import NEW_YORK
from monitor.portfolio.book import Book, Risk
from monitor.rules.engine import RuleEngine
from monitor.rules.loader import RuleSet, load_rule_file
from monitor.signals.term_structure import TermStructure
from monitor.snapshot import Snapshot, snapshot_of

START = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)
PACK = """
groups:
  - name: g
    rules:
      - alert: SpxLow
        expr: spx < 6700
        severity: warning
        value: spx
        unit: index points
        summary: "SPX {spx:,.2f}"
        labels: {category: greeks}
        repeat_interval: 30m
      - alert: FeedStale
        expr: vix < 0
        severity: critical
        value: vix
        unit: index points
        summary: "feed stale"
"""


def book(minute: float, spx: float, *, vix: float = 16.0) -> Snapshot:
    term = TermStructure(vix, 17.0, 18.0, None, None, 15.0)
    moment = START + timedelta(minutes=minute)
    return snapshot_of(moment, Book((), (), Risk()), spx=spx, vix=vix, ad_nyse=0.0, term=term)


@pytest.fixture
def rules(tmp_path: Path):
    path = tmp_path / "pack.yaml"
    path.write_text(PACK)
    return load_rule_file(path)


class Silences:
    def __init__(self, silences: Sequence[Silence]) -> None:
        self.silences = list(silences)

    def active(self, now: datetime) -> Sequence[Silence]:
        return self.silences


def run(engine: RuleEngine, points: list[tuple[float, float, float]]) -> list:
    out = []
    for minute, spx, vix in points:
        out += engine.evaluate(book(minute, spx, vix=vix))
    return out


def test_silence_holds_back_the_page_until_it_expires(rules) -> None:
    silence = Silence(1, (Matcher("alertname", "SpxLow"),), START, START + timedelta(minutes=10))
    engine = RuleEngine(rules, silences=Silences([silence]))
    out = run(engine, [(0, 6690, 16), (5, 6680, 16), (10, 6670, 16), (11, 6660, 16)])
    assert [(t.time - START, t.notify, t.suppressed_by) for t in out] == [
        (timedelta(0), False, "silence 1"),  # recorded, not sent
        (timedelta(minutes=10), True, None),  # the silence ended while it still fires: sent
    ]
    assert all(t.state is AlertState.FIRING for t in out)


def test_silence_that_matches_other_labels_does_not_hold_back(rules) -> None:
    silence = Silence(2, (Matcher("category", "vix"),), START, START + timedelta(hours=1))
    engine = RuleEngine(rules, silences=Silences([silence]))
    (fired,) = run(engine, [(0, 6690, 16)])
    assert fired.notify


def test_alert_silenced_for_its_whole_life_sends_nothing_at_all(rules) -> None:
    silence = Silence(3, (Matcher("category", "greeks"),), START, START + timedelta(hours=1))
    engine = RuleEngine(rules, silences=Silences([silence]))
    out = run(engine, [(0, 6690, 16), (5, 6800, 16)])
    assert [(t.state, t.notify) for t in out] == [
        (AlertState.FIRING, False),
        (AlertState.RESOLVED, False),  # its firing was never sent: no resolved notice
    ]
    assert out[1].suppressed_by == "never notified"


def test_inhibition_by_a_firing_source(rules) -> None:
    inhibit = InhibitRule(
        source=(Matcher("alertname", "FeedStale"),), target=(Matcher("category", "greeks"),)
    )
    engine = RuleEngine(rules, inhibit_rules=[inhibit])
    out = run(engine, [(0, 6690, -1), (1, 6690, -1), (2, 6690, 16)])
    sent = [(t.rule, t.state, t.time - START) for t in out if t.notify]
    assert sent == [
        ("FeedStale", AlertState.FIRING, timedelta(0)),
        ("FeedStale", AlertState.RESOLVED, timedelta(minutes=2)),
        ("SpxLow", AlertState.FIRING, timedelta(minutes=2)),  # sent once the feed is back
    ]
    held = [t for t in out if not t.notify]
    assert [(t.rule, t.suppressed_by) for t in held] == [("SpxLow", "inhibited by FeedStale")]


def test_repeat_interval_reminds_while_firing(rules) -> None:
    engine = RuleEngine(rules)
    out = run(
        engine,
        [
            (0, 6690, 16),
            (29, 6690, 16),
            (30, 6690, 16),
            (45, 6690, 16),
            (60, 6690, 16),
            (61, 6800, 16),
        ],
    )
    assert [(t.time - START, t.state, t.repeat) for t in out] == [
        (timedelta(0), AlertState.FIRING, False),
        (timedelta(minutes=30), AlertState.FIRING, True),
        (timedelta(minutes=60), AlertState.FIRING, True),
        (timedelta(minutes=61), AlertState.RESOLVED, False),
    ]
    assert engine.fired["SpxLow"] == 1  # one alert, two reminders


def test_restart_does_not_page_again(rules) -> None:
    first = RuleEngine(rules)
    (fired,) = run(first, [(0, 6690, 16)])
    assert fired.notify
    saved = first.export()
    second = RuleEngine(rules)
    assert second.restore(saved, START + timedelta(minutes=5)) == 1
    assert run(second, [(5, 6685, 16)]) == []  # still firing: no second page
    (resolved,) = run(second, [(6, 6800, 16)])
    assert resolved.state is AlertState.RESOLVED
    assert resolved.notify  # the page went out before the restart, so the resolve is sent
    assert resolved.active_since == START


def test_restore_skips_unknown_rules_and_future_alerts(rules) -> None:
    first = RuleEngine(rules)
    run(first, [(10, 6690, 16)])
    saved = first.export()
    gone = [replace(saved[0], rule="Renamed")]
    assert RuleEngine(rules).restore(gone, START + timedelta(minutes=20)) == 0
    assert RuleEngine(rules).restore(saved, START) == 0  # fired at 10:10, now 10:00


def test_reload_that_removes_a_rule_resolves_its_alert(rules) -> None:
    engine = RuleEngine(rules)
    (fired,) = run(engine, [(0, 6690, 16)])
    assert fired.state is AlertState.FIRING
    engine.replace(RuleSet([r for r in rules if r.name != "SpxLow"], []))
    (resolved,) = run(engine, [(1, 6690, 16)])
    assert (resolved.rule, resolved.state, resolved.notify) == ("SpxLow", AlertState.RESOLVED, True)
    assert "rule was removed" in resolved.message
    assert engine.active == {}


def test_acknowledged_alert_stops_reminding_until_it_resolves(rules) -> None:
    engine = RuleEngine(rules)
    (fired,) = run(engine, [(0, 6690, 16)])
    assert engine.acknowledge("0" * 16) is None  # no such alert: nothing changes
    assert engine.acknowledge(fired.alert_id) == ("SpxLow", (("category", "greeks"),))
    assert run(engine, [(30, 6690, 16), (60, 6690, 16)]) == []  # no reminders
    saved = engine.export()
    assert saved[0].acknowledged  # survives a restart through the journal
    later = run(engine, [(61, 6800, 16), (62, 6690, 16), (92, 6690, 16)])
    assert [(t.time - START, t.state, t.repeat) for t in later] == [
        (timedelta(minutes=61), AlertState.RESOLVED, False),
        (timedelta(minutes=62), AlertState.FIRING, False),  # a new episode: not acknowledged
        (timedelta(minutes=92), AlertState.FIRING, True),
    ]
