"""The vol-coordinated stress: its VIX response calibrated on the bundled history of daily
closes, every point revalued by QuantLib's Black formula by hand, the close it decays to on
the NYSE calendar, and hedge coverage."""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pydantic
import pytest
from test_scenarios import CALL, PUT, RATE, VX2, ql_price, snapshot, value

from monitor.config import StressConfig
from monitor.domain.instruments import NEW_YORK
from monitor.portfolio.model import StrategyKind
from monitor.portfolio.stress import Horizon, StressEngine, next_close

HISTORY = Path(__file__).parents[1] / "fixtures" / "history" / "spx_vix_daily.csv"
NOW = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)  # a Tuesday, six hours before the close
HALF_LIFE = 60.0


def test_the_default_vix_response_is_the_least_squares_fit_of_the_bundled_history() -> None:
    with HISTORY.open() as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    assert len(rows) == 2515
    assert (rows[0]["date"], rows[-1]["date"]) == ("2012-09-28", "2022-09-27")
    spx = np.log([float(r["spx_close"]) for r in rows])
    vix = np.log([float(r["vix_close"]) for r in rows])
    r, y = np.diff(spx), np.diff(vix)
    config = StressConfig()
    for side, beta in ((r < 0, config.vix_log_beta_down), (r > 0, config.vix_log_beta_up)):
        fitted = float(np.sum(r[side] * y[side]) / np.sum(r[side] ** 2))
        assert beta == pytest.approx(fitted, abs=0.005)
    # The asymmetry the model keeps: VIX rises more on a fall than it drops on a rise.
    assert config.vix_log_beta_down < config.vix_log_beta_up < 0.0
    # 2020-03-16: SPX -12.0 %, VIX 57.83 -> 82.69. The fit says 57.83 x 2.14 = 123.5 for
    # that fall: a one-day crash beyond the fit's range is an overstatement, not a miss.
    crash = StressEngine(StressConfig(spx_moves_pct=[-12.0, -5.0]), RATE, HALF_LIFE)
    assert crash.vix_after(57.83)[0] > 82.69


def test_each_point_is_the_book_revalued_with_vix_and_vols_moved_by_the_model() -> None:
    years = 0.123  # the SPX put: 44.9 days, so its vol moves (30 / 44.9) ** 0.5 = 0.82 x VIX
    put = value(PUT, 6830.0, 0.17, years)
    future = value(VX2, 18.25, math.nan, 43 / 365)
    option = value(CALL, 17.0, 0.9, 15 / 365)
    book = snapshot(
        [put, future, option],
        [-50, 3, 20],
        [StrategyKind.IRON_CONDOR, StrategyKind.SECOND_ENGINE, StrategyKind.SECOND_ENGINE],
    )
    config = StressConfig(spx_moves_pct=[-10.0, -5.0, 3.0])
    view = StressEngine(config, RATE, HALF_LIFE).view(book, 18.0, NOW)
    to_close = 6.0 / (24.0 * 365.0)  # 10:00 to 16:00 ET, in years
    assert view.close_at == datetime(2026, 3, 3, 16, 0, tzinfo=NEW_YORK)
    assert view.hours_to_close == pytest.approx(6.0)
    for move in config.spx_moves_pct:
        beta = config.vix_log_beta_down if move < 0 else config.vix_log_beta_up
        vix = 18.0 * (1.0 + move / 100.0) ** beta
        dvix = vix - 18.0
        for horizon, decay in ((Horizon.NOW, 0.0), (Horizon.CLOSE, to_close)):
            point = view.at(move, horizon)
            assert point.vix_after == pytest.approx(vix, rel=1e-12)
            vol = 0.17 + dvix / 100.0 * (30.0 / (years * 365.0)) ** 0.5
            moved = ql_price(False, 6830.0 * (1 + move / 100), 6425.0, vol, years - decay)
            condor = -50 * 100 * (moved - put.price)
            vx_move = dvix * 0.5 ** (43 / HALF_LIFE)
            call_forward = 17.0 + dvix * 0.5 ** (15 / HALF_LIFE)
            call = ql_price(True, call_forward, 22.0, 0.9, 15 / 365 - decay)
            hedge = 3 * 1000 * vx_move + 20 * 100 * (call - option.price)
            assert point.condor_usd == pytest.approx(condor, rel=1e-9)
            assert point.hedge_usd == pytest.approx(hedge, rel=1e-9)
            assert point.book_usd == pytest.approx(condor + hedge, rel=1e-9)
            if condor < 0:
                assert point.coverage == pytest.approx(hedge / -condor, rel=1e-9)
            else:
                assert math.isnan(point.coverage)  # no loss to cover
    down = view.at(-5.0)
    assert down.condor_usd < 0 < down.hedge_usd  # the layer pays when the condor loses
    assert view.at(3.0).condor_usd > 0
    assert math.isnan(view.at(3.0).coverage)
    # Six hours of decay: the short put earns theta, the long VIX call loses it.
    assert view.at(-5.0, Horizon.CLOSE).condor_usd > down.condor_usd
    assert view.worst().spx_move_pct == -10.0


