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
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO
from harness.tmpfs import tmpfs

from monitor import bundled
from monitor.cli import EXIT_OK, main
from monitor.config import PricingConfig
from monitor.domain.account import AccountValues
from monitor.domain.alerts import AlertTransition
from monitor.domain.instruments import NEW_YORK
from monitor.driver import Driver
from monitor.feeds.generator import Layout, write_session
from monitor.feeds.replay import ReplayReader
from monitor.pipeline import LinkStatus, Pipeline
from monitor.portfolio.model import load_portfolio
from monitor.rules.loader import load_rule_file, load_rule_set
from monitor.signals.events import EventCalendar, load_events
from monitor.sinks.journal import Journal

PACK = REPO / "rules" / "second-engine.yaml"
FIXTURES = REPO / "tests" / "fixtures" / "rules"
ONE_FUTURE = REPO / "tests" / "data" / "one-future.toml"
# 2026-03-17: VX1 settles the next morning; the FOMC decides (and PPI is out) on 03-18.
DAY_BEFORE_FOMC = FIXTURES / "day-before-fomc.jsonl"
EXPIRY_WEEK_BOOK = FIXTURES / "ShortStrikeInTheMoneyNearExpiry.toml"
GAP = (datetime.fromisoformat("2026-03-03T11:00:00-05:00"), timedelta(minutes=3))
QUIET = (GAP[0], timedelta(minutes=4))


def _abs_ge(value: float, limit: float) -> bool:
    return abs(value) >= limit


