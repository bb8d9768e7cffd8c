"""The bundled session: reproduced byte for byte from its seed, and shaped like a vol spike.
A generated day may quote a second SPX expiry, priced at its own time and forward."""

from __future__ import annotations

import gzip
import math
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from monitor import bundled
from monitor.cli import EXIT_BAD_INPUT, main
from monitor.domain.instruments import NEW_YORK
from monitor.domain.quotes import IndexValue, Quote
from monitor.feeds import generator
from monitor.feeds.generator import Layout, session_lines, write_session
from monitor.feeds.replay import ReplayReader
from monitor.market.state import QuoteStatus, classify


def test_generator_reproduces_the_bundled_file(tmp_path: Path) -> None:
    out = write_session(tmp_path / "again.jsonl.gz", seed=20260303)
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(bundled.SESSION.read_bytes())
    assert bundled.SESSION.stat().st_size < 3_000_000  # a few MB at most


def test_other_seed_gives_another_day(tmp_path: Path) -> None:
    out = write_session(tmp_path / "other.jsonl", seed=7)
    assert out.read_bytes()[:200000] != gzip.decompress(bundled.SESSION.read_bytes())[:200000]


def test_the_day_is_a_vol_spike() -> None:
    reader = ReplayReader(bundled.SESSION)
    first: dict[str, float] = {}
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    last_mid: dict[str, float] = {}
    statuses: dict[QuoteStatus, int] = dict.fromkeys(QuoteStatus, 0)
    inverted_at_open = None
    inverted_later = False
    for batch in reader.batches():
        for event in batch.events:
            if isinstance(event, IndexValue):
                value = event.value
                first.setdefault(event.instrument, value)
                low[event.instrument] = min(low.get(event.instrument, value), value)
                high[event.instrument] = max(high.get(event.instrument, value), value)
            elif isinstance(event, Quote):
                statuses[classify(event)] += 1
                if classify(event) is QuoteStatus.VALID and event.bid and event.ask:
                    last_mid[event.instrument] = (event.bid + event.ask) / 2
        if "VX 20260318" in last_mid and "VX 20260415" in last_mid:
            inverted = last_mid["VX 20260318"] > last_mid["VX 20260415"]
            if inverted_at_open is None:
                inverted_at_open = inverted
            inverted_later = inverted_later or inverted
    assert reader.stats.bad_lines == 0
    spx_drop = low["SPX"] / first["SPX"] - 1
    assert -0.05 < spx_drop < -0.035  # SPX falls about 4 % intraday
    assert 1.7 < high["VIX"] / first["VIX"] < 2.4  # VIX roughly doubles
    assert inverted_at_open is False  # contango at the open ...
    assert inverted_later  # ... backwardation later
    assert low["AD-NYSE"] < -1500 < 0 < first["AD-NYSE"]  # breadth collapses
    # Some bad ticks of each kind, but few.
    total = sum(statuses.values())
    for flaw in (QuoteStatus.CROSSED, QuoteStatus.ZERO_BID, QuoteStatus.ONE_SIDED):
        assert 10 < statuses[flaw] < 0.05 * total


def test_default_pack_stays_silent_on_a_calm_day(tmp_path: Path) -> None:
    from conftest import REPO

    from monitor.app import default_config
    from monitor.backtest import backtest
    from monitor.portfolio.model import load_portfolio
    from monitor.rules.loader import load_rule_set

    calm = write_session(tmp_path / "calm.jsonl.gz", seed=20260303, scenario="calm")
    reader = ReplayReader(calm)
    assert "calm day" in reader.header.source
    rule_set = load_rule_set([REPO / "rules"])
    rules = rule_set.rules
    config = default_config(tmp_path)
    result = backtest([calm], config, load_portfolio(bundled.PORTFOLIO), rule_set)
    assert len(rules) == 33
    assert result.entries == []  # no rule of the default pack fires on a quiet day


MAY = date(2026, 5, 15)  # third Friday of May: AM-settled SPX


