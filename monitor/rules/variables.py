"""The variables rules can read, one table row each: name, type, unit, meaning and getter.

The risk rows of each scope, and the term-structure, hedge and feed rows, come from the
tables of measures (``monitor.measures``); the others are written here. docs/rules.md's
tables are generated from these rows (``make docs``) and a test keeps the two in step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from monitor.measures import (
    BOOK_SCOPE,
    FEED,
    HEDGE,
    LEG_SCOPE,
    RISK_MEASURES,
    STRATEGY_SCOPE,
    TERM,
    RiskScope,
    View,
)
from monitor.portfolio.book import LegRisk, StrategyRisk
from monitor.portfolio.model import StrategyKind
from monitor.rules.expressions import Value, VarType
from monitor.signals.board import SERIES
from monitor.snapshot import Snapshot

T = TypeVar("T")
MIB = 1024.0 * 1024.0  # bytes in a mebibyte


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


def _view_rows(view: View[T]) -> tuple[Variable[Snapshot], ...]:
    """The rule variables of a view's table of readings (``monitor.measures``)."""
    return tuple(
        Variable(r.variable, r.type, r.unit, r.meaning, view.variable_reader(r))
        for r in view.readings
        if r.variable is not None
    )


def _ind(snapshot: Snapshot, series: str, name: str) -> float:
    signals = snapshot.signals
    if not signals.known:  # a book that knows nothing: no signal, not "no cross"
        return math.nan
    return float(getattr(signals.indicator(series), name))


_SERIES_TEXT = {
    "spx": ("SPX", "index points"),
    "vix": ("spot VIX", "VIX points"),
    "vx1": ("VX1 (front-month future mid)", "VIX points"),
    "vx2": ("VX2 (second-month future mid)", "VIX points"),
}
_BARS = "on the signal bars ([signals] bar_minutes, default 5)"


def _indicator_rows(series: str) -> tuple[Variable[Snapshot], ...]:
    what, unit = _SERIES_TEXT[series]
    p = f"signals.{series}_"

    def get(name: str) -> Callable[[Snapshot], Value]:
        return lambda s: _ind(s, series, name)

    return (
        Variable(p + "macd", N, unit, f"MACD (12, 26, 9) of {what} {_BARS}", get("macd")),
        Variable(p + "macd_signal", N, unit, "its signal line (EMA9 of MACD)", get("signal")),
        Variable(p + "macd_histogram", N, unit, "MACD - signal", get("histogram")),
        Variable(
            p + "macd_cross",
            N,
            "-1/0/+1",
            "+1 if MACD crossed above its signal on the last completed bar, -1 below, else 0",
            get("cross"),
        ),
        Variable(
            p + "bars_since_cross",
            N,
            "bars",
            "completed bars since the last MACD cross (NaN before one)",
            get("bars_since_cross"),
        ),
        Variable(p + "rsi", N, "0-100", f"RSI (14, Wilder) of {what}", get("rsi")),
    )


def _signal_part(part: str) -> Callable[[Snapshot, str], float]:
    """A reader of one field of the snapshot's ``signals.<part>``."""

    def read(snapshot: Snapshot, name: str) -> float:
        signals = snapshot.signals
        if not signals.known:
            return math.nan
        return float(getattr(getattr(signals, part), name))

    return read


_breadth = _signal_part("breadth")
_quality = _signal_part("quality")


def _breadth_rows() -> tuple[Variable[Snapshot], ...]:
    rows = (
        ("ad_line", "issues", "NYSE net advances since the open (the intraday A/D line)"),
        ("ad_change", "issues", "A/D line change over the breadth lookback"),
        ("spx_change_pct", "%", "SPX change over the breadth lookback"),
        (
            "divergence",
            "-1/0/+1",
            (
                "-1: SPX at a lookback high while A/D fell by the threshold; +1: at a low "
                "while A/D rose; else 0 (NaN while warming up)"
            ),
        ),
        ("lookback_minutes", "minutes", "the breadth lookback"),
    )
    return tuple(
        Variable(f"breadth.{name}", N, unit, meaning, _getter(_breadth, name))
        for name, unit, meaning in rows
    )