def test_short_tenors_move_up_to_the_cap_and_long_ones_less() -> None:
    engine = StressEngine(StressConfig(), RATE, HALF_LIFE)
    factors = engine.tenor_factor(np.array([0.0, 1.0, 7.5, 30.0, 120.0]))
    assert factors == pytest.approx([2.0, 2.0, 2.0, 1.0, 0.5])


def test_a_0dte_leg_at_the_close_is_worth_its_intrinsic_value() -> None:
    years = 6.0 / (24.0 * 365.0)  # an SPXW PM expiry at 16:00 today
    put = value(PUT, 6830.0, 0.17, years)
    book = snapshot([put], [-1], [StrategyKind.IRON_CONDOR])
    view = StressEngine(StressConfig(), RATE, HALF_LIFE).view(book, 18.0, NOW)
    point = view.at(-10.0, Horizon.CLOSE)
    intrinsic = 6425.0 - 6830.0 * 0.9
    assert point.condor_usd == pytest.approx(-100 * (intrinsic - put.price), rel=1e-9)


@pytest.mark.parametrize(
    ("now", "close"),
    [
        (
            datetime(2026, 3, 3, 15, 59, tzinfo=NEW_YORK),
            datetime(2026, 3, 3, 16, 0, tzinfo=NEW_YORK),
        ),
        (
            datetime(2026, 3, 6, 16, 0, tzinfo=NEW_YORK),
            datetime(2026, 3, 9, 16, 0, tzinfo=NEW_YORK),
        ),  # Friday: Monday's
        (
            datetime(2026, 3, 7, 12, 0, tzinfo=NEW_YORK),
            datetime(2026, 3, 9, 16, 0, tzinfo=NEW_YORK),
        ),  # Saturday
        (
            datetime(2026, 11, 25, 17, 0, tzinfo=NEW_YORK),
            datetime(2026, 11, 27, 13, 0, tzinfo=NEW_YORK),
        ),  # after Thanksgiving
        (
            datetime(2026, 12, 24, 9, 0, tzinfo=NEW_YORK),
            datetime(2026, 12, 24, 13, 0, tzinfo=NEW_YORK),
        ),  # an early close
    ],
)
def test_the_close_is_the_next_spx_close_on_the_nyse_calendar(
    now: datetime, close: datetime
) -> None:
    assert next_close(now) == close


def test_an_unvalued_leg_makes_every_point_nan_not_zero() -> None:
    put = value(PUT, math.nan, 0.17, 0.123)
    book = snapshot([put], [-50], [StrategyKind.IRON_CONDOR])
    view = StressEngine(StressConfig(), RATE, HALF_LIFE).view(book, 18.0, NOW)
    assert all(math.isnan(p.book_usd) and math.isnan(p.coverage) for p in view.points)
    assert math.isnan(view.worst().book_usd)


@pytest.mark.parametrize("vix", [math.nan, 0.0, -1.0, math.inf])
def test_without_a_usable_vix_the_vol_response_is_unknown(vix: float) -> None:
    put = value(PUT, 6830.0, 0.17, 0.123)
    book = snapshot([put], [-50], [StrategyKind.IRON_CONDOR])
    view = StressEngine(StressConfig(), RATE, HALF_LIFE).view(book, vix, NOW)
    assert all(math.isnan(p.condor_usd) and math.isnan(p.vix_after) for p in view.points)


def test_the_moves_must_include_minus_5() -> None:
    with pytest.raises(pydantic.ValidationError, match="must include -5"):
        StressConfig(spx_moves_pct=[-10.0, -3.0])
