"""Portfolio files: the example loads; wrong shapes are refused naming the field."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import structlog
from conftest import REPO, header, t

from monitor import bundled
from monitor.cli import EXIT_OK, main
from monitor.errors import ConfigError
from monitor.portfolio.model import (
    MAX_LEG_QUANTITY,
    StrategyKind,
    load_portfolio,
    log_portfolio_warnings,
    portfolio_warnings,
)

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
        (
            "quantity = 50 }",
            "quantity = 10_001 }",
            "legs[0].quantity: must be at most 10,000 contracts long or short, not 10,001",
        ),
        (
            "quantity = -50 }",
            "quantity = -25_000 }",
            "field strategies[0].legs[1].quantity: must be at most 10,000 contracts",
        ),
        (
            "quantity = 50 }",
            f"quantity = {'9' * 300} }}",
            "legs[0].quantity: must be at most 10,000 contracts long or short, not a 300-digit",
        ),
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


def test_the_largest_quantity_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        IC.replace("= 50 ", f"= {MAX_LEG_QUANTITY} ").replace("-50", f"-{MAX_LEG_QUANTITY}")
    )
    assert [leg.quantity for leg in load_portfolio(path).legs] == [10_000, -10_000, -10_000, 10_000]


OLD_HEDGE = """
[[strategies]]
name = "OLD-HEDGE"
kind = "second_engine"
legs = [
  { contract = "VX 20260218", quantity = 2 },
  { contract = "VIX 20260218 C20", quantity = 10 },
]
"""


def book_with_old_hedge(tmp_path: Path) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(bundled.PORTFOLIO.read_text() + OLD_HEDGE)
    return path


def test_expired_legs_are_warnings_naming_strategy_and_leg(tmp_path: Path) -> None:
    portfolio = load_portfolio(book_with_old_hedge(tmp_path))
    warnings = portfolio_warnings(portfolio, date(2026, 3, 3))
    assert [(w.field, w.strategy, w.contract) for w in warnings] == [
        ("strategies[2].legs[0].contract", "OLD-HEDGE", "VX 20260218"),
        ("strategies[2].legs[1].contract", "OLD-HEDGE", "VIX 20260218 C20"),
    ]
    assert str(warnings[1]) == (
        "field strategies[2].legs[1].contract: 'VIX 20260218 C20' of strategy 'OLD-HEDGE' "
        "expired 2026-02-18 09:30 ET, before the session of 2026-03-03; it is valued as "
        "settled (an option at its intrinsic value, no gamma, vega or theta) until it is removed"
    )
    assert portfolio_warnings(portfolio, date(2026, 2, 17)) == ()
    assert portfolio_warnings(load_portfolio(bundled.PORTFOLIO), date(2026, 3, 3)) == ()


def test_a_leg_settled_at_the_open_of_the_session_day_is_expired(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[[strategies]]\nname = "DAY"\nkind = "other"\nlegs = [\n'
        '  { contract = "SPX 20260320 P6000", quantity = -1 },\n'  # AM: the 09:30 quotation
        '  { contract = "SPXW 20260320 P6000", quantity = 1 },\n'  # PM: live until 16:00
        "]\n"
    )
    warnings = portfolio_warnings(load_portfolio(path), date(2026, 3, 20))
    assert [w.contract for w in warnings] == ["SPX 20260320 P6000"]


def test_expired_legs_are_logged_once_each(tmp_path: Path) -> None:
    portfolio = load_portfolio(book_with_old_hedge(tmp_path))
    with structlog.testing.capture_logs() as logged:
        log_portfolio_warnings(portfolio, date(2026, 3, 3))
    assert [(e["event"], e["log_level"], e["contract"]) for e in logged] == [
        ("portfolio_leg_expired", "warning", "VX 20260218"),
        ("portfolio_leg_expired", "warning", "VIX 20260218 C20"),
    ]
    assert logged[0]["strategy"] == "OLD-HEDGE"
    assert logged[0]["file"] == str(portfolio.source)


def test_check_config_shows_expired_legs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = ["SPX", "VIX", "VX 20260218", "VX 20260318", "VX 20260415", "VIX 20260218 C20"]
    ids += ["VIX 20260318 C22", "VIX 20260318 C27"]
    ids += [f"SPX 20260417 {strike}" for strike in ("P6375", "P6425", "C7150", "C7200")]
    session = tmp_path / "s.jsonl"
    event = {"t": t(0), "type": "index", "id": "SPX", "value": 6800.0}
    session.write_text(json.dumps(header(ids)) + "\n" + json.dumps(event) + "\n")
    example = REPO / "deploy" / "examples" / "condor-monitor.toml"
    config = tmp_path / "c.toml"
    config.write_text(
        example.read_text()
        .replace("../../monitor/bundled/portfolio.toml", str(book_with_old_hedge(tmp_path)))
        .replace('"../../rules"', f'"{REPO / "rules"}"')
        .replace("../../monitor/bundled/sessions/vol-spike-2026-03-03.jsonl.gz", str(session))
        .replace("../../state/journal.sqlite", str(tmp_path / "journal.sqlite"))
    )
    assert main(["check-config", str(config)]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert "OK — session 2026-03-03" in out[0]
    prefix = f"{tmp_path / 'p.toml'}: warning: field strategies[2]"
    assert [line.partition(" of strategy")[0] for line in out[1:]] == [
        f"{prefix}.legs[0].contract: 'VX 20260218'",
        f"{prefix}.legs[1].contract: 'VIX 20260218 C20'",
    ]
    assert all("'OLD-HEDGE' expired 2026-02-18 09:30 ET" in line for line in out[1:])
