"""The bundled session: reproduced byte for byte from its seed, and shaped like a vol spike."""

from __future__ import annotations

import gzip
from pathlib import Path

from monitor import bundled
from monitor.domain.quotes import IndexValue, Quote
from monitor.feeds.generator import write_session
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
    assert len(rules) == 23
    assert result.entries == []  # no rule of the default pack fires on a quiet day