# rule -> (portfolio, how its firing value must compare with the limit, the limit)
Check = tuple[Path, Callable[[float, float], bool], float]
CASES: dict[str, Check] = {
    "ShortStrikeDeltaWarning": (bundled.PORTFOLIO, operator.ge, 0.25),
    "ShortStrikeDeltaCritical": (bundled.PORTFOLIO, operator.ge, 0.30),
    # The vol spike takes SPX into the short put's expected move; the loss passes a quarter
    # of the max loss against the bundled book's entries (the day's opening mids).
    "ShortStrikeInsideExpectedMove": (bundled.PORTFOLIO, operator.lt, 1.0),
    # A condor on the SPXW expiry two days later: SPX falls through its short put.
    "ShortStrikeInTheMoneyNearExpiry": (EXPIRY_WEEK_BOOK, operator.gt, 0.0),
    "CondorLossOfMaxLoss": (bundled.PORTFOLIO, operator.le, -25.0),
    "CondorProfitTarget": (FIXTURES / "CondorProfitTarget.toml", operator.ge, 50.0),
    # The bundled book on half the account: SPX -5 % costs 6-7 % of it.
    "StressLossOfAccount": (FIXTURES / "StressLossOfAccount.toml", operator.le, -5.0),
    # The bundled book without its VIX call spreads: the futures alone cover about 16 %.
    "HedgeCoverageLow": (FIXTURES / "HedgeCoverageLow.toml", operator.lt, 0.2),
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
    # A live run started at 08:00 New York with IB Gateway down until 09:30 (in-process, no
    # market data at all): from 09:15 on, after its 2 minutes.
    "FeedNeverConnected": (bundled.PORTFOLIO, operator.ge, 1.0),
    # The valuation raising from 11:00 to 11:01 (in-process): three failed batches in a row.
    "BatchesFailing": (bundled.PORTFOLIO, operator.ge, 3.0),
    # The journal refusing writes from 11:00 to 11:03 (in-process): nothing held yet.
    "JournalUnavailable": (bundled.PORTFOLIO, operator.ge, 0.0),
    # The journal on a 4 MiB tmpfs.
    "JournalSpaceLow": (bundled.PORTFOLIO, operator.lt, 200.0),
    # The bundled day with its SPX option quotes one-sided (no bid) from 11:00 to 11:04: no
    # strike left to fit the April expiry with.
    "SmileFitFailed": (bundled.PORTFOLIO, operator.ge, 1.0),
    # The bundled day without SPX option quotes from 11:00 to 11:04: they stay valid (300 s)
    # and the fit keeps being made from them while they age.
    "SmileFitStale": (bundled.PORTFOLIO, operator.gt, 120.0),
    # The bundled day with a live link whose account loses its cushion at 11:00 (in-process:
    # a replay has no account values).
    "CushionLow": (bundled.PORTFOLIO, operator.lt, 20.0),
    # The bundled day with a calendar that has only the FOMC schedule of 2026 (in-process).
    "EventCalendarIncomplete": (bundled.PORTFOLIO, operator.gt, 0.0),
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


def spx_option_quotes_in_quiet(path: Path, *, one_sided: bool) -> Path:
    """The bundled day with its SPX option quotes in QUIET left out, or without their bid."""
    start, length = QUIET
    with gzip.open(bundled.SESSION, "rt", encoding="utf-8") as lines:
        kept = [next(lines)]
        for line in lines:
            event = json.loads(line)
            quiet = start <= datetime.fromisoformat(event["t"]) < start + length
            if not (quiet and event["type"] == "quote" and event["id"].startswith("SPX ")):
                kept.append(line)
            elif one_sided:
                kept.append(json.dumps({**event, "bid": None}) + "\n")
    path.write_text("".join(kept), encoding="utf-8")
    return path


def expiry_week(path: Path) -> Path:
    """The vol-spike day with the expiry-week condor's legs quoted (every 20 s)."""
    ids = ("SPX", "VIX", "AD-NYSE", "VX 20260318", "VX 20260415", "VIX 20260318 C25")
    legs = tuple(leg.instrument.id for leg in load_portfolio(EXPIRY_WEEK_BOOK).legs)
    quoted = tuple(dict.fromkeys(ids + legs))  # the VX future is in both
    write_session(path, seed=20260303, layout=Layout(step_seconds=20.0, instrument_ids=quoted))
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
    session: Path,
    link_down: tuple[datetime, datetime] | None = None,
    until: datetime | None = None,
    *,
    journal: Path | None = None,
    at_each: Callable[[datetime, Pipeline], None] | None = None,
    events: EventCalendar | None = None,
) -> tuple[Pipeline, list[AlertTransition]]:
    """The default pack (with its inhibition) over ``session`` in a pipeline whose live link
    is down between ``link_down``; timer evaluations run on to ``until`` after the last event.
    ``journal``: a journal there, on the session clock; ``at_each``: called before each
    batch and timer evaluation with its time (to break something at a given moment);
    ``events``: the event calendar (the bundled one when None)."""
    reader = ReplayReader(session)
    rule_set = load_rule_set([PACK])
    clock: list[datetime] = []
    store = None
    if journal is not None:
        store = Journal(journal, wall_clock=lambda: clock[-1].timestamp() if clock else 0.0)
        store._db.execute("PRAGMA synchronous=OFF")  # durability is not under test here
    pipeline = Pipeline(
        universe=reader.header.instruments,
        portfolio=load_portfolio(bundled.PORTFOLIO),
        rules=rule_set.rules,
        inhibit_rules=rule_set.inhibit_rules,
        journal=store,
        pricing=PricingConfig(),
        events=events,
    )

    def link() -> LinkStatus:
        now = clock[-1] if clock else None
        down = link_down is not None and now is not None and link_down[0] <= now < link_down[1]
        return LinkStatus(connected=not down, denied=0, connections=1)

    pipeline.link_status = link
    driver = Driver(pipeline, [store] if store is not None else [])
    out: list[AlertTransition] = []

    def step(moment: datetime) -> None:
        clock.append(moment)
        if at_each is not None:
            at_each(moment, pipeline)

    async def feed() -> None:
        for batch in reader.batches():
            for moment in pipeline.timer_moments(batch.time):
                step(moment)
                out.extend(await driver.at(moment))
            step(batch.time)
            out.extend(await driver.batch(batch))
        if until is not None:
            for moment in pipeline.timer_moments(until):
                step(moment)
                out.extend(await driver.at(moment))
        if store is not None:
            await store.close()

    asyncio.run(feed())
    return pipeline, out


