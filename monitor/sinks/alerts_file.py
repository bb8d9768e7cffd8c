"""Alert transitions as JSON Lines: one object per transition, keys sorted, byte-stable."""

from __future__ import annotations

import json
from pathlib import Path

from monitor.domain.alerts import AlertTransition
from monitor.errors import MonitorError
from monitor.sinks.base import transition_record


class AlertsFileSink:
    name = "alerts-file"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8", newline="\n")
        except OSError as exc:
            raise MonitorError(
                f"alerts_out (--alerts-out): cannot write {path}: {exc.strerror or exc}"
            ) from None

    async def emit(self, transitions: list[AlertTransition]) -> None:
        self.write(transitions)

    def write(self, transitions: list[AlertTransition]) -> None:
        """Writes and flushes ``transitions`` (also for a backtest, which awaits nothing)."""
        for transition in transitions:
            record = transition_record(transition)
            self._file.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        self._file.flush()

    async def close(self) -> None:
        self._file.close()

    def close_now(self) -> None:
        self._file.close()
