"""A strategy's own P&L against its entry: credit, P&L in $ and as % of the credit and of the
max loss, break-evens, per leg and per book; entry prices from the file or IB's average cost.
Every expected number is worked by hand in the comments."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from monitor.domain.instruments import parse_instrument_id
from monitor.domain.positions import Position
from monitor.errors import ConfigError
from monitor.portfolio.book import Book, aggregate
from monitor.portfolio.grouping import group_positions
from monitor.portfolio.model import Leg, Portfolio, Strategy, StrategyKind, load_portfolio
from monitor.pricing.valuation import LegValue

# The bundled book's entries (its opening mids) and marks later in the day, per unit.
CONDOR = {  # contract: (quantity, entry, mark)
    "SPX 20260417 P6375": (50, 26.15, 20.00),
    "SPX 20260417 P6425": (-50, 31.10, 24.50),
    "SPX 20260417 C7150": (-50, 21.95, 10.00),
    "SPX 20260417 C7200": (50, 15.15, 6.00),
}
LAYER = {
    "VX 20260415": (2, 18.20, 19.00),
    "VIX 20260318 C22": (40, 0.13, 0.50),
    "VIX 20260318 C27": (-40, 0.03, 0.10),
}


def _legs(name: str, spec: dict[str, tuple[int, float, float]]) -> tuple[Leg, ...]:
    return tuple(Leg(name, parse_instrument_id(c), q, e) for c, (q, e, _) in spec.items())


def _value(contract: str, mark: float) -> LegValue:
    inst = parse_instrument_id(contract)
    return LegValue(inst, 6600.0, 0.12, 0.2, False, mark, 0.0, 0.0, 0.0, 0.0)


def _book(condor: tuple[Leg, ...], layer: tuple[Leg, ...]) -> Portfolio:
    return Portfolio(
        Path("book.toml"),
        (
            Strategy("IC", StrategyKind.IRON_CONDOR, condor),
            Strategy("SE", StrategyKind.SECOND_ENGINE, layer),
        ),
        1_000_000.0,
    )


def _valued(portfolio: Portfolio) -> Book:
    marks = {**CONDOR, **LAYER}
    values = [_value(leg.instrument.id, marks[leg.instrument.id][2]) for leg in portfolio.legs]
    return aggregate(
        portfolio, values, 6600.0, vix_points_per_spx_pct=-1.0, vx_response_half_life_days=60.0
    )


def test_condor_credit_pnl_max_loss_and_break_evens_by_hand() -> None:
    book = _valued(_book(_legs("IC", CONDOR), _legs("SE", LAYER)))
    condor, layer = book.strategies
    pnl = condor.pnl
    # Credit: 31.10 - 26.15 + 21.95 - 15.15 = 11.75 points x 100 x 50 = 58,750 $.
    assert pnl.credit_usd == pytest.approx(58_750.0)
    # To close: 24.50 - 20.00 + 10.00 - 6.00 = 8.50 points; kept 3.25 x 100 x 50 = 16,250 $.
    assert pnl.pnl_usd == pytest.approx(16_250.0)
    assert condor.risk.pnl_usd == pytest.approx(16_250.0)
    # Both wings 50 wide: max loss (50 - 11.75) x 100 x 50 = 191,250 $.
    assert pnl.max_loss_usd == pytest.approx(191_250.0)
    assert pnl.pnl_pct_of_credit == pytest.approx(100 * 16_250 / 58_750)  # 27.66 %
    assert pnl.pnl_pct_of_max_loss == pytest.approx(100 * 16_250 / 191_250)  # 8.50 %
    assert pnl.break_even_low == pytest.approx(6425 - 11.75)  # 6,413.25
    assert pnl.break_even_high == pytest.approx(7150 + 11.75)  # 7,161.75
    # The short put alone: -50 x 100 x (24.50 - 31.10) = +33,000 $.
    short_put = next(lr for lr in book.legs if lr.leg.instrument.id == "SPX 20260417 P6425")
    assert short_put.risk.pnl_usd == pytest.approx(33_000.0)
    # The layer: VX 2 x 1,000 x 0.80 = 1,600; C22 40 x 100 x 0.37 = 1,480; C27 -40 x 100 x
    # 0.07 = -280: 2,800 $. Its options' credit: -(40 x 13 - 40 x 3) = -400 $ (a debit); no
    # percentages or break-evens outside iron condors.
    assert layer.pnl.pnl_usd == pytest.approx(2_800.0)
    assert layer.pnl.credit_usd == pytest.approx(-400.0)
    assert math.isnan(layer.pnl.max_loss_usd)
    assert math.isnan(layer.pnl.pnl_pct_of_credit)
    assert book.total.pnl_usd == pytest.approx(16_250.0 + 2_800.0)


def test_unequal_wings_and_a_losing_condor() -> None:
    """Put wing 50, call wing 25: the max loss is on the wider side. Marks past the credit."""
    legs = (
        Leg("IC", parse_instrument_id("SPX 20260417 P6375"), 10, 26.15),
        Leg("IC", parse_instrument_id("SPX 20260417 P6425"), -10, 31.10),
        Leg("IC", parse_instrument_id("SPX 20260417 C7150"), -10, 21.95),
        Leg("IC", parse_instrument_id("SPX 20260417 C7175"), 10, 18.00),
    )
    portfolio = Portfolio(Path("b.toml"), (Strategy("IC", StrategyKind.IRON_CONDOR, legs),))
    marks = {"P6375": 60.0, "P6425": 90.0, "C7150": 2.0, "C7175": 1.0}
    values = [_value(leg.instrument.id, marks[leg.instrument.id[-5:]]) for leg in legs]
    book = aggregate(
        portfolio, values, 6400.0, vix_points_per_spx_pct=-1.0, vx_response_half_life_days=60.0
    )
    pnl = book.strategies[0].pnl
    # Credit 31.10 - 26.15 + 21.95 - 18.00 = 8.90 points, 8,900 $; to close 90 - 60 + 2 - 1
    # = 31 points: P&L (8.90 - 31) x 100 x 10 = -22,100 $; max loss (50 - 8.90) x 1,000 =
    # 41,100 $, so -53.77 % of it and -248.3 % of the credit.
    assert pnl.credit_usd == pytest.approx(8_900.0)
    assert pnl.pnl_usd == pytest.approx(-22_100.0)
    assert pnl.max_loss_usd == pytest.approx(41_100.0)
    assert pnl.pnl_pct_of_max_loss == pytest.approx(-100 * 22_100 / 41_100)
    assert pnl.pnl_pct_of_credit == pytest.approx(-100 * 22_100 / 8_900)
    assert (pnl.break_even_low, pnl.break_even_high) == pytest.approx((6416.10, 7158.90))


def test_a_leg_without_an_entry_price_makes_its_strategy_and_the_book_nan() -> None:
    condor = _legs("IC", CONDOR)
    condor = (*condor[:3], Leg("IC", condor[3].instrument, condor[3].quantity))
    book = _valued(_book(condor, _legs("SE", LAYER)))
    ic, layer = book.strategies
    assert math.isnan(ic.pnl.credit_usd)
    assert math.isnan(ic.pnl.pnl_usd)
    assert math.isnan(ic.risk.pnl_usd)
    assert layer.pnl.pnl_usd == pytest.approx(2_800.0)  # the layer is still known
    assert math.isnan(book.total.pnl_usd)  # a partial sum would hide a leg


def test_entry_prices_from_the_file_else_ib_average_cost(tmp_path: Path) -> None:
    """IB's average cost is per contract with the multiplier in (and positive for shorts);
    the file's entry_price wins where it gives one."""
    file = tmp_path / "book.toml"
    file.write_text(
        "[[strategies]]\nname = 'IC'\nkind = 'iron_condor'\nlegs = [\n"
        "  { contract = 'SPX 20260417 P6375', quantity = 50, entry_price = 26.0 },\n"
        "  { contract = 'SPX 20260417 P6425', quantity = -50 },\n"
        "  { contract = 'SPX 20260417 C7150', quantity = -50 },\n"
        "  { contract = 'SPX 20260417 C7200', quantity = 50 },\n]\n"
    )
    overrides = load_portfolio(file)
    assert next(leg.entry_price for leg in overrides.legs) == 26.0
    assert math.isnan(overrides.legs[1].entry_price)
    positions = [
        Position(parse_instrument_id(c), q, cost)
        for c, q, cost in (
            ("SPX 20260417 P6375", 50, 2615.0),
            ("SPX 20260417 P6425", -50, 3110.0),
            ("SPX 20260417 C7150", -50, 2195.0),
            ("SPX 20260417 C7200", 50, math.nan),  # no average cost given
            ("VX 20260415", 2, 18_200.0),  # $1,000 a point
        )
    ]
    grouped = group_positions(positions, overrides, source=Path("IB account")).portfolio
    entries = {leg.instrument.id: leg.entry_price for leg in grouped.legs}
    assert entries["SPX 20260417 P6375"] == 26.0  # the file's
    assert entries["SPX 20260417 P6425"] == pytest.approx(31.10)
    assert entries["SPX 20260417 C7150"] == pytest.approx(21.95)
    assert math.isnan(entries["SPX 20260417 C7200"])
    assert entries["VX 20260415"] == pytest.approx(18.20)


@pytest.mark.parametrize("price", ["-1.5", "nan", "'12'"])
def test_a_bad_entry_price_names_its_field(tmp_path: Path, price: str) -> None:
    file = tmp_path / "book.toml"
    file.write_text(
        "[[strategies]]\nname = 'SE'\nkind = 'second_engine'\nlegs = [\n"
        f"  {{ contract = 'VX 20260415', quantity = 2, entry_price = {price} }},\n]\n"
    )
    with pytest.raises(ConfigError, match=r"strategies\[0\]\.legs\[0\]\.entry_price"):
        load_portfolio(file)