def fault_between(start: datetime, end: datetime) -> Callable[[datetime, Pipeline], None]:
    """Makes the valuation raise for batches in [start, end): a stand-in for a fault no
    input reaches today (the bounds on ticks keep absurd values out)."""

    def at_each(moment: datetime, pipeline: Pipeline) -> None:
        valuer = pipeline.valuer
        if not hasattr(valuer, "healthy_value"):
            valuer.healthy_value = valuer.value  # type: ignore[attr-defined]

            def value(market: object, now: datetime) -> object:
                if start <= now < end:
                    raise RuntimeError("valuation fault injected by the test")
                return valuer.healthy_value(market, now)  # type: ignore[attr-defined]

            valuer.value = value  # type: ignore[method-assign]

    return at_each


def journal_read_only_between(
    start: datetime, end: datetime
) -> Callable[[datetime, Pipeline], None]:
    """The journal's connection refuses writes in [start, end) (SQLite's query_only: each
    write fails as on a read-only file)."""

    def at_each(moment: datetime, pipeline: Pipeline) -> None:
        assert pipeline.journal is not None
        down = start <= moment < end
        pipeline.journal._db.execute(f"PRAGMA query_only = {int(down)}")

    return at_each


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
    if rule in IN_PROCESS:
        IN_PROCESS[rule](tmp_path, beyond, limit)
        return
    if rule == "MarketClosed":
        session = shifted(tmp_path / "late.jsonl", SHIFT)
    elif rule == "FeedStale":
        session = with_gap(tmp_path / "gap.jsonl")
    elif rule == "SmileFitStale":
        session = spx_option_quotes_in_quiet(tmp_path / "quiet.jsonl", one_sided=False)
    elif rule == "SmileFitFailed":
        session = spx_option_quotes_in_quiet(tmp_path / "bidless.jsonl", one_sided=True)
    elif portfolio == ONE_FUTURE:
        session = DAY_BEFORE_FOMC
    elif portfolio == EXPIRY_WEEK_BOOK:
        session = expiry_week(tmp_path / "expiry-week.jsonl")
    result = backtest(session, portfolio, capsys)
    firing = [a for a in result["transitions"] if a["rule"] == rule and a["state"] == "firing"]
    assert firing, f"{rule} never fired; fired: {result['fired']}"
    assert all(beyond(a["value"], limit) for a in firing), firing
    if rule == "FeedStale":
        start, length = GAP
        fired_at = datetime.fromisoformat(firing[0]["time"])
        assert start + timedelta(seconds=60) < fired_at < start + length
    if rule == "SmileFitFailed":
        (fired,) = firing  # 2 minutes after the first batch with no strike left to fit
        at = datetime.fromisoformat(fired["time"])
        assert QUIET[0] + timedelta(minutes=2) <= at < QUIET[0] + timedelta(minutes=3), at
    if rule == "SmileFitStale":
        (fired,) = firing  # once: 120 s after the last SPX option quote before 11:00
        assert QUIET[0] + timedelta(seconds=115) < datetime.fromisoformat(fired["time"])
        assert datetime.fromisoformat(fired["time"]) < QUIET[0] + timedelta(seconds=126)
    if rule == "ShortStrikeInTheMoneyNearExpiry":
        (fired,) = firing  # the short put, a minute after SPX first trades below 6,600
        assert fired["labels"]["leg"] == "P6600", fired
        crossed = datetime.fromisoformat("2026-03-03T13:21:20-05:00")
        at = datetime.fromisoformat(fired["time"])
        assert crossed + timedelta(minutes=1) <= at < crossed + timedelta(minutes=3), at
    if rule == "MarketClosed":
        (fired,) = firing
        close = datetime.fromisoformat("2026-03-03T16:15:00-05:00")
        assert close <= datetime.fromisoformat(fired["time"]) < close + timedelta(seconds=6)
        assert fired["value"] == pytest.approx(17 * 60 + 15, abs=0.2)  # to 09:30 tomorrow


