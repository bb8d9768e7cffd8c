"""The tables of measures: each number of the snapshot's views, written once with its unit,
meaning and getter.

A ``Measure`` is one row of the risk table (in the style of Home Assistant's entity
descriptions): the rule variables, the Prometheus families, the ``/state`` document and the
docs tables are made from these rows, never typed again. A ``RiskScope`` says where a
``Risk`` is read (the book, each strategy, each leg) and under which variable prefix, metric
prefix and labels it is shown.

A ``Reading`` is one row of the table of a single view of the snapshot: ``TERM`` (the VIX
term structure), ``HEDGE`` (the hedge ratio and its sizing) and ``FEED`` (the feed's health).
Each row names its rule variable, its sample of a metric ``Family`` and its ``/state`` key;
``rules/variables.py``, ``metrics.py``, ``state.py`` and ``docs_tables.py`` read them.

To add a greek: compute it in ``pricing/valuation.py``, turn it into dollars as a field of
``portfolio.book.Risk`` (``leg_risk``), and add its row to ``RISK_MEASURES``; strategy and
book sums, variables, metrics, ``/state`` and docs follow (``make docs`` rewrites the tables).
To show a new field of one of the views, add its ``Reading`` to the view's table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Generic, TypeVar

from monitor.domain.health import FeedHealth
from monitor.portfolio.book import GroupRisk, LegRisk, Risk, StrategyRisk
from monitor.rules.expressions import Value, VarType
from monitor.signals.hedge import CallSpread, HedgeView
from monitor.signals.term_structure import TermStructure
from monitor.snapshot import Snapshot

T = TypeVar("T")
S = TypeVar("S")
Scalar = float | bool | str | None  # what a reading of a view is; None: not known (an id)
StateDict = dict[str, Scalar]


@dataclass(frozen=True, slots=True)
class Measure(Generic[T]):
    """One number of a ``T``: the rule variable ``<scope>.<key>``, the metric family
    ``<scope prefix><metric>`` and the ``/state`` key ``<key>``."""

    key: str
    unit: str  # as the docs show it: "$ per 1% SPX move"
    meaning: str  # read after the scope's owner: "whole book" + " " + meaning
    get: Callable[[T], float]
    metric: str | None  # family name after the scope's prefix; None: not exported
    help: str = ""  # the family's HELP text, its unit in words
    state: bool = True  # shown in /state


RISK_MEASURES: tuple[Measure[Risk], ...] = (
    Measure(
        "delta_usd_per_spx_point",
        "$ per SPX point",
        "delta as SPX-point-equivalent exposure",
        lambda r: r.delta_usd_per_spx_point,
        "delta_dollars_per_spx_point",
        "Delta as SPX-point-equivalent exposure, dollars per SPX point",
    ),
    Measure(
        "delta_usd_per_pct",
        "$ per 1% SPX move",
        "delta in dollars for a 1% SPX move",
        lambda r: r.delta_usd_per_pct,
        "delta_dollars_per_spx_pct",
        "Delta, dollars of P&L for a 1% SPX move",
    ),
    Measure(
        "gamma_usd_per_pct",
        "$ of delta per 1% SPX move",
        "change of the $-per-1% delta for a +1% SPX move",
        lambda r: r.gamma_usd_per_pct,
        "gamma_dollars_per_spx_pct",
        "Gamma, change of the dollars-per-1% delta for a +1% SPX move",
    ),
    Measure(
        "vega_usd_per_vol_point",
        "$ per SPX vol point",
        "SPX-option vega",
        lambda r: r.vega_usd_per_vol_point,
        "vega_dollars_per_vol_point",
        "SPX-option vega, dollars per 1 implied-vol point",
    ),
    Measure(
        "vix_vega_usd_per_point",
        "$ per VIX-future point",
        "VIX futures and options exposure to a 1-point move of their futures",
        lambda r: r.vix_vega_usd_per_point,
        "vix_vega_dollars_per_vix_point",
        "VIX futures and options exposure, dollars per 1 point of their futures",
    ),
    Measure(
        "theta_usd_per_day",
        "$ per calendar day",
        "time decay",
        lambda r: r.theta_usd_per_day,
        "theta_dollars_per_day",
        "Theta, dollars per calendar day",
    ),
    Measure(
        "market_value_usd",
        "$",
        "mark-to-model value (long positive)",
        lambda r: r.market_value_usd,
        "market_value_dollars",
        "Mark-to-model value, dollars (long positive)",
    ),
    Measure(
        "beta_delta_usd_per_pct",
        "$ per 1% SPX move",
        "delta beta-weighted to SPX, VIX instruments included",
        lambda r: r.beta_delta_usd_per_pct,
        "beta_delta_dollars_per_spx_pct",
        "Delta beta-weighted to SPX (VIX instruments included), dollars per 1% SPX move",
    ),
    Measure(
        "vol_shock_usd_per_point",
        "$ per SPX vol point",
        (
            "P&L of a coordinated +1 SPX-vol-point shock: SPX options by their vega, VIX "
            "futures and options by their exposure times their tenor's response"
        ),
        lambda r: r.vol_shock_usd_per_point,
        "vol_shock_dollars_per_vol_point",
        "P&L of a coordinated +1 SPX-vol-point shock (the hedge ratio's), dollars per vol point",
    ),
    Measure(
        "vanna_usd_per_pct_per_vol_point",
        "$ of delta per 1% SPX move per SPX vol point",
        "vanna: change of the $-per-1% delta for +1 SPX vol point (0 for VIX instruments)",
        lambda r: r.vanna_usd_per_pct_per_vol_point,
        "vanna_dollars_per_spx_pct_per_vol_point",
        "Vanna, change of the dollars-per-1% delta for +1 SPX implied-vol point",
    ),
    Measure(
        "charm_usd_per_pct_per_day",
        "$ of delta per 1% SPX move per calendar day",
        (
            "charm: change of the $-per-1% delta over one calendar day, nothing else moving "
            "(0 for VIX instruments)"
        ),
        lambda r: r.charm_usd_per_pct_per_day,
        "charm_dollars_per_spx_pct_per_day",
        "Charm, change of the dollars-per-1% delta over one calendar day",
    ),
    Measure(
        "pnl_usd",
        "$",
        (
            "mark-to-market P&L against the entry: quantity x multiplier x (our mark - entry "
            "price), from our own marks, not IB's; NaN while an entry price is not known"
        ),
        lambda r: r.pnl_usd,
        "pnl_dollars",
        "Mark-to-market P&L against the entry prices, dollars (our marks, not IB's)",
    ),
)


@dataclass(frozen=True, slots=True)
class RiskScope(Generic[S]):
    """Where a ``Risk`` is read, and how its measures are named there."""

    name: str  # the rule variables' prefix
    whose: str  # the owner the meaning is read after
    risk: Callable[[S], Risk]
    items: Callable[[Snapshot], Iterable[S]]  # the objects of a snapshot in this scope
    metric_prefix: str | None  # None: no metric families (sum the narrower scope)
    labels: tuple[str, ...] = ()
    label_values: Callable[[S], tuple[str, ...]] = lambda _: ()

    def variable(self, measure: Measure[Risk]) -> str:
        return f"{self.name}.{measure.key}"

    def meaning(self, measure: Measure[Risk]) -> str:
        return f"{self.whose} {measure.meaning}"

    def family(self, measure: Measure[Risk]) -> str | None:
        if self.metric_prefix is None or measure.metric is None:
            return None
        return self.metric_prefix + measure.metric

    def reader(self, measure: Measure[Risk]) -> Callable[[S], float]:
        pick, get = self.risk, measure.get
        return lambda x: get(pick(x))


BOOK_SCOPE: RiskScope[Snapshot] = RiskScope(
    "book", "whole book", lambda s: s.book.total, lambda s: (s,), None
)
STRATEGY_SCOPE: RiskScope[StrategyRisk] = RiskScope(
    "strategy",
    "the strategy's",
    lambda s: s.risk,
    lambda s: s.book.strategies,
    "condor_strategy_",
    ("strategy",),
    lambda s: (s.name,),
)
LEG_SCOPE: RiskScope[LegRisk] = RiskScope(
    "leg",
    "the leg's position",
    lambda x: x.risk,
    lambda s: s.book.legs,
    "condor_leg_",
    ("strategy", "contract"),
    lambda x: (x.leg.strategy, x.leg.instrument.id),
)

# The book's risk summed by expiry ("SPX 2026-04-17") and by underlying (SPX, VIX): no rule
# scope of their own, a family per measure and a /state dict each.
EXPIRY_SCOPE: RiskScope[GroupRisk] = RiskScope(
    "expiry",
    "the expiry's",
    lambda g: g.risk,
    lambda s: s.book.by_expiry,
    "condor_expiry_",
    ("expiry",),
    lambda g: (g.name,),
)
UNDERLYING_SCOPE: RiskScope[GroupRisk] = RiskScope(
    "underlying",
    "the underlying's",
    lambda g: g.risk,
    lambda s: s.book.by_underlying,
    "condor_underlying_",
    ("underlying",),
    lambda g: (g.name,),
)


def state_risk(risk: Risk, rounded: Callable[[float], float | None]) -> dict[str, float | None]:
    """The ``/state`` view of ``risk``: one key per measure shown there."""
    return {m.key: rounded(m.get(risk)) for m in RISK_MEASURES if m.state}


@dataclass(frozen=True, slots=True)
class Family(Generic[T]):
    """A Prometheus gauge family filled by rows of a view table, one sample per row; it is
    left out of a scrape while ``shown`` says no (a suggestion that does not exist yet)."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    shown: Callable[[T], bool] = lambda _: True
    note: str = ""  # more for the README's table than the HELP text says
    counter: bool = False  # a count since the start (``_total``), not a gauge


