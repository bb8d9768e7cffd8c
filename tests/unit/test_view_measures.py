"""The tables of readings of the snapshot's views (the indexes, the book's counts, the term
structure, the scenarios' worst cells, the hedge, the signals, the events, the session, the
feed and the journal): every field of the snapshot and of each view reaches a rule variable,
a metric or /state through them, each row reads the field it names, and the names that
dashboards and rule packs use stay as they were."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import REPO, run_pipeline

from monitor import bundled
from monitor.config import HedgeConfig, PricingConfig
from monitor.domain.health import FeedHealth, StorageHealth
from monitor.market.hours import MarketView
from monitor.measures import HEDGE, LEG_SCOPE, STRATEGY_SCOPE, Reading, View
from monitor.metrics import (
    SNAPSHOT_VIEWS,
    Samples,
    add_samples,
    item_samples,
    labelled_samples,
    view_families,
)
from monitor.portfolio.book import Book, LegRisk, StrategyRisk
from monitor.portfolio.model import Leg
from monitor.portfolio.pnl import StrategyPnl
from monitor.pricing.smiles import ChainFit, FitStatus, SmileView
from monitor.pricing.svi import SviFitReason
from monitor.pricing.valuation import LegValue
from monitor.readings import JOURNAL, LEG_READINGS, SMILE_FIT_READINGS, STRATEGY_READINGS, VIEWS
from monitor.rules.expressions import VarType
from monitor.rules.variables import BOOK_VARIABLES, book_values, leg_values, strategy_values
from monitor.signals.board import SignalsView
from monitor.signals.breadth import BreadthView
from monitor.signals.events import EventView
from monitor.signals.hedge import CallSpread, HedgeView
from monitor.signals.indicators import IndicatorView
from monitor.signals.quality import QualityView
from monitor.signals.term_structure import TermStructure
from monitor.snapshot import Snapshot, snapshot_of
from monitor.state import state_document

TYPES: dict[str, type] = {
    "term": TermStructure,
    "hedge": HedgeView,
    "feed": FeedHealth,
    "signals.spx": IndicatorView,
    "signals.vix": IndicatorView,
    "signals.vx1": IndicatorView,
    "signals.vx2": IndicatorView,
    "breadth": BreadthView,
    "hedge quality": QualityView,
    "events": EventView,
    "market": MarketView,
    "journal": StorageHealth,
    "smile": SmileView,
}
TYPED = [v for v in VIEWS if v.name in TYPES]
# Fields no output shows, each with the reason; a new field must reach an output or be here.
NOT_SHOWN = {
    ("term", "curve"): "the input of the per-future roll; its points are the vx1..vx4 rows",
    ("smile", "chains"): "each expiry's fit: the rows of SMILE_FIT_READINGS (test below)",
}
# Fields of the snapshot shown outside the tables of readings, each with where.
SHOWN_ELSEWHERE = {
    "time": "/state time and condor_snapshot_time_seconds (state.py, metrics.py)",
    "scenarios": "also its whole grid, the family condor_scenario_pnl_dollars (metrics.py)",
}
SIGNALS_ELSEWHERE = {
    "bar_minutes": "/state signals.bar_minutes (state.py)",
    "known": "not a reading: while false every number of the signal views reads NaN",
}
# The hedge's /state dict is its dataclass (``state.py``): every field of it is shown there.
WHOLE_IN_STATE = {"hedge"}


def _probe(cls: type) -> Any:
    """An instance with a different value in each number field, so a getter that reads the
    wrong field shows; text fields get their name, flags alternate."""
    values: dict[str, Any] = {}
    for i, f in enumerate(dataclasses.fields(cls)):
        kind = str(f.type)
        if "bool" in kind:
            values[f.name] = i % 2 == 0
        elif "int" in kind:
            values[f.name] = i + 1
        elif "float" in kind:
            values[f.name] = float(i) + 0.5
        elif "str" in kind and "frozenset" not in kind:
            values[f.name] = f.name
        elif "frozenset" in kind:
            values[f.name] = frozenset(f"x{k}" for k in range(i + 1))
        elif "ChainFit" in kind:
            values[f.name] = (
                ChainFit(
                    "SPX 2026-04-17",
                    FitStatus.FITTED,
                    SviFitReason.OK,
                    12,
                    0.4,
                    3.5,
                    butterfly_free=False,
                    atm_vol_pct=17.0,
                    smoothed=True,
                ),
            )
        elif "CallSpread" in kind:
            values[f.name] = CallSpread(20.5, 25.5, 110.0, 390.0, 21.6, 33.0)
        else:
            values[f.name] = f.default
    return cls(**values)


def _read(obj: object, key: str) -> Any:
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def _shown(reading: Reading[Any]) -> bool:
    return reading.variable is not None or reading.family is not None or reading.state is not None


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    pipeline = run_pipeline(
        bundled.SESSION,
        bundled.PORTFOLIO,
        [REPO / "rules"],
        batches=400,
        pricing=PricingConfig(smile="svi"),
    )
    assert pipeline.latest is not None
    return pipeline.latest


def test_every_field_of_the_snapshot_reaches_a_table() -> None:
    fields = {f.name for f in dataclasses.fields(Snapshot)}
    reached = {v.path.split(".")[0] for v in VIEWS if v.path}
    reached |= {r.key.split(".")[0] for v in VIEWS if not v.path for r in v.readings}
    assert "book" in reached  # and its risk through the table of measures (test_measures)
    assert fields - reached == set(SHOWN_ELSEWHERE) - reached
    signals = {f.name for f in dataclasses.fields(SignalsView)}
    parts = {v.path.split(".")[1] for v in VIEWS if v.path.startswith("signals.")}
    assert signals - parts == set(SIGNALS_ELSEWHERE)


@pytest.mark.parametrize("view", TYPED, ids=lambda v: v.name)
def test_every_field_and_property_reaches_an_output(view: View[Any]) -> None:
    cls = TYPES[view.name]
    names = [f.name for f in dataclasses.fields(cls)]
    names += [n for n, _ in inspect.getmembers(cls, lambda m: isinstance(m, property))]
    reached = {r.key.split(".")[0] for r in view.readings if _shown(r)}
    if view.name in WHOLE_IN_STATE:
        reached |= {f.name for f in dataclasses.fields(cls)}
    missing = {n for n in names if n not in reached}
    assert missing == {n for v, n in NOT_SHOWN if v == view.name}, view.name
    assert all(_shown(r) for r in view.readings)


@pytest.mark.parametrize("view", TYPED, ids=lambda v: v.name)
def test_each_row_reads_the_field_it_names_with_its_type(view: View[Any]) -> None:
    probe = _probe(TYPES[view.name])
    for r in view.readings:
        value, expected = r.get(probe), _read(probe, r.key)
        if r.type is VarType.NUMBER:
            assert isinstance(value, float), r.key
            if isinstance(expected, frozenset):  # a set is shown by its size
                expected = len(expected)
            assert value == float(expected) / r.per, r.key
        elif r.type is VarType.BOOL:
            assert isinstance(value, bool), r.key
            assert value is expected, r.key
        else:
            assert value is None or isinstance(value, str), r.key
            assert value == expected, r.key


def test_a_family_is_one_name_with_one_help_and_labels_that_fit() -> None:
    rows = [r for v in VIEWS for r in v.readings if r.family is not None]
    for name in {r.family.name for r in rows}:  # type: ignore[union-attr]
        same = [r for r in rows if r.family.name == name]  # type: ignore[union-attr]
        family = same[0].family
        assert family is not None
        assert all(r.family == family for r in same), name
        assert all(r.type in {VarType.NUMBER, VarType.BOOL} for r in same), name
        fixed = [r for r in same if r.labelled is None]
        assert all(len(r.labels) == len(family.labels) for r in fixed), name
        assert len({r.labels for r in fixed}) == len(fixed), name


def _state_at(doc: dict[str, Any], view: View[Any]) -> dict[str, Any]:
    """Where a view's /state keys are in the document."""
    top = {"index", "book", "feed"}
    named = {
        "term": "term_structure",
        "scenario": "scenarios",
        "stress": "stress",
        "hedge": "hedge",
        "events": "next_event",
        "market": "market",
        "journal": "journal",
        "smile": "smile",
        "account": "account",
    }
    if view.name in top:
        return doc
    if view.name in named:
        return doc[named[view.name]]  # type: ignore[no-any-return]
    signals = doc["signals"]
    if view.name == "breadth":
        return signals["breadth"]  # type: ignore[no-any-return]
    if view.name == "hedge quality":
        return signals["hedge_quality"]  # type: ignore[no-any-return]
    return signals["indicators"][view.name.split(".")[1]]  # type: ignore[no-any-return]