def batches_failing(tmp_path: Path, beyond: Callable[[float, float], bool], limit: float) -> None:
    start, length = GAP[0], timedelta(minutes=1)
    pipeline, out = run_in_process(bundled.SESSION, at_each=fault_between(start, start + length))
    firing = [t for t in out if t.rule == "BatchesFailing"]
    assert [t.state.value for t in firing] == ["firing", "resolved"]
    assert start < firing[0].time < start + timedelta(seconds=20)  # the third batch
    assert start + length <= firing[1].time < start + length + timedelta(seconds=6)
    assert beyond(firing[0].value, limit)
    assert pipeline.failures.total >= 3
    assert pipeline.stats.snapshots > 4000  # the run went on to the close
    assert pipeline.latest is not None
    assert pipeline.latest.time.astimezone(NEW_YORK).strftime("%H:%M") == "16:15"


def journal_unavailable(
    tmp_path: Path, beyond: Callable[[float, float], bool], limit: float
) -> None:
    start, length = GAP
    path = tmp_path / "journal.sqlite"
    _, out = run_in_process(
        bundled.SESSION, journal=path, at_each=journal_read_only_between(start, start + length)
    )
    firing = [t for t in out if t.rule == "JournalUnavailable"]
    assert [t.state.value for t in firing] == ["firing", "resolved"]
    assert start <= firing[0].time < start + timedelta(seconds=15)  # the next probe
    assert start + length <= firing[1].time < start + length + timedelta(seconds=15)
    assert beyond(firing[0].value, limit)
    # Its own firing was held in memory, then written when the journal took writes again.
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT rule, state FROM alert_transitions ORDER BY id").fetchall()
    assert rows == [(t.rule, t.state.value) for t in out]


def journal_space_low(tmp_path: Path, beyond: Callable[[float, float], bool], limit: float) -> None:
    with tmpfs(4 * 1024 * 1024) as fs:
        _, out = run_in_process(bundled.SESSION, journal=fs.path / "journal.sqlite")
    firing = [t for t in out if t.rule == "JournalSpaceLow"]
    assert [t.state.value for t in firing] == ["firing"]
    assert 0.0 < firing[0].value < 4.0
    assert beyond(firing[0].value, limit)