@dataclass(frozen=True, slots=True)
class Reading(Generic[T]):
    """One reading of a view ``T`` of the snapshot (the term structure, the hedge, the feed):
    the rule variable ``variable``, a sample of ``family`` labelled ``labels``, the ``/state``
    key ``state``; each None where the reading is not shown there.

    ``key`` is the field or property read (``spread.long_strike``: a field of a nested view),
    divided by ``per`` (a unit change: bytes to MiB); ``type`` the rule type of what ``get``
    returns (a flag is 0 or 1 in its metric). ``labelled`` gives the labels from the view
    where they are not fixed (the kind of the next event)."""

    key: str
    type: VarType
    unit: str
    meaning: str
    get: Callable[[T], Scalar]
    variable: str | None
    family: Family[T] | None = None
    labels: tuple[str, ...] = ()
    state: str | None = None
    count: bool = False  # a whole number: an integer in /state
    per: float = 1.0
    labelled: Callable[[T], tuple[str, ...]] | None = None

    def sample(self, view: T) -> tuple[tuple[str, ...], float]:
        """The labels and value of this row's metric sample."""
        value = self.get(view)
        labels = self.labels if self.labelled is None else self.labelled(view)
        if isinstance(value, bool):
            return labels, float(value)
        return labels, value if isinstance(value, float) else math.nan


