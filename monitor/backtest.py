"""Backtests: run a rule set over recorded sessions and report every alert transition with the
state of the book at that moment, and counts per rule."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.assembly import build_pipeline, check_session, warm_up_signals
from monitor.config import DaemonConfig
from monitor.domain.alerts import AlertTransition
from monitor.domain.instruments import NEW_YORK
from monitor.driver import session_order
from monitor.feeds.replay import ReplayReader
from monitor.pipeline import Pipeline
from monitor.portfolio.model import Portfolio
from monitor.rules.loader import Rule, RuleSet
from monitor.sinks.alerts_file import AlertsFileSink
from monitor.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class BookState:
    """The book when a transition happened; units as in the README."""

    spx: float
    vix: float
    vx1: float
    vx2: float
    delta_usd_per_pct: float
    gamma_usd_per_pct: float
    vega_usd_per_vol_point: float
    vix_vega_usd_per_point: float
    theta_usd_per_day: float

    @classmethod
    def of(cls, s: Snapshot) -> BookState:
        b = s.book.total
        return cls(
            s.spx,
            s.vix,
            s.term.vx1,
            s.term.vx2,
            b.delta_usd_per_pct,
            b.gamma_usd_per_pct,
            b.vega_usd_per_vol_point,
            b.vix_vega_usd_per_point,
            b.theta_usd_per_day,
        )


@dataclass(frozen=True, slots=True)
class Entry:
    session: str
    transition: AlertTransition
    book: BookState


@dataclass(slots=True)
class BacktestResult:
    entries: list[Entry] = field(default_factory=list)
    fired: Counter[str] = field(default_factory=Counter)
    resolved: Counter[str] = field(default_factory=Counter)
    bad_lines: dict[str, int] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)


def _record(
    name: str, transitions: list[AlertTransition], pipeline: Pipeline, result: BacktestResult
) -> None:
    # The book as the rules saw it: before the first good snapshot, one that knows nothing.
    if transitions and pipeline.evaluated is not None:
        state = BookState.of(pipeline.evaluated)
        for t in transitions:
            result.entries.append(Entry(name, t, state))
            (result.fired if t.state.value == "firing" else result.resolved)[t.rule] += 1


def _one(
    reader: ReplayReader,
    pipeline: Pipeline,
    result: BacktestResult,
    name: str,
    out: AlertsFileSink | None = None,
) -> None:
    # The same evaluations in the same order as a replay run (timer moments in the gaps),
    # so both see the same alerts.
    for item in session_order(reader.batches(), pipeline):
        if isinstance(item, datetime):
            transitions = pipeline.evaluate_at(item)
        else:
            transitions = pipeline.step(item)
        _record(name, transitions, pipeline, result)
        if out is not None and transitions:
            out.write(transitions)
    result.bad_lines[name] = reader.stats.bad_lines
    if reader.stats.truncated:
        result.truncated.append(name)


def _run(
    session: Path,
    config: DaemonConfig,
    portfolio: Portfolio,
    rules: RuleSet,
    result: BacktestResult,
    *,
    name: str | None = None,
    out: AlertsFileSink | None = None,
) -> Pipeline:
    reader = ReplayReader(session)
    check_session(portfolio, reader)
    pipeline = build_pipeline(
        config,
        portfolio,
        rules,
        reader.header.instruments,
        journal=None,
        bad_lines=reader.stats.bad_by_reason,
    )
    # Primed from [signals] warm_up as a run of the config is, up to the session's day.
    start = datetime.combine(reader.header.session_date, datetime.min.time(), NEW_YORK)
    warm_up_signals(pipeline, config.signals.warm_up, start)
    _one(reader, pipeline, result, name or session.name, out)
    return pipeline


def replay_to_end(
    session: Path, config: DaemonConfig, portfolio: Portfolio, rules: RuleSet
) -> Pipeline:
    """The pipeline after the whole session, for a look at its last state."""
    return _run(session, config, portfolio, rules, BacktestResult())


def backtest(
    sessions: list[Path],
    config: DaemonConfig,
    portfolio: Portfolio,
    rules: RuleSet,
    *,
    alerts_out: Path | None = None,
) -> BacktestResult:
    """Each session runs from a fresh state: alerts do not carry over between days. The
    pipeline is the one a run of ``config`` builds (pricing, scenarios, hedge, signals and
    events sections included); the packs' inhibition applies as in a run, and a transition
    it would have held back is marked. ``alerts_out``: every transition written as a run's
    alerts file writes it (the same bytes for the same session and config)."""
    result = BacktestResult()
    out = AlertsFileSink(alerts_out) if alerts_out is not None else None
    try:
        # Sessions are named by file name, or by the path given when two share a name.
        names = [p.name for p in sessions]
        if len(set(names)) < len(names):
            names = [str(p) for p in sessions]
        for path, name in zip(sessions, names, strict=True):
            _run(path, config, portfolio, rules, result, name=name, out=out)
    finally:
        if out is not None:
            out.close_now()
    return result


def _num(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def to_json(result: BacktestResult) -> dict[str, Any]:
    return {
        "transitions": [
            {
                "session": e.session,
                "time": e.transition.time.astimezone(NEW_YORK).isoformat(timespec="milliseconds"),
                "rule": e.transition.rule,
                "state": e.transition.state.value,
                "severity": e.transition.severity.value,
                "labels": dict(e.transition.labels),
                "value": _num(e.transition.value),
                "unit": e.transition.unit,
                "notify": e.transition.notify,
                "held_back": e.transition.suppressed_by,
                "book": {k: _num(getattr(e.book, k)) for k in BookState.__slots__},
            }
            for e in result.entries
        ],
        "fired": dict(sorted(result.fired.items())),
        "resolved": dict(sorted(result.resolved.items())),
        "bad_lines": result.bad_lines,
        "truncated": result.truncated,
    }


def render(result: BacktestResult, rules: list[Rule]) -> str:
    lines = []
    for e in result.entries:
        t, b = e.transition, e.book
        when = t.time.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S ET")
        value = f"{t.value:,.4g} {t.unit}" if math.isfinite(t.value) else "no value"
        labels = f" [{t.label_text}]" if t.labels else ""
        held = f"  (held back: {t.suppressed_by})" if t.suppressed_by else ""
        lines.append(
            f"{when}  {t.state.value.upper():8} {t.rule}{labels}  {value}{held}\n"
            f"    SPX {b.spx:,.2f}  VIX {b.vix:.2f}  VX1 {b.vx1:.2f}  VX2 {b.vx2:.2f}  |  delta "
            f"{b.delta_usd_per_pct:+,.0f} $/1% SPX  gamma {b.gamma_usd_per_pct:+,.0f} $/1% SPX  "
            f"vega {b.vega_usd_per_vol_point:+,.0f} $/vol pt  VIX layer "
            f"{b.vix_vega_usd_per_point:+,.0f} $/VIX pt  theta {b.theta_usd_per_day:+,.0f} $/day"
        )
    lines.append("")
    lines.append(f"{'rule':32s} {'fired':>6s} {'resolved':>9s}")
    lines.extend(
        f"{r.name:32s} {result.fired[r.name]:6d} {result.resolved[r.name]:9d}" for r in rules
    )
    lines.extend(f"{s}: {n} bad line(s) skipped" for s, n in result.bad_lines.items() if n)
    lines.extend(
        f"{s}: INPUT TRUNCATED, the rest of that session is missing" for s in result.truncated
    )
    return "\n".join(lines)
