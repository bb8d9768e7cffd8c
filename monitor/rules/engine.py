"""Alert state machines, one per (rule, label set), timed by the snapshot clock, and the
notification decisions on top of them (silences, inhibition, repeats).

inactive -> pending       the condition holds
pending  -> firing        it has held for the rule's ``for`` (emitted)
pending  -> inactive      it stopped holding first (nothing emitted)
firing   -> keep-firing   it stopped holding (with ``clear``: the clear condition holds)
keep-firing -> firing     it holds again within ``keep_firing_for`` (nothing emitted)
keep-firing -> resolved   ``keep_firing_for`` has passed (emitted); at once when it is 0
A label set that disappears (a leg closed) resolves its alert.

Every firing and resolved transition is emitted (the journal keeps them all); ``notify``
says whether it is to be sent. A firing alert that is silenced or inhibited is not sent;
if it is still firing when the suppression ends, it is sent then. A firing alert already
sent is sent again every ``repeat_interval`` (marked ``repeat``) until it is acknowledged.
A resolved notice is sent only for an alert whose firing was sent. State can be exported
and restored, so a restarted daemon does not page again for alerts already sent.

A transition's message says "delayed data (N min)" when the legs it is about were quoted
delayed in the snapshot it was evaluated on: a short-leg alert's leg, a strategy alert's legs,
any leg of the book for a book alert.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from monitor.domain.alerts import (
    AlertState,
    AlertTransition,
    InhibitRule,
    SavedAlert,
    Silence,
    alert_id,
    match_all,
)
from monitor.portfolio.book import LegRisk
from monitor.rules.expressions import Value
from monitor.rules.loader import Rule, RuleSet
from monitor.rules.variables import (
    Scope,
    book_values,
    leg_values,
    short_legs,
    strategy_values,
)
from monitor.snapshot import Snapshot

Labels = tuple[tuple[str, str], ...]
Key = tuple[str, Labels]


class Phase(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    KEEP_FIRING = "keep-firing"


class SilenceSource(Protocol):
    def active(self, now: datetime) -> Sequence[Silence]: ...


@dataclass(slots=True)
class _Active:
    since: datetime
    firing: bool = False
    cleared_at: datetime | None = None  # keep-firing since this moment
    notified: bool = False  # its firing was sent
    last_notified: datetime | None = None
    acknowledged: bool = False  # by the trader: no reminders until it resolves
    values: dict[str, Value] = field(default_factory=dict)  # as last evaluated


def scope_items(
    scope: Scope,
    snapshot: Snapshot,
    book: dict[str, Value],
    names: Collection[str] | None = None,
) -> Iterator[tuple[Labels, dict[str, Value]]]:
    if scope is Scope.BOOK:
        yield (), book
        return
    strategies = {s.name: strategy_values(s, names) for s in snapshot.book.strategies}
    if scope is Scope.STRATEGY:
        for name, values in strategies.items():
            yield (("strategy", name),), book | values
        return
    for leg in short_legs(snapshot):
        yield (
            (("leg", leg_tag(leg)), ("strategy", leg.leg.strategy)),
            book | strategies[leg.leg.strategy] | leg_values(leg, names),
        )


def leg_tag(leg: LegRisk) -> str:
    """A short leg's ``leg`` label: its right and strike, e.g. 'P6300'."""
    inst = leg.leg.instrument
    return f"{inst.right.value if inst.right else ''}{inst.strike or 0:g}"


def delayed_note(snapshot: Snapshot, scope: Scope, labels: Labels) -> str:
    """' [delayed data (15 min)]' when a leg the alert is about was quoted delayed, else ''."""
    named = dict(labels)
    legs: Iterable[LegRisk] = snapshot.book.legs
    if scope is Scope.SHORT_LEG:
        legs = (
            lr
            for lr in short_legs(snapshot)
            if lr.leg.strategy == named.get("strategy") and leg_tag(lr) == named.get("leg")
        )
    elif scope is Scope.STRATEGY:
        legs = (lr for lr in snapshot.book.legs if lr.leg.strategy == named.get("strategy"))
    if not any(lr.data_delayed for lr in legs):
        return ""
    return f" [delayed data ({snapshot.feed.delayed_data_minutes:g} min)]"


def _needed(rules: Sequence[Rule]) -> frozenset[str]:
    """The variables any loaded rule reads: a snapshot builds only these."""
    return frozenset().union(*(r.names for r in rules))