@dataclass(frozen=True, slots=True)
class View(Generic[T]):
    """A view of the snapshot and its table of readings: ``path`` is the snapshot field it
    reads (``signals.breadth``; "" for the snapshot itself), ``pick`` reads it where that is
    not a path of attributes (one series of the indicators)."""

    name: str
    path: str
    readings: tuple[Reading[T], ...]
    known: Callable[[Snapshot], bool] | None = None  # False: every number NaN to rules
    pick: Callable[[Snapshot], T] | None = None

    def view(self, snapshot: Snapshot) -> T:
        return self._picker()(snapshot)

    def _picker(self) -> Callable[[Snapshot], T]:
        if self.pick is not None:
            return self.pick
        if not self.path:
            return lambda s: s  # type: ignore[return-value]
        return attrgetter(self.path)

    def families(self) -> tuple[Family[T], ...]:
        """The metric families of the table, in the order of their first row."""
        seen: dict[str, Family[T]] = {}
        for r in self.readings:
            if r.family is not None:
                seen.setdefault(r.family.name, r.family)
        return tuple(seen.values())

    def variable_reader(self, reading: Reading[T]) -> Callable[[Snapshot], Value]:
        """The rule variable's getter: NaN for a number of a view that knows nothing, ''
        for text that is not known."""
        pick, get, known = self._picker(), reading.get, self.known
        if known is None or reading.type is not VarType.NUMBER:

            def plain(snapshot: Snapshot) -> Value:
                value = get(pick(snapshot))
                return "" if value is None else value

            return plain

        def guarded(snapshot: Snapshot) -> Value:
            if not known(snapshot):
                return math.nan
            value = get(pick(snapshot))
            return "" if value is None else value

        return guarded

    def state(self, snapshot: Snapshot, rounded: Callable[[float], float | None]) -> StateDict:
        """The ``/state`` entries of the table: numbers rounded, flags and ids as they are."""
        return self.state_of(self.view(snapshot), rounded)

    def state_of(self, view: T, rounded: Callable[[float], float | None]) -> StateDict:
        return state_of(self.readings, view, rounded)


