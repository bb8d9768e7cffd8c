"""Alert text for a phone or a chat: rule, value with its unit, what to do, the ids."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.domain.instruments import NEW_YORK


def _when(record: dict[str, Any]) -> str:
    return datetime.fromisoformat(str(record["time"])).astimezone(NEW_YORK).strftime("%H:%M:%S ET")


def _value(record: dict[str, Any]) -> str:
    value = record.get("value")
    if value is None or not math.isfinite(float(value)):
        return "no value"
    return f"{float(value):,.4g} {record['unit']}"


def title(records: Sequence[dict[str, Any]]) -> str:
    """One alert: 'CRITICAL ShortStrikeDeltaCritical'; a group: '3 alerts: 2 critical, ...'."""
    if len(records) == 1:
        r = records[0]
        state = "RESOLVED" if r["state"] == "resolved" else str(r["severity"]).upper()
        return f"{state} {r['rule']}"
    kinds = Counter("resolved" if r["state"] == "resolved" else str(r["severity"]) for r in records)
    order = ("critical", "warning", "info", "resolved")
    parts = ", ".join(f"{kinds[k]} {k}" for k in order if kinds[k])
    return f"{len(records)} alerts: {parts}"


def section(record: dict[str, Any], *, with_heading: bool) -> str:
    lines = [title([record])] if with_heading else []
    lines.append(str(record["message"]))
    lines.append(f"Value: {_value(record)}")
    if record.get("action") and record["state"] == "firing":
        lines.append(f"Do: {record['action']}")
    labels = " ".join(f"{k}={v}" for k, v in sorted(dict(record["labels"]).items()))
    lines.append(f"{_when(record)}{'  ' + labels if labels else ''}")
    lines.append(f"alert {record['alert_id']}  id {record['id']}")
    return "\n".join(lines)


def body(records: Sequence[dict[str, Any]], group_id: str) -> str:
    """The message text; a group lists its alerts in order and ends with the group's id."""
    if len(records) == 1:
        return section(records[0], with_heading=False)
    parts = [section(r, with_heading=True) for r in records]
    return "\n\n".join([*parts, f"group {group_id}"])
