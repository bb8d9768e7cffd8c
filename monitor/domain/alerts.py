"""Alerts: the transitions a rule's state machine emits and every sink receives, and the
firing state the journal keeps across a restart."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Matcher:
    """label = value; the label ``alertname`` is the rule's name."""

    name: str
    value: str

    def matches(self, rule: str, labels: tuple[tuple[str, str], ...]) -> bool:
        if self.name == "alertname":
            return rule == self.value
        return dict(labels).get(self.name) == self.value


def match_all(
    matchers: tuple[Matcher, ...], rule: str, labels: tuple[tuple[str, str], ...]
) -> bool:
    return all(m.matches(rule, labels) for m in matchers)


@dataclass(frozen=True, slots=True)
class Silence:
    """Alerts matching every matcher are not notified between ``starts`` and ``ends``."""

    id: int
    matchers: tuple[Matcher, ...]
    starts: datetime
    ends: datetime
    comment: str = ""

    def active(self, now: datetime) -> bool:
        return self.starts <= now < self.ends


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """While an alert matching ``source`` fires, alerts matching ``target`` (and sharing the
    ``equal`` labels' values with it) are not notified."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


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
    notify: bool = True  # False: recorded in the journal but not sent (silenced, inhibited)
    suppressed_by: str | None = None  # why it is not sent: "silence 3", "inhibited by X"
    repeat: bool = False  # a reminder for an alert still firing after its repeat interval

    @property
    def label_text(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.labels)

    @property
    def alert_id(self) -> str:
        return alert_id(self.rule, self.labels)

    @property
    def message_id(self) -> str:
        """Stable across restarts and re-deliveries: receivers drop duplicates by it."""
        identity = [self.alert_id, self.state.value, self.time.isoformat(), self.repeat]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class SavedAlert:
    """A firing alert as persisted in the journal."""

    rule: str
    labels: tuple[tuple[str, str], ...]
    since: datetime
    notified: bool
    last_notified: datetime | None
    acknowledged: bool = False


def alert_id(rule: str, labels: tuple[tuple[str, str], ...]) -> str:
    """The identity of one alert (a rule and its label set), as 16 hex digits."""
    identity = json.dumps([rule, [list(pair) for pair in sorted(labels)]])
    return hashlib.sha256(identity.encode()).hexdigest()[:16]
