"""The book summary as a JSON document: what MQTT's retained ``state`` topic carries.

Keys carry their units (``_usd_per_pct``: dollars of P&L for a 1% SPX move, and so on, as in
docs/rules.md); a number that is not known yet is null. The risk of the book, of each
strategy and of each leg has one key per row of the table of measures (``monitor.measures``),
and every other view has one key per reading of its table with a /state key
(``monitor.measures``, ``monitor.readings``); the hedge is its dataclass, every field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from monitor.domain.alerts import alert_id
from monitor.domain.instruments import NEW_YORK
from monitor.measures import FEED, TERM, state_of, state_risk
from monitor.portfolio.book import Risk
from monitor.readings import (
    ACCOUNT,
    BOOK,
    BREADTH,
    EVENTS,
    INDEX,
    INDICATORS,
    JOURNAL,
    LEG_READINGS,
    MARKET,
    QUALITY,
    SCENARIOS,
    SMILE,
    SMILE_FIT_READINGS,
    STRESS,
)
from monitor.snapshot import Snapshot

Key = tuple[str, tuple[tuple[str, str], ...]]


def _num(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def _risk(risk: Risk) -> dict[str, float | None]:
    return state_risk(risk, _num)


def _fields(obj: object | None) -> dict[str, Any] | None:
    """A dataclass view as JSON: floats rounded (null when unknown), nested views kept."""
    if obj is None:
        return None
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, float):
            out[f.name] = _num(value)
        elif dataclasses.is_dataclass(value):
            out[f.name] = _fields(value)
        else:
            out[f.name] = value
    return out


def _signals(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "bar_minutes": snapshot.signals.bar_minutes,
        "indicators": {v.path.rsplit(".", 1)[1]: v.state(snapshot, _num) for v in INDICATORS},
        "breadth": BREADTH.state(snapshot, _num),
        "hedge_quality": QUALITY.state(snapshot, _num),
    }


def state_document(snapshot: Snapshot, firing: Sequence[Key], instance: str) -> dict[str, Any]:
    term = snapshot.term
    return {
        "instance": instance,
        "time": snapshot.time.astimezone(NEW_YORK).isoformat(timespec="milliseconds"),
        **INDEX.state(snapshot, _num),
        "vx1": _num(term.vx1),
        "vx2": _num(term.vx2),
        **BOOK.state(snapshot, _num),
        "book": _risk(snapshot.book.total),
        "strategies": {
            s.name: {**_risk(s.risk), "pnl": _fields(s.pnl)} for s in snapshot.book.strategies
        },
        "expiries": {g.name: _risk(g.risk) for g in snapshot.book.by_expiry},
        "underlyings": {g.name: _risk(g.risk) for g in snapshot.book.by_underlying},
        **FEED.state(snapshot, _num),
        "legs": [
            {**state_of(LEG_READINGS, lr, _num), "risk": _risk(lr.risk)}
            for lr in snapshot.book.legs
        ],
        "smile": {
            **SMILE.state(snapshot, _num),
            "expiries": {
                c.name: state_of(SMILE_FIT_READINGS, c, _num) for c in snapshot.smile.chains
            },
        },
        "term_structure": TERM.state(snapshot, _num),
        "scenarios": SCENARIOS.state(snapshot, _num),
        "stress": {
            **STRESS.state(snapshot, _num),
            "close_at": (
                snapshot.stress.close_at.isoformat() if snapshot.stress.close_at else None
            ),
            "points": [
                {
                    "spx_move_pct": p.spx_move_pct,
                    "horizon": p.horizon.value,
                    "vix_after": _num(p.vix_after),
                    "condor_usd": _num(p.condor_usd),
                    "hedge_usd": _num(p.hedge_usd),
                    "book_usd": _num(p.book_usd),
                    "coverage": _num(p.coverage),
                }
                for p in snapshot.stress.points
            ],
        },
        "hedge": _fields(snapshot.hedge),
        "account": ACCOUNT.state(snapshot, _num),
        "signals": _signals(snapshot),
        "next_event": EVENTS.state(snapshot, _num),
        "market": MARKET.state(snapshot, _num),
        "journal": JOURNAL.state(snapshot, _num),
        "firing": [
            {"alert_id": alert_id(rule, labels), "rule": rule, "labels": dict(labels)}
            for rule, labels in firing
        ],
    }