def test_variables_metrics_and_state_read_the_same_numbers(snapshot: Snapshot) -> None:
    values = book_values(snapshot)
    doc = json.loads(json.dumps(state_document(snapshot, [], "test")))
    families = view_families(SNAPSHOT_VIEWS, snapshot)
    journal: Samples = {}
    add_samples(JOURNAL, snapshot.storage, journal)
    samples = {
        (f.name, tuple(s.labels[k] for k in sorted(s.labels))): s.value
        for f in [*families, *journal.values()]
        for s in f.samples
    }
    assert len({f.name for f in families}) == len(families)  # one family per name
    checked = 0
    for view in VIEWS:
        item = view.view(snapshot)
        for r in view.readings:
            value = r.get(item)
            if r.variable is not None:
                assert _same(values[r.variable], value), r.variable
            if r.family is not None:
                labels, sample = r.sample(item)
                named = dict(zip(r.family.labels, labels, strict=True))
                key = (r.family.name, tuple(named[k] for k in sorted(named)))
                expected = float(value) if isinstance(value, bool) else value
                assert _same(samples[key], expected), r.key
                assert _same(sample, expected), r.key
            if r.state is not None:
                shown = _state_at(doc, view)[r.state]
                if isinstance(value, float) and not r.count:
                    assert shown == (round(value, 6) if math.isfinite(value) else None), r.key
                else:
                    assert shown == value, r.key
            checked += 1
    assert checked == sum(len(v.readings) for v in VIEWS)
    assert list(doc["hedge"]) == [f.name for f in dataclasses.fields(HedgeView)]