def _quality_rows() -> tuple[Variable[Snapshot], ...]:
    rows = (
        (
            "hedge.quality_beta",
            "beta",
            "$ of hedge P&L per $ of condor P&L per bar",
            (
                "rolling beta of the second-engine layer's bar P&L on the condors' "
                "(negative: the hedge works)"
            ),
        ),
        (
            "hedge.quality_correlation",
            "correlation",
            "-1..+1",
            "rolling correlation of the layer's bar P&L with the condors'",
        ),
        ("hedge.quality_bars", "bars", "bars", "bar P&Ls in the rolling window"),
        (
            "hedge.carry_usd_per_day",
            "hedge_carry_usd_per_day",
            "$ per calendar day",
            (
                "the layer's carry: VIX futures' roll-down plus options' theta and roll "
                "(negative: a cost)"
            ),
        ),
        (
            "hedge.condor_theta_usd_per_day",
            "condor_theta_usd_per_day",
            "$ per calendar day",
            "the iron condors' theta",
        ),
        (
            "hedge.carry_ratio_pct",
            "carry_ratio_pct",
            "%",
            "share of the condors' theta the layer's carry costs",
        ),
    )
    return tuple(
        Variable(name, N, unit, meaning, _getter(_quality, field))
        for name, field, unit, meaning in rows
    )


def _getter(pick: Callable[[Snapshot, str], float], name: str) -> Callable[[Snapshot], Value]:
    return lambda s: pick(s, name)


BOOK_VARIABLES: tuple[Variable[Snapshot], ...] = (
    Variable("spx", N, "index points", "SPX index", lambda s: s.spx),
    Variable("vix", N, "index points", "VIX index", lambda s: s.vix),
    Variable(
        "ad_nyse",
        N,
        "issues",
        "NYSE net advances (advancing minus declining issues)",
        lambda s: s.ad_nyse,
    ),
    *_risk_rows(BOOK_SCOPE),
    Variable(
        "book.model_priced_legs",
        N,
        "legs",
        "legs priced from a model volatility (no valid two-sided quote)",
        lambda s: float(s.book.model_priced_legs),
    ),
    Variable(
        "book.unvalued_legs",
        N,
        "legs",
        "legs that could not be valued at all",
        lambda s: float(s.book.unvalued_legs),
    ),
    *_view_rows(TERM),
    Variable(
        "book.account_size_usd",
        N,
        "$",
        "account size from the portfolio file (NaN when not given: % limits never fire)",
        lambda s: s.book.account_size_usd,
    ),
    Variable(
        "book.gamma_pct_of_account",
        N,
        "% of account per 1% SPX move",
        "book gamma ($ of delta per 1% SPX move) as a percentage of the account",
        lambda s: s.book.pct_of_account(s.book.total.gamma_usd_per_pct),
    ),
    Variable(
        "book.vega_pct_of_account",
        N,
        "% of account per SPX vol point",
        "book SPX-option vega as a percentage of the account",
        lambda s: s.book.pct_of_account(s.book.total.vega_usd_per_vol_point),
    ),
    Variable(
        "book.delta_change_15m_usd_per_pct",
        N,
        "$ per 1% SPX move",
        "book delta now minus 15 minutes of session time ago (NaN in the first 15 minutes)",
        lambda s: s.delta_change_15m_usd_per_pct,
    ),
    Variable(
        "book.delta_change_15m_pct_of_account",
        N,
        "% of account per 1% SPX move",
        "the 15-minute change of book delta as a percentage of the account",
        lambda s: s.book.pct_of_account(s.delta_change_15m_usd_per_pct),
    ),
    Variable(
        "scenario.book_worst_usd",
        N,
        "$",
        "book P&L in the worst cell of the scenario grid",
        lambda s: _worst(s, "book")[0],
    ),
    Variable(
        "scenario.book_worst_spx_move_pct",
        N,
        "% SPX move",
        "SPX move of the book's worst scenario cell",
        lambda s: _worst(s, "book")[1],
    ),
    Variable(
        "scenario.book_worst_vol_shock_points",
        N,
        "SPX vol points",
        "vol shock of the book's worst scenario cell",
        lambda s: _worst(s, "book")[2],
    ),
    Variable(
        "scenario.condor_worst_usd",
        N,
        "$",
        "iron condors' P&L in their worst scenario cell",
        lambda s: _worst(s, "condor")[0],
    ),
    *_view_rows(HEDGE),
    *(row for series in SERIES for row in _indicator_rows(series)),
    *_breadth_rows(),
    *_quality_rows(),
    Variable(
        "events.next_kind",
        S,
        "",
        "kind of the next scheduled event: fomc, cpi, ppi ('' when the calendar runs out)",
        lambda s: s.events.next_kind,
    ),
    Variable(
        "events.hours_to_next",
        N,
        "hours",
        "hours to the next scheduled event (FOMC 14:00 ET, CPI and PPI 08:30 ET)",
        lambda s: s.events.hours_to_next,
    ),
    Variable(
        "events.hours_to_next_fomc",
        N,
        "hours",
        "hours to the next FOMC decision",
        lambda s: s.events.hours_to_next_fomc,
    ),
    Variable(
        "events.today",
        B,
        "true/false",
        "a scheduled event falls on today's New York date",
        lambda s: s.events.event_today,
    ),
    Variable(
        "market.open",
        B,
        "true/false",
        "the SPX options session is open (09:30-16:15 New York, 13:15 on early-close days)",
        lambda s: s.market.open,
    ),
    Variable(
        "market.minutes_to_close",
        N,
        "minutes",
        "minutes to the session's close (NaN while closed)",
        lambda s: s.market.minutes_to_close,
    ),
    Variable(
        "market.minutes_to_open",
        N,
        "minutes",
        "minutes to the next session's open (0 while open)",
        lambda s: s.market.minutes_to_open,
    ),
    Variable(
        "market.early_close",
        B,
        "true/false",
        "today's session closes early (13:15 New York)",
        lambda s: s.market.early_close,
    ),
    *_view_rows(FEED),
    Variable(
        "journal.available",
        B,
        "true/false",
        "the journal takes writes (false: alerts go out, held in memory until it does)",
        lambda s: s.storage.available,
    ),
    Variable(
        "journal.free_mib",
        N,
        "MiB",
        "free space of the state directory's filesystem (NaN without a journal)",
        lambda s: s.storage.free_bytes / MIB,
    ),
    Variable(
        "journal.held_transitions",
        N,
        "transitions",
        "alert transitions held in memory because the journal could not take them",
        lambda s: float(s.storage.held_transitions),
    ),
)


