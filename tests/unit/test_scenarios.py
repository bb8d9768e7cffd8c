"""Scenario grid, beta-weighted delta and groupings: every cell checked independently."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import QuantLib as ql  # noqa: N813 - the name QuantLib users know

from monitor.config import ScenariosConfig
from monitor.domain.instruments import NEW_YORK, parse_instrument_id
from monitor.portfolio.book import aggregate
from monitor.portfolio.model import Leg, Portfolio, Strategy, StrategyKind
from monitor.portfolio.scenarios import ScenarioEngine
from monitor.pricing.valuation import LegValue
from monitor.signals.term_structure import vx_response

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)
RATE = 0.04
PUT = parse_instrument_id("SPX 20260417 P6425")
CALL = parse_instrument_id("VIX 20260318 C22")
VX2 = parse_instrument_id("VX 20260415")


def ql_price(call: bool, forward: float, strike: float, vol: float, years: float) -> float:
    kind = ql.Option.Call if call else ql.Option.Put
    payoff = ql.PlainVanillaPayoff(kind, strike)
    return ql.BlackCalculator(
        payoff, forward, vol * math.sqrt(max(years, 1e-12)), math.exp(-RATE * years)
    ).value()


def value(inst, forward: float, vol: float, years: float, delta: float = 0.0) -> LegValue:
    priced = inst.strike is not None and math.isfinite(forward)
    price = ql_price(inst.is_call, forward, inst.strike, vol, years) if priced else forward
    return LegValue(inst, forward, years, vol, False, price, delta, 0.0, 0.0, 0.0)


def snapshot(values: list[LegValue], quantities: list[int], kinds: list[StrategyKind]):
    strategies = tuple(
        Strategy(f"S{n}", kind, (Leg(f"S{n}", v.instrument, q),))
        for n, (v, q, kind) in enumerate(zip(values, quantities, kinds, strict=True))
    )
    portfolio = Portfolio(Path(__file__), strategies)
    return aggregate(
        portfolio, values, 6800.0, vix_points_per_spx_pct=-1.2, vx_response_half_life_days=60.0
    )


SPEC = ScenariosConfig(
    spx_moves_pct=[-10.0, -5.0, 0.0, 5.0],
    vol_shocks_points=[-5.0, 0.0, 10.0],
    vx_response_half_life_days=60.0,
    decay_days=1.0,
)


def test_short_put_cells_match_quantlib_revaluation() -> None:
    put = value(PUT, 6830.0, 0.17, 0.123)
    grid = ScenarioEngine(SPEC, RATE).grid(snapshot([put], [-50], [StrategyKind.IRON_CONDOR]))
    for i, move in enumerate(SPEC.spx_moves_pct):
        for j, shock in enumerate(SPEC.vol_shocks_points):
            later = 0.123 - 1.0 / 365.0
            moved = ql_price(False, 6830.0 * (1 + move / 100), 6425.0, 0.17 + shock / 100, later)
            expected = -50 * 100 * (moved - put.price)
            assert grid.condor_usd[i, j] == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert np.all(grid.hedge_usd == 0.0)
    assert np.array_equal(grid.book_usd, grid.condor_usd)
    # Short puts lose most when SPX falls and vol rises.
    pnl, move, shock = grid.worst(grid.book_usd)
    assert (move, shock) == (-10.0, 10.0)
    assert pnl == grid.book_usd.min()


def test_vix_future_and_option_move_with_the_term_structure_response() -> None:
    future = value(VX2, 18.25, math.nan, 43 / 365)
    option = value(CALL, 17.0, 0.9, 15 / 365)
    spec = ScenariosConfig(
        spx_moves_pct=[0.0], vol_shocks_points=[0.0, 10.0], vx_response_half_life_days=60.0
    )
    grid = ScenarioEngine(spec, RATE).grid(
        snapshot([future, option], [3, 20], [StrategyKind.SECOND_ENGINE] * 2)
    )
    future_move = 10.0 * 0.5 ** (43 / 60)
    option_move = 10.0 * 0.5 ** (15 / 60)
    expected = 3 * 1000 * future_move + 20 * 100 * (
        ql_price(True, 17.0 + option_move, 22.0, 0.9, 15 / 365) - option.price
    )
    assert grid.hedge_usd[0, 1] == pytest.approx(expected, rel=1e-9)
    assert grid.hedge_usd[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert np.all(grid.condor_usd == 0.0)


def test_unvalued_leg_makes_its_cells_nan_not_zero() -> None:
    put = value(PUT, math.nan, 0.17, 0.123)
    grid = ScenarioEngine(SPEC, RATE).grid(snapshot([put], [-50], [StrategyKind.IRON_CONDOR]))
    assert np.all(np.isnan(grid.book_usd))
    assert all(math.isnan(x) for x in grid.worst(grid.book_usd))


def test_beta_weighted_delta_and_groupings() -> None:
    put = value(PUT, 6830.0, 0.17, 0.123, delta=-0.15)
    future = value(VX2, 18.25, math.nan, 43 / 365, delta=1.0)
    book = snapshot([put, future], [-50, 3], [StrategyKind.IRON_CONDOR, StrategyKind.SECOND_ENGINE])
    spx_part = -50 * 100 * -0.15 * 6800.0 * 0.01  # $ per 1% SPX from the puts
    vix_part = 3 * 1000 * vx_response(43.0, 60.0) * -1.2  # VX2 falls when SPX rises
    assert book.total.beta_delta_usd_per_pct == pytest.approx(spx_part + vix_part, rel=1e-12)
    assert [g.name for g in book.by_underlying] == ["SPX", "VIX"]
    assert book.by_underlying[1].risk.vix_vega_usd_per_point == 3000.0
    assert [g.name for g in book.by_expiry] == ["SPX 2026-04-17", "VIX 2026-04-15"]
    assert book.by_expiry[0].risk.delta_usd_per_pct == pytest.approx(spx_part, rel=1e-12)


def test_vx_response_halves_every_half_life() -> None:
    assert vx_response(0.0, 60.0) == 1.0
    assert vx_response(60.0, 60.0) == 0.5
    assert vx_response(120.0, 60.0) == 0.25


def test_change_over_a_window_of_session_time() -> None:
    from datetime import timedelta

    from monitor.signals.history import Change

    change = Change(timedelta(minutes=15))
    assert math.isnan(change.update(NOW, 100.0))  # no history yet
    assert math.isnan(change.update(NOW + timedelta(minutes=14), 130.0))
    assert change.update(NOW + timedelta(minutes=15), 160.0) == 60.0  # against 10:00
    assert change.update(NOW + timedelta(minutes=29), 150.0) == 20.0  # against 10:14
    assert change.update(NOW + timedelta(minutes=31), 140.0) == -20.0  # against 10:15


def test_account_relative_variables() -> None:
    from dataclasses import replace

    from monitor.rules.variables import book_values
    from monitor.snapshot import snapshot_of

    put = replace(value(PUT, 6830.0, 0.17, 0.123, delta=-0.15), vega=10.0)
    book = snapshot([put], [-50], [StrategyKind.IRON_CONDOR])
    values = book_values(snapshot_of(NOW, book))
    assert math.isnan(values["book.gamma_pct_of_account"])  # no account size: never fires
    sized = snapshot_of(
        NOW, replace(book, account_size_usd=500_000.0), delta_change_15m_usd_per_pct=-2_500.0
    )
    values = book_values(sized)
    # -50 puts x $100 x vega 10 x 0.01 = -$500 per vol point: -0.1 % of $500,000.
    assert values["book.vega_pct_of_account"] == pytest.approx(-0.1, rel=1e-12)
    assert values["book.delta_change_15m_pct_of_account"] == pytest.approx(-0.5)
