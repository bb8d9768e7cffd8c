"""The tables of readings of the rest of the snapshot: the indexes, the book's counts and
account shares, the scenario grid's worst cells, the bar signals (indicators per series,
breadth, hedge quality), the scheduled events, the session and the journal's storage; and
the rows of each strategy and each leg beside their risk.

Each row is a ``Reading`` of ``monitor.measures``, as the term structure's, the hedge's and
the feed's are; ``VIEWS`` lists every table in the order the rule variables and the docs
show them. To show a new field of one of these views, add its row here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from monitor.domain.account import AccountView
from monitor.domain.health import StorageHealth
from monitor.market.hours import MarketView
from monitor.measures import FEED, HEDGE, TERM, Family, Reading, Scalar, View
from monitor.portfolio.book import LegRisk, StrategyRisk
from monitor.portfolio.distance import (
    distance_pct,
    distance_points,
    distance_std_devs,
    in_the_money,
    inside_expected_move,
)
from monitor.portfolio.scenarios import ScenarioGrid
from monitor.portfolio.stress import DOWN5, Horizon, StressView
from monitor.pricing.smiles import ChainFit, FitStatus, SmileView
from monitor.rules.expressions import VarType
from monitor.signals.board import SERIES
from monitor.signals.breadth import BreadthView
from monitor.signals.events import EventView
from monitor.signals.indicators import IndicatorView
from monitor.signals.quality import QualityView
from monitor.snapshot import Snapshot

NUMBER, FLAG, TEXT = VarType.NUMBER, VarType.BOOL, VarType.STRING
MIB = 1024.0 * 1024.0  # bytes in a mebibyte

# The indexes: top-level numbers of the snapshot.
_INDEX: Family[Snapshot] = Family(
    "condor_index_value", "Index value (points; issues for AD-NYSE)", ("index",)
)

INDEX: View[Snapshot] = View(
    "index",
    "",
    (
        Reading(
            "spx",
            NUMBER,
            "index points",
            "SPX index",
            lambda s: s.spx,
            "spx",
            _INDEX,
            ("SPX",),
            "spx",
        ),
        Reading(
            "vix",
            NUMBER,
            "index points",
            "VIX index",
            lambda s: s.vix,
            "vix",
            _INDEX,
            ("VIX",),
            "vix",
        ),
        Reading(
            "ad_nyse",
            NUMBER,
            "issues",
            "NYSE net advances (advancing minus declining issues)",
            lambda s: s.ad_nyse,
            "ad_nyse",
            _INDEX,
            ("AD-NYSE",),
            "ad_nyse",
        ),
    ),
)


def _book(
    key: str,
    name: str,
    unit: str,
    meaning: str,
    get: Callable[[Snapshot], Scalar],
    *,
    state: bool = False,
) -> Reading[Snapshot]:
    """A reading of the book beyond its risk: ``key`` the snapshot's field it reads, its
    variable ``book.<name>``, its /state key ``<name>`` if ``state``."""
    return Reading(key, NUMBER, unit, meaning, get, f"book.{name}", state=name if state else None)


BOOK: View[Snapshot] = View(
    "book",
    "",
    (
        _book(
            "book.model_priced_legs",
            "model_priced_legs",
            "legs",
            "legs priced from a model volatility (no valid two-sided quote)",
            lambda s: float(s.book.model_priced_legs),
        ),
        _book(
            "book.unvalued_legs",
            "unvalued_legs",
            "legs",
            "legs that could not be valued at all",
            lambda s: float(s.book.unvalued_legs),
        ),
        _book(
            "book.account_size_usd",
            "account_size_usd",
            "$",
            "account size from the portfolio file (NaN when not given: % limits never fire)",
            lambda s: s.book.account_size_usd,
            state=True,
        ),
        _book(
            "book.total.gamma_usd_per_pct",
            "gamma_pct_of_account",
            "% of account per 1% SPX move",
            "book gamma ($ of delta per 1% SPX move) as a percentage of the account",
            lambda s: s.book.pct_of_account(s.book.total.gamma_usd_per_pct),
        ),
        _book(
            "book.total.vega_usd_per_vol_point",
            "vega_pct_of_account",
            "% of account per SPX vol point",
            "book SPX-option vega as a percentage of the account",
            lambda s: s.book.pct_of_account(s.book.total.vega_usd_per_vol_point),
        ),
        _book(
            "delta_change_15m_usd_per_pct",
            "delta_change_15m_usd_per_pct",
            "$ per 1% SPX move",
            "book delta now minus 15 minutes of session time ago (NaN in the first 15 minutes)",
            lambda s: s.delta_change_15m_usd_per_pct,
        ),
        _book(
            "delta_change_15m_usd_per_pct",
            "delta_change_15m_pct_of_account",
            "% of account per 1% SPX move",
            "the 15-minute change of book delta as a percentage of the account",
            lambda s: s.book.pct_of_account(s.delta_change_15m_usd_per_pct),
        ),
    ),
)


def _smile(key: str, unit: str, meaning: str, *, count: bool = False) -> Reading[SmileView]:
    """A reading over the smiles the book is valued off: variable ``smile.<key>``, /state
    ``smile.<key>`` (NaN to rules with [pricing] smile = "quotes")."""
    return Reading(
        key, NUMBER, unit, meaning, attrgetter(key), f"smile.{key}", state=key, count=count
    )


SMILE: View[SmileView] = View(
    "smile",
    "smile",
    (
        Reading(
            "enabled",
            FLAG,
            "",
            'the book is valued off fitted smiles ([pricing] smile = "svi")',
            attrgetter("enabled"),
            "smile.enabled",
            state="enabled",
        ),
        _smile(
            "failed_expiries",
            "expiries",
            "option expiries of the book with no fitted smile in use (their legs at their own "
            "quotes' vols)",
            count=True,
        ),
        _smile(
            "stale_expiries",
            "expiries",
            "option expiries valued off an earlier fit because the latest refit failed "
            "(for at most smile_max_fit_age_seconds)",
            count=True,
        ),
        Reading(
            "unfitted",
            TEXT,
            "text",
            "the expiries without a current fit, comma-separated ('SPX 2026-04-17, VIX "
            "2026-03-18'; '' when every one has one)",
            attrgetter("unfitted"),
            "smile.unfitted_expiries",
            state="unfitted_expiries",
        ),
        _smile(
            "oldest_fit_age_seconds",
            "seconds",
            "age of the newest quote of the oldest fit in use (NaN without one)",
        ),
        _smile(
            "worst_rmse_vol_points",
            "vol points",
            "largest root-mean-square distance of a fit in use from its quotes' own vols",
        ),
        _smile(
            "fewest_strikes",
            "strikes",
            "fewest quoted strikes any fit in use was made from",
            count=True,
        ),
        _smile(
            "butterfly_arbitrage_expiries",
            "expiries",
            "fits in use whose density is negative somewhere on their quoted range (Durrleman's "
            "condition)",
            count=True,
        ),
    ),
    lambda s: s.smile.enabled,
)


def _fit(
    key: str, unit: str, meaning: str, get: Callable[[ChainFit], Scalar], *, metric: str, text: str
) -> Reading[ChainFit]:
    """A reading of one expiry's smile: /state ``smile.expiries[<name>].<key>`` and the family
    ``condor_smile_<metric>`` labelled by expiry (no rule variable: rules read the book's)."""
    return Reading(
        key,
        NUMBER,
        unit,
        meaning,
        get,
        None,
        Family(f"condor_smile_{metric}", text, ("expiry",)),
        state=key,
    )


# Each option expiry's fit, labelled "SPXW 2026-04-17" (class and expiry).
SMILE_FIT_READINGS: tuple[Reading[ChainFit], ...] = (
    Reading(
        "status",
        TEXT,
        "",
        "fitted, stale or failed",
        lambda c: c.status.value,
        None,
        state="status",
    ),
    Reading(
        "model",
        TEXT,
        "",
        "svi, quadratic (three or four strikes) or '' (no fit in use)",
        lambda c: c.model,
        None,
        state="model",
    ),
    Reading(
        "reason",
        TEXT,
        "",
        "outcome of the latest refit",
        lambda c: c.reason.value,
        None,
        state="reason",
    ),
    _fit(
        "in_use",
        "flag",
        "a fit (current or stale) values the expiry's options",
        lambda c: float(c.in_use),
        metric="fit_in_use",
        text="1 while a fitted smile values the expiry's options (0: their quotes' own vols)",
    ),
    _fit(
        "stale",
        "flag",
        "the latest refit failed and an earlier fit is in use",
        lambda c: float(c.status is FitStatus.STALE),
        metric="fit_stale",
        text="1 while the expiry is valued off an earlier fit because the latest refit failed",
    ),
    _fit(
        "strikes_used",
        "strikes",
        "quoted strikes the fit in use was made from",
        lambda c: float(c.strikes_used),
        metric="fit_strikes",
        text="Quoted strikes the expiry's fit in use was made from",
    ),
    _fit(
        "rmse_vol_points",
        "vol points",
        "root-mean-square distance of the fit from its quotes' own vols",
        lambda c: c.rmse_vol_points,
        metric="fit_rmse_vol_points",
        text="Root-mean-square distance of the fitted smile from the quotes' own vols, vol points",
    ),
    _fit(
        "age_seconds",
        "seconds",
        "since the newest quote of the fit in use",
        lambda c: c.age_seconds,
        metric="fit_age_seconds",
        text="Seconds since the newest quote of the expiry's fit in use",
    ),
    _fit(
        "atm_vol_pct",
        "%",
        "the fit's vol at the forward",
        lambda c: c.atm_vol_pct,
        metric="atm_vol_percent",
        text="Fitted implied vol at the forward (log-moneyness 0), percent",
    ),
    _fit(
        "butterfly_free",
        "flag",
        "the fit's density is non-negative on its quoted range",
        lambda c: float(c.butterfly_free),
        metric="fit_butterfly_free",
        text="1 while the fit meets Durrleman's condition on its quoted range (no butterfly)",
    ),
    _fit(
        "smoothed",
        "flag",
        "the fit blended the previous one (0: made from the quotes alone, e.g. after a move)",
        lambda c: float(c.smoothed),
        metric="fit_smoothed",
        text="1 when the latest fit blended the previous one (0: made from the quotes alone)",
    ),
)


def _worst(layer: str, part: int) -> Callable[[ScenarioGrid], Scalar]:
    def read(grid: ScenarioGrid) -> Scalar:
        cells = grid.book_usd if layer == "book" else grid.condor_usd
        return grid.worst(cells)[part]

    return read


def _scenario(key: str, unit: str, meaning: str, layer: str, part: int) -> Reading[ScenarioGrid]:
    """A worst cell of the grid: its variable ``scenario.<key>`` and /state key ``<key>``.
    The grid's own cells are the family ``condor_scenario_pnl_dollars`` (``metrics.py``)."""
    return Reading(key, NUMBER, unit, meaning, _worst(layer, part), f"scenario.{key}", state=key)


SCENARIOS: View[ScenarioGrid] = View(
    "scenario",
    "scenarios",
    (
        _scenario(
            "book_worst_usd", "$", "book P&L in the worst cell of the scenario grid", "book", 0
        ),
        _scenario(
            "book_worst_spx_move_pct",
            "% SPX move",
            "SPX move of the book's worst scenario cell",
            "book",
            1,
        ),
        _scenario(
            "book_worst_vol_shock_points",
            "SPX vol points",
            "vol shock of the book's worst scenario cell",
            "book",
            2,
        ),
        _scenario(
            "condor_worst_usd", "$", "iron condors' P&L in their worst scenario cell", "condor", 0
        ),
    ),
)


def _stress(
    key: str, unit: str, meaning: str, get: Callable[[StressView], Scalar]
) -> Reading[StressView]:
    """A stress reading: variable ``stress.<key>``, /state ``stress.<key>``; every point's
    P&L and coverage are the families ``condor_stress_*`` (``metrics.py``)."""
    return Reading(key, NUMBER, unit, meaning, get, f"stress.{key}", state=key)


_NOW_5 = "SPX -5 % now, VIX and SPX vols moved with it (docs/rules.md, 'Stress')"
_CLOSE_5 = "SPX -5 % by the next close, with time decay to it"

STRESS: View[StressView] = View(
    "stress",
    "stress",
    (
        _stress(
            "vix_down5",
            "VIX points",
            f"spot VIX the stress assumes at {_NOW_5}",
            lambda v: v.at(DOWN5).vix_after,
        ),
        _stress(
            "condor_down5_usd",
            "$",
            f"iron condors' P&L at {_NOW_5}",
            lambda v: v.at(DOWN5).condor_usd,
        ),
        _stress(
            "hedge_down5_usd",
            "$",
            f"second engine's (VIX layer's) P&L at {_NOW_5}",
            lambda v: v.at(DOWN5).hedge_usd,
        ),
        _stress("book_down5_usd", "$", f"book P&L at {_NOW_5}", lambda v: v.at(DOWN5).book_usd),
        _stress(
            "book_down5_pct_of_account",
            "% of account",
            "stress.book_down5_usd as a % of the portfolio's account_size_usd (NaN without one)",
            lambda v: v.pct_of_account(v.at(DOWN5).book_usd),
        ),
        _stress(
            "coverage_down5",
            "ratio",
            "hedge coverage at SPX -5 % now: the VIX layer's gain over the condors' loss (0.4: "
            "it gives back 40 % of the loss; NaN when the condors do not lose)",
            lambda v: v.at(DOWN5).coverage,
        ),
        _stress(
            "book_down5_close_usd",
            "$",
            f"book P&L at {_CLOSE_5}",
            lambda v: v.at(DOWN5, Horizon.CLOSE).book_usd,
        ),
        _stress(
            "coverage_down5_close",
            "ratio",
            f"hedge coverage at {_CLOSE_5}",
            lambda v: v.at(DOWN5, Horizon.CLOSE).coverage,
        ),
        _stress(
            "worst_book_usd",
            "$",
            "book P&L at its worst stress move now ([stress] spx_moves_pct)",
            lambda v: v.worst().book_usd,
        ),
        _stress(
            "worst_spx_move_pct",
            "% SPX move",
            "the SPX move of stress.worst_book_usd",
            lambda v: v.worst().spx_move_pct,
        ),
        _stress(
            "hours_to_close",
            "hours",
            "time to the close the 'close' horizon is valued at (the next SPX close)",
            lambda v: v.hours_to_close,
        ),
    ),
)

_SERIES_TEXT = {
    "spx": ("SPX", "index points"),
    "vix": ("spot VIX", "VIX points"),
    "vx1": ("VX1 (front-month future mid)", "VIX points"),
    "vx2": ("VX2 (second-month future mid)", "VIX points"),
}
_BARS = "on the signal bars ([signals] bar_minutes, default 5)"
_WHERE = "on the signal bars"
_MACD: Family[IndicatorView] = Family(
    "condor_indicator_macd", f"MACD (12, 26, 9) line, the series' points, {_WHERE}", ("series",)
)
_MACD_SIGNAL: Family[IndicatorView] = Family(
    "condor_indicator_macd_signal", f"MACD signal line, the series' points, {_WHERE}", ("series",)
)
_MACD_HISTOGRAM: Family[IndicatorView] = Family(
    "condor_indicator_macd_histogram", f"MACD - signal, the series' points, {_WHERE}", ("series",)
)
_MACD_CROSS: Family[IndicatorView] = Family(
    "condor_indicator_macd_cross",
    f"+1/-1 on the bar MACD crossed above/below its signal, else 0, {_WHERE}",
    ("series",),
)
_RSI: Family[IndicatorView] = Family(
    "condor_indicator_rsi", f"RSI (14, Wilder), 0-100, {_WHERE}", ("series",)
)


def _signals_known(snapshot: Snapshot) -> bool:
    return snapshot.signals.known  # a book that knows nothing: no signal, not "no cross"


def _indicators(series: str) -> View[IndicatorView]:
    """One series' indicators: variables ``signals.<series>_<name>``, samples labelled with
    the series, /state ``signals.indicators.<series>``."""
    what, unit = _SERIES_TEXT[series]
    p, labels = f"signals.{series}_", (series,)

    def row(
        key: str,
        name: str,
        unit: str,
        meaning: str,
        get: Callable[[IndicatorView], Scalar],
        *,
        family: Family[IndicatorView] | None = None,
        count: bool = False,
    ) -> Reading[IndicatorView]:
        return Reading(
            key,
            NUMBER,
            unit,
            meaning,
            get,
            p + name,
            family,
            labels if family else (),
            key,
            count,
        )

    return View(
        f"signals.{series}",
        f"signals.indicators.{series}",
        (
            row(
                "macd",
                "macd",
                unit,
                f"MACD (12, 26, 9) of {what} {_BARS}",
                lambda i: i.macd,
                family=_MACD,
            ),
            row(
                "signal",
                "macd_signal",
                unit,
                "its signal line (EMA9 of MACD)",
                lambda i: i.signal,
                family=_MACD_SIGNAL,
            ),
            row(
                "histogram",
                "macd_histogram",
                unit,
                "MACD - signal",
                lambda i: i.histogram,
                family=_MACD_HISTOGRAM,
            ),
            row(
                "cross",
                "macd_cross",
                "-1/0/+1",
                "+1 if MACD crossed above its signal on the last completed bar, -1 below, else 0",
                lambda i: float(i.cross),
                family=_MACD_CROSS,
                count=True,
            ),
            row(
                "bars_since_cross",
                "bars_since_cross",
                "bars",
                "completed bars since the last MACD cross (NaN before one)",
                lambda i: i.bars_since_cross,
            ),
            row("rsi", "rsi", "0-100", f"RSI (14, Wilder) of {what}", lambda i: i.rsi, family=_RSI),
        ),
        _signals_known,
        lambda s: s.signals.indicator(series),
    )


INDICATORS: tuple[View[IndicatorView], ...] = tuple(_indicators(s) for s in SERIES)


def _breadth(
    key: str,
    unit: str,
    meaning: str,
    get: Callable[[BreadthView], Scalar],
    family: Family[BreadthView] | None = None,
) -> Reading[BreadthView]:
    return Reading(key, NUMBER, unit, meaning, get, f"breadth.{key}", family, (), key)


BREADTH: View[BreadthView] = View(
    "breadth",
    "signals.breadth",
    (
        _breadth(
            "ad_line",
            "issues",
            "NYSE net advances since the open (the intraday A/D line)",
            lambda b: b.ad_line,
        ),
        _breadth(
            "ad_change",
            "issues",
            "A/D line change over the breadth lookback",
            lambda b: b.ad_change,
            Family(
                "condor_breadth_ad_change_issues",
                "Change of the NYSE A/D line over the breadth lookback, issues",
            ),
        ),
        _breadth(
            "spx_change_pct",
            "%",
            "SPX change over the breadth lookback",
            lambda b: b.spx_change_pct,
            Family(
                "condor_breadth_spx_change_percent",
                "SPX change over the breadth lookback, percent",
            ),
        ),
        _breadth(
            "divergence",
            "-1/0/+1",
            (
                "-1: SPX at a lookback high while A/D fell by the threshold; +1: at a low "
                "while A/D rose; else 0 (NaN while warming up)"
            ),
            lambda b: b.divergence,
            Family(
                "condor_breadth_divergence",
                "A/D divergence against SPX: -1 bearish, +1 bullish, 0 none",
            ),
        ),
        _breadth(
            "lookback_minutes", "minutes", "the breadth lookback", lambda b: b.lookback_minutes
        ),
    ),
    _signals_known,
)

_CARRY: Family[QualityView] = Family(
    "condor_carry_dollars_per_day",
    "Carry, dollars per calendar day: the layer's roll-down and decay (negative: a cost), "
    "and the condors' theta",
    ("layer",),
)


def _quality(
    key: str,
    variable: str,
    unit: str,
    meaning: str,
    get: Callable[[QualityView], Scalar],
    *,
    family: Family[QualityView] | None = None,
    labels: tuple[str, ...] = (),
    count: bool = False,
) -> Reading[QualityView]:
    """A reading of the hedge's quality and carry: variable ``hedge.<variable>``, /state
    ``signals.hedge_quality.<key>``."""
    return Reading(key, NUMBER, unit, meaning, get, f"hedge.{variable}", family, labels, key, count)


QUALITY: View[QualityView] = View(
    "hedge quality",
    "signals.quality",
    (
        _quality(
            "beta",
            "quality_beta",
            "$ of hedge P&L per $ of condor P&L per bar",
            (
                "rolling beta of the second-engine layer's bar P&L on the condors', through "
                "the origin (negative: the hedge works)"
            ),
            lambda q: q.beta,
            family=Family(
                "condor_hedge_quality_beta",
                "Rolling beta of the second-engine layer's bar P&L on the condors', through "
                "the origin (negative: it hedges)",
            ),
        ),
        _quality(
            "correlation",
            "quality_correlation",
            "-1..+1",
            "rolling correlation of the layer's bar P&L with the condors', about zero",
            lambda q: q.correlation,
            family=Family(
                "condor_hedge_quality_correlation",
                "Rolling correlation of the layer's bar P&L with the condors', about zero, "
                "-1 to +1",
            ),
        ),
        _quality(
            "bars",
            "quality_bars",
            "bars",
            "bar P&Ls in the rolling window",
            lambda q: float(q.bars),
            count=True,
        ),
        _quality(
            "hedge_carry_usd_per_day",
            "carry_usd_per_day",
            "$ per calendar day",
            (
                "the layer's carry: VIX futures' roll-down plus options' theta and roll "
                "(negative: a cost)"
            ),
            lambda q: q.hedge_carry_usd_per_day,
            family=_CARRY,
            labels=("hedge",),
        ),
        _quality(
            "condor_theta_usd_per_day",
            "condor_theta_usd_per_day",
            "$ per calendar day",
            "the iron condors' theta",
            lambda q: q.condor_theta_usd_per_day,
            family=_CARRY,
            labels=("condor",),
        ),
        _quality(
            "carry_ratio_pct",
            "carry_ratio_pct",
            "%",
            "share of the condors' theta the layer's carry costs",
            lambda q: q.carry_ratio_pct,
            family=Family(
                "condor_hedge_carry_ratio_percent",
                "The layer's carry cost as a share of the condors' theta, percent",
            ),
        ),
    ),
    _signals_known,
)

EVENTS: View[EventView] = View(
    "events",
    "events",
    (
        Reading(
            "next_kind",
            TEXT,
            "",
            "kind of the next scheduled event: fomc, cpi, ppi ('' when the calendar runs out)",
            lambda e: e.next_kind,
            "events.next_kind",
            state="next_kind",
        ),
        Reading(
            "hours_to_next",
            NUMBER,
            "hours",
            "hours to the next scheduled event (FOMC 14:00 ET, CPI and PPI 08:30 ET)",
            lambda e: e.hours_to_next,
            "events.hours_to_next",
            Family(
                "condor_event_next_hours",
                "Hours to the next scheduled event, by kind of the next one (fomc, cpi, ppi)",
                ("kind",),
                note="`none` when the calendar runs out",
            ),
            state="hours_to_next",
            labelled=lambda e: (e.next_kind or "none",),
        ),
        Reading(
            "hours_to_next_fomc",
            NUMBER,
            "hours",
            "hours to the next FOMC decision",
            lambda e: e.hours_to_next_fomc,
            "events.hours_to_next_fomc",
            Family("condor_event_next_fomc_hours", "Hours to the next FOMC decision"),
            state="hours_to_next_fomc",
        ),
        Reading(
            "event_today",
            FLAG,
            "true/false",
            "a scheduled event falls on today's New York date",
            lambda e: e.event_today,
            "events.today",
            Family("condor_event_today", "1 on a day with a scheduled event"),
            state="event_today",
        ),
        Reading(
            "uncovered",
            TEXT,
            "text",
            "the kinds the calendar has no schedule ([[series]]) for in this New York year, "
            "as 'cpi 2027, ppi 2027' ('' when it covers them all): their events are unknown, "
            "not absent",
            lambda e: e.uncovered,
            "events.uncovered",
            state="uncovered",
        ),
        Reading(
            "uncovered_kinds",
            NUMBER,
            "kinds",
            "how many of fomc, cpi, ppi have no schedule in the calendar for this year",
            lambda e: float(e.uncovered_kinds),
            "events.uncovered_kinds",
            Family(
                "condor_event_calendar_uncovered_kinds",
                "Kinds of scheduled event (fomc, cpi, ppi) the calendar has no schedule for "
                "this year",
            ),
            state="uncovered_kinds",
            count=True,
        ),
    ),
)


# The metric of the session (``condor_market_open``) is read at the session clock by the
# readiness check, also before the first snapshot; these rows are the snapshot's moment.
def _account(
    key: str, unit: str, meaning: str, metric: str, help_text: str
) -> Reading[AccountView]:
    """An account reading: variable ``account.<key>``, /state key ``<key>``, a gauge."""
    return Reading(
        key,
        NUMBER,
        unit,
        meaning,
        attrgetter(key),
        f"account.{key}",
        Family(f"condor_account_{metric}", help_text),
        state=key,
    )


ACCOUNT: View[AccountView] = View(
    "account",
    "account",
    (
        _account(
            "net_liquidation_usd",
            "$",
            "IB's NetLiquidation: the account's value if everything were closed now (NaN "
            "outside a live IB feed, with account.reason)",
            "net_liquidation_dollars",
            "IB NetLiquidation, dollars",
        ),
        _account(
            "excess_liquidity_usd",
            "$",
            "IB's ExcessLiquidity: equity with loan value minus the maintenance margin, what "
            "is left before IB liquidates",
            "excess_liquidity_dollars",
            "IB ExcessLiquidity, dollars",
        ),
        _account(
            "cushion_pct",
            "% of net liquidation",
            "IB's Cushion: ExcessLiquidity / NetLiquidation (IB sends a fraction)",
            "cushion_percent",
            "IB Cushion (excess liquidity over net liquidation), percent",
        ),
        _account(
            "maint_margin_usd",
            "$",
            "IB's MaintMarginReq: maintenance margin required now",
            "maint_margin_dollars",
            "IB maintenance margin requirement, dollars",
        ),
        _account(
            "init_margin_usd",
            "$",
            "IB's InitMarginReq: initial margin required now",
            "init_margin_dollars",
            "IB initial margin requirement, dollars",
        ),
        _account(
            "buying_power_usd",
            "$",
            "IB's BuyingPower: what can still be opened",
            "buying_power_dollars",
            "IB buying power, dollars",
        ),
        _account(
            "age_seconds",
            "seconds",
            "time since IB last changed one of these values (IB sends them about every 3 "
            "minutes, and when they change)",
            "values_age_seconds",
            "Seconds since IB last sent an account value",
        ),
        Reading(
            "reason",
            TEXT,
            "text",
            "why the account values are not known (empty while they are)",
            lambda a: a.reason,
            "account.reason",
            state="reason",
        ),
    ),
)


MARKET: View[MarketView] = View(
    "market",
    "market",
    (
        Reading(
            "open",
            FLAG,
            "true/false",
            "the SPX options session is open (09:30-16:15 New York, 13:15 on early-close days)",
            lambda m: m.open,
            "market.open",
            state="open",
        ),
        Reading(
            "minutes_to_close",
            NUMBER,
            "minutes",
            "minutes to the session's close (NaN while closed)",
            lambda m: m.minutes_to_close,
            "market.minutes_to_close",
            state="minutes_to_close",
        ),
        Reading(
            "minutes_to_open",
            NUMBER,
            "minutes",
            "minutes to the next session's open (0 while open)",
            lambda m: m.minutes_to_open,
            "market.minutes_to_open",
            state="minutes_to_open",
        ),
        Reading(
            "early_close",
            FLAG,
            "true/false",
            "today's session closes early (13:15 New York)",
            lambda m: m.early_close,
            "market.early_close",
            state="early_close",
        ),
    ),
)


def _since(storage: StorageHealth) -> Scalar:
    return math.nan if storage.unavailable_since is None else storage.unavailable_since


# Its metrics are read from the record the pipeline publishes (``Published.storage``), so
# they are there before the first snapshot; the rules read the snapshot's copy.
JOURNAL: View[StorageHealth] = View(
    "journal",
    "storage",
    (
        Reading(
            "available",
            FLAG,
            "true/false",
            "the journal takes writes (false: alerts go out, held in memory until it does)",
            lambda j: j.available,
            "journal.available",
            Family(
                "condor_journal_available",
                "1 while the journal takes writes (0: alerts are held in memory and still sent)",
            ),
            state="available",
        ),
        Reading(
            "free_bytes",
            NUMBER,
            "MiB",
            "free space of the state directory's filesystem (NaN without a journal)",
            lambda j: j.free_bytes / MIB,
            "journal.free_mib",
            state="free_mib",
            per=MIB,
        ),
        Reading(
            "free_bytes",
            NUMBER,
            "bytes",
            "free space of the state directory's filesystem",
            lambda j: j.free_bytes,
            None,
            Family(
                "condor_journal_free_bytes", "Free space of the state directory's filesystem, bytes"
            ),
        ),
        Reading(
            "held_transitions",
            NUMBER,
            "transitions",
            "alert transitions held in memory because the journal could not take them",
            lambda j: float(j.held_transitions),
            "journal.held_transitions",
            Family(
                "condor_journal_held_transitions",
                "Alert transitions held in memory until the journal takes writes again",
            ),
            state="held_transitions",
            count=True,
        ),
        Reading(
            "dropped_transitions",
            NUMBER,
            "transitions",
            "held transitions let go past the hold limit since the start (not in the journal)",
            lambda j: float(j.dropped_transitions),
            None,
            Family(
                "condor_journal_dropped_transitions",
                "Held transitions let go past the hold limit (not in the journal)",
                counter=True,
            ),
            state="dropped_transitions",
            count=True,
        ),
        Reading(
            "unavailable_since",
            NUMBER,
            "Unix seconds",
            "when the journal stopped taking writes (null while it takes them)",
            _since,
            None,
            state="unavailable_since",
        ),
        Reading(
            "error",
            TEXT,
            "",
            "the last write error ('' when none)",
            lambda j: j.error,
            None,
            state="error",
        ),
    ),
)

# Every table of readings, in the order the book variables and the docs show them.
VIEWS: tuple[View[Any], ...] = (
    INDEX,
    BOOK,
    SMILE,
    TERM,
    SCENARIOS,
    STRESS,
    HEDGE,
    *INDICATORS,
    BREADTH,
    QUALITY,
    EVENTS,
    MARKET,
    FEED,
    ACCOUNT,
    JOURNAL,
)


# The rows of each strategy and each leg beside their risk: rule variables of the strategy
# and short-leg scopes, samples labelled like the scope's risk families (``STRATEGY_SCOPE``,
# ``LEG_SCOPE``), and the leg's /state entry.
STRATEGY_READINGS: tuple[Reading[StrategyRisk], ...] = (
    Reading(
        "name", TEXT, "text", "strategy name from the portfolio", lambda s: s.name, "strategy.name"
    ),
    Reading(
        "kind",
        TEXT,
        "text",
        "iron_condor or second_engine",
        lambda s: s.kind.value,
        "strategy.kind",
    ),
    Reading(
        "model_priced_legs",
        NUMBER,
        "legs",
        "legs priced from a model volatility",
        lambda s: float(s.model_priced_legs),
        "strategy.model_priced_legs",
        Family(
            "condor_strategy_model_priced_legs",
            "Legs priced from a model volatility",
            ("strategy",),
            note="no valid two-sided quote",
        ),
    ),
    Reading(
        "unvalued_legs",
        NUMBER,
        "legs",
        "legs that could not be valued at all (their greeks are NaN)",
        lambda s: float(s.unvalued_legs),
        "strategy.unvalued_legs",
        Family("condor_strategy_unvalued_legs", "Legs that could not be valued", ("strategy",)),
    ),
    *(
        Reading(
            f"pnl.{key}",
            NUMBER,
            unit,
            meaning,
            getter,
            f"strategy.{key}",
            Family(f"condor_strategy_{metric}", help_text, ("strategy",)),
        )
        for key, unit, meaning, getter, metric, help_text in (
            (
                "credit_usd",
                "$",
                (
                    "premium received at entry, -sum(quantity x multiplier x entry price) "
                    "(negative: a debit paid); NaN while a leg has no entry price"
                ),
                lambda s: s.pnl.credit_usd,
                "credit_dollars",
                "Premium received at entry, dollars (negative: a debit)",
            ),
            (
                "max_loss_usd",
                "$",
                "iron condor: (wider wing - credit per unit) x multiplier x contracts",
                lambda s: s.pnl.max_loss_usd,
                "max_loss_dollars",
                "Iron condor's maximum loss at expiry, dollars",
            ),
            (
                "pnl_pct_of_credit",
                "% of the credit",
                "iron condor: 100 x P&L / credit (+50: half the credit kept; negative: losing)",
                lambda s: s.pnl.pnl_pct_of_credit,
                "pnl_percent_of_credit",
                "Iron condor's P&L as a percentage of its credit",
            ),
            (
                "pnl_pct_of_max_loss",
                "% of the max loss",
                "iron condor: 100 x P&L / max loss (-50: half the max loss lost)",
                lambda s: s.pnl.pnl_pct_of_max_loss,
                "pnl_percent_of_max_loss",
                "Iron condor's P&L as a percentage of its maximum loss",
            ),
            (
                "break_even_low",
                "SPX points",
                "iron condor: short put - credit per unit, the lower break-even at expiry",
                lambda s: s.pnl.break_even_low,
                "break_even_low_points",
                "Iron condor's lower break-even at expiry, SPX points",
            ),
            (
                "break_even_high",
                "SPX points",
                "iron condor: short call + credit per unit, the upper break-even at expiry",
                lambda s: s.pnl.break_even_high,
                "break_even_high_points",
                "Iron condor's upper break-even at expiry, SPX points",
            ),
        )
    ),
)

DAYS_PER_YEAR = 365.0


def _leg(
    key: str,
    kind: VarType,
    unit: str,
    meaning: str,
    get: Callable[[LegRisk], Scalar],
    *,
    variable: str | None,
    state: str | None = None,
    family: Family[LegRisk] | None = None,
    per: float = 1.0,
    count: bool = False,
) -> Reading[LegRisk]:
    return Reading(key, kind, unit, meaning, get, variable, family, (), state, count, per)


LEG_READINGS: tuple[Reading[LegRisk], ...] = (
    _leg(
        "leg.instrument",
        TEXT,
        "text",
        "contract id, e.g. 'SPX 20260417 P6300'",
        lambda x: x.leg.instrument.id,
        variable="leg.contract",
        state="contract",
    ),
    _leg(
        "leg.strategy",
        TEXT,
        "text",
        "its strategy",
        lambda x: x.leg.strategy,
        variable=None,
        state="strategy",
    ),
    _leg(
        "leg.instrument",
        TEXT,
        "text",
        "'put' or 'call'",
        lambda x: "call" if x.leg.instrument.is_call else "put",
        variable="leg.right",
    ),
    _leg(
        "leg.instrument",
        NUMBER,
        "index points",
        "strike",
        lambda x: x.leg.instrument.strike or 0.0,
        variable="leg.strike",
    ),
    _leg(
        "leg.quantity",
        NUMBER,
        "contracts",
        "position, negative for short",
        lambda x: float(x.leg.quantity),
        variable="leg.quantity",
        state="quantity",
        count=True,
    ),
    _leg(
        "leg.entry_price",
        NUMBER,
        "per unit as quoted (option premium, future price)",
        (
            "the average opening price: the portfolio file's entry_price, else IB's average "
            "cost over the multiplier; NaN when neither gives one"
        ),
        lambda x: x.leg.entry_price,
        variable="leg.entry_price",
        state="entry_price",
    ),
    _leg(
        "value.delta",
        NUMBER,
        "per contract (dV/dF)",
        "signed Black-76 delta of one option",
        lambda x: x.value.delta,
        variable="leg.delta",
    ),
    _leg(
        "value.delta",
        NUMBER,
        "per contract (dV/dF)",
        "absolute delta of one option",
        lambda x: abs(x.value.delta),
        variable="leg.abs_delta",
    ),
    _leg(
        "value.iv",
        NUMBER,
        "vol points (%)",
        "implied volatility used for the greeks",
        lambda x: x.value.iv * 100.0,
        variable="leg.iv_pct",
        state="iv_pct",
        family=Family(
            "condor_leg_implied_vol_percent",
            "Implied volatility the leg is valued at, percent (vol points)",
            ("strategy", "contract"),
            note="NaN for futures",
        ),
        per=0.01,
    ),
    _leg(
        "value.model_priced",
        FLAG,
        "true/false",
        "no valid two-sided quote: model volatility used",
        lambda x: x.value.model_priced,
        variable="leg.model_priced",
        state="model_priced",
    ),
    _leg(
        "value.vol_source",
        TEXT,
        "text",
        "where its volatility comes from: quote, fit (the SVI smile of its expiry), smile, "
        "last_iv, fallback (none for futures)",
        lambda x: x.value.vol_source.value,
        variable="leg.vol_source",
        state="vol_source",
    ),
    _leg(
        "value.reason",
        TEXT,
        "text",
        "why the leg could not be valued ('' when it was)",
        lambda x: x.value.reason or "",
        variable="leg.unvalued_reason",
        state="unvalued_reason",
    ),
    _leg(
        "value.quote_iv",
        NUMBER,
        "vol points",
        "vol of the leg's own mid minus the vol it is valued at: its distance from the fitted "
        'smile with [pricing] smile = "svi" (0 when valued at its own mid, NaN without a '
        "valid quote)",
        lambda x: (x.value.quote_iv - x.value.iv) * 100.0,
        variable="leg.mid_vs_fit_vol_points",
        state="mid_vs_fit_vol_points",
        family=Family(
            "condor_leg_mid_vs_fit_vol_points",
            "Vol of the leg's own mid minus the vol it is valued at, vol points",
            ("strategy", "contract"),
            note="its distance from the fitted smile; NaN without a valid quote",
        ),
    ),
    _leg(
        "value.outside_quote",
        FLAG,
        "true/false",
        "valued off the fitted smile at a price outside its own bid/ask",
        lambda x: x.value.outside_quote,
        variable="leg.fit_outside_quote",
        state="fit_outside_quote",
    ),
    _leg(
        "data_delayed",
        FLAG,
        "true/false",
        "the leg's quotes come delayed from the broker ([feed] delayed_data_minutes behind)",
        lambda x: x.data_delayed,
        variable="leg.data_delayed",
        state="data_delayed",
    ),
    _leg(
        "value.settling",
        FLAG,
        "true/false",
        "past its settlement moment (AM: the 09:30 ET opening, PM: the close): marked at "
        "its settlement print, every greek zero, out of the stress and the scenario grid",
        lambda x: x.value.settling,
        variable="leg.settling",
        state="settling",
    ),
    _leg(
        "value.settlement_value",
        NUMBER,
        "index points",
        "the index print it settles against: SPX's (VIX's for VIX options and VX) first "
        "value from the opening moment for AM, last value to the close for PM; NaN before "
        "its settlement or when that print was not seen",
        lambda x: x.value.settlement_value,
        variable="leg.settlement_value",
        state="settlement_value",
    ),
    _leg(
        "value.years",
        NUMBER,
        "calendar days",
        "time to the settlement moment, to the second (PM: the 16:00 ET close, 13:00 on an "
        "early close; AM: the 09:30 ET opening quotation); negative once past",
        lambda x: x.value.years * DAYS_PER_YEAR,
        variable="leg.days_to_expiry",
        per=1.0 / DAYS_PER_YEAR,
    ),
    _leg(
        "value.spot",
        NUMBER,
        "index points",
        "SPX when the leg was valued (SPX-family options; NaN otherwise)",
        lambda x: x.value.spot,
        variable=None,
        state="spot",
    ),
    _leg(
        "distance.points",
        NUMBER,
        "SPX points",
        "strike's distance from SPX, positive out of the money (put: SPX - strike, call: "
        "strike - SPX)",
        distance_points,
        variable="leg.distance_points",
        state="distance_points",
    ),
    _leg(
        "distance.pct",
        NUMBER,
        "% of SPX",
        "the same distance as a percentage of SPX",
        distance_pct,
        variable="leg.distance_pct",
        state="distance_pct",
    ),
    _leg(
        "distance.std_devs",
        NUMBER,
        "standard deviations to expiry",
        "the strike's distance in the lognormal move to expiry at the leg's own vol: "
        "ln(K / F) / (vol sqrt(T)) for a call, ln(F / K) / (vol sqrt(T)) for a put, positive "
        "out of the money",
        distance_std_devs,
        variable="leg.distance_std_devs",
        state="distance_std_devs",
        family=Family(
            "condor_leg_distance_std_devs",
            "Strike's distance from the forward in standard deviations to expiry, positive "
            "out of the money",
            ("strategy", "contract"),
        ),
    ),
    _leg(
        "value.expected_move",
        NUMBER,
        "SPX points",
        "expected move to expiry: the mid of its expiry's ATM straddle (call + put), linear "
        "in the strike between the quoted straddles either side of the forward",
        lambda x: x.value.expected_move,
        variable="leg.expected_move_points",
        state="expected_move_points",
    ),
    _leg(
        "distance.inside_expected_move",
        FLAG,
        "true/false",
        "the strike is inside the expected move: its distance is less than the ATM "
        "straddle (a strike in the money is inside; false while either is unknown)",
        inside_expected_move,
        variable="leg.inside_expected_move",
        state="inside_expected_move",
    ),
    _leg(
        "distance.in_the_money",
        FLAG,
        "true/false",
        "SPX is past the strike (put: SPX below it, call: SPX above it), the distance "
        "negative; false while SPX or the strike is unknown",
        in_the_money,
        variable="leg.in_the_money",
        state="in_the_money",
    ),
    _leg(
        "value.underlying_price",
        NUMBER,
        "index points",
        "forward of the leg's expiry",
        lambda x: x.value.underlying_price,
        variable="leg.underlying",
    ),
    _leg(
        "value.price",
        NUMBER,
        "points per contract",
        "model price of one contract at its volatility (premium for an option, the future's "
        "mid for a future)",
        lambda x: x.value.price,
        variable="leg.price",
        state="price",
    ),
)
