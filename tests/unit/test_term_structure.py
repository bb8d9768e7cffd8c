"""VIX term structure: contango, the 30-day blend, roll yield, all worked by hand."""

from __future__ import annotations

import math

import pytest
from conftest import REPO, run_pipeline

from monitor import bundled
from monitor.market.state import MarketState
from monitor.signals.term_structure import TermStructure


def test_contango_blend_and_roll_by_hand() -> None:
    ts = TermStructure(16.0, 17.0, 18.0, "VX1", "VX2", vx1_days=15.0, vx2_days=43.0)
    assert ts.contango
    assert not ts.inverted
    # w1 = (43 - 30) / (43 - 15) = 13/28; 13/28 * 17 + 15/28 * 18 = 491/28
    assert ts.constant_maturity_30d == pytest.approx(491 / 28)
    assert ts.vx1_roll_points_per_day == pytest.approx(1 / 15)  # (17 - 16) / 15
    assert ts.vx2_roll_points_per_day == pytest.approx(1 / 28)  # (18 - 17) / (43 - 15)


def test_backwardation_and_edges() -> None:
    ts = TermStructure(24.0, 22.0, 21.0, "VX1", "VX2", vx1_days=40.0, vx2_days=68.0)
    assert ts.inverted
    assert not ts.contango
    assert ts.constant_maturity_30d == 22.0  # VX1 already beyond 30 days: weight 1 on VX1
    assert ts.vx1_roll_points_per_day == pytest.approx(-2 / 40)  # backwardation: negative
    unknown = TermStructure(16.0, 17.0, math.nan, "VX1", None, vx1_days=15.0)
    assert math.isnan(unknown.constant_maturity_30d)
    assert math.isnan(unknown.vx2_roll_points_per_day)


def test_the_bundled_day_has_four_futures_and_turns_to_backwardation() -> None:
    pipeline = run_pipeline(bundled.SESSION, bundled.PORTFOLIO, [REPO / "rules"], batches=5)
    term = pipeline.latest.term if pipeline.latest else None
    assert term is not None
    assert term.contango
    assert 14.9 < term.vx1_days < 15  # 2026-03-03 morning to the 2026-03-18 opening
    assert 42.9 < term.vx2_days < 43  # to 2026-04-15
    assert term.vx1 < term.vx2 < term.vx3 < term.vx4


def test_weeklies_join_the_curve_only_when_configured() -> None:
    from datetime import datetime

    from monitor.domain.instruments import NEW_YORK, parse_instrument_id
    from monitor.signals.term_structure import TermStructureTracker, is_monthly

    ids = ["VX 20260318", "VX 20260325", "VX 20260401", "VX 20260415", "VX 20260519"]
    universe = {i: parse_instrument_id(i) for i in ids}
    # 2026-03-25 and 04-01 are Wednesdays between the March and April monthly settlements.
    assert [is_monthly(universe[i]) for i in ids] == [True, False, False, True, True]
    now = datetime(2026, 3, 19, 10, 0, tzinfo=NEW_YORK)  # March has settled
    market = MarketState(dict(universe))
    monthly = TermStructureTracker(universe).update(market, now)
    assert (monthly.vx1_id, monthly.vx2_id) == ("VX 20260415", "VX 20260519")
    weekly = TermStructureTracker(universe, weeklies=True).update(market, now)
    assert (weekly.vx1_id, weekly.vx2_id) == ("VX 20260325", "VX 20260401")
    assert [c[0] for c in weekly.curve] == ids[1:]
