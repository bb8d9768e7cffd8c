"""The table of measures: each risk number, written once with its unit, meaning and getter.

A ``Measure`` is one row (in the style of Home Assistant's entity descriptions): the rule
variables, the Prometheus families, the ``/state`` document and the docs tables are made from
these rows, never typed again. A ``RiskScope`` says where a ``Risk`` is read (the book, each
strategy, each leg) and under which variable prefix, metric prefix and labels it is shown.

To add a greek: compute it in ``pricing/valuation.py``, turn it into dollars as a field of
``portfolio.book.Risk`` (``leg_risk``), and add its row to ``RISK_MEASURES``; strategy and
book sums, variables, metrics, ``/state`` and docs follow (``make docs`` rewrites the tables).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from monitor.portfolio.book import LegRisk, Risk, StrategyRisk
from monitor.snapshot import Snapshot

T = TypeVar("T")
S = TypeVar("S")


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


def state_risk(risk: Risk, rounded: Callable[[float], float | None]) -> dict[str, float | None]:
    """The ``/state`` view of ``risk``: one key per measure shown there."""
    return {m.key: rounded(m.get(risk)) for m in RISK_MEASURES if m.state}
