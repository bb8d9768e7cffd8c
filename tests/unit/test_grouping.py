"""Broker positions into strategies: condors found, the VIX layer tagged, file overrides."""

from __future__ import annotations

from pathlib import Path

from monitor.bundled import PORTFOLIO
from monitor.domain.instruments import parse_instrument_id
from monitor.domain.positions import Position
from monitor.portfolio.grouping import group_positions
from monitor.portfolio.model import Leg, Portfolio, Strategy, StrategyKind, load_portfolio

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


def test_the_bundled_portfolio_against_an_account_with_more_vix_positions() -> None:
    """Account positions of the VIX layer the file does not list join the file's layer: one
    SECOND-ENGINE strategy, never two of that name."""
    bundled = load_portfolio(PORTFOLIO)
    account = [Position(leg.instrument, leg.quantity) for leg in bundled.legs]
    account += positions(("VIX 20260415 C25", 10), ("VIX 20260415 C32", -10))
    grouped = group_positions(account, bundled, source=SOURCE)
    names = [s.name for s in grouped.portfolio.strategies]
    assert names == ["IC-APR17", "SECOND-ENGINE"]
    layer = shape(grouped.portfolio)["SECOND-ENGINE"][1]
    assert ("VIX 20260415 C25", 10) in layer
    assert ("VIX 20260318 C22", 40) in layer
    assert len(layer) == 5
    assert grouped.joined == (
        "VIX 20260415 C25 +10 joined SECOND-ENGINE",
        "VIX 20260415 C32 -10 joined SECOND-ENGINE",
    )
    assert grouped.differences == ()


def test_generated_names_never_repeat_a_file_strategy_name() -> None:
    """A condor the account holds beside the file's, under the name grouping would give it,
    and a VIX position when the file's only layer is not of kind second_engine."""
    ids = ("SPX 20260417 P6375", "SPX 20260417 P6425", "SPX 20260417 C7150", "SPX 20260417 C7200")
    file_legs = tuple(
        Leg("IC-SPX-20260417", parse_instrument_id(i), q)
        for i, q in zip(ids, (5, -5, -5, 5), strict=True)
    )
    hedge = (Leg("SECOND-ENGINE", parse_instrument_id("SPX 20260417 P6000"), 3),)
    overrides = Portfolio(
        Path("portfolio.toml"),
        (
            Strategy("IC-SPX-20260417", StrategyKind.IRON_CONDOR, file_legs),
            Strategy("SECOND-ENGINE", StrategyKind.OTHER, hedge),
        ),
        1e6,
    )
    book = positions(
        *zip(ids, (5, -5, -5, 5), strict=True),
        ("SPX 20260417 P6000", 3),
        ("SPX 20260417 P6300", 2),
        ("SPX 20260417 P6350", -2),
        ("SPX 20260417 C7225", -2),
        ("SPX 20260417 C7275", 2),
        ("VX 20260415", 1),
    )
    grouped = group_positions(book, overrides, source=SOURCE)
    names = [s.name for s in grouped.portfolio.strategies]
    assert len(names) == len(set(names))
    assert names == ["IC-SPX-20260417", "SECOND-ENGINE", "SECOND-ENGINE-2", "IC-SPX-20260417-2"]
    assert shape(grouped.portfolio)["SECOND-ENGINE-2"] == ("second_engine", [("VX 20260415", 1)])
