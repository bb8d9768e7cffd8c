"""The book summary as a JSON document: what MQTT's retained ``state`` topic carries.

Keys carry their units (``_usd_per_pct``: dollars of P&L for a 1% SPX move, and so on, as in
docs/rules.md); a number that is not known yet is null.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from monitor.domain.alerts import alert_id
from monitor.domain.instruments import NEW_YORK
from monitor.portfolio.book import BookSnapshot, Risk

Key = tuple[str, tuple[tuple[str, str], ...]]


def _num(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def _risk(risk: Risk) -> dict[str, float | None]:
    return {f.name: _num(getattr(risk, f.name)) for f in dataclasses.fields(risk)}


def state_document(snapshot: BookSnapshot, firing: Sequence[Key], instance: str) -> dict[str, Any]:
    term = snapshot.term
    return {
        "instance": instance,
        "time": snapshot.time.astimezone(NEW_YORK).isoformat(timespec="milliseconds"),
        "spx": _num(snapshot.spx),
        "vix": _num(snapshot.vix),
        "vx1": _num(term.vx1),
        "vx2": _num(term.vx2),
        "account_size_usd": _num(snapshot.account_size_usd),
        "book": _risk(snapshot.book),
        "strategies": {s.name: _risk(s.risk) for s in snapshot.strategies},
        "feed_data_age_seconds": _num(snapshot.feed.data_age_seconds),
        "firing": [
            {"alert_id": alert_id(rule, labels), "rule": rule, "labels": dict(labels)}
            for rule, labels in firing
        ],
    }
