"""Expiry day: time to the settlement moment to the second, 0DTE greeks to the last second,
legs past their settlement marked at the index print they settle against, with no greeks,
out of the stress and the scenario grid, and their P&L kept.

Reference values: QuantLib's Black calculator (0DTE greeks) and intrinsic values worked by
hand against the prints the market state was given.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import QuantLib as ql  # noqa: N813 - the name QuantLib users know

from monitor.config import PricingConfig, ScenariosConfig, StressConfig
from monitor.domain.instruments import NEW_YORK, parse_instrument_id
from monitor.domain.quotes import EventBatch, IndexValue, Quote
from monitor.market.prints import PRINT_WINDOW
from monitor.market.state import MarketState
from monitor.portfolio.book import aggregate
from monitor.portfolio.model import Leg, Portfolio, Strategy, StrategyKind
from monitor.portfolio.scenarios import ScenarioEngine
from monitor.portfolio.stress import DOWN5, Horizon, StressEngine
from monitor.pricing.expiry import SECONDS_PER_YEAR, year_fraction
from monitor.pricing.valuation import Valuer

RATE = 0.04
SETTINGS = PricingConfig(rate=RATE, smile="quotes")
BETA = {
    "vix_points_per_spx_pct": SETTINGS.vix_points_per_spx_pct,
    "vx_response_half_life_days": ScenariosConfig().vx_response_half_life_days,
}
APRIL = "SPX 20260417"  # AM: the opening quotation of Friday 2026-04-17, 09:30 ET
WEEKLY = "SPXW 20260305"  # PM: the close of Thursday 2026-03-05, 16:00 ET
IDS = (
    "SPX",
    "VIX",
    "VX 20260318",
    *(f"{APRIL} {leg}" for leg in ("P6800", "P6850", "C6700", "C6900", "C6950")),
    *(f"{WEEKLY} {r}{k}" for k in (6790, 6800, 6810) for r in "CP"),
)
UNIVERSE = {i: parse_instrument_id(i) for i in IDS}


def ny(day: str, hhmmss: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmmss}").replace(tzinfo=NEW_YORK)


def feed(market: MarketState, at: datetime, *events: object) -> None:
    market.apply(EventBatch(at, tuple(events)))  # type: ignore[arg-type]


def watched(ids: list[str]) -> tuple[MarketState, Valuer]:
    market = MarketState(UNIVERSE)
    legs = [UNIVERSE[i] for i in ids]
    market.prints.watch(legs)
    return market, Valuer(legs, UNIVERSE, SETTINGS)


def book_of(
    legs: list[tuple[str, int, float]], kind: StrategyKind = StrategyKind.IRON_CONDOR
) -> Portfolio:
    made = tuple(Leg(kind.value, UNIVERSE[i], q, entry_price=e) for i, q, e in legs)
    return Portfolio(Path("test.toml"), (Strategy(kind.value, kind, made),))


def test_time_to_expiry_runs_to_the_settlement_second() -> None:
    weekly, april = UNIVERSE[f"{WEEKLY} P6800"], UNIVERSE[f"{APRIL} P6850"]
    assert year_fraction(weekly, ny("2026-03-05", "15:59:59")) * SECONDS_PER_YEAR == (
        pytest.approx(1.0, abs=1e-6)
    )
    assert year_fraction(weekly, ny("2026-03-05", "16:00:00")) == 0.0
    assert year_fraction(april, ny("2026-04-17", "09:29:30")) * SECONDS_PER_YEAR == (
        pytest.approx(30.0, abs=1e-6)
    )
    # Across the March daylight-saving change: wall-clock days, one hour short.
    seconds = year_fraction(april, ny("2026-03-06", "09:30:00")) * SECONDS_PER_YEAR
    assert seconds == pytest.approx(42 * 86_400 - 3_600, abs=1e-3)


@pytest.mark.parametrize("seconds_left", [600.0, 60.0, 10.0, 1.0])
def test_0dte_greeks_stay_finite_to_the_last_second(seconds_left: float) -> None:
    """Quotes priced by QuantLib at 12 % a moment before the 16:00 close: every leg is
    valued at its own mid's vol, and its delta, gamma and vega are QuantLib's at that vol."""
    now = ny("2026-03-05", "16:00:00") - timedelta(seconds=seconds_left)
    ids = [i for i in IDS if i.startswith(WEEKLY)]
    market, valuer = watched(ids)
    years = seconds_left / SECONDS_PER_YEAR
    spx = 6800.0
    forward = spx * math.exp(RATE * years)
    quotes: list[object] = [IndexValue("SPX", spx), IndexValue("VIX", 15.0)]
    for i in ids:
        inst = UNIVERSE[i]
        kind = ql.Option.Call if inst.is_call else ql.Option.Put
        payoff = ql.PlainVanillaPayoff(kind, inst.strike)
        mid = ql.BlackCalculator(payoff, forward, 0.12 * math.sqrt(years), 1.0).value()
        quotes.append(Quote(i, bid=mid * math.exp(-RATE * years), ask=mid))
    feed(market, now, *quotes)
    for value in valuer.value(market, now):
        inst = value.instrument
        assert value.years == pytest.approx(years, rel=1e-9)
        assert not value.settling
        fields = (value.price, value.delta, value.gamma, value.vega, value.theta)
        assert all(math.isfinite(x) for x in fields), (inst.id, fields)
        kind = ql.Option.Call if inst.is_call else ql.Option.Put
        calc = ql.BlackCalculator(
            ql.PlainVanillaPayoff(kind, inst.strike),
            value.underlying_price,
            value.iv * math.sqrt(value.years),
            math.exp(-RATE * value.years),
        )
        assert value.delta == pytest.approx(calc.deltaForward(), rel=1e-6, abs=1e-9), inst.id
        assert value.gamma == pytest.approx(calc.gammaForward(), rel=1e-6, abs=1e-9), inst.id
        assert value.vega == pytest.approx(calc.vega(value.years), rel=1e-6, abs=1e-9), inst.id
    atm = next(v for v in valuer.value(market, now) if v.instrument.strike == 6800.0)
    assert atm.gamma > 0.0  # the money strike keeps its gamma to the last second


def test_an_am_leg_is_marked_at_the_opening_print_from_0930() -> None:
    """SPX prints 6,800 at 09:29:58 and 6,810 at 09:30:01 (the opening), then runs to 6,900:
    the April 6,850 put settles at 6,850 - 6,810 = 40 points and stays there."""
    ids = [f"{APRIL} P6850", f"{APRIL} C6700"]
    market, valuer = watched(ids)
    feed(market, ny("2026-04-17", "09:29:58"), IndexValue("SPX", 6800.0), IndexValue("VIX", 17))
    before = valuer.value(market, ny("2026-04-17", "09:29:58"))
    assert not any(v.settling for v in before)
    assert all(v.delta != 0.0 and math.isfinite(v.gamma) for v in before)
    feed(market, ny("2026-04-17", "09:30:01"), IndexValue("SPX", 6810.0))
    for hhmmss, spx in (("09:30:01", 6810.0), ("10:45:00", 6900.0), ("15:00:00", 6700.0)):
        if spx != 6810.0:
            feed(market, ny("2026-04-17", hhmmss), IndexValue("SPX", spx))
        put, call = valuer.value(market, ny("2026-04-17", hhmmss))
        assert put.settling
        assert call.settling
        assert put.settlement_value == call.settlement_value == 6810.0
        assert put.price == pytest.approx(40.0)  # 6,850 - 6,810
        assert call.price == pytest.approx(110.0)  # 6,810 - 6,700
        for value in (put, call):
            greeks = (value.delta, value.gamma, value.vega, value.theta, value.vanna, value.charm)
            assert greeks == (0.0,) * 6
            assert value.reason is None
            assert value.spot == 6810.0  # its distance is from the settlement


def test_a_pm_leg_is_marked_at_the_last_print_to_the_close() -> None:
    ids = [f"{WEEKLY} P6800", f"{WEEKLY} C6790"]
    market, valuer = watched(ids)
    feed(market, ny("2026-03-05", "15:59:58"), IndexValue("SPX", 6795.5), IndexValue("VIX", 15))
    feed(market, ny("2026-03-05", "16:00:00"), IndexValue("SPX", 6796.25))  # the close
    feed(market, ny("2026-03-05", "16:00:05"), IndexValue("SPX", 6780.0))  # after it
    put, call = valuer.value(market, ny("2026-03-05", "16:00:05"))
    assert put.settling
    assert put.settlement_value == 6796.25
    assert put.price == pytest.approx(3.75)  # 6,800 - 6,796.25
    assert call.price == pytest.approx(6.25)  # 6,796.25 - 6,790


def test_a_print_not_seen_leaves_the_leg_unvalued_with_the_reason() -> None:
    """A run started at 10:00 on the April expiry day never saw the opening: no guess at a
    later price, the P&L unknown."""
    leg = f"{APRIL} P6850"
    market, valuer = watched([leg])
    feed(market, ny("2026-04-17", "10:00:00"), IndexValue("SPX", 6900.0))
    (value,) = valuer.value(market, ny("2026-04-17", "10:00:00"))
    assert value.settling
    assert math.isnan(value.price)
    assert math.isnan(value.settlement_value)
    assert "SPX opening print" in (value.reason or "")
    # A first value later than PRINT_WINDOW after 09:30 is not the opening either.
    late = MarketState(UNIVERSE)
    late.prints.watch([UNIVERSE[leg]])
    at = ny("2026-04-17", "09:30:00") + PRINT_WINDOW + timedelta(seconds=1)
    feed(late, at, IndexValue("SPX", 6805.0))
    assert late.prints.print_of(UNIVERSE[leg]) is None


def test_a_vx_future_settles_at_the_vix_opening_print() -> None:
    leg = "VX 20260318"
    market, valuer = watched([leg])
    feed(market, ny("2026-03-18", "09:29:59"), IndexValue("VIX", 19.0), Quote(leg, 18.9, 19.0))
    feed(market, ny("2026-03-18", "09:30:02"), IndexValue("VIX", 19.4))
    feed(market, ny("2026-03-18", "11:00:00"), IndexValue("VIX", 22.0), Quote(leg, 21.9, 22.0))
    (value,) = valuer.value(market, ny("2026-03-18", "11:00:00"))
    assert value.settling
    assert value.price == 19.4
    portfolio = book_of([(leg, 2, 18.0)], StrategyKind.SECOND_ENGINE)
    risk = aggregate(portfolio, [value], 6800.0, **BETA).total
    assert risk.pnl_usd == pytest.approx(2 * 1000 * (19.4 - 18.0))
    assert (risk.vix_vega_usd_per_point, risk.beta_delta_usd_per_pct) == (0.0, 0.0)


def test_settled_legs_keep_their_pnl_and_leave_the_stress_and_the_grid() -> None:
    """An April condor (6,800 / 6,850 puts, 6,900 / 6,950 calls) settled at the open with SPX
    at 6,810: only the short 6,850 put is worth anything (40 points). At 11:00 SPX is 6,600
    and VIX 30, but its P&L is the settlement's, and neither the stress nor the grid moves
    it."""
    condor = [
        (f"{APRIL} P6800", 10, 12.0),
        (f"{APRIL} P6850", -10, 30.0),
        (f"{APRIL} C6900", -10, 8.0),
        (f"{APRIL} C6950", 10, 3.0),
    ]
    market, valuer = watched([i for i, _, _ in condor])
    feed(market, ny("2026-04-17", "09:30:01"), IndexValue("SPX", 6810.0), IndexValue("VIX", 18))
    now = ny("2026-04-17", "11:00:00")
    feed(market, now, IndexValue("SPX", 6600.0), IndexValue("VIX", 30.0))
    values = valuer.value(market, now)
    assert [v.price for v in values] == [0.0, 40.0, 0.0, 0.0]
    book = aggregate(book_of(condor), values, 6600.0, **BETA)
    # 1,000 $ a point: long put -12, short put -(40 - 30), short call +8, long call -3.
    assert book.total.pnl_usd == pytest.approx(-17_000.0)
    pnl = book.strategies[0].pnl
    assert pnl.credit_usd == pytest.approx(23_000.0)
    assert pnl.pnl_pct_of_credit == pytest.approx(-17_000.0 / 23_000.0 * 100.0)
    assert book.total.delta_usd_per_pct == 0.0
    assert book.total.gamma_usd_per_pct == 0.0
    stress = StressEngine(StressConfig(), RATE, 60.0).view(book, 30.0, now)
    for horizon in Horizon:
        point = stress.at(DOWN5, horizon)
        assert (point.condor_usd, point.book_usd) == (0.0, 0.0), horizon
    grid = ScenarioEngine(ScenariosConfig(), RATE).grid(book)
    assert float(abs(grid.book_usd).max()) == 0.0
