"""`condor-monitor ib-check` against the IB API emulator: the account, how each position maps
(expiration against IB's last trading day, the settlement moment), the market data of every
line, and exit status 4 when a leg cannot be priced from quotes."""

from __future__ import annotations

import asyncio
from datetime import UTC
from pathlib import Path

import pytest
from harness.ports import free_port
from ibemu.gateway import IBGateway
from test_ib_dates import HELD, NOW, contracts
from test_ib_dates import market as bundled_market
from test_ib_dates import write_config as bundled_config
from test_ib_live import Book, market, write_config

from monitor import ib_check
from monitor.app import load_common
from monitor.cli import EXIT_NOT_PRICED, EXIT_OK, main
from monitor.config import IbFeedConfig, load_config
from monitor.live import base_instruments, with_underlyings

DENIED = "SPXW 20260306 C7000"


def test_the_report_on_the_bundled_book(tmp_path: Path) -> None:
    held = [(k, float(q), 1.0) for k, q in HELD.items()]
    with IBGateway(contracts(), held) as gw:
        bundled_market(gw)  # quotes in place: a subscription gets them at once
        gw.deny(DENIED, 354)
        config_path = bundled_config(tmp_path, gw.port, free_port())
        config = load_config(config_path)
        assert isinstance(config.feed, IbFeedConfig)
        portfolio, _ = load_common(config, config_path)
        instruments = with_underlyings(
            base_instruments(config.feed, NOW) + [leg.instrument for leg in portfolio.legs]
        )
        report = asyncio.run(
            ib_check.collect(
                config.feed,
                instruments,
                portfolio,
                wait_seconds=3.0,
                clock=lambda: NOW.astimezone(UTC),
            )
        )
    text = ib_check.render(report)
    assert report.accounts == ["DU1234567"]
    assert report.market_open
    rows = {p.contract: p for p in report.positions}
    assert set(rows) == set(HELD)
    am = rows["SPX 20260417 P6425"]
    assert (am.strategy, am.quantity, am.expiration, am.ib_settlement) == (
        "IC-APR17",
        -50,
        "2026-04-17",
        "AM",
    )
    assert am.settles == "AM 2026-04-17 09:30 ET"
    assert am.last_trade == "2026-04-16 15:15:00 US/Central"
    vix = rows["VIX 20260318 C22"]
    assert (vix.strategy, vix.expiration, vix.last_trade[:10], vix.settles) == (
        "SECOND-ENGINE",
        "2026-03-18",
        "2026-03-17",
        "AM 2026-03-18 09:30 ET",
    )
    assert rows["VIX 20260415 C25"].strategy == "SECOND-ENGINE"  # joined the file's layer
    zero_dte = rows["SPXW 20260303 P6780"]
    assert (zero_dte.settles, zero_dte.ib_settlement) == ("PM 2026-03-03 16:00 ET", "PM")
    lines = {m.instrument: m for m in report.lines}
    assert lines["VX 20260318"].priced  # the future the VIX options are priced on
    assert lines["SPX"].data_type == "live"
    assert lines[DENIED].error.startswith("354 ")
    assert report.unpriced_legs == [DENIED]
    assert f"NOT OK: 1 leg(s) cannot be priced from quotes: {DENIED}" in text
    assert "SPX 20260417 P6425" in text


@pytest.mark.parametrize("denied", [True, False])
def test_the_command_exits_4_when_a_leg_cannot_be_priced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], denied: bool
) -> None:
    book = Book()
    with IBGateway(book.contracts(), book.positions()) as gw:
        market(gw, book, 6800.0)
        short_call = f"SPXW {book.spxw} C7000"
        if denied:
            gw.deny(short_call, 354)
        code = main(
            ["ib-check", "--config", str(write_config(tmp_path, gw.port, book)), "--wait", "3"]
        )
    out = capsys.readouterr().out
    assert code == (EXIT_NOT_PRICED if denied else EXIT_OK), out
    assert f"IC-SPXW-{book.spxw}" in out
    assert ("NOT OK" in out) is denied
    assert ("OK: every leg of the book is priced from quotes" in out) is not denied


def test_an_unreachable_gateway_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = Book()
    port = free_port()  # nothing listens there
    code = main(["ib-check", "--config", str(write_config(tmp_path, port, book)), "--wait", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot reach IB: connection refused at 127.0.0.1:{port}" in err
