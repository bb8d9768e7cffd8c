"""Rule packs load with errors that name file, line, rule and field; alert states are exact."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO

from monitor.domain.alerts import AlertState
from monitor.domain.instruments import NEW_YORK, parse_instrument_id
from monitor.errors import ConfigError
from monitor.portfolio.book import Book, LegRisk, Risk, StrategyRisk
from monitor.portfolio.model import Leg, StrategyKind
from monitor.pricing.valuation import LegValue
from monitor.rules.engine import Phase, RuleEngine
from monitor.rules.loader import load_rule_file, load_rules, parse_duration
from monitor.signals.term_structure import TermStructure
from monitor.snapshot import Snapshot, snapshot_of

RULE = """
groups:
  - name: g
    rules:
      - alert: Delta
        for_each: short_leg
        expr: leg.abs_delta >= 0.25
        clear: leg.abs_delta < 0.23
        for: 1m
        severity: warning
        value: leg.abs_delta
        unit: delta per contract
        summary: "{strategy.name} {leg.right} {leg.strike:.0f} delta {value:.3f}"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pack.yaml"
    path.write_text(text)
    return path


def test_default_pack_loads() -> None:
    rules = load_rules([REPO / "rules"])
    names = {r.name for r in rules}
    assert {
        "ShortStrikeDeltaWarning",
        "ShortStrikeDeltaCritical",
        "BookVegaLoss",
        "VixTermStructureInverted",
    } <= names


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        (
            "expr: leg.abs_delta >= 0.25",
            "expr: leg.abs_detla >= 0.25",
            (
                "rule 'Delta': field expr: unknown variable 'leg.abs_detla'; "
                "did you mean leg.abs_delta"
            ),
        ),
        ("expr: leg.abs_delta >= 0.25", "expr: leg.abs_delta", "field expr: must give a bool"),
        ("value: leg.abs_delta", "value: leg.right", "field value: must give a number"),
        ("for: 1m", "for: soon", "field groups[0].rules[0].for: duration 'soon'"),
        ("severity: warning", "severity: page", "field groups[0].rules[0].severity"),
        ("unit: delta per contract", "unti: delta", "unknown field"),
        ("{value:.3f}", "{value:.3q}", "field summary: field {value}: bad format"),
        ("{leg.right}", "{leg.side}", "field {leg.side} is not a variable of this rule"),
        ("{leg.right}", "{leg.right!r}", "conversions like !r are not allowed"),
        ("for_each: short_leg", "for_each: strategy", "unknown variable 'leg.abs_delta'"),
        ("alert: Delta", "alert: 'bad name'", "field groups[0].rules[0].alert"),
        (
            "        clear: leg.abs_delta < 0.23\n",
            "        clear: leg.abs_delta <\n",
            "field clear: syntax error",
        ),
    ],
)
def test_bad_rule_names_file_line_rule_and_field(
    tmp_path: Path, old: str, new: str, fragment: str
) -> None:
    assert old in RULE
    path = write(tmp_path, RULE.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_rule_file(path)
    message = str(caught.value)
    assert str(path) in message
    assert fragment in message


def test_error_names_the_rule_line(tmp_path: Path) -> None:
    path = write(tmp_path, RULE.replace("leg.abs_delta >= 0.25", "nope > 1"))
    with pytest.raises(ConfigError) as caught:
        load_rule_file(path)
    assert caught.value.line == 5  # the "- alert:" line of the rule


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "groups:\n  - name: g\n    rules: [\n")
    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        load_rule_file(path)
    assert caught.value.line is not None


def test_duplicate_rule_names_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(RULE)
    (tmp_path / "b.yaml").write_text(RULE)
    with pytest.raises(ConfigError, match="'Delta' is already defined at"):
        load_rules([tmp_path])


def test_empty_rule_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no \*\.yaml file"):
        load_rules([tmp_path])