def feed_never_connected(
    tmp_path: Path, beyond: Callable[[float, float], bool], limit: float
) -> None:
    del tmp_path
    day = datetime(2026, 3, 3, tzinfo=NEW_YORK)
    start, up = day.replace(hour=8), day.replace(hour=9, minute=30)
    rule_set = load_rule_set([PACK])
    pipeline = Pipeline(
        universe=ReplayReader(bundled.SESSION).header.instruments,
        portfolio=load_portfolio(bundled.PORTFOLIO),
        rules=rule_set.rules,
        inhibit_rules=rule_set.inhibit_rules,
        pricing=PricingConfig(),
    )
    clock = [start]

    def link() -> LinkStatus:
        attempts = int((clock[-1] - start).total_seconds() // 15)
        if clock[-1] < up:  # refused every 15 s
            return LinkStatus(connected=False, denied=0, connections=0, failed_attempts=attempts)
        return LinkStatus(connected=True, denied=0, connections=1, idle=False)

    pipeline.link_status = link
    out: list[AlertTransition] = []

    while clock[-1] < up + timedelta(minutes=5):  # the daemon's timer, no market data
        out.extend(pipeline.evaluate_at(clock[-1]))
        clock.append(clock[-1] + timedelta(seconds=15))
    fired = [t for t in out if t.rule == "FeedNeverConnected"]
    assert [t.state.value for t in fired] == ["firing", "resolved"]
    assert fired[0].time == day.replace(hour=9, minute=17)  # 15 minutes before, then 2
    assert beyond(fired[0].value, limit)
    assert fired[0].value == 77 * 4  # an attempt every 15 s for the 77 minutes since 08:00
    assert fired[1].time == up  # the first evaluation once connected
    assert not [t for t in out if t.rule == "FeedDisconnected"]  # the start is not a loss


def cushion_low(tmp_path: Path, beyond: Callable[[float, float], bool], limit: float) -> None:
    """The bundled day with a live link whose account values (as the IB feed receives them)
    lose their cushion at 11:00: 45 % to 15 %, back to 30 % at 12:00."""
    start = GAP[0]
    values = AccountValues()

    def at_each(moment: datetime, pipeline: Pipeline) -> None:
        cushion = 0.45 if moment < start else 0.15 if moment < start + timedelta(hours=1) else 0.3
        if values.value("Cushion") != cushion:
            for tag, value in (("NetLiquidation", 1e6), ("Cushion", cushion)):
                values.update(tag, repr(value), "USD", "DU1234567", moment)
        pipeline.link_status = lambda: LinkStatus(connected=True, denied=0, account=values)

    _, out = run_in_process(bundled.SESSION, at_each=at_each)
    firing = [t for t in out if t.rule == "CushionLow"]
    assert [t.state.value for t in firing] == ["firing", "resolved"]
    assert start <= firing[0].time < start + timedelta(seconds=6)
    assert beyond(firing[0].value, limit)
    assert start + timedelta(hours=1) <= firing[1].time < start + timedelta(hours=1, seconds=6)


def event_calendar_incomplete(
    tmp_path: Path, beyond: Callable[[float, float], bool], limit: float
) -> None:
    """The bundled day with a calendar of the 2026 FOMC meetings alone: the CPI and PPI
    schedules of 2026 are unknown to it, from the first batch to the close."""
    path = tmp_path / "fomc-only.toml"
    path.write_text(
        '[[series]]\nkind = "fomc"\nyear = 2026\ntime = "14:00"\nsource = "test"\n'
        "dates = [2026-01-28, 2026-03-18, 2026-04-29, 2026-06-17, 2026-07-29, 2026-09-16, "
        "2026-10-28, 2026-12-09]\n",
        encoding="utf-8",
    )
    _, out = run_in_process(bundled.SESSION, events=load_events(path))
    firing = [t for t in out if t.rule == "EventCalendarIncomplete"]
    assert [t.state.value for t in firing] == ["firing"]
    assert beyond(firing[0].value, limit)
    assert firing[0].value == 2.0  # cpi and ppi
    assert "cpi 2026, ppi 2026" in firing[0].message
    assert firing[0].time.astimezone(NEW_YORK).strftime("%H:%M") == "09:30"
    # The bundled calendar covers the day: silent there (the calm-day test holds the rest).
    assert load_events().uncovered(firing[0].time) == []


IN_PROCESS: dict[str, Callable[[Path, Callable[[float, float], bool], float], None]] = {
    "CushionLow": cushion_low,
    "EventCalendarIncomplete": event_calendar_incomplete,
    "FeedNeverConnected": feed_never_connected,
    "BatchesFailing": batches_failing,
    "JournalUnavailable": journal_unavailable,
    "JournalSpaceLow": journal_space_low,
}


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


def test_batches_failing_from_the_open_pages_while_it_lasts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Aggregation itself raising from the first batch: no good book exists yet, and the
    failure still pages at the third batch, not once it is over."""
    import monitor.pipeline as pipeline_module

    real = pipeline_module.aggregate
    open_, end = datetime.fromisoformat("2026-03-03T09:30:00-05:00"), GAP[0]

    now = [open_]

    def failing(*args: object, **kwargs: object) -> object:
        if now[-1] < end:
            raise RuntimeError("aggregation fault injected by the test")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    def at_each(moment: datetime, _pipeline: Pipeline) -> None:
        now.append(moment)

    monkeypatch.setattr(pipeline_module, "aggregate", failing)
    pipeline, out = run_in_process(bundled.SESSION, at_each=at_each)
    firing = [t for t in out if t.rule == "BatchesFailing"]
    assert [t.state.value for t in firing] == ["firing", "resolved"]
    assert open_ < firing[0].time < open_ + timedelta(seconds=20)
    assert end <= firing[1].time < end + timedelta(seconds=6)
    assert pipeline.failures.total > 100
    assert not any(t.rule == "FeedStale" for t in out)
