"""The variables rules can read, one table row each: name, type, unit, meaning and getter.

The risk rows of each scope come from the table of measures (``monitor.measures``), the
book's other rows from the tables of readings of its views, and a strategy's and a leg's
other rows from their tables of readings (``monitor.measures``, ``monitor.readings``).
docs/rules.md's tables are generated from these rows (``make docs``) and a test keeps the two
in step.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar, cast

from monitor.measures import (
    BOOK_SCOPE,
    LEG_SCOPE,
    RISK_MEASURES,
    STRATEGY_SCOPE,
    Reading,
    RiskScope,
    Scalar,
    View,
)
from monitor.portfolio.book import LegRisk, StrategyRisk
from monitor.portfolio.model import StrategyKind
from monitor.readings import INDEX, LEG_READINGS, STRATEGY_READINGS, VIEWS
from monitor.rules.expressions import Value, VarType
from monitor.snapshot import Snapshot

T = TypeVar("T")


class Scope(StrEnum):
    """What a rule is evaluated over: once per snapshot, per strategy, or per short leg."""

    BOOK = "book"
    STRATEGY = "strategy"
    SHORT_LEG = "short_leg"


@dataclass(frozen=True, slots=True)
class Variable(Generic[T]):
    name: str
    type: VarType
    unit: str
    meaning: str
    get: Callable[[T], Value]


N, B, S = VarType.NUMBER, VarType.BOOL, VarType.STRING


def _risk_rows(scope: RiskScope[T]) -> tuple[Variable[T], ...]:
    """The scope's rule variables of the table of measures (``monitor.measures``)."""
    return tuple(
        Variable(scope.variable(m), N, m.unit, scope.meaning(m), scope.reader(m))
        for m in RISK_MEASURES
    )


def _item_rows(readings: tuple[Reading[T], ...]) -> tuple[Variable[T], ...]:
    """The rule variables of a strategy's or a leg's rows (``monitor.readings``)."""
    return tuple(
        Variable(
            r.variable,
            r.type,
            r.unit,
            r.meaning,
            # Numbers and flags are never None: their getter as it is (the per-leg path).
            _text_or_value(r.get) if r.type is S else cast("Callable[[T], Value]", r.get),
        )
        for r in readings
        if r.variable is not None
    )


def _text_or_value(get: Callable[[T], Scalar]) -> Callable[[T], Value]:
    """``get`` with None read as '' (text not known)."""

    def read(item: T) -> Value:
        value = get(item)
        return "" if value is None else value

    return read


def _view_rows(view: View[T]) -> tuple[Variable[Snapshot], ...]:
    """The rule variables of a view's table of readings (``monitor.measures``)."""
    return tuple(
        Variable(r.variable, r.type, r.unit, r.meaning, view.variable_reader(r))
        for r in view.readings
        if r.variable is not None
    )


BOOK_VARIABLES: tuple[Variable[Snapshot], ...] = (
    *_view_rows(INDEX),
    *_risk_rows(BOOK_SCOPE),
    *(row for view in VIEWS if view is not INDEX for row in _view_rows(view)),
)


STRATEGY_VARIABLES: tuple[Variable[StrategyRisk], ...] = (
    *_item_rows(STRATEGY_READINGS),
    *_risk_rows(STRATEGY_SCOPE),
)

SHORT_LEG_VARIABLES: tuple[Variable[LegRisk], ...] = (
    *_item_rows(LEG_READINGS),
    *_risk_rows(LEG_SCOPE),
)

LEG_STRATEGY_PREFIX = "strategy."


def catalogue(scope: Scope) -> dict[str, VarType]:
    """Names visible to a rule of ``scope``: book variables plus the scope's own."""
    names = {v.name: v.type for v in BOOK_VARIABLES}
    if scope in {Scope.STRATEGY, Scope.SHORT_LEG}:
        names |= {v.name: v.type for v in STRATEGY_VARIABLES}
    if scope is Scope.SHORT_LEG:
        names |= {v.name: v.type for v in SHORT_LEG_VARIABLES}
    return names


# (id of a table, the names asked for) -> its rows with those names; the tables are module
# constants, so their ids stay valid.
_WANTED: dict[tuple[int, frozenset[str]], tuple[Variable[Any], ...]] = {}


def _wanted(
    table: tuple[Variable[T], ...], names: Collection[str] | None
) -> tuple[Variable[T], ...]:
    """The rows of ``table`` named in ``names`` (all without it). The rule engine asks with
    the same frozen set on every snapshot, so the filtering is done once for it."""
    if names is None:
        return table
    if not isinstance(names, frozenset):
        return tuple(v for v in table if v.name in names)
    key = (id(table), names)
    rows = _WANTED.get(key)
    if rows is None:
        rows = _WANTED[key] = tuple(v for v in table if v.name in names)
    return rows


def book_values(snapshot: Snapshot, names: Collection[str] | None = None) -> dict[str, Value]:
    """Book variables; only ``names`` when given (the ones the loaded rules read)."""
    return {v.name: v.get(snapshot) for v in _wanted(BOOK_VARIABLES, names)}


def strategy_values(
    strategy: StrategyRisk, names: Collection[str] | None = None
) -> dict[str, Value]:
    return {v.name: v.get(strategy) for v in _wanted(STRATEGY_VARIABLES, names)}


def short_legs(snapshot: Snapshot) -> list[LegRisk]:
    """Short option legs of the iron condors: the strikes whose delta the trader watches."""
    condors = {s.name for s in snapshot.book.strategies if s.kind is StrategyKind.IRON_CONDOR}
    return [
        lr
        for lr in snapshot.book.legs
        if lr.leg.strategy in condors and lr.leg.is_short and lr.leg.instrument.is_option
    ]


def leg_values(leg: LegRisk, names: Collection[str] | None = None) -> dict[str, Value]:
    return {v.name: v.get(leg) for v in _wanted(SHORT_LEG_VARIABLES, names)}
