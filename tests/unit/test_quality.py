"""Hedge quality: beta and correlation of bar P&Ls, and carry, worked by hand."""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta

import pytest

from monitor.config import SignalsConfig
from monitor.domain.instruments import NEW_YORK, parse_instrument_id
from monitor.portfolio.book import Book, LegRisk, Risk, StrategyRisk
from monitor.portfolio.model import Leg, StrategyKind
from monitor.pricing.valuation import LegValue
from monitor.signals.quality import HedgeQualityTracker, beta_correlation, carry
from monitor.signals.term_structure import TermStructure

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)


def test_beta_and_correlation_by_hand() -> None:
    condor = [-100.0, 50.0, -200.0, 250.0]  # mean 0, sum of squares 112,500
    hedge = [10.0, -5.0, 20.0, -25.0]  # exactly -0.1 x condor
    beta, corr = beta_correlation(hedge, condor)
    assert beta == pytest.approx(-0.1)
    assert corr == pytest.approx(-1.0)
    # condor (1, 2, 3), hedge (1, 3, 2), about zero: sum h c = 1 + 6 + 6 = 13, sum c^2 = 14,
    # sum h^2 = 14: beta = corr = 13/14.
    beta, corr = beta_correlation([1.0, 3.0, 2.0], [1.0, 2.0, 3.0])
    assert beta == pytest.approx(13 / 14)
    assert corr == pytest.approx(13 / 14)


def test_a_layer_gaining_on_every_bar_the_condors_lose_is_a_working_hedge() -> None:
    """A steady selloff: the condors lose on every bar, less each time, while the layer gains
    more each time. About their means the two series are perfectly correlated (+1: both
    rise), which fired HedgeMovesWithCondor on a hedge doing its job; about zero every bar
    is an offset: sum h c = -(300 x 20 + 250 x 40 + 200 x 60 + 150 x 80 + 100 x 100) =
    -50,000, sum c^2 = 225,000, sum h^2 = 22,000."""
    condor = [-300.0, -250.0, -200.0, -150.0, -100.0]
    hedge = [20.0, 40.0, 60.0, 80.0, 100.0]
    assert statistics.correlation(hedge, condor) == pytest.approx(1.0)  # what the rule saw
    beta, corr = beta_correlation(hedge, condor)
    assert beta == pytest.approx(-50_000 / 225_000)
    assert corr == pytest.approx(-50_000 / math.sqrt(225_000 * 22_000))  # -0.71
    # A layer that loses with the condors (a short where a long belongs) still reads +1.
    assert beta_correlation([-h for h in hedge], condor)[1] == pytest.approx(
        50_000 / math.sqrt(225_000 * 22_000)
    )


# VX1 18.0 at 15 days, VX2 19.0 at 43 days, spot VIX 17.5.
TERM = TermStructure(
    17.5,
    18.0,
    19.0,
    "VX 20260318",
    "VX 20260415",
    15.0,
    43.0,
    curve=(("VX 20260318", 15.0, 18.0), ("VX 20260415", 43.0, 19.0)),
)


def test_flat_layers_give_nan() -> None:
    assert math.isnan(beta_correlation([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])[0])
    assert math.isnan(beta_correlation([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])[1])
    assert beta_correlation([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])[0] == 0.0
    # A steady P&L is movement: condor 5 a bar, hedge 1, 2, 3: beta 30/75, corr 30/sqrt(75 x 14)
    beta, corr = beta_correlation([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    assert (beta, corr) == (pytest.approx(0.4), pytest.approx(30 / math.sqrt(75 * 14)))
    with pytest.raises(ValueError, match="pair up"):
        beta_correlation([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="min_bars"):
        SignalsConfig(quality_lookback_bars=5, quality_min_bars=6)


def _leg(contract: str, quantity: int, strategy: str, risk: Risk) -> LegRisk:
    inst = parse_instrument_id(contract)
    leg = Leg(strategy, inst, quantity)
    value = LegValue(inst, 18.0, 0.1, 0.8, False, 1.0, 0.5, 0.0, 0.0, 0.0)  # not read by carry
    return LegRisk(leg, value, risk)


def _book(condor_value: float, hedge_value: float) -> Book:
    """The documented example: a condor earning 1,200 $ of theta a day; a layer of 2 VX2
    futures (VX2 19.0 at 43 days, VX1 18.0 at 15 days: VX2 rolls 1/28 of a point a day) and
    40 VIX 22/27 call spreads on the March future (delta 0.30 - 0.15 = 0.15 per spread,
    theta -1.50 $ a day per spread; March rolls (18.0 - 17.5) / 15 a day)."""
    long_calls = Risk(vix_vega_usd_per_point=1200.0, theta_usd_per_day=-100.0)
    short_calls = Risk(vix_vega_usd_per_point=-600.0, theta_usd_per_day=40.0)
    legs = (
        _leg("VX 20260415", 2, "SE", Risk(vix_vega_usd_per_point=2000.0)),
        _leg("VIX 20260318 C22", 40, "SE", long_calls),
        _leg("VIX 20260318 C27", -40, "SE", short_calls),
    )
    strategies = (
        StrategyRisk(
            "IC",
            StrategyKind.IRON_CONDOR,
            Risk(theta_usd_per_day=1200.0, market_value_usd=condor_value),
            0,
            0,
        ),
        StrategyRisk("SE", StrategyKind.SECOND_ENGINE, Risk(market_value_usd=hedge_value), 0, 0),
    )
    return Book(legs, strategies, Risk())


def test_carry_of_the_documented_book() -> None:
    hedge, theta, ratio = carry(_book(0.0, 0.0), TERM)
    # Futures: -2,000 $/pt x 1/28 pt a day = -71.43 $; spreads: -(1,200 - 600) x 0.5/15
    # = -20 $ of roll, plus theta -100 + 40 = -60 $: -151.43 $ a day in all.
    assert hedge == pytest.approx(-2000.0 / 28 - 20.0 - 60.0)
    assert theta == 1200.0
    assert ratio == pytest.approx(100.0 * (2000.0 / 28 + 80.0) / 1200.0)  # 12.6 %


def test_tracker_statistics_and_bar_averaged_carry() -> None:
    tracker = HedgeQualityTracker(
        SignalsConfig(bar_minutes=5, quality_lookback_bars=4, quality_min_bars=3)
    )
    condor = [0.0, -100.0, -50.0, -250.0, 0.0, 10.0]
    hedge = [0.0, 10.0, 5.0, 25.0, 0.0, 0.0]
    view = None
    for i, (c, h) in enumerate(zip(condor, hedge, strict=True)):
        view = tracker.update(NOW + timedelta(minutes=5 * i, seconds=1), _book(c, h), TERM)
    assert view is not None
    # Bar closes 0, -100, -50, -250, 0 are complete (the sixth bar is open): P&Ls -100, 50,
    # -200, 250 and 10, -5, 20, -25: hedge = -0.1 x condor.
    assert view.bars == 4
    assert view.beta == pytest.approx(-0.1)
    assert view.correlation == pytest.approx(-1.0)
    assert view.carry_ratio_pct == pytest.approx(100.0 * (2000.0 / 28 + 80.0) / 1200.0)
    tracker.reset()
    fresh = tracker.update(NOW + timedelta(minutes=40), _book(0.0, 0.0), TERM)
    assert fresh.bars == 0
    assert math.isnan(fresh.beta)
    assert math.isnan(fresh.carry_ratio_pct)  # no completed bar yet