def state_of(
    readings: Iterable[Reading[T]], item: T, rounded: Callable[[float], float | None]
) -> StateDict:
    """The ``/state`` entries of ``item``'s rows: numbers rounded, flags and ids as they are."""
    out: StateDict = {}
    for r in readings:
        if r.state is None:
            continue
        value = r.get(item)
        if r.count and isinstance(value, float) and math.isfinite(value):
            out[r.state] = int(value)
        elif r.type is VarType.NUMBER and isinstance(value, float):
            out[r.state] = rounded(value)
        else:
            out[r.state] = value
    return out


def _term(
    key: str,
    unit: str,
    meaning: str,
    get: Callable[[TermStructure], Scalar],
    *,
    kind: VarType = VarType.NUMBER,
    family: Family[TermStructure] | None = None,
    labels: tuple[str, ...] = (),
    state: str | None = None,
    variable: bool = True,
) -> Reading[TermStructure]:
    """A term-structure reading: its variable ``term.<key>`` (unless not ``variable``), in
    the /state term dict under ``state``, else ``key`` (every term reading is there)."""
    name = f"term.{key}" if variable else None
    return Reading(key, kind, unit, meaning, get, name, family, labels, state or key)


_FUTURE_PRICE: Family[TermStructure] = Family(
    "condor_vix_future_price", "VIX future mid, VIX points", ("tenor",)
)
_TERM_SPREAD: Family[TermStructure] = Family(
    "condor_vix_term_spread_points",
    "VIX term-structure spreads, VIX points: VX1 - VX2 (above 0: backwardation), VIX - VX1",
    ("spread",),
)
_TERM_RATIO: Family[TermStructure] = Family(
    "condor_vix_term_vx1_vx2_ratio", "VX1 / VX2 (above 1: backwardation)"
)
_CONSTANT_MATURITY: Family[TermStructure] = Family(
    "condor_vix_constant_maturity_30d_points", "VX1 and VX2 blended to a 30-day tenor, VIX points"
)
_ROLL: Family[TermStructure] = Family(
    "condor_vix_roll_points_per_day",
    "Roll yield, VIX points per calendar day (positive in contango: a long future's loss)",
    ("tenor",),
    note='docs/rules.md, "VIX term structure"',
)
_DAYS: Family[TermStructure] = Family(
    "condor_vix_future_days_to_settlement",
    "Calendar days to the future's final settlement",
    ("tenor",),
)

NUMBER, FLAG, TEXT = VarType.NUMBER, VarType.BOOL, VarType.STRING

