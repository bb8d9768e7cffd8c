"""The variables rules can read, one table row each: name, type, unit, meaning and getter.

The risk rows of each scope come from the table of measures (``monitor.measures``); the
others are written here. docs/rules.md's tables are generated from these rows (``make docs``)
and a test keeps the two in step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from monitor.measures import BOOK_SCOPE, LEG_SCOPE, RISK_MEASURES, STRATEGY_SCOPE, RiskScope
from monitor.portfolio.book import LegRisk, StrategyRisk
from monitor.portfolio.model import StrategyKind
from monitor.rules.expressions import Value, VarType
from monitor.signals.board import SERIES
from monitor.signals.hedge import HedgeView
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


def _hedge(snapshot: Snapshot, pick: Callable[[HedgeView], float]) -> float:
    # A book that knows nothing has no band to be in and nothing to add: NaN, not 0.
    return pick(snapshot.hedge) if snapshot.hedge.known else math.nan


def _spread(snapshot: Snapshot, name: str) -> float:
    spread = snapshot.hedge.spread
    return float(getattr(spread, name)) if spread is not None else math.nan


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
    Variable("term.vx1", N, "VIX points", "front-month VIX future (mid)", lambda s: s.term.vx1),
    Variable("term.vx2", N, "VIX points", "second-month VIX future (mid)", lambda s: s.term.vx2),
    Variable(
        "term.vx1_minus_vx2",
        N,
        "VIX points",
        "VX1 - VX2; positive is backwardation",
        lambda s: s.term.vx1_minus_vx2,
    ),
    Variable(
        "term.vx1_vx2_ratio",
        N,
        "ratio",
        "VX1 / VX2; above 1 is backwardation",
        lambda s: s.term.vx1_vx2_ratio,
    ),
    Variable(
        "term.vix_minus_vx1", N, "VIX points", "VIX - VX1 basis", lambda s: s.term.vix_minus_vx1
    ),
    Variable(
        "term.inverted", B, "true/false", "VX1 above VX2 (backwardation)", lambda s: s.term.inverted
    ),
    Variable(
        "term.vx1_days", N, "calendar days", "days to VX1 settlement", lambda s: s.term.vx1_days
    ),
    Variable(
        "term.vx2_days", N, "calendar days", "days to VX2 settlement", lambda s: s.term.vx2_days
    ),
    Variable("term.vx3", N, "VIX points", "third-month VIX future (mid)", lambda s: s.term.vx3),
    Variable("term.vx4", N, "VIX points", "fourth-month VIX future (mid)", lambda s: s.term.vx4),
    Variable(
        "term.contango", B, "true/false", "VX2 above VX1 (contango)", lambda s: s.term.contango
    ),
    Variable(
        "term.constant_maturity_30d",
        N,
        "VIX points",
        "VX1 and VX2 blended to a 30-day tenor by days to settlement",
        lambda s: s.term.constant_maturity_30d,
    ),
    Variable(
        "term.vx1_roll_points_per_day",
        N,
        "VIX points per day",
        "(VX1 - VIX) / days to VX1: its daily drift to spot if the curve holds",
        lambda s: s.term.vx1_roll_points_per_day,
    ),
    Variable(
        "term.vx2_roll_points_per_day",
        N,
        "VIX points per day",
        "(VX2 - VX1) / (days to VX2 - days to VX1): VX2's daily roll-down",
        lambda s: s.term.vx2_roll_points_per_day,
    ),
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
    Variable(
        "hedge.ratio_pct",
        N,
        "%",
        "second-engine gain / iron condors' loss for a +1 SPX-vol-point shock (NaN: no loss)",
        lambda s: _hedge(s, lambda h: h.ratio_pct),
    ),
    Variable(
        "hedge.band_low_pct",
        N,
        "%",
        "lower edge of the hedge-ratio band ([hedge] config)",
        lambda s: _hedge(s, lambda h: h.band_low_pct),
    ),
    Variable(
        "hedge.band_high_pct",
        N,
        "%",
        "upper edge of the hedge-ratio band ([hedge] config)",
        lambda s: _hedge(s, lambda h: h.band_high_pct),
    ),
    Variable(
        "hedge.condor_loss_usd_per_vol_point",
        N,
        "$ per SPX vol point",
        "what the iron condors lose for the +1 vol-point shock (positive: a loss)",
        lambda s: _hedge(s, lambda h: h.condor_loss_usd_per_point),
    ),
    Variable(
        "hedge.gain_usd_per_vol_point",
        N,
        "$ per SPX vol point",
        "what the second-engine layer gains for the same shock",
        lambda s: _hedge(s, lambda h: h.hedge_gain_usd_per_point),
    ),
    Variable(
        "hedge.vx2_futures_to_add",
        N,
        "contracts",
        "VX2 futures that bring the ratio to the band's middle (negative: fewer needed)",
        lambda s: _hedge(s, lambda h: float(h.vx2_futures_to_add)),
    ),
    Variable(
        "hedge.call_spreads_to_add",
        N,
        "spreads",
        "or: front-month VIX call spreads (the one below) that do the same",
        lambda s: _hedge(s, lambda h: float(h.call_spreads_to_add)),
    ),
    Variable(
        "hedge.spread_long_strike",
        N,
        "VIX points",
        "suggested spread's long call strike (quoted, 3-5 points above VX1)",
        lambda s: _spread(s, "long_strike"),
    ),
    Variable(
        "hedge.spread_short_strike",
        N,
        "VIX points",
        "suggested spread's short call strike (quoted, about 5 above the long)",
        lambda s: _spread(s, "short_strike"),
    ),
    Variable(
        "hedge.spread_debit_usd",
        N,
        "$ per spread",
        "suggested spread's debit, mid to mid",
        lambda s: _spread(s, "debit_usd"),
    ),
    Variable(
        "hedge.spread_max_gain_usd",
        N,
        "$ per spread",
        "suggested spread's maximum gain (width x 100 - debit)",
        lambda s: _spread(s, "max_gain_usd"),
    ),
    Variable(
        "hedge.spread_break_even",
        N,
        "VIX points",
        "suggested spread's break-even at expiry (long strike + debit)",
        lambda s: _spread(s, "break_even"),
    ),
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
    Variable(
        "feed.data_age_seconds",
        N,
        "seconds",
        (
            "time since the last market event (evaluated on a timer between ticks); before the "
            "first one, since a live feed asked for market data (NaN before it asked)"
        ),
        lambda s: s.feed.data_age_seconds,
    ),
    Variable(
        "feed.bad_lines",
        N,
        "lines",
        "replay lines rejected so far",
        lambda s: float(s.feed.bad_lines),
    ),
    Variable(
        "feed.crossed_quotes",
        N,
        "quotes",
        "crossed quotes seen so far",
        lambda s: float(s.feed.crossed_quotes),
    ),
    Variable(
        "feed.zero_bid_quotes",
        N,
        "quotes",
        "zero-bid quotes seen so far",
        lambda s: float(s.feed.zero_bid_quotes),
    ),
    Variable(
        "feed.one_sided_quotes",
        N,
        "quotes",
        "quotes missing a side seen so far",
        lambda s: float(s.feed.one_sided_quotes),
    ),
    Variable(
        "feed.oldest_leg_quote_age_seconds",
        N,
        "seconds",
        "age of the book leg quoted longest ago, a delayed quote's delay included (inf until "
        "every leg has been quoted; NaN before the first market event)",
        lambda s: s.feed.oldest_leg_quote_age_seconds,
    ),
    Variable(
        "feed.connected",
        B,
        "",
        "connected to the broker and the broker to its servers (always true in a replay)",
        lambda s: s.feed.connected,
    ),
    Variable(
        "feed.never_connected",
        B,
        "",
        "a live feed that has not reached the broker once since the monitor started "
        "(false in a replay); the book is empty meanwhile, every greek NaN",
        lambda s: s.feed.never_connected,
    ),
    Variable(
        "feed.failed_connection_attempts",
        N,
        "attempts",
        "connection attempts to the broker failed since the last connection (0 in a replay)",
        lambda s: float(s.feed.failed_connection_attempts),
    ),
    Variable(
        "feed.denied_instruments",
        N,
        "instruments",
        "instruments refused market data: with the fallback to delayed data they are priced "
        "from delayed quotes, without any data their legs are model-priced",
        lambda s: float(s.feed.denied_instruments),
    ),
    Variable(
        "feed.delayed_instruments",
        N,
        "instruments",
        "instruments the broker quotes delayed (its market data type 3 or 4, or IB's 10167; "
        "0 in a replay)",
        lambda s: float(len(s.feed.delayed_instruments)),
    ),
    Variable(
        "feed.rejected_ticks",
        N,
        "ticks",
        "prices and index values outside the sanity bounds so far (counted, never used)",
        lambda s: float(s.feed.rejected_ticks),
    ),
    Variable(
        "feed.failed_batches",
        N,
        "batches",
        "batches whose snapshot raised so far (the rules ran on the last good book)",
        lambda s: float(s.feed.failed_batches),
    ),
    Variable(
        "feed.failed_batches_in_row",
        N,
        "batches",
        "failed batches since the last one that gave a snapshot",
        lambda s: float(s.feed.failed_batches_in_row),
    ),
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


def book_values(snapshot: Snapshot, names: Collection[str] | None = None) -> dict[str, Value]:
    """Book variables; only ``names`` when given (the ones the loaded rules read)."""
    return {v.name: v.get(snapshot) for v in BOOK_VARIABLES if names is None or v.name in names}


def strategy_values(
    strategy: StrategyRisk, names: Collection[str] | None = None
) -> dict[str, Value]:
    return {v.name: v.get(strategy) for v in STRATEGY_VARIABLES if names is None or v.name in names}


def short_legs(snapshot: Snapshot) -> list[LegRisk]:
    """Short option legs of the iron condors: the strikes whose delta the trader watches."""
    condors = {s.name for s in snapshot.book.strategies if s.kind is StrategyKind.IRON_CONDOR}
    return [
        lr
        for lr in snapshot.book.legs
        if lr.leg.strategy in condors and lr.leg.is_short and lr.leg.instrument.is_option
    ]


def leg_values(leg: LegRisk, names: Collection[str] | None = None) -> dict[str, Value]:
    return {v.name: v.get(leg) for v in SHORT_LEG_VARIABLES if names is None or v.name in names}
