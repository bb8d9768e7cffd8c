"""Console sink: one line per alert transition as it happens, coloured on a terminal; or,
when the log lines share stdout (a service: see monitor.logs), one JSON log line per
transition (event ``alert``, the fields of the alerts file), so the stream stays JSON."""

from __future__ import annotations

import math
import sys
from typing import TextIO

from monitor.domain.alerts import AlertState, AlertTransition, Severity
from monitor.logs import json_line
from monitor.sinks.base import session_time, transition_record

_LEVELS = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.CRITICAL: "critical"}

_COLOURS = {
    Severity.INFO: "\x1b[36m",
    Severity.WARNING: "\x1b[33m",
    Severity.CRITICAL: "\x1b[31;1m",
}
_GREEN = "\x1b[32m"
_RESET = "\x1b[0m"


def log_line(t: AlertTransition) -> str:
    """A transition as a JSON log line, at the level of its severity (info once resolved);
    written whatever the log level, since an alert is never filtered out."""
    level = "info" if t.state is AlertState.RESOLVED else _LEVELS[t.severity]
    fields = {"alert_time" if k == "time" else k: v for k, v in transition_record(t).items()}
    return json_line("alert", level, "monitor.alerts", fields)


def format_transition(t: AlertTransition) -> str:
    value = f"{t.value:,.4g} {t.unit}" if math.isfinite(t.value) else "no value"
    head = f"{session_time(t)}  {t.state.value.upper():8} {t.severity.value:8} {t.rule}"
    line = (
        f"{head}  [{t.label_text}]  {value}\n    {t.message}"
        if t.labels
        else (f"{head}  {value}\n    {t.message}")
    )
    if t.action and t.state is AlertState.FIRING:
        line += f"\n    -> {t.action}"
    if t.repeat:
        line += "\n    (reminder: still firing)"
    if not t.notify:
        line += f"\n    (not sent: {t.suppressed_by})"
    return line


class ConsoleSink:
    name = "console"

    def __init__(
        self, stream: TextIO | None = None, *, colour: bool | None = None, as_log: bool = False
    ) -> None:
        self.stream = stream or sys.stdout
        self.colour = self.stream.isatty() if colour is None else colour
        self.as_log = as_log

    async def emit(self, transitions: list[AlertTransition]) -> None:
        if self.as_log:
            for t in transitions:
                self.stream.write(log_line(t) + "\n")
            self.stream.flush()
            return
        for t in transitions:
            text = format_transition(t)
            if self.colour:
                tint = _GREEN if t.state is AlertState.RESOLVED else _COLOURS[t.severity]
                text = f"{tint}{text}{_RESET}"
            self.stream.write(text + "\n")
        self.stream.flush()

    async def close(self) -> None:
        self.stream.flush()