TERM_READINGS: tuple[Reading[TermStructure], ...] = (
    _term(
        "vx1",
        "VIX points",
        "front-month VIX future (mid)",
        lambda t: t.vx1,
        family=_FUTURE_PRICE,
        labels=("VX1",),
    ),
    _term(
        "vx2",
        "VIX points",
        "second-month VIX future (mid)",
        lambda t: t.vx2,
        family=_FUTURE_PRICE,
        labels=("VX2",),
    ),
    _term(
        "vx1_minus_vx2",
        "VIX points",
        "VX1 - VX2; positive is backwardation",
        lambda t: t.vx1_minus_vx2,
        family=_TERM_SPREAD,
        labels=("vx1_minus_vx2",),
        state="vx1_minus_vx2_points",
    ),
    _term(
        "vx1_vx2_ratio",
        "ratio",
        "VX1 / VX2; above 1 is backwardation",
        lambda t: t.vx1_vx2_ratio,
        family=_TERM_RATIO,
    ),
    _term(
        "vix_minus_vx1",
        "VIX points",
        "VIX - VX1 basis",
        lambda t: t.vix_minus_vx1,
        family=_TERM_SPREAD,
        labels=("vix_minus_vx1",),
        state="vix_minus_vx1_points",
    ),
    _term(
        "inverted", "true/false", "VX1 above VX2 (backwardation)", lambda t: t.inverted, kind=FLAG
    ),
    _term(
        "vx1_days",
        "calendar days",
        "days to VX1 settlement",
        lambda t: t.vx1_days,
        family=_DAYS,
        labels=("VX1",),
    ),
    _term(
        "vx2_days",
        "calendar days",
        "days to VX2 settlement",
        lambda t: t.vx2_days,
        family=_DAYS,
        labels=("VX2",),
    ),
    _term(
        "vx3",
        "VIX points",
        "third-month VIX future (mid)",
        lambda t: t.vx3,
        family=_FUTURE_PRICE,
        labels=("VX3",),
    ),
    _term(
        "vx4",
        "VIX points",
        "fourth-month VIX future (mid)",
        lambda t: t.vx4,
        family=_FUTURE_PRICE,
        labels=("VX4",),
    ),
    _term("contango", "true/false", "VX2 above VX1 (contango)", lambda t: t.contango, kind=FLAG),
    _term(
        "constant_maturity_30d",
        "VIX points",
        "VX1 and VX2 blended to a 30-day tenor by days to settlement",
        lambda t: t.constant_maturity_30d,
        family=_CONSTANT_MATURITY,
        state="constant_maturity_30d_points",
    ),
    _term(
        "vx1_roll_points_per_day",
        "VIX points per day",
        "(VX1 - VIX) / days to VX1: its daily drift to spot if the curve holds",
        lambda t: t.vx1_roll_points_per_day,
        family=_ROLL,
        labels=("VX1",),
    ),
    _term(
        "vx2_roll_points_per_day",
        "VIX points per day",
        "(VX2 - VX1) / (days to VX2 - days to VX1): VX2's daily roll-down",
        lambda t: t.vx2_roll_points_per_day,
        family=_ROLL,
        labels=("VX2",),
    ),
    # Shown in /state only: the rule variable and the metric of spot VIX are the snapshot's.
    _term("vix", "index points", "spot VIX the curve starts from", lambda t: t.vix, variable=False),
    _term("vx1_id", "text", "VX1's contract id", lambda t: t.vx1_id, kind=TEXT, variable=False),
    _term("vx2_id", "text", "VX2's contract id", lambda t: t.vx2_id, kind=TEXT, variable=False),
)

TERM: View[TermStructure] = View("term", "term", TERM_READINGS)


def _spread(pick: Callable[[CallSpread], float]) -> Callable[[HedgeView], Scalar]:
    return lambda h: pick(h.spread) if h.spread is not None else math.nan


def _has_spread(h: HedgeView) -> bool:
    return h.spread is not None


_HEDGE_RATIO: Family[HedgeView] = Family(
    "condor_hedge_ratio_percent",
    "Second-engine gain / iron condors' loss for a +1 SPX-vol-point shock, percent",
    note='docs/rules.md, "Hedge ratio"',
)
_HEDGE_BAND: Family[HedgeView] = Family(
    "condor_hedge_band_percent", "The hedge-ratio band, percent", ("edge",)
)
_HEDGE_TO_ADD: Family[HedgeView] = Family(
    "condor_hedge_to_add",
    "Contracts that bring the hedge ratio to the band's middle (negative: fewer)",
    ("instrument",),
)
_SPREAD_POINTS: Family[HedgeView] = Family(
    "condor_hedge_spread_strike_points",
    "The suggested front-month VIX call spread: strikes and break-even, VIX points",
    ("point",),
    _has_spread,
    "absent while no spread is suggested",
)
_SPREAD_DOLLARS: Family[HedgeView] = Family(
    "condor_hedge_spread_dollars",
    "The suggested call spread's debit and maximum gain, dollars per spread",
    ("measure",),
    _has_spread,
    "absent while no spread is suggested",
)

