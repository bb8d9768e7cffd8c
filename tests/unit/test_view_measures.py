"""The tables of readings of the term structure, the hedge view and the feed health: every
field reaches a rule variable, a metric or /state through them, each row reads the field it
names, and the names that dashboards and rule packs use stay as they were."""

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
from monitor.config import HedgeConfig
from monitor.domain.health import FeedHealth
from monitor.measures import FEED, HEDGE, TERM, Reading, View
from monitor.metrics import view_families
from monitor.portfolio.book import Book
from monitor.rules.expressions import VarType
from monitor.rules.variables import BOOK_VARIABLES, book_values
from monitor.signals.hedge import CallSpread, HedgeView
from monitor.signals.term_structure import TermStructure
from monitor.snapshot import Snapshot, snapshot_of
from monitor.state import state_document

VIEWS: tuple[View[Any], ...] = (TERM, HEDGE, FEED)
TYPES: dict[str, type] = {"term": TermStructure, "hedge": HedgeView, "feed": FeedHealth}
# Fields no output shows, each with the reason; a new field must reach an output or be here.
NOT_SHOWN = {
    ("term", "curve"): "the input of the per-future roll; its points are the vx1..vx4 rows",
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
    pipeline = run_pipeline(bundled.SESSION, bundled.PORTFOLIO, [REPO / "rules"], batches=400)
    assert pipeline.latest is not None
    return pipeline.latest


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.name)
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


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.name)
def test_each_row_reads_the_field_it_names_with_its_type(view: View[Any]) -> None:
    probe = _probe(TYPES[view.name])
    for r in view.readings:
        value, expected = r.get(probe), _read(probe, r.key)
        if r.type is VarType.NUMBER:
            assert isinstance(value, float), r.key
            if isinstance(expected, frozenset):  # a set is shown by its size
                expected = len(expected)
            assert value == float(expected), r.key
        elif r.type is VarType.BOOL:
            assert isinstance(value, bool), r.key
            assert value is expected, r.key
        else:
            assert value is None or isinstance(value, str), r.key
            assert value == expected, r.key


def test_a_family_is_one_name_with_one_help_and_labels_that_fit() -> None:
    for view in VIEWS:
        for family in view.families():
            rows = [r for r in view.readings if r.family is not None]
            same = [r for r in rows if r.family.name == family.name]  # type: ignore[union-attr]
            assert all(r.family == family for r in same), family.name
            assert all(r.type is VarType.NUMBER for r in same), family.name
            assert all(len(r.labels) == len(family.labels) for r in same), family.name
            assert len({r.labels for r in same}) == len(same), family.name


def test_variables_metrics_and_state_read_the_same_numbers(snapshot: Snapshot) -> None:
    values = book_values(snapshot)
    doc = json.loads(json.dumps(state_document(snapshot, [], "test")))
    state = {"term": doc["term_structure"], "hedge": doc["hedge"], "feed": doc}
    for view in VIEWS:
        item = view.view(snapshot)
        samples = {
            (f.name, tuple(s.labels[k] for k in sorted(s.labels))): s.value
            for f in view_families(view, snapshot)
            for s in f.samples
        }
        for r in view.readings:
            value = r.get(item)
            if r.variable is not None:
                assert _same(values[r.variable], value), r.variable
            if r.family is not None:
                labels = tuple(v for _, v in sorted(zip(r.family.labels, r.labels, strict=True)))
                assert _same(samples[(r.family.name, labels)], value), r.key
            if r.state is not None:
                shown = state[view.name][r.state]
                if isinstance(value, float) and not r.count:
                    assert shown == (round(value, 6) if math.isfinite(value) else None), r.key
                else:
                    assert shown == value, r.key
    assert list(doc["hedge"]) == [f.name for f in dataclasses.fields(HedgeView)]


def test_an_unknown_hedge_reads_nan_and_shows_no_spread() -> None:
    empty = snapshot_of(datetime(2026, 3, 3, 15, tzinfo=UTC), Book.unknown())
    values = book_values(empty)
    for r in HEDGE.readings:
        if r.variable is not None and r.type is VarType.NUMBER:
            assert math.isnan(float(values[r.variable])), r.variable
    assert values["hedge.in_band"] is False
    names = {f.name for f in view_families(HEDGE, empty)}
    assert names == {
        "condor_hedge_ratio_percent",
        "condor_hedge_band_percent",
        "condor_hedge_to_add",
    }
    band = next(f for f in view_families(HEDGE, empty) if f.name == "condor_hedge_band_percent")
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
    doc = state_document(snapshot, [], "test")
    assert set(doc["term_structure"]) >= KEPT_TERM_STATE
    assert isinstance(doc["feed_delayed_instruments"], int)
    assert "feed_data_age_seconds" in doc
