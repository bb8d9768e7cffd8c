"""Every rule of the default pack fires on a replay fixture made for it.

Book-limit rules get a book sized to cross their limit on the bundled vol-spike day
(tests/fixtures/rules/<rule>.toml); FeedStale gets that day with a three-minute hole in the
data; the time-shifting rules get a short hand-written day before VX1 settles and the
FOMC decides (tests/fixtures/rules/day-before-fomc.jsonl). The calm-day silence of the
whole pack is tested in test_generator.py.
"""

from __future__ import annotations

import gzip
import json
import operator
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO

from monitor import bundled
from monitor.cli import EXIT_OK, main
from monitor.rules.loader import load_rule_file

PACK = REPO / "rules" / "second-engine.yaml"
FIXTURES = REPO / "tests" / "fixtures" / "rules"
ONE_FUTURE = REPO / "tests" / "data" / "one-future.toml"
# 2026-03-17: VX1 settles the next morning; the FOMC decides (and PPI is out) on 03-18.
DAY_BEFORE_FOMC = FIXTURES / "day-before-fomc.jsonl"
GAP = (datetime.fromisoformat("2026-03-03T11:00:00-05:00"), timedelta(minutes=3))


def _abs_ge(value: float, limit: float) -> bool:
    return abs(value) >= limit


# rule -> (portfolio, how its firing value must compare with the limit, the limit)
Check = tuple[Path, Callable[[float, float], bool], float]
CASES: dict[str, Check] = {
    "ShortStrikeDeltaWarning": (bundled.PORTFOLIO, operator.ge, 0.25),
    "ShortStrikeDeltaCritical": (bundled.PORTFOLIO, operator.ge, 0.30),
    "BookVegaLoss": (FIXTURES / "BookVegaLoss.toml", operator.le, -10_000.0),
    "BookGammaLimit": (FIXTURES / "BookGammaLimit.toml", operator.le, -1.0),
    "BookVegaLimit": (FIXTURES / "BookVegaLimit.toml", operator.le, -1.0),
    # Its value is in $ per 1% SPX; the limit is 1 % of the $1,000,000 account.
    "BookDeltaAcceleration": (FIXTURES / "BookDeltaAcceleration.toml", _abs_ge, 10_000.0),
    "HedgeRatioOutOfBand": (bundled.PORTFOLIO, operator.gt, 25.0),  # the spike shrinks vega
    "HedgeCarryHigh": (FIXTURES / "HedgeCarryHigh.toml", operator.gt, 40.0),
    "HedgeMovesWithCondor": (FIXTURES / "HedgeMovesWithCondor.toml", operator.gt, 0.3),
    "VixRsiHigh": (bundled.PORTFOLIO, operator.ge, 75.0),
    "BreadthDivergence": (bundled.PORTFOLIO, operator.le, -200.0),  # A/D issues, a fall
    "VxRollDue": (ONE_FUTURE, operator.le, 5.0),
    "ScheduledEventSoon": (ONE_FUTURE, operator.le, 24.0),
    "VixMomentumCross": (bundled.PORTFOLIO, _abs_ge, 0.5),
    "VixTermStructureInverted": (bundled.PORTFOLIO, operator.gt, 0.0),
    "VixAboveFrontFuture": (bundled.PORTFOLIO, operator.gt, 1.0),
    "FeedStale": (bundled.PORTFOLIO, operator.gt, 60.0),
}


def with_gap(path: Path) -> Path:
    """The bundled day without its market events in GAP."""
    start, length = GAP
    with gzip.open(bundled.SESSION, "rt", encoding="utf-8") as lines:
        kept = [next(lines)]
        kept.extend(
            line
            for line in lines
            if not start <= datetime.fromisoformat(json.loads(line)["t"]) < start + length
        )
    path.write_text("".join(kept), encoding="utf-8")
    return path


def backtest(session: Path, portfolio: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    args = ["backtest", str(session), "--portfolio", str(portfolio), "--rules", str(PACK)]
    assert main([*args, "--json"]) == EXIT_OK
    return json.loads(capsys.readouterr().out)


def test_every_rule_of_the_pack_has_a_fixture() -> None:
    assert sorted(rule.name for rule in load_rule_file(PACK)) == sorted(CASES)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires_on_its_fixture(
    rule: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    portfolio, beyond, limit = CASES[rule]
    session = bundled.SESSION
    if rule == "FeedStale":
        session = with_gap(tmp_path / "gap.jsonl")
    elif portfolio == ONE_FUTURE:
        session = DAY_BEFORE_FOMC
    result = backtest(session, portfolio, capsys)
    firing = [a for a in result["transitions"] if a["rule"] == rule and a["state"] == "firing"]
    assert firing, f"{rule} never fired; fired: {result['fired']}"
    assert all(beyond(a["value"], limit) for a in firing), firing
    if rule == "FeedStale":
        start, length = GAP
        fired_at = datetime.fromisoformat(firing[0]["time"])
        assert start + timedelta(seconds=60) < fired_at < start + length
