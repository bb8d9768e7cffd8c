"""The table of measures: every risk field reaches the rule variables, the metrics, /state and
the docs through it, and the names that dashboards and rule packs use stay as they were."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from conftest import REPO, run_pipeline

from monitor import bundled
from monitor.docs_tables import render
from monitor.measures import (
    BOOK_SCOPE,
    EXPIRY_SCOPE,
    LEG_SCOPE,
    RISK_MEASURES,
    STRATEGY_SCOPE,
    UNDERLYING_SCOPE,
)
from monitor.metrics import risk_families
from monitor.portfolio.book import Book, Risk, total
from monitor.rules.variables import (
    BOOK_VARIABLES,
    SHORT_LEG_VARIABLES,
    STRATEGY_VARIABLES,
    book_values,
    leg_values,
    short_legs,
    strategy_values,
)
from monitor.snapshot import Snapshot
from monitor.state import state_document

FIELDS = [f.name for f in dataclasses.fields(Risk)]
# Each field a different value, so a getter that reads the wrong field shows.
PROBE = Risk(*(float(i + 1) for i in range(len(FIELDS))))


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    pipeline = run_pipeline(bundled.SESSION, bundled.PORTFOLIO, [REPO / "rules"], batches=50)
    assert pipeline.latest is not None
    return pipeline.latest


def test_every_risk_field_has_one_measure_reading_it() -> None:
    assert [m.key for m in RISK_MEASURES] == FIELDS
    for measure in RISK_MEASURES:
        assert measure.get(PROBE) == getattr(PROBE, measure.key), measure.key


def test_every_risk_field_reaches_the_rule_variables_of_each_scope() -> None:
    scopes = (
        (BOOK_SCOPE, BOOK_VARIABLES),
        (STRATEGY_SCOPE, STRATEGY_VARIABLES),
        (LEG_SCOPE, SHORT_LEG_VARIABLES),
    )
    for scope, variables in scopes:
        names = {v.name for v in variables}
        missing = [f for f in FIELDS if f"{scope.name}.{f}" not in names]
        assert missing == [], scope.name


def test_variables_metrics_and_state_read_the_same_numbers(snapshot: Snapshot) -> None:
    families = {f.name: f for f in risk_families(snapshot)}
    doc = json.loads(json.dumps(state_document(snapshot, [], "test")))
    book = book_values(snapshot)
    strategy = snapshot.book.strategies[0]
    strategy_vars = strategy_values(strategy)
    leg = short_legs(snapshot)[0]
    leg_vars = leg_values(leg)
    leg_doc = next(x for x in doc["legs"] if x["contract"] == leg.leg.instrument.id)
    for f in FIELDS:
        assert book[f"book.{f}"] == getattr(snapshot.book.total, f)
        assert doc["book"][f] == round(getattr(snapshot.book.total, f), 6)
        assert strategy_vars[f"strategy.{f}"] == getattr(strategy.risk, f)
        assert doc["strategies"][strategy.name][f] == round(getattr(strategy.risk, f), 6)
        assert leg_vars[f"leg.{f}"] == getattr(leg.risk, f)
        assert leg_doc["risk"][f] == round(getattr(leg.risk, f), 6)
        measure = next(m for m in RISK_MEASURES if m.key == f)
        for scope, item in ((STRATEGY_SCOPE, strategy), (LEG_SCOPE, leg)):
            name = scope.family(measure)
            assert name is not None, f
            (sample,) = [
                s
                for s in families[name].samples
                if tuple(s.labels[k] for k in scope.labels) == scope.label_values(item)
            ]
            assert sample.value == getattr(item.risk, f)


def test_the_risk_by_expiry_and_by_underlying_reaches_metrics_and_state(
    snapshot: Snapshot,
) -> None:
    families = {f.name: f for f in risk_families(snapshot)}
    doc = json.loads(json.dumps(state_document(snapshot, [], "test")))
    groups = (
        (EXPIRY_SCOPE, snapshot.book.by_expiry, doc["expiries"]),
        (UNDERLYING_SCOPE, snapshot.book.by_underlying, doc["underlyings"]),
    )
    for scope, items, shown in groups:
        assert [g.name for g in items] == list(shown)
        assert len(items) >= 2, scope.name  # the bundled book: SPX and VIX, two expiries
        summed, book = total(g.risk for g in items), snapshot.book.total
        for f in dataclasses.fields(summed):  # the same sums in another order
            assert math.isclose(getattr(summed, f.name), getattr(book, f.name), rel_tol=1e-12)
        for measure in RISK_MEASURES:
            name = scope.family(measure)
            assert name is not None, measure.key
            values = {s.labels[scope.labels[0]]: s.value for s in families[name].samples}
            for group in items:
                expected = measure.get(group.risk)
                assert values[group.name] == expected, (name, group.name)
                assert shown[group.name][measure.key] == round(expected, 6)


def test_every_field_of_the_book_reaches_an_output() -> None:
    """Each field of ``Book`` is read by a scope of the table of measures or, for the account
    size, by a row of the book's table of readings (test_view_measures)."""
    scoped = {"total": BOOK_SCOPE, "strategies": STRATEGY_SCOPE, "legs": LEG_SCOPE}
    scoped |= {"by_expiry": EXPIRY_SCOPE, "by_underlying": UNDERLYING_SCOPE}
    fields = {f.name for f in dataclasses.fields(Book)}
    assert fields - set(scoped) == {"account_size_usd"}


def test_strategies_and_the_book_sum_their_legs(snapshot: Snapshot) -> None:
    for strategy in snapshot.book.strategies:
        mine = [lr.risk for lr in snapshot.book.legs if lr.leg.strategy == strategy.name]
        assert total(mine) == strategy.risk
    assert total(s.risk for s in snapshot.book.strategies) == snapshot.book.total
    assert snapshot.book.total.vanna_usd_per_pct_per_vol_point != 0.0
    assert snapshot.book.total.charm_usd_per_pct_per_day != 0.0


def test_names_that_dashboards_and_rule_packs_use_are_kept() -> None:
    families = {STRATEGY_SCOPE.family(m): m.help for m in RISK_MEASURES if STRATEGY_SCOPE.family(m)}
    kept = {
        "condor_strategy_delta_dollars_per_spx_point": (
            "Delta as SPX-point-equivalent exposure, dollars per SPX point"
        ),
        "condor_strategy_delta_dollars_per_spx_pct": "Delta, dollars of P&L for a 1% SPX move",
        "condor_strategy_gamma_dollars_per_spx_pct": (
            "Gamma, change of the dollars-per-1% delta for a +1% SPX move"
        ),
        "condor_strategy_vega_dollars_per_vol_point": (
            "SPX-option vega, dollars per 1 implied-vol point"
        ),
        "condor_strategy_vix_vega_dollars_per_vix_point": (
            "VIX futures and options exposure, dollars per 1 point of their futures"
        ),
        "condor_strategy_theta_dollars_per_day": "Theta, dollars per calendar day",
        "condor_strategy_market_value_dollars": "Mark-to-model value, dollars (long positive)",
        "condor_strategy_beta_delta_dollars_per_spx_pct": (
            "Delta beta-weighted to SPX (VIX instruments included), dollars per 1% SPX move"
        ),
    }
    assert {k: families.get(k) for k in kept} == kept
    assert STRATEGY_SCOPE.labels == ("strategy",)


def test_the_docs_tables_are_the_generated_ones() -> None:
    """docs/rules.md's variables and README.md's risk metrics: run `make docs` when this
    fails."""
    for path, text in render(REPO).items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name}: run `make docs`"
