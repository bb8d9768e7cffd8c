"""Every rule of the default pack fires on a replay fixture made for it.

Book-limit rules get a book sized to cross their limit on the bundled vol-spike day
(tests/fixtures/rules/<rule>.toml); FeedStale gets that day with a three-minute hole in the
data; the time-shifting rules get a short hand-written day before VX1 settles and the
FOMC decides (tests/fixtures/rules/day-before-fomc.jsonl). The calm-day silence of the
whole pack is tested in test_generator.py.
"""

from __future__ import annotations

import asyncio
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
from monitor.domain.alerts import AlertTransition
from monitor.feeds.replay import ReplayReader
from monitor.pipeline import LinkStatus, Pipeline
from monitor.portfolio.model import load_portfolio
from monitor.pricing.valuation import PricingSettings
from monitor.rules.loader import load_rule_file, load_rule_set

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
    # The bundled day four hours later (13:30-20:15 New York): closed from 16:15.
    "MarketClosed": (bundled.PORTFOLIO, operator.ge, 0.0),
    # The bundled day with the broker link down from 11:00 to 11:03 (in-process: a replay
    # has no link).
    "FeedDisconnected": (bundled.PORTFOLIO, operator.ge, 0.0),
}
SHIFT = timedelta(hours=4)


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


def shifted(path: Path, by: timedelta) -> Path:
    """The bundled day with every event (and the session date's meaning) ``by`` later."""
    with gzip.open(bundled.SESSION, "rt", encoding="utf-8") as lines:
        kept = [next(lines)]
        for line in lines:
            event = json.loads(line)
            event["t"] = (datetime.fromisoformat(event["t"]) + by).isoformat(
                timespec="milliseconds"
            )
            kept.append(json.dumps(event) + "\n")
    path.write_text("".join(kept), encoding="utf-8")
    return path


def run_in_process(
    session: Path, link_down: tuple[datetime, datetime] | None = None, until: datetime | None = None
) -> tuple[Pipeline, list[AlertTransition]]:
    """The default pack (with its inhibition) over ``session`` in a pipeline whose live link
    is down between ``link_down``; timer evaluations run on to ``until`` after the last event."""
    reader = ReplayReader(session)
    rule_set = load_rule_set([PACK])
    pipeline = Pipeline(
        universe=reader.header.instruments,
        portfolio=load_portfolio(bundled.PORTFOLIO),
        rules=rule_set.rules,
        inhibit_rules=rule_set.inhibit_rules,
        sinks=[],
        pricing=PricingSettings(rate=0.04, vix_option_fallback_vol=0.9),
    )
    clock: list[datetime] = []

    def link() -> LinkStatus:
        now = clock[-1] if clock else None
        down = link_down is not None and now is not None and link_down[0] <= now < link_down[1]
        return LinkStatus(connected=not down, denied=0)

    pipeline.link_status = link
    out: list[AlertTransition] = []

    async def feed() -> None:
        for batch in reader.batches():
            for moment in pipeline.timer_moments(batch.time):
                clock.append(moment)
                out.extend(await pipeline.tick(moment))
            clock.append(batch.time)
            out.extend(await pipeline.process(batch))
        if until is not None:
            for moment in pipeline.timer_moments(until):
                clock.append(moment)
                out.extend(await pipeline.tick(moment))

    asyncio.run(feed())
    return pipeline, out


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
    if rule == "FeedDisconnected":
        start, length = GAP
        _, out = run_in_process(session, link_down=(start, start + length))
        firing = [t for t in out if t.rule == rule]
        assert [t.state.value for t in firing] == ["firing", "resolved"]
        # At the first evaluation inside and after the outage (batches every ~5 s).
        assert start <= firing[0].time < start + timedelta(seconds=6)
        assert start + length <= firing[1].time < start + length + timedelta(seconds=6)
        assert beyond(firing[0].value, limit)
        return
    if rule == "MarketClosed":
        session = shifted(tmp_path / "late.jsonl", SHIFT)
    elif rule == "FeedStale":
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
    if rule == "MarketClosed":
        (fired,) = firing
        close = datetime.fromisoformat("2026-03-03T16:15:00-05:00")
        assert close <= datetime.fromisoformat(fired["time"]) < close + timedelta(seconds=6)
        assert fired["value"] == pytest.approx(17 * 60 + 15, abs=0.2)  # to 09:30 tomorrow


def test_greek_alerts_are_held_back_while_the_market_is_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four hours late, the short put passes 0.25 delta before the close (sent) and 0.30
    after it (held back by MarketClosed); the condition-level rules still fire."""
    result = backtest(shifted(tmp_path / "late.jsonl", SHIFT), bundled.PORTFOLIO, capsys)
    firing = {a["rule"]: a for a in result["transitions"] if a["state"] == "firing"}
    close = datetime.fromisoformat("2026-03-03T16:15:00-05:00")
    warning, critical = firing["ShortStrikeDeltaWarning"], firing["ShortStrikeDeltaCritical"]
    assert datetime.fromisoformat(warning["time"]) < close
    assert (warning["notify"], warning["held_back"]) == (True, None)
    assert datetime.fromisoformat(critical["time"]) > close
    assert (critical["notify"], critical["held_back"]) == (False, "inhibited by MarketClosed")
    inverted = firing["VixTermStructureInverted"]  # not a greek alert: still sent
    assert datetime.fromisoformat(inverted["time"]) > close
    assert inverted["notify"] is True


def test_a_quiet_feed_after_the_close_is_not_stale_and_the_link_holds_back_greeks() -> None:
    close = datetime.fromisoformat("2026-03-03T16:15:00-05:00")
    _, out = run_in_process(bundled.SESSION, until=close + timedelta(minutes=30))
    after = [(t.rule, t.state.value) for t in out if t.time >= close]
    assert ("MarketClosed", "firing") in after
    assert not any(rule == "FeedStale" for rule, _ in after)  # 30 minutes without data
    # The link down across the short put's 0.25-delta crossing (12:13:45): held back, and
    # sent once the link is back.
    down = (datetime.fromisoformat("2026-03-03T12:10:00-05:00"), timedelta(minutes=10))
    _, out = run_in_process(bundled.SESSION, link_down=(down[0], down[0] + down[1]))
    warning = [t for t in out if t.rule == "ShortStrikeDeltaWarning"]
    assert warning[0].suppressed_by == "inhibited by FeedDisconnected"
    assert not warning[0].notify
    resent = [t for t in warning if t.notify]
    assert resent
    assert resent[0].time >= down[0] + down[1]
