"""Reads the Grafana dashboard's PromQL and turns it into queries a plain Prometheus answers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_VARIABLE = re.compile(r"\$(?:\{(?P<braced>\w+)(?::(?P<format>\w+))?\}|(?P<plain>\w+))")
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def load_dashboard(path: Path | str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return document


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel in order, rows included, then the panels a collapsed row holds."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_rows(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Panels by row title: a collapsed row's nested panels, else those after it up to the
    next row. Panels before the first row go under the empty title."""
    rows: dict[str, list[dict[str, Any]]] = {}
    current = ""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            current = panel.get("title", "")
            rows[current] = list(panel.get("panels", []))
        else:
            rows.setdefault(current, []).append(panel)
    return rows


def dashboard_expressions(path: Path | str) -> list[tuple[str, str]]:
    """(panel title, PromQL expr) for every target of every panel, rows' nested panels
    included, in dashboard order."""
    return [
        (panel.get("title", ""), target["expr"])
        for panel in iter_panels(load_dashboard(path))
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def duration_seconds(duration: str) -> float:
    """Seconds of a Prometheus duration such as 1m, 90s or 1h30m."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * _SECONDS[u] for n, u in parts)


def render_expression(
    expr: str,
    instance_regex: str = ".*",
    rate_interval: str = "1m",
    *,
    interval: str | None = None,
    time_range: str = "1h",
) -> str:
    """The expression with Grafana's variables replaced as Grafana would for one query.

    ``$instance`` becomes ``instance_regex`` escaped for a PromQL string literal (it only
    appears inside ``=~"..."``); ``$__rate_interval`` becomes ``rate_interval``;
    ``$__interval`` becomes ``interval`` (default: ``rate_interval``); ``$__range`` becomes
    ``time_range``; ``_ms`` and ``_s`` variants become numbers. Any other variable is an
    error, so the result never holds a ``$``.
    """
    step = interval or rate_interval
    values = {
        "instance": instance_regex.replace("\\", "\\\\").replace('"', '\\"'),
        "__rate_interval": rate_interval,
        "__rate_interval_ms": str(round(duration_seconds(rate_interval) * 1000)),
        "__interval": step,
        "__interval_ms": str(round(duration_seconds(step) * 1000)),
        "__range": time_range,
        "__range_s": str(round(duration_seconds(time_range))),
        "__range_ms": str(round(duration_seconds(time_range) * 1000)),
    }

    def substitute(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain")
        if name not in values:
            raise ValueError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    rendered = _VARIABLE.sub(substitute, expr)
    if "$" in rendered:
        raise ValueError(f"unrendered '$' left in {rendered!r}")
    return rendered