def test_an_unknown_hedge_reads_nan_and_shows_no_spread() -> None:
    empty = snapshot_of(datetime(2026, 3, 3, 15, tzinfo=UTC), Book.unknown())
    values = book_values(empty)
    for r in HEDGE.readings:
        if r.variable is not None and r.type is VarType.NUMBER:
            assert math.isnan(float(values[r.variable])), r.variable
    assert values["hedge.in_band"] is False
    names = {f.name for f in view_families((HEDGE,), empty)}
    assert names == {
        "condor_hedge_ratio_percent",
        "condor_hedge_band_percent",
        "condor_hedge_to_add",
    }
    band = next(f for f in view_families((HEDGE,), empty) if f.name == "condor_hedge_band_percent")
    config = HedgeConfig()
    assert [s.value for s in band.samples] == [config.band_low_pct, config.band_high_pct]
    assert isinstance(empty.hedge, HedgeView)


# The names in use before the tables: dashboards, rule packs and the docs read them.
KEPT_VARIABLES = [
    "term.vx1",
    "term.vx2",
    "term.vx1_minus_vx2",
    "term.vx1_vx2_ratio",
    "term.vix_minus_vx1",
    "term.inverted",
    "term.vx1_days",
    "term.vx2_days",
    "term.vx3",
    "term.vx4",
    "term.contango",
    "term.constant_maturity_30d",
    "term.vx1_roll_points_per_day",
    "term.vx2_roll_points_per_day",
    "hedge.ratio_pct",
    "hedge.band_low_pct",
    "hedge.band_high_pct",
    "hedge.condor_loss_usd_per_vol_point",
    "hedge.gain_usd_per_vol_point",
    "hedge.vx2_futures_to_add",
    "hedge.call_spreads_to_add",
    "hedge.spread_long_strike",
    "hedge.spread_short_strike",
    "hedge.spread_debit_usd",
    "hedge.spread_max_gain_usd",
    "hedge.spread_break_even",
    "feed.data_age_seconds",
    "feed.bad_lines",
    "feed.crossed_quotes",
    "feed.zero_bid_quotes",
    "feed.one_sided_quotes",
    "feed.oldest_leg_quote_age_seconds",
    "feed.connected",
    "feed.never_connected",
    "feed.failed_connection_attempts",
    "feed.denied_instruments",
    "feed.delayed_instruments",
    "feed.rejected_ticks",
    "feed.failed_batches",
    "feed.failed_batches_in_row",
]
KEPT_BOOL = {"term.inverted", "term.contango", "feed.connected", "feed.never_connected"}
KEPT_FAMILIES = {
    "condor_vix_future_price": ("VIX future mid, VIX points", ("tenor",)),
    "condor_vix_term_spread_points": (
        "VIX term-structure spreads, VIX points: VX1 - VX2 (above 0: backwardation), VIX - VX1",
        ("spread",),
    ),
    "condor_vix_term_vx1_vx2_ratio": ("VX1 / VX2 (above 1: backwardation)", ()),
    "condor_vix_constant_maturity_30d_points": (
        "VX1 and VX2 blended to a 30-day tenor, VIX points",
        (),
    ),
    "condor_vix_roll_points_per_day": (
        "Roll yield, VIX points per calendar day (positive in contango: a long future's loss)",
        ("tenor",),
    ),
    "condor_vix_future_days_to_settlement": (
        "Calendar days to the future's final settlement",
        ("tenor",),
    ),
    "condor_hedge_ratio_percent": (
        "Second-engine gain / iron condors' loss for a +1 SPX-vol-point shock, percent",
        (),
    ),
    "condor_hedge_band_percent": ("The hedge-ratio band, percent", ("edge",)),
    "condor_hedge_to_add": (
        "Contracts that bring the hedge ratio to the band's middle (negative: fewer)",
        ("instrument",),
    ),
    "condor_hedge_spread_strike_points": (
        "The suggested front-month VIX call spread: strikes and break-even, VIX points",
        ("point",),
    ),
    "condor_hedge_spread_dollars": (
        "The suggested call spread's debit and maximum gain, dollars per spread",
        ("measure",),
    ),
    "condor_feed_oldest_leg_quote_age_seconds": (
        "Age of the book leg quoted longest ago at the latest snapshot, seconds",
        (),
    ),
}
KEPT_SAMPLES = {
    "condor_vix_future_price": [("VX1",), ("VX2",), ("VX3",), ("VX4",)],
    "condor_vix_term_spread_points": [("vx1_minus_vx2",), ("vix_minus_vx1",)],
    "condor_vix_roll_points_per_day": [("VX1",), ("VX2",)],
    "condor_vix_future_days_to_settlement": [("VX1",), ("VX2",)],
    "condor_hedge_band_percent": [("low",), ("high",)],
    "condor_hedge_to_add": [("vx2_future",), ("vix_call_spread",)],
    "condor_hedge_spread_strike_points": [("long_strike",), ("short_strike",), ("break_even",)],
    "condor_hedge_spread_dollars": [("debit",), ("max_gain",)],
}
# The rows that were written by hand before their tables: name -> type.
KEPT_OTHER_VARIABLES: dict[str, VarType] = {
    **dict.fromkeys(["spx", "vix", "ad_nyse"], VarType.NUMBER),
    **{
        f"book.{name}": VarType.NUMBER
        for name in (
            "account_size_usd",
            "delta_change_15m_pct_of_account",
            "delta_change_15m_usd_per_pct",
            "gamma_pct_of_account",
            "model_priced_legs",
            "unvalued_legs",
            "vega_pct_of_account",
        )
    },
    **{
        f"breadth.{n}": VarType.NUMBER
        for n in ("ad_change", "ad_line", "divergence", "lookback_minutes", "spx_change_pct")
    },
    "events.hours_to_next": VarType.NUMBER,
    "events.hours_to_next_fomc": VarType.NUMBER,
    "events.next_kind": VarType.STRING,
    "events.today": VarType.BOOL,
    **{
        f"hedge.{n}": VarType.NUMBER
        for n in (
            "carry_ratio_pct",
            "carry_usd_per_day",
            "condor_theta_usd_per_day",
            "quality_bars",
            "quality_beta",
            "quality_correlation",
        )
    },
    "journal.available": VarType.BOOL,
    "journal.free_mib": VarType.NUMBER,
    "journal.held_transitions": VarType.NUMBER,
    "market.early_close": VarType.BOOL,
    "market.open": VarType.BOOL,
    "market.minutes_to_close": VarType.NUMBER,
    "market.minutes_to_open": VarType.NUMBER,
    **{
        f"scenario.{n}": VarType.NUMBER
        for n in (
            "book_worst_spx_move_pct",
            "book_worst_usd",
            "book_worst_vol_shock_points",
            "condor_worst_usd",
        )
    },
    **{
        f"signals.{series}_{n}": VarType.NUMBER
        for series in ("spx", "vix", "vx1", "vx2")
        for n in ("bars_since_cross", "macd", "macd_cross", "macd_histogram", "macd_signal", "rsi")
    },
}
# name -> (labels, label values of the samples; None: the values come from the view)
KEPT_OTHER_FAMILIES: dict[str, tuple[tuple[str, ...], list[tuple[str, ...]] | None]] = {
    "condor_index_value": (("index",), [("SPX",), ("VIX",), ("AD-NYSE",)]),
    "condor_event_next_hours": (("kind",), None),
    "condor_event_next_fomc_hours": ((), [()]),
    "condor_event_today": ((), [()]),
    **{
        f"condor_indicator_{n}": (("series",), [("spx",), ("vix",), ("vx1",), ("vx2",)])
        for n in ("macd", "macd_signal", "macd_histogram", "macd_cross", "rsi")
    },
    "condor_breadth_ad_change_issues": ((), [()]),
    "condor_breadth_spx_change_percent": ((), [()]),
    "condor_breadth_divergence": ((), [()]),
    "condor_hedge_quality_beta": ((), [()]),
    "condor_hedge_quality_correlation": ((), [()]),
    "condor_carry_dollars_per_day": (("layer",), [("hedge",), ("condor",)]),
    "condor_hedge_carry_ratio_percent": ((), [()]),
    "condor_journal_available": ((), [()]),
    "condor_journal_free_bytes": ((), [()]),
    "condor_journal_held_transitions": ((), [()]),
    "condor_journal_dropped_transitions": ((), [()]),
}
KEPT_TERM_STATE = {
    "vx1_id",
    "vx2_id",
    "vx1",
    "vx2",
    "vx3",
    "vx4",
    "vx1_days",
    "vx2_days",
    "contango",
    "inverted",
    "vx1_minus_vx2_points",
    "vx1_vx2_ratio",
    "vix_minus_vx1_points",
    "constant_maturity_30d_points",
    "vx1_roll_points_per_day",
    "vx2_roll_points_per_day",
}


