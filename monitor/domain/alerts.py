"""Alert transitions: what a rule's state machine emits and every sink receives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertTransition:
    time: datetime
    rule: str
    severity: Severity
    state: AlertState
    labels: tuple[tuple[str, str], ...]  # sorted by name: part of the alert's identity
    value: float
    unit: str
    message: str
    action: str | None = None
    active_since: datetime | None = None  # when the condition first held (pending start)

    @property
    def label_text(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.labels)
