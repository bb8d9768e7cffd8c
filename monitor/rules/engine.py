"""Alert state machines, one per (rule, label set), timed by the snapshot clock.

inactive -> pending       the condition holds
pending  -> firing        it has held for the rule's ``for`` (emitted)
pending  -> inactive      it stopped holding first (nothing emitted)
firing   -> keep-firing   it stopped holding (with ``clear``: the clear condition holds)
keep-firing -> firing     it holds again within ``keep_firing_for`` (nothing emitted)
keep-firing -> resolved   ``keep_firing_for`` has passed (emitted); at once when it is 0
A label set that disappears (a leg closed) resolves its alert. Only firing and resolved
reach the sinks; the other states are visible through ``states()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from monitor.domain.alerts import AlertState, AlertTransition
from monitor.portfolio.book import BookSnapshot
from monitor.rules.expressions import Value
from monitor.rules.loader import Rule
from monitor.rules.variables import (
    Scope,
    book_values,
    leg_values,
    short_legs,
    strategy_values,
)

Labels = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class _Active:
    since: datetime
    firing: bool = False
    cleared_at: datetime | None = None  # keep-firing since this moment


class Phase(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    KEEP_FIRING = "keep-firing"


def _items(
    scope: Scope, snapshot: BookSnapshot, book: dict[str, Value]
) -> Iterator[tuple[Labels, dict[str, Value]]]:
    if scope is Scope.BOOK:
        yield (), book
        return
    strategies = {s.name: strategy_values(s) for s in snapshot.strategies}
    if scope is Scope.STRATEGY:
        for name, values in strategies.items():
            yield (("strategy", name),), book | values
        return
    for leg in short_legs(snapshot):
        inst = leg.leg.instrument
        tag = f"{inst.right.value if inst.right else ''}{inst.strike or 0:g}"
        yield (
            (("leg", tag), ("strategy", leg.leg.strategy)),
            book | strategies[leg.leg.strategy] | leg_values(leg),
        )


class RuleEngine:
    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.active: dict[tuple[str, Labels], _Active] = {}
        self.fired: dict[str, int] = {r.name: 0 for r in rules}

    def _transition(
        self,
        rule: Rule,
        labels: Labels,
        *,
        values: dict[str, Value],
        state: AlertState,
        now: datetime,
        since: datetime,
    ) -> AlertTransition:
        value = float(rule.value.evaluate(values))
        shown = {**values, "value": value}
        return AlertTransition(
            time=now,
            rule=rule.name,
            severity=rule.severity,
            state=state,
            labels=labels,
            value=value,
            unit=rule.unit,
            message=rule.summary.render(shown),
            action=rule.action.render(shown) if rule.action else None,
            active_since=since,
        )

    def _step(
        self, rule: Rule, labels: Labels, values: dict[str, Value], now: datetime
    ) -> AlertTransition | None:
        """Advances one alert's state machine; returns its transition, if any."""
        key = (rule.name, labels)
        current = self.active.get(key)
        if current is not None and current.firing and rule.clear is not None:
            # Hysteresis: a firing alert stays until its clear condition holds.
            holds = not bool(rule.clear.evaluate(values))
        else:
            holds = bool(rule.condition.evaluate(values))
        if not holds:
            if current is None:
                return None
            if not current.firing:
                del self.active[key]
                return None
            if current.cleared_at is None:
                current.cleared_at = now
            if now - current.cleared_at < rule.keep_firing_for:
                return None  # keep-firing
            del self.active[key]
            return self._transition(
                rule, labels, values=values, state=AlertState.RESOLVED, now=now, since=current.since
            )
        if current is None:
            current = self.active[key] = _Active(now)
        current.cleared_at = None
        if current.firing or now - current.since < rule.hold:
            return None
        current.firing = True
        self.fired[rule.name] += 1
        return self._transition(
            rule, labels, values=values, state=AlertState.FIRING, now=now, since=current.since
        )

    def _vanished(self, rule: Rule, seen: set[Labels], now: datetime) -> list[AlertTransition]:
        """Resolves alerts whose label set is gone from the book (a closed leg)."""
        out = []
        for key in [k for k in self.active if k[0] == rule.name and k[1] not in seen]:
            gone = self.active.pop(key)
            if gone.firing:
                labels = " ".join("=".join(pair) for pair in key[1])
                out.append(
                    AlertTransition(
                        now,
                        rule.name,
                        rule.severity,
                        AlertState.RESOLVED,
                        key[1],
                        math.nan,
                        rule.unit,
                        f"{rule.name} resolved: {labels} is no longer in the book",
                        None,
                        gone.since,
                    )
                )
        return out

    def evaluate(self, snapshot: BookSnapshot) -> list[AlertTransition]:
        book = book_values(snapshot)
        out: list[AlertTransition] = []
        for rule in self.rules:
            seen: set[Labels] = set()
            for item_labels, values in _items(rule.scope, snapshot, book):
                labels = tuple(sorted((*rule.labels, *item_labels)))
                seen.add(labels)
                transition = self._step(rule, labels, values, snapshot.time)
                if transition is not None:
                    out.append(transition)
            out.extend(self._vanished(rule, seen, snapshot.time))
        return out

    def firing(self) -> list[tuple[str, Labels]]:
        """Alerts that count as firing, keep-firing included."""
        return sorted(k for k, a in self.active.items() if a.firing)

    def states(self) -> dict[tuple[str, Labels], Phase]:
        """Every alert that is not inactive, with its phase."""
        out = {}
        for key, active in sorted(self.active.items()):
            if not active.firing:
                out[key] = Phase.PENDING
            else:
                out[key] = Phase.FIRING if active.cleared_at is None else Phase.KEEP_FIRING
        return out
