"""The sink interface and the JSON form of an alert transition shared by file sinks."""

from __future__ import annotations

import math
from typing import Any, Protocol

from monitor.domain.alerts import AlertTransition
from monitor.domain.instruments import NEW_YORK


class Sink(Protocol):
    name: str

    async def emit(self, transitions: list[AlertTransition]) -> None: ...

    async def close(self) -> None: ...


def session_time(transition: AlertTransition) -> str:
    """Exchange time, as traders read it: '2026-03-03 11:42:05 ET'."""
    return transition.time.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S ET")


def transition_record(transition: AlertTransition) -> dict[str, Any]:
    """A JSON-ready record; values rounded to 10 significant digits for stable files."""
    value = transition.value
    return {
        "id": transition.message_id,
        "alert_id": transition.alert_id,
        "time": transition.time.astimezone(NEW_YORK).isoformat(timespec="milliseconds"),
        "rule": transition.rule,
        "severity": transition.severity.value,
        "state": transition.state.value,
        "labels": dict(transition.labels),
        "value": float(f"{value:.10g}") if math.isfinite(value) else None,
        "unit": transition.unit,
        "message": transition.message,
        "action": transition.action,
        "active_since": transition.active_since.astimezone(NEW_YORK).isoformat(
            timespec="milliseconds"
        )
        if transition.active_since
        else None,
        "notify": transition.notify,
        "suppressed_by": transition.suppressed_by,
        "repeat": transition.repeat,
    }