def test_names_that_dashboards_and_rule_packs_use_are_kept(snapshot: Snapshot) -> None:
    types = {v.name: v.type for v in BOOK_VARIABLES}
    for name in KEPT_VARIABLES:
        expected = VarType.BOOL if name in KEPT_BOOL else VarType.NUMBER
        assert types.get(name) is expected, name
    families = {f.name: (f.help, f.labels) for view in VIEWS for f in view.families()}
    assert {k: families.get(k) for k in KEPT_FAMILIES} == KEPT_FAMILIES
    for name, labels in KEPT_SAMPLES.items():
        rows = [r.labels for v in VIEWS for r in v.readings if r.family and r.family.name == name]
        assert rows == labels, name
    for name, kind in KEPT_OTHER_VARIABLES.items():
        assert types.get(name) is kind, name
    for name, (labels, values) in KEPT_OTHER_FAMILIES.items():
        rows = [r for v in VIEWS for r in v.readings if r.family and r.family.name == name]
        assert rows, name
        assert all(r.family and r.family.labels == labels for r in rows), name
        if values is not None:
            assert [r.labels for r in rows] == values, name
    doc = state_document(snapshot, [], "test")
    assert set(doc["term_structure"]) >= KEPT_TERM_STATE
    assert isinstance(doc["feed_delayed_instruments"], int)
    assert "feed_data_age_seconds" in doc