# The /state hedge dict is the view's dataclass, every field (``state.py``); so no row
# names a /state key. A book that knows nothing reads NaN in every variable (``known``).
HEDGE_READINGS: tuple[Reading[HedgeView], ...] = (
    Reading(
        "ratio_pct",
        NUMBER,
        "%",
        "second-engine gain / iron condors' loss for a +1 SPX-vol-point shock (NaN: no loss)",
        lambda h: h.ratio_pct,
        "hedge.ratio_pct",
        _HEDGE_RATIO,
    ),
    Reading(
        "band_low_pct",
        NUMBER,
        "%",
        "lower edge of the hedge-ratio band ([hedge] config)",
        lambda h: h.band_low_pct,
        "hedge.band_low_pct",
        _HEDGE_BAND,
        ("low",),
    ),
    Reading(
        "band_high_pct",
        NUMBER,
        "%",
        "upper edge of the hedge-ratio band ([hedge] config)",
        lambda h: h.band_high_pct,
        "hedge.band_high_pct",
        _HEDGE_BAND,
        ("high",),
    ),
    Reading(
        "in_band",
        FLAG,
        "true/false",
        "the hedge ratio inside its band, edges included (false while the ratio is NaN)",
        lambda h: h.in_band,
        "hedge.in_band",
    ),
    Reading(
        "condor_loss_usd_per_point",
        NUMBER,
        "$ per SPX vol point",
        "what the iron condors lose for the +1 vol-point shock (positive: a loss)",
        lambda h: h.condor_loss_usd_per_point,
        "hedge.condor_loss_usd_per_vol_point",
    ),
    Reading(
        "hedge_gain_usd_per_point",
        NUMBER,
        "$ per SPX vol point",
        "what the second-engine layer gains for the same shock",
        lambda h: h.hedge_gain_usd_per_point,
        "hedge.gain_usd_per_vol_point",
    ),
    Reading(
        "vx2_futures_to_add",
        NUMBER,
        "contracts",
        "VX2 futures that bring the ratio to the band's middle (negative: fewer needed)",
        lambda h: float(h.vx2_futures_to_add),
        "hedge.vx2_futures_to_add",
        _HEDGE_TO_ADD,
        ("vx2_future",),
    ),
    Reading(
        "call_spreads_to_add",
        NUMBER,
        "spreads",
        "or: front-month VIX call spreads (the one below) that do the same",
        lambda h: float(h.call_spreads_to_add),
        "hedge.call_spreads_to_add",
        _HEDGE_TO_ADD,
        ("vix_call_spread",),
    ),
    Reading(
        "sizing",
        TEXT,
        "text",
        (
            "the sizing in words: VX2 futures, or the call spreads below, to add (negative: to "
            "remove), and for each one that cannot be given, why (no VIX calls quoted, ...)"
        ),
        lambda h: h.sizing,
        "hedge.sizing",
    ),
    Reading(
        "spread_unavailable",
        TEXT,
        "text",
        "why no call spread is suggested (empty while one is)",
        lambda h: h.spread_unavailable,
        "hedge.spread_unavailable",
    ),
    Reading(
        "spread.long_strike",
        NUMBER,
        "VIX points",
        "suggested spread's long call strike (quoted, 3-5 points above VX1)",
        _spread(lambda c: c.long_strike),
        "hedge.spread_long_strike",
        _SPREAD_POINTS,
        ("long_strike",),
    ),
    Reading(
        "spread.short_strike",
        NUMBER,
        "VIX points",
        "suggested spread's short call strike (quoted, about 5 above the long)",
        _spread(lambda c: c.short_strike),
        "hedge.spread_short_strike",
        _SPREAD_POINTS,
        ("short_strike",),
    ),
    Reading(
        "spread.debit_usd",
        NUMBER,
        "$ per spread",
        "suggested spread's debit, mid to mid",
        _spread(lambda c: c.debit_usd),
        "hedge.spread_debit_usd",
        _SPREAD_DOLLARS,
        ("debit",),
    ),
    Reading(
        "spread.max_gain_usd",
        NUMBER,
        "$ per spread",
        "suggested spread's maximum gain (width x 100 - debit)",
        _spread(lambda c: c.max_gain_usd),
        "hedge.spread_max_gain_usd",
        _SPREAD_DOLLARS,
        ("max_gain",),
    ),
    Reading(
        "spread.break_even",
        NUMBER,
        "VIX points",
        "suggested spread's break-even at expiry (long strike + debit)",
        _spread(lambda c: c.break_even),
        "hedge.spread_break_even",
        _SPREAD_POINTS,
        ("break_even",),
    ),
)

HEDGE: View[HedgeView] = View("hedge", "hedge", HEDGE_READINGS, lambda s: s.hedge.known)