def _worst(snapshot: Snapshot, layer: str) -> tuple[float, float, float]:
    grid = snapshot.scenarios
    return grid.worst(grid.book_usd if layer == "book" else grid.condor_usd)


STRATEGY_VARIABLES: tuple[Variable[StrategyRisk], ...] = (
    Variable("strategy.name", S, "text", "strategy name from the portfolio", lambda s: s.name),
    Variable("strategy.kind", S, "text", "iron_condor or second_engine", lambda s: s.kind.value),
    *_risk_rows(STRATEGY_SCOPE),
    Variable(
        "strategy.model_priced_legs",
        N,
        "legs",
        "legs priced from a model volatility",
        lambda s: float(s.model_priced_legs),
    ),
)

SHORT_LEG_VARIABLES: tuple[Variable[LegRisk], ...] = (
    Variable(
        "leg.contract",
        S,
        "text",
        "contract id, e.g. 'SPX 20260417 P6300'",
        lambda x: x.leg.instrument.id,
    ),
    Variable(
        "leg.right",
        S,
        "text",
        "'put' or 'call'",
        lambda x: "call" if x.leg.instrument.is_call else "put",
    ),
    Variable("leg.strike", N, "index points", "strike", lambda x: x.leg.instrument.strike or 0.0),
    Variable(
        "leg.quantity",
        N,
        "contracts",
        "position, negative for short",
        lambda x: float(x.leg.quantity),
    ),
    Variable(
        "leg.delta",
        N,
        "per contract (dV/dF)",
        "signed Black-76 delta of one option",
        lambda x: x.value.delta,
    ),
    Variable(
        "leg.abs_delta",
        N,
        "per contract (dV/dF)",
        "absolute delta of one option",
        lambda x: abs(x.value.delta),
    ),
    Variable(
        "leg.iv_pct",
        N,
        "vol points (%)",
        "implied volatility used for the greeks",
        lambda x: x.value.iv * 100.0,
    ),
    Variable(
        "leg.model_priced",
        B,
        "true/false",
        "no valid two-sided quote: model volatility used",
        lambda x: x.value.model_priced,
    ),
    Variable(
        "leg.data_delayed",
        B,
        "true/false",
        "the leg's quotes come delayed from the broker ([feed] delayed_data_minutes behind)",
        lambda x: x.data_delayed,
    ),
    Variable(
        "leg.days_to_expiry",
        N,
        "calendar days",
        "time to settlement",
        lambda x: x.value.years * 365.0,
    ),
    Variable(
        "leg.underlying",
        N,
        "index points",
        "forward of the leg's expiry",
        lambda x: x.value.underlying_price,
    ),
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