# Fields of a strategy's and a leg's rows that no row reads, each with the reason.
ITEM_NOT_SHOWN = {
    "risk": "their risk: the table of measures (test_measures)",
    "value.instrument": "the leg's own instrument (leg.instrument)",
    "value.gamma": "per contract; in $ as the position's gamma (Risk)",
    "value.vega": "per contract; in $ as the position's vega (Risk)",
    "value.theta": "per contract; in $ as the position's theta (Risk)",
    "value.vanna": "per contract; in $ as the position's vanna (Risk)",
    "value.charm": "per contract; in $ as the position's charm (Risk)",
}


def _paths(cls: type, prefix: str = "", nested: tuple[type, ...] = ()) -> set[str]:
    out: set[str] = set()
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        inner = next((n for n in nested if n.__name__ == str(f.type)), None)
        if inner is not None:
            out |= _paths(inner, name + ".")
        else:
            out.add(name)
    return out


def test_every_field_of_a_strategy_and_a_leg_reaches_an_output() -> None:
    shown = ITEM_NOT_SHOWN
    strategy = _paths(StrategyRisk, nested=(StrategyPnl,))
    # The strategy's P&L is its risk's pnl_usd (the table of measures) too.
    assert strategy - {r.key for r in STRATEGY_READINGS} == {"risk", "pnl.pnl_usd"}
    leg = _paths(LegRisk, nested=(Leg, LegValue))
    assert leg - {r.key for r in LEG_READINGS} == set(shown)
    for r in (*STRATEGY_READINGS, *LEG_READINGS):
        assert r.variable is not None or r.family is not None or r.state is not None, r.key


