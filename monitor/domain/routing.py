"""Which alert transitions a delivery channel takes: by severity, labels and state."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.domain.alerts import AlertState, AlertTransition, Matcher, Severity, match_all


@dataclass(frozen=True, slots=True)
class Route:
    """A channel takes a transition that is to be notified, has one of ``severities`` (all
    when empty), matches every matcher, and is a firing, or a resolved notice when
    ``send_resolved``."""

    channel: str
    severities: frozenset[Severity] = frozenset()
    matchers: tuple[Matcher, ...] = ()
    send_resolved: bool = True

    def accepts(self, transition: AlertTransition) -> bool:
        if not transition.notify:
            return False
        if transition.state is AlertState.RESOLVED and not self.send_resolved:
            return False
        if self.severities and transition.severity not in self.severities:
            return False
        return match_all(self.matchers, transition.rule, transition.labels)