class RuleEngine:
    def __init__(
        self,
        rules: list[Rule],
        *,
        inhibit_rules: Sequence[InhibitRule] = (),
        silences: SilenceSource | None = None,
    ) -> None:
        self.rules = rules
        self.by_name = {r.name: r for r in rules}
        self.needed = _needed(rules)
        self.inhibit_rules = tuple(inhibit_rules)
        self.silences = silences
        self.active: dict[Key, _Active] = {}
        self.fired: dict[str, int] = {r.name: 0 for r in rules}
        self.retired: dict[str, Rule] = {}  # removed by a reload, kept to word the resolve

    def replace(self, rule_set: RuleSet) -> None:
        """Swaps in a new rule set. Alerts of rules that keep their name keep their state;
        alerts of removed rules resolve at the next evaluation."""
        for rule in self.rules:
            self.retired[rule.name] = rule
        self.rules = rule_set.rules
        self.by_name = {r.name: r for r in rule_set.rules}
        self.needed = _needed(rule_set.rules)
        self.inhibit_rules = tuple(rule_set.inhibit_rules)
        for rule in self.rules:
            self.retired.pop(rule.name, None)
            self.fired.setdefault(rule.name, 0)

    # -- state machine -------------------------------------------------------------------

    def _step(self, rule: Rule, labels: Labels, values: dict[str, Value], now: datetime) -> str:
        """Advances one alert; returns 'fired', 'resolved' or ''."""
        key = (rule.name, labels)
        current = self.active.get(key)
        if current is not None:
            current.values = values
        if current is not None and current.firing and rule.clear is not None:
            # Hysteresis: a firing alert stays until its clear condition holds.
            holds = not bool(rule.clear.evaluate(values))
        else:
            holds = bool(rule.condition.evaluate(values))
        if not holds:
            if current is None:
                return ""
            if not current.firing:
                del self.active[key]
                return ""
            if current.cleared_at is None:
                current.cleared_at = now
            if now - current.cleared_at < rule.keep_firing_for:
                return ""  # keep-firing
            return "resolved"
        if current is None:
            current = self.active[key] = _Active(now, values=values)
        current.cleared_at = None
        if current.firing or now - current.since < rule.hold:
            return ""
        current.firing = True
        self.fired[rule.name] += 1
        return "fired"

    # -- notification decisions -----------------------------------------------------------

    def _suppressed_by(self, key: Key, silences: Sequence[Silence]) -> str | None:
        rule, labels = key
        for silence in silences:
            if match_all(silence.matchers, rule, labels):
                return f"silence {silence.id}"
        for inhibit in self.inhibit_rules:
            if not match_all(inhibit.target, rule, labels):
                continue
            mine = dict(labels)
            for (src_rule, src_labels), state in self.active.items():
                if not state.firing or (src_rule, src_labels) == key:
                    continue
                theirs = dict(src_labels)
                if match_all(inhibit.source, src_rule, src_labels) and all(
                    mine.get(name) == theirs.get(name) for name in inhibit.equal
                ):
                    return f"inhibited by {src_rule}"
        return None

    def _transition(
        self,
        key: Key,
        state: AlertState,
        now: datetime,
        *,
        notify: bool,
        suppressed_by: str | None = None,
        repeat: bool = False,
    ) -> AlertTransition:
        rule = self.by_name.get(key[0]) or self.retired[key[0]]
        active = self.active.get(key)
        values = active.values if active is not None else {}
        since = active.since if active is not None else None
        if values:
            value = float(rule.value.evaluate(values))
            shown = {**values, "value": value}
            message = rule.summary.render(shown)
            action = rule.action.render(shown) if rule.action else None
        else:  # the label set left the book: nothing to evaluate any more
            value, action = math.nan, None
            what = " ".join("=".join(p) for p in key[1]) or "the alert"
            message = (
                f"{rule.name} resolved: {what} is no longer evaluated "
                "(its leg left the book or its rule was removed)"
            )
        return AlertTransition(
            time=now,
            rule=rule.name,
            severity=rule.severity,
            state=state,
            labels=key[1],
            value=value,
            unit=rule.unit,
            message=message,
            action=action,
            active_since=since,
            notify=notify,
            suppressed_by=suppressed_by,
            repeat=repeat,
        )

    def _notifications(
        self, fired: list[Key], resolved: list[Key], now: datetime
    ) -> list[AlertTransition]:
        silences = [s for s in self.silences.active(now) if s.active(now)] if self.silences else []
        out = []
        for key in resolved:
            active = self.active[key]
            # Resolved is sent only for a firing that was sent, and not while suppressed.
            why = self._suppressed_by(key, silences) if active.notified else "never notified"
            out.append(
                self._transition(
                    key,
                    AlertState.RESOLVED,
                    now,
                    notify=active.notified and why is None,
                    suppressed_by=why,
                )
            )
            del self.active[key]
        fresh = set(fired)
        for key, active in sorted(self.active.items()):
            if not active.firing:
                continue
            rule = self.by_name[key[0]]
            why = self._suppressed_by(key, silences)
            if key in fresh or not active.notified:
                if key in fresh or why is None:
                    out.append(
                        self._transition(
                            key, AlertState.FIRING, now, notify=why is None, suppressed_by=why
                        )
                    )
                if why is None:
                    active.notified, active.last_notified = True, now
            elif (
                rule.repeat_interval is not None
                and why is None
                and not active.acknowledged
                and active.cleared_at is None
                and active.last_notified is not None
                and now - active.last_notified >= rule.repeat_interval
            ):
                out.append(self._transition(key, AlertState.FIRING, now, notify=True, repeat=True))
                active.last_notified = now
        return out

    # -- public ---------------------------------------------------------------------------

    def evaluate(self, snapshot: Snapshot) -> list[AlertTransition]:
        now = snapshot.time
        book = book_values(snapshot, self.needed)
        fired: list[Key] = []
        resolved: list[Key] = []
        for key in [k for k in self.active if k[0] not in self.by_name]:
            if self.active[key].firing:  # its rule was removed by a reload
                self.active[key].values = {}
                resolved.append(key)
            else:
                del self.active[key]
        # The variables of a scope are the same for every rule of it in this snapshot: built
        # once per scope, not once per rule. Rules only read them.
        by_scope: dict[Scope, list[tuple[Labels, dict[str, Value]]]] = {}
        for rule in self.rules:
            seen: set[Labels] = set()
            items = by_scope.get(rule.scope)
            if items is None:
                items = by_scope[rule.scope] = list(
                    scope_items(rule.scope, snapshot, book, self.needed)
                )
            for item_labels, values in items:
                labels = tuple(sorted((*rule.labels, *item_labels)))
                seen.add(labels)
                outcome = self._step(rule, labels, values, now)
                if outcome == "fired":
                    fired.append((rule.name, labels))
                elif outcome == "resolved":
                    resolved.append((rule.name, labels))
            for key in [k for k in self.active if k[0] == rule.name and k[1] not in seen]:
                if self.active[key].firing:
                    self.active[key].values = {}
                    resolved.append(key)
                else:
                    del self.active[key]
        return [self._noted(t, snapshot) for t in self._notifications(fired, resolved, now)]

    def _noted(self, transition: AlertTransition, snapshot: Snapshot) -> AlertTransition:
        rule = self.by_name.get(transition.rule) or self.retired[transition.rule]
        note = delayed_note(snapshot, rule.scope, transition.labels)
        return replace(transition, message=transition.message + note) if note else transition

    def firing(self) -> list[Key]:
        """Alerts that count as firing, keep-firing included."""
        return sorted(k for k, a in self.active.items() if a.firing)

    def states(self) -> dict[Key, Phase]:
        """Every alert that is not inactive, with its phase."""
        out = {}
        for key, active in sorted(self.active.items()):
            if not active.firing:
                out[key] = Phase.PENDING
            else:
                out[key] = Phase.FIRING if active.cleared_at is None else Phase.KEEP_FIRING
        return out

    def export(self) -> list[SavedAlert]:
        """Firing alerts, for the journal."""
        return [
            SavedAlert(rule, labels, a.since, a.notified, a.last_notified, a.acknowledged)
            for (rule, labels), a in sorted(self.active.items())
            if a.firing
        ]

    def acknowledge(self, alert: str) -> Key | None:
        """Marks the firing alert with id ``alert`` acknowledged: its reminders stop until it
        resolves. The alert's key, or None when no firing alert has that id."""
        for key, active in self.active.items():
            if active.firing and alert_id(*key) == alert:
                active.acknowledged = True
                return key
        return None

    def restore(self, saved: Sequence[SavedAlert], now: datetime) -> int:
        """Takes back firing alerts from a previous run; skips rules no longer loaded and
        alerts from the future (a replay of an earlier day). Returns how many were restored."""
        count = 0
        for alert in saved:
            if alert.rule in self.by_name and alert.since <= now:
                self.active[(alert.rule, alert.labels)] = _Active(
                    alert.since,
                    firing=True,
                    notified=alert.notified,
                    last_notified=alert.last_notified,
                    acknowledged=alert.acknowledged,
                )
                count += 1
        return count