def _feed(
    key: str,
    unit: str,
    meaning: str,
    get: Callable[[FeedHealth], Scalar],
    *,
    kind: VarType = VarType.NUMBER,
    family: Family[FeedHealth] | None = None,
    state: str | None = None,
    count: bool = False,
) -> Reading[FeedHealth]:
    """A feed-health reading: its variable ``feed.<key>``."""
    return Reading(key, kind, unit, meaning, get, f"feed.{key}", family, (), state, count)


# The feed's other metrics are counted by the pipeline and the feed's link (their own
# sources: ``Published``, ``LinkStatus`` and the readiness check), not read from this view.
FEED_READINGS: tuple[Reading[FeedHealth], ...] = (
    _feed(
        "data_age_seconds",
        "seconds",
        (
            "time since the last market event (evaluated on a timer between ticks); before the "
            "first one, since a live feed asked for market data (NaN before it asked)"
        ),
        lambda f: f.data_age_seconds,
        state="feed_data_age_seconds",
    ),
    _feed("bad_lines", "lines", "replay lines rejected so far", lambda f: float(f.bad_lines)),
    _feed(
        "crossed_quotes", "quotes", "crossed quotes seen so far", lambda f: float(f.crossed_quotes)
    ),
    _feed(
        "zero_bid_quotes",
        "quotes",
        "zero-bid quotes seen so far",
        lambda f: float(f.zero_bid_quotes),
    ),
    _feed(
        "one_sided_quotes",
        "quotes",
        "quotes missing a side seen so far",
        lambda f: float(f.one_sided_quotes),
    ),
    _feed(
        "oldest_leg_quote_age_seconds",
        "seconds",
        "age of the book leg quoted longest ago, a delayed quote's delay included (inf until "
        "every leg has been quoted; NaN before the first market event)",
        lambda f: f.oldest_leg_quote_age_seconds,
        family=Family(
            "condor_feed_oldest_leg_quote_age_seconds",
            "Age of the book leg quoted longest ago at the latest snapshot, seconds",
            note="a delayed quote's delay included; +Inf until every leg is quoted",
        ),
    ),
    _feed(
        "connected",
        "",
        "connected to the broker and the broker to its servers (always true in a replay)",
        lambda f: f.connected,
        kind=FLAG,
    ),
    _feed(
        "never_connected",
        "",
        "a live feed that has not reached the broker once since the monitor started "
        "(false in a replay); the book is empty meanwhile, every greek NaN",
        lambda f: f.never_connected,
        kind=FLAG,
    ),
    _feed(
        "failed_connection_attempts",
        "attempts",
        "connection attempts to the broker failed since the last connection (0 in a replay)",
        lambda f: float(f.failed_connection_attempts),
    ),
    _feed(
        "denied_instruments",
        "instruments",
        "instruments refused market data: with the fallback to delayed data they are priced "
        "from delayed quotes, without any data their legs are model-priced",
        lambda f: float(f.denied_instruments),
    ),
    _feed(
        "delayed_instruments",
        "instruments",
        "instruments the broker quotes delayed (its market data type 3 or 4, or IB's 10167; "
        "0 in a replay)",
        lambda f: float(len(f.delayed_instruments)),
        state="feed_delayed_instruments",
        count=True,
    ),
    _feed(
        "rejected_ticks",
        "ticks",
        "prices and index values outside the sanity bounds so far (counted, never used)",
        lambda f: float(f.rejected_ticks),
    ),
    _feed(
        "failed_batches",
        "batches",
        "batches whose snapshot raised so far (the rules ran on the last good book)",
        lambda f: float(f.failed_batches),
    ),
    _feed(
        "failed_batches_in_row",
        "batches",
        "failed batches since the last one that gave a snapshot",
        lambda f: float(f.failed_batches_in_row),
    ),
    _feed(
        "events",
        "events",
        "market events (quotes and index values) processed so far",
        lambda f: float(f.events),
    ),
    _feed(
        "delayed_data_minutes",
        "minutes",
        "how far behind the broker's delayed quotes are ([feed] delayed_data_minutes)",
        lambda f: f.delayed_data_minutes,
    ),
)

FEED: View[FeedHealth] = View("feed", "feed", FEED_READINGS)
