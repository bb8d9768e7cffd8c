"""Portfolio files: the example loads; wrong shapes are refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor import bundled
from monitor.errors import ConfigError
from monitor.portfolio.model import StrategyKind, load_portfolio

IC = """
[[strategies]]
name = "IC"
kind = "iron_condor"
legs = [
  { contract = "SPX 20260417 P6375", quantity = 50 },
  { contract = "SPX 20260417 P6425", quantity = -50 },
  { contract = "SPX 20260417 C7150", quantity = -50 },
  { contract = "SPX 20260417 C7200", quantity = 50 },
]
"""


def test_example_portfolio() -> None:
    portfolio = load_portfolio(bundled.PORTFOLIO)
    condor, engine = portfolio.strategies
    assert condor.kind is StrategyKind.IRON_CONDOR
    assert [leg.quantity for leg in condor.legs] == [50, -50, -50, 50]
    assert {leg.instrument.multiplier for leg in condor.legs} == {100.0}
    assert engine.kind is StrategyKind.SECOND_ENGINE
    assert engine.legs[0].instrument.multiplier == 1000.0  # VX futures: $1,000 per point
    assert engine.legs[1].instrument.underlying == "VX 20260318"  # priced on its future


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("C7150", "C6400", "field strategies[0]: strikes must order long put < short put"),
        ("P6425", "P6360", "field strategies[0]: the inner strikes are short"),
        (
            'quantity = -50 },\n  { contract = "SPX 20260417 C7150"',
            'quantity = 50 },\n  { contract = "SPX 20260417 C7150"',
            "inner strikes are short",
        ),
        ('C7200", quantity = 50', 'C7200", quantity = 40', "same size"),
        ("SPX 20260417 C7200", "SPX 20260515 C7200", "share one class and expiry"),
        ("SPX 20260417 P6375", "SPX 2026-04-17 P6375", "is not a contract id"),
        # Digits of another script: never the feed's contract, so refused, not read as 6375.
        ("SPX 20260417 P6375", "SPX 20260417 P\u0666\u0663\u0667\u0665", "is not a contract id"),
        ("SPX 20260417 P6375", "FOO 20260417 P6375", "unknown option class 'FOO'"),
        ("quantity = 50 }", "quantity = 0 }", "must not be zero"),
        ("quantity = 50 }", 'quantity = "fifty" }', "strategies[0].legs[0].quantity"),
        ('kind = "iron_condor"', 'kind = "strangle"', "field strategies[0].kind"),
        ('name = "IC"', 'name = "IC"\nowner = "me"', "strategies[0].owner: unknown field"),
    ],
)
def test_bad_portfolio(tmp_path: Path, old: str, new: str, fragment: str) -> None:
    assert old in IC
    path = tmp_path / "p.toml"
    path.write_text(IC.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_portfolio(path)
    assert str(path) in str(caught.value)
    assert fragment in str(caught.value)


def test_second_engine_holds_vix_only(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[[strategies]]\nname = "SE"\nkind = "second_engine"\n'
        'legs = [{ contract = "SPX 20260417 P6375", quantity = 1 }]\n'
    )
    with pytest.raises(ConfigError, match=r"legs\[0\] 'SPX 20260417 P6375': the second-engine"):
        load_portfolio(path)


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[[strategies]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_portfolio(path)
