"""The SVI slices fitted on the bundled day and a generated day ([pricing] smile = "svi"):
fits happen, and every fitted slice is free of butterfly arbitrage.

Each day goes through a Pipeline of the bundled book, batch by batch: its own MarketState
takes the batch and its own Valuer values the book at the market's time, exactly as
``Pipeline.snapshot`` does, without the views built on the book (scenarios, hedge, signals),
which do not touch the fits and would double the replay's time. Every snapshot is checked.

Both days' fits are free of butterfly arbitrage on their quoted range widened by a quarter
each side (the second, penalised pass of ``svi_kernels.fit_slice`` where the best fit is
not). The days quote one SPX expiry, so they hold no calendar pair (the calendar check itself:
tests/unit/test_svi.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from monitor import bundled
from monitor.config import PricingConfig
from monitor.domain.instruments import Kind
from monitor.feeds.generator import Layout, session_lines
from monitor.feeds.replay import ReplayReader
from monitor.pipeline import Pipeline
from monitor.portfolio.model import load_portfolio
from monitor.pricing.svi import SviFit, SviFitReason
from monitor.pricing.valuation import ChainKey

SEED = 7
# The generated day: the vol-spike shape over the full session at a step of 20 s, not 5 s.
GENERATED = Layout(step_seconds=20.0)


@dataclass
class Day:
    snapshots: int = 0
    book_chains: set[ChainKey] = field(default_factory=set)  # the book's option expiries
    spx_chains: set[ChainKey] = field(default_factory=set)  # those on the SPX index
    fits: list[tuple[datetime, ChainKey, SviFit]] = field(default_factory=list)  # new and OK


def replay(session: Path) -> Day:
    reader = ReplayReader(session)
    portfolio = load_portfolio(bundled.PORTFOLIO)
    pipeline = Pipeline(
        universe=reader.header.instruments,
        portfolio=portfolio,
        rules=[],
        pricing=PricingConfig(smile="svi"),
    )
    market, valuer = pipeline.market, pipeline.valuer
    day = Day()
    for leg in portfolio.legs:
        inst = leg.instrument
        if inst.kind is Kind.OPTION and inst.expiry is not None:
            day.book_chains.add((inst.root, inst.expiry))
            if inst.underlying == "SPX":
                day.spx_chains.add((inst.root, inst.expiry))
    seen: dict[ChainKey, SviFit] = {}
    for batch in reader.batches():
        market.apply(batch)
        now = market.time
        assert now is not None
        valuer.value(market, now)
        day.snapshots += 1
        # A chain not refitted at this snapshot keeps its last fit: count each fit once.
        fits = {key: state.fit for key, state in valuer.smiles.items() if state.fit}
        fresh = {
            key: fit
            for key, fit in fits.items()
            if fit is not seen.get(key) and fit.reason is SviFitReason.OK
        }
        seen = fits
        day.fits += [(now, key, fit) for key, fit in fresh.items()]
    return day


@pytest.fixture(scope="module", params=["bundled", "generated"])
def day(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Day:
    if request.param == "bundled":
        return replay(bundled.SESSION)
    session = tmp_path_factory.mktemp("generated") / "day.jsonl"
    with session.open("wb") as out:
        out.writelines(session_lines(SEED, layout=GENERATED))
    return replay(session)


def test_the_book_expiries_are_fitted(day: Day) -> None:
    assert day.snapshots > 1000
    assert day.spx_chains
    fitted = {key for _, key, _ in day.fits}
    assert fitted == day.book_chains  # the SPX condor's expiry and the VIX calls'
    for chain in day.spx_chains:  # a good fit at most snapshots, not a stray one
        assert sum(key == chain for _, key, _ in day.fits) > day.snapshots // 2


def test_no_butterfly_arbitrage(day: Day) -> None:
    broken = [(at, key, fit.butterfly) for at, key, fit in day.fits if not fit.butterfly.free]
    if broken:
        at, (root, expiry), check = min(broken, key=lambda b: b[2].worst)
        worst = f"g {check.worst:.3g} at k {check.at_k:+.4f}, {root} {expiry} at {at:%H:%M:%S}"
        pytest.fail(f"{len(broken)} of {len(day.fits)} fits break g >= 0; the worst: {worst}")
