"""Broker positions into strategies: condors found, the VIX layer tagged, file overrides."""

from __future__ import annotations

from pathlib import Path

from monitor.domain.instruments import parse_instrument_id
from monitor.portfolio.grouping import Position, group_positions
from monitor.portfolio.model import Leg, Portfolio, Strategy, StrategyKind

SOURCE = Path("ib")


def positions(*pairs: tuple[str, int]) -> list[Position]:
    return [Position(parse_instrument_id(c), q) for c, q in pairs]


def shape(portfolio: Portfolio) -> dict[str, tuple[str, list[tuple[str, int]]]]:
    return {
        s.name: (s.kind.value, sorted((leg.instrument.id, leg.quantity) for leg in s.legs))
        for s in portfolio.strategies
    }


def test_condors_the_vix_layer_and_leftovers() -> None:
    book = positions(
        ("SPX 20260417 P6375", 15),
        ("SPX 20260417 P6425", -15),
        ("SPX 20260417 C7150", -15),
        ("SPX 20260417 C7200", 15),
        ("SPX 20260417 P6300", 5),  # a second, smaller condor further out
        ("SPX 20260417 P6350", -5),
        ("SPX 20260417 C7225", -5),
        ("SPX 20260417 C7275", 5),
        ("SPXW 20260410 P6500", -2),  # a lone short put: not a condor
        ("VX 20260415", 3),
        ("VIX 20260318 C22", 20),
        ("VIX 20260318 C27", -20),
    )
    grouped = group_positions(book, source=SOURCE)
    assert shape(grouped.portfolio) == {
        "SECOND-ENGINE": (
            "second_engine",
            [("VIX 20260318 C22", 20), ("VIX 20260318 C27", -20), ("VX 20260415", 3)],
        ),
        "IC-SPX-20260417": (
            "iron_condor",
            [
                ("SPX 20260417 C7150", -15),
                ("SPX 20260417 C7200", 15),
                ("SPX 20260417 P6375", 15),
                ("SPX 20260417 P6425", -15),
            ],
        ),
        "IC-SPX-20260417-2": (
            "iron_condor",
            [
                ("SPX 20260417 C7225", -5),
                ("SPX 20260417 C7275", 5),
                ("SPX 20260417 P6300", 5),
                ("SPX 20260417 P6350", -5),
            ],
        ),
        "OTHER-SPXW-20260410": ("other", [("SPXW 20260410 P6500", -2)]),
    }
    assert grouped.differences == ()


def test_an_unbalanced_condor_leaves_the_excess_as_other() -> None:
    book = positions(
        ("SPX 20260417 P6375", 6),
        ("SPX 20260417 P6425", -10),
        ("SPX 20260417 C7150", -10),
        ("SPX 20260417 C7200", 10),
    )
    got = shape(group_positions(book, source=SOURCE).portfolio)
    assert got["IC-SPX-20260417"][1] == [
        ("SPX 20260417 C7150", -6),
        ("SPX 20260417 C7200", 6),
        ("SPX 20260417 P6375", 6),
        ("SPX 20260417 P6425", -6),
    ]
    assert got["OTHER-SPX-20260417"] == (
        "other",
        [("SPX 20260417 C7150", -4), ("SPX 20260417 C7200", 4), ("SPX 20260417 P6425", -4)],
    )


def test_the_portfolio_file_names_strategies_and_the_account_gives_quantities() -> None:
    ids = ("SPX 20260417 P6375", "SPX 20260417 P6425", "SPX 20260417 C7150", "SPX 20260417 C7200")
    legs = tuple(
        Leg("MY-CONDOR", parse_instrument_id(i), q)
        for i, q in zip(ids, (50, -50, -50, 50), strict=True)
    )
    overrides = Portfolio(
        Path("portfolio.toml"), (Strategy("MY-CONDOR", StrategyKind.IRON_CONDOR, legs),), 1e6
    )
    book = positions(*zip(ids, (40, -40, -40, 40), strict=True), ("VX 20260415", 2))
    grouped = group_positions(book, overrides, source=SOURCE)
    assert set(shape(grouped.portfolio)) == {"MY-CONDOR", "SECOND-ENGINE"}
    assert shape(grouped.portfolio)["MY-CONDOR"][1][0] == ("SPX 20260417 C7150", -40)
    assert len(grouped.differences) == 4
    assert "MY-CONDOR SPX 20260417 P6375: file +50, account +40" in grouped.differences[0]
    assert grouped.portfolio.account_size_usd == 1e6