def test_a_second_spx_expiry_is_priced_at_its_own_time_and_forward() -> None:
    layout = Layout(hours=0.1, spx_expiries=(MAY,))
    day = generator._Session(7, generator.SCENARIOS["vol-spike"], layout)
    assert list(day.spx_chains) == [generator.SPX_EXPIRY, MAY]
    april, may = day.spx_chains[generator.SPX_EXPIRY], day.spx_chains[MAY]
    assert [(o.right, o.strike) for o in may] == [(o.right, o.strike) for o in april]
    for step, (now, market) in enumerate(day.markets()):
        if step % 60:
            continue
        mids = day.option_mids(now, market)
        for chain in (april, may):
            years = generator.year_fraction(chain[0], now)
            forward = generator.spx_forward(market.spx, years)
            strikes = np.array([o.strike for o in chain], dtype=float)
            calls = np.array([o.is_call for o in chain])
            prices = np.array([mids[o.id] for o in chain])
            vols = generator.black76.implied_vol(
                prices, forward, strikes, years, generator.RATE, calls
            )
            truth = generator.spx_smile(strikes, forward, years, market.vix)
            np.testing.assert_allclose(vols, truth, atol=1e-6)
        # Put-call parity of the mids gives each expiry its own forward.
        k = 6800.0
        for chain in (april, may):
            years = generator.year_fraction(chain[0], now)
            call = mids[next(o.id for o in chain if o.strike == k and o.is_call)]
            put = mids[next(o.id for o in chain if o.strike == k and not o.is_call)]
            parity = k + math.exp(generator.RATE * years) * (call - put)
            assert parity == pytest.approx(generator.spx_forward(market.spx, years), rel=1e-9)


def test_spxw_options_are_priced_to_their_pm_settlement() -> None:
    """A PM-settled SPXW weekly given by id is priced at its time to Thursday's 16:00 close,
    off the same smile as the monthly."""
    ids = ("SPX", "VIX", "VX 20260318", "VIX 20260318 C25", "SPXW 20260305 P6600")
    day = generator._Session(
        7, generator.SCENARIOS["vol-spike"], Layout(hours=0.05, instrument_ids=ids)
    )
    (weekly,) = day.spx_opts
    now, market = next(day.markets())
    years = generator.year_fraction(weekly, now)
    close = datetime(2026, 3, 5, 16, tzinfo=NEW_YORK)
    assert years * 365 * 86400 == pytest.approx((close - now).total_seconds())
    forward = generator.spx_forward(market.spx, years)
    vol = generator.spx_smile(np.array([6600.0]), forward, years, market.vix)
    price = generator.black76.price(forward, 6600.0, years, generator.RATE, vol, False)
    assert day.option_mids(now, market)[weekly.id] == pytest.approx(float(price[0]))


def test_a_second_spx_expiry_in_the_file() -> None:
    lines = session_lines(7, layout=Layout(hours=0.02, spx_expiries=(MAY,)))
    head = next(lines).decode()
    assert "--spx-expiry 2026-05-15" in head
    per_expiry = sum(i.root == "SPX" and i.strike is not None for i in generator.instruments())
    assert head.count('"SPX 20260515 ') == head.count('"SPX 20260417 ') == per_expiry == 29
    assert b'"id":"SPX 20260515 P6375"' in b"".join(lines)


@pytest.mark.parametrize(
    ("expiries", "fragment"),
    [
        ((date(2026, 4, 3),), "not a CBOE"),  # Good Friday
        ((generator.SPX_EXPIRY,), "distinct"),
        ((MAY, MAY), "distinct"),
        ((date(2026, 3, 2),), "not after the session day"),
    ],
)
def test_an_extra_expiry_that_cannot_be_quoted_is_refused(
    tmp_path: Path, expiries: tuple[date, ...], fragment: str
) -> None:
    out = tmp_path / "day.jsonl"
    with pytest.raises(ValueError, match=fragment):
        write_session(out, seed=7, layout=Layout(spx_expiries=expiries))
    assert not out.exists()
    with pytest.raises(ValueError, match="extend the bundled set"):
        next(session_lines(7, layout=Layout(spx_expiries=(MAY,), instrument_ids=("SPX",))))


def test_the_command_line_refuses_a_holiday_expiry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "day.jsonl"
    argv = ["generate-session", "--spx-expiry", "2026-04-03", "--out", str(out)]
    assert main(argv) == EXIT_BAD_INPUT
    assert "2026-04-03" in capsys.readouterr().err
    assert not out.exists()