@pytest.mark.parametrize(
    ("text", "seconds"), [("0s", 0), ("90s", 90), ("5m", 300), ("1h30m", 5400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


START = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)
PUT = parse_instrument_id("SPX 20260417 P6425")


def snapshot(minute: float, delta: float) -> Snapshot:
    value = LegValue(PUT, 6800.0, 0.12, 0.2, False, 30.0, -delta, 0.0, 0.0, 0.0)
    leg = LegRisk(Leg("IC", PUT, -50), value, Risk())
    term = TermStructure(16.0, 17.0, 18.0, "VX 20260318", "VX 20260415", 15.0)
    book = Book((leg,), (StrategyRisk("IC", StrategyKind.IRON_CONDOR, Risk(), 0, 0),), Risk())
    return snapshot_of(
        START + timedelta(minutes=minute), book, spx=6800.0, vix=16.0, ad_nyse=0.0, term=term
    )


def run(engine: RuleEngine, points: list[tuple[float, float]]) -> list:
    out = []
    for minute, delta in points:
        out.extend(engine.evaluate(snapshot(minute, delta)))
    return out


def test_for_duration_then_hysteresis(tmp_path: Path) -> None:
    engine = RuleEngine(load_rule_file(write(tmp_path, RULE)))
    transitions = run(
        engine,
        [
            (0, 0.20),
            (1, 0.26),  # pending from 10:01
            (1.5, 0.27),  # 30 s: still pending
            (2, 0.27),  # held 1 minute: firing
            (3, 0.24),  # below 0.25 but above the 0.23 clear level: still firing
            (4, 0.22),  # clear: resolved
            (5, 0.26),  # pending again
            (5.5, 0.20),  # back to inactive before the minute: nothing emitted
        ],
    )
    assert [(tr.state, tr.time) for tr in transitions] == [
        (AlertState.FIRING, START + timedelta(minutes=2)),
        (AlertState.RESOLVED, START + timedelta(minutes=4)),
    ]
    firing = transitions[0]
    assert firing.labels == (("leg", "P6425"), ("strategy", "IC"))
    assert firing.value == pytest.approx(0.27)
    assert firing.message == "IC put 6425 delta 0.270"
    assert firing.active_since == START + timedelta(minutes=1)
    assert engine.fired == {"Delta": 1}


def test_disappearing_leg_resolves_its_alert(tmp_path: Path) -> None:
    engine = RuleEngine(load_rule_file(write(tmp_path, RULE.replace("for: 1m", "for: 0s"))))
    fired = engine.evaluate(snapshot(0, 0.3))
    assert [t.state for t in fired] == [AlertState.FIRING]
    moved = snapshot(1, 0.3)
    gone = replace(moved, book=replace(moved.book, legs=()))
    resolved = engine.evaluate(gone)
    assert [t.state for t in resolved] == [AlertState.RESOLVED]
    assert math.isnan(resolved[0].value)
    assert "is no longer evaluated (its leg left the book" in resolved[0].message


def test_nan_never_fires(tmp_path: Path) -> None:
    engine = RuleEngine(load_rule_file(write(tmp_path, RULE.replace("for: 1m", "for: 0s"))))
    assert engine.evaluate(snapshot(0, math.nan)) == []


def at_ms(ms: int, delta: float) -> Snapshot:
    return replace(snapshot(0, delta), time=START + timedelta(milliseconds=ms))


KEEP = RULE.replace("for: 1m", "for: 1s").replace(
    "        severity: warning", "        keep_firing_for: 2s\n        severity: warning"
)


def test_for_and_keep_firing_for_to_the_millisecond(tmp_path: Path) -> None:
    engine = RuleEngine(load_rule_file(write(tmp_path, KEEP)))
    assert engine.evaluate(at_ms(0, 0.26)) == []  # pending from 0 ms
    assert engine.evaluate(at_ms(999, 0.26)) == []  # 999 ms: still pending
    assert engine.states() == {("Delta", (("leg", "P6425"), ("strategy", "IC"))): Phase.PENDING}
    (fired,) = engine.evaluate(at_ms(1000, 0.26))  # exactly 1 s: firing
    assert fired.state is AlertState.FIRING
    assert fired.time == START + timedelta(milliseconds=1000)
    assert engine.evaluate(at_ms(1500, 0.20)) == []  # cleared: keep-firing from 1500 ms
    assert list(engine.states().values()) == [Phase.KEEP_FIRING]
    assert engine.evaluate(at_ms(2500, 0.26)) == []  # back within 2 s: firing, no new page
    assert list(engine.states().values()) == [Phase.FIRING]
    assert engine.evaluate(at_ms(3000, 0.20)) == []  # cleared again at 3000 ms
    assert engine.evaluate(at_ms(4999, 0.20)) == []  # 1999 ms later: still keep-firing
    (resolved,) = engine.evaluate(at_ms(5000, 0.20))  # 2 s after the clear: resolved
    assert resolved.state is AlertState.RESOLVED
    assert resolved.time == START + timedelta(milliseconds=5000)
    assert engine.states() == {}
    assert engine.fired == {"Delta": 1}


def test_flapping_around_the_threshold_pages_once(tmp_path: Path) -> None:
    engine = RuleEngine(load_rule_file(write(tmp_path, RULE.replace("for: 1m", "for: 0s"))))
    deltas = [0.26, 0.249, 0.251, 0.24, 0.255, 0.231, 0.25, 0.229, 0.26]
    transitions = []
    for n, delta in enumerate(deltas):
        transitions += engine.evaluate(at_ms(n * 1000, delta))
    # Fires at 0.26; the dips to 0.249, 0.24 and 0.231 stay above the 0.23 clear level;
    # 0.229 clears it; 0.26 fires again.
    assert [(t.state, t.time) for t in transitions] == [
        (AlertState.FIRING, START),
        (AlertState.RESOLVED, START + timedelta(seconds=7)),
        (AlertState.FIRING, START + timedelta(seconds=8)),
    ]


@pytest.mark.parametrize(
    ("expr", "fragment", "column"),
    [
        ("leg.abs_detla >= 0.25", "unknown variable 'leg.abs_detla'", 1),
        ("leg.abs_delta >= 0.25 and book.vegaa < 0", "unknown variable 'book.vegaa'", 27),
        ("leg.right > 3", "ordering compares numbers, not string with number", 13),
        ("term.inverted == 1", "cannot compare a bool with a number", 18),
        ("leg.abs_delta + term.inverted > 0", "must be a number, not a bool", 17),
        ("leg.abs_delta and term.inverted", "must be a bool, not a number", 1),
        ("not leg.abs_delta", "the operand of not must be a bool", 5),
        ("-term.inverted", "the operand of a sign must be a number", 2),
        ("leg.abs_delta ** 2 > 0", "operator Pow is not allowed", 1),
        ("leg.abs_delta // 2 > 0", "operator FloorDiv is not allowed", 1),
        ("leg.abs_delta in [1]", "List is not allowed", 18),
        ("leg.abs_delta in leg.abs_delta", "comparison In is not allowed", 1),
        ("leg.abs_delta is leg.delta", "comparison Is is not allowed", 1),
        ("leg.abs_delta is None", "constant None is not allowed", 18),
        ("open('x') == 1", "only the functions abs, min, max", 1),
        ("__import__('os') == 1", "only the functions abs, min, max", 1),
        ("leg.__class__ == 1", "unknown variable 'leg.__class__'", 1),
        ("abs(leg.abs_delta, 2) > 0", "abs() takes 1 or more", 1),
        ("max(leg.abs_delta) > 0", "max() takes 2 or more", 1),
        ("min(leg.abs_delta, key=1) > 0", "no keyword arguments", 1),
        ("[1][0] > 0", "Subscript is not allowed", 1),
        ("(lambda: 1)() > 0", "only the functions", 1),
        ("leg.abs_delta if vix else 0", "IfExp is not allowed", 1),
        ("leg.abs_delta >= ", "syntax error", 17),  # stripped: just past the ">="
        ("leg.abs_delta >= 0.25)", "syntax error", 22),
        ("f'{vix}' == 'x'", "JoinedStr is not allowed", 1),
    ],
)
def test_bad_expression_names_file_rule_line_and_column(
    tmp_path: Path, expr: str, fragment: str, column: int
) -> None:
    path = write(tmp_path, RULE.replace("expr: leg.abs_delta >= 0.25", f'expr: "{expr}"'))
    with pytest.raises(ConfigError) as caught:
        load_rule_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:5: rule 'Delta': field expr: ")
    assert fragment in message
    assert message.endswith(f"(at column {column})")