def test_strategy_and_leg_rows_reach_variables_metrics_and_state(snapshot: Snapshot) -> None:
    doc = json.loads(json.dumps(state_document(snapshot, [], "test")))
    items: Samples = {}
    item_samples(STRATEGY_SCOPE, STRATEGY_READINGS, snapshot, items)
    item_samples(LEG_SCOPE, LEG_READINGS, snapshot, items)
    samples = {
        (f.name, tuple(s.labels[k] for k in f.samples[0].labels)): s.value
        for f in items.values()
        for s in f.samples
    }
    for strategy in snapshot.book.strategies:
        values = strategy_values(strategy)
        for r in STRATEGY_READINGS:
            value = r.get(strategy)
            if r.variable is not None:
                assert _same(values[r.variable], value), r.variable
            if r.family is not None:
                assert _same(samples[(r.family.name, (strategy.name,))], value), r.key
    assert len(doc["legs"]) == len(snapshot.book.legs)
    for lr, entry in zip(snapshot.book.legs, doc["legs"], strict=True):
        values = leg_values(lr)
        for r in LEG_READINGS:
            value = r.get(lr)
            if r.variable is not None:
                assert _same(values[r.variable], value), r.variable
            if r.family is not None:
                key = (r.family.name, (lr.leg.strategy, lr.leg.instrument.id))
                assert _same(samples[key], value), r.key
            if r.state is not None:
                if isinstance(value, float) and not r.count:
                    expected = round(value, 6) if math.isfinite(value) else None
                    assert entry[r.state] == expected, r.key
                else:
                    assert entry[r.state] == value, r.key
        assert isinstance(entry["quantity"], int)
        assert entry["contract"] == lr.leg.instrument.id


def test_each_expiry_smile_reaches_metrics_and_state(snapshot: Snapshot) -> None:
    fields = {f.name for f in dataclasses.fields(ChainFit)}
    fields |= {n for n, _ in inspect.getmembers(ChainFit, lambda m: isinstance(m, property))}
    assert fields - {r.key for r in SMILE_FIT_READINGS} == {"name"}  # the expiry label
    chains = snapshot.smile.chains
    assert snapshot.smile.enabled
    assert chains  # the bundled book's SPX expiries, fitted
    assert any(c.in_use for c in chains)
    doc = json.loads(json.dumps(state_document(snapshot, [], "test")))
    items: Samples = {}
    labelled_samples(chains, lambda c: (c.name,), SMILE_FIT_READINGS, items)
    samples = {(f.name, s.labels["expiry"]): s.value for f in items.values() for s in f.samples}
    for chain in chains:
        entry = doc["smile"]["expiries"][chain.name]
        for r in SMILE_FIT_READINGS:
            value = r.get(chain)
            if r.family is not None:
                assert _same(samples[(r.family.name, chain.name)], value), r.key
            assert r.state is not None
            if isinstance(value, float):
                expected = round(value, 6) if math.isfinite(value) else None
                assert entry[r.state] == expected, r.key
            else:
                assert entry[r.state] == value, r.key
    values = book_values(snapshot)
    assert values["smile.enabled"] is True
    assert values["smile.fewest_strikes"] == min(c.strikes_used for c in chains if c.in_use)
