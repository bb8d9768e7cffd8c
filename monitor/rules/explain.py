"""`rules explain NAME`: what a rule reads, with units, and the values it last saw."""

from __future__ import annotations

import math
from typing import Any

from monitor.rules.engine import RuleEngine, scope_items
from monitor.rules.expressions import Value
from monitor.rules.loader import Rule
from monitor.rules.variables import (
    BOOK_VARIABLES,
    SHORT_LEG_VARIABLES,
    STRATEGY_VARIABLES,
    Variable,
    book_values,
)
from monitor.snapshot import Snapshot

_ALL: dict[str, Variable[Any]] = {}
for _table in (BOOK_VARIABLES, STRATEGY_VARIABLES, SHORT_LEG_VARIABLES):
    _ALL.update({v.name: v for v in _table})


def _names(rule: Rule) -> list[str]:
    used = set(rule.condition.names) | set(rule.value.names)
    if rule.clear is not None:
        used |= rule.clear.names
    return sorted(used)


def _show(value: Value) -> str:
    if isinstance(value, float):
        return f"{value:,.6g}" if math.isfinite(value) else "NaN (no data)"
    return str(value)


def explain(rule: Rule, snapshot: Snapshot | None, engine: RuleEngine | None) -> str:
    lines = [
        f"{rule.name}  ({rule.source}, group {rule.group}, for each {rule.scope.value})",
        f"  expr   {rule.condition.source}",
    ]
    if rule.clear is not None:
        lines.append(f"  clear  {rule.clear.source}")
    lines.append(f"  value  {rule.value.source}  [{rule.unit}]")
    lines.append(
        f"  for {rule.hold}, keep firing for {rule.keep_firing_for}, severity {rule.severity.value}"
    )
    lines.append("  variables:")
    names = _names(rule)
    lines.extend(
        f"    {n:36s} {_ALL[n].type.value:7s} {_ALL[n].unit:24s} {_ALL[n].meaning}" for n in names
    )
    if snapshot is None:
        return "\n".join(lines)
    lines.append(f"  values at {snapshot.time.isoformat(timespec='seconds')}:")
    states = engine.states() if engine is not None else {}
    for labels, values in scope_items(rule.scope, snapshot, book_values(snapshot)):
        key = tuple(sorted((*rule.labels, *labels)))
        tag = " ".join("=".join(p) for p in key) or "(book)"
        holds = rule.condition.evaluate(values)
        phase = states.get((rule.name, key))
        lines.append(
            f"    [{tag}] expr is {holds}; alert {phase.value if phase is not None else 'inactive'}"
        )
        lines.extend(f"      {n:34s} = {_show(values[n])}" for n in names)
    return "\n".join(lines)
