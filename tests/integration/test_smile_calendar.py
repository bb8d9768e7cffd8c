"""The SVI slices fitted on a generated day that quotes two SPX expiries, April and May
([pricing] smile = "svi"): no calendar arbitrage between them, and each slice free of
butterfly arbitrage.

The generator prices both expiries off one smile, each at its own time to expiry and forward
(``generator.Layout.spx_expiries``). That smile's total variance at a fixed forward
log-moneyness k = ln(K/F_T) grows with T, so the true surface has no calendar arbitrage
(checked first); fits that follow the quotes should keep w_May(k) >= w_April(k) wherever
both expiries are quoted.

The day goes through a Pipeline of a book holding a condor in each expiry, batch by batch,
as in tests/integration/test_smile_arbitrage.py (its MarketState takes the batch, its Valuer
values the book at the market's time). At every snapshot where both chains have a fit in use
from a latest attempt that succeeded, the two slices are compared on the common quoted
range: each chain's out-of-the-money strikes with a valid mid, in its own k at the forward
of its fit; 201 points from the larger lower end to the smaller upper end. The total
variances compared are those the valuation uses at that moment: a fit's vols are
sqrt(w / T_fit) (``SmileState.years``) with T_fit the time to expiry when it was made, read
at the time to expiry now, so its a and b are scaled by T_now / T_fit (a few seconds' worth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from monitor.config import PricingConfig
from monitor.domain.instruments import Instrument
from monitor.feeds import generator
from monitor.feeds.generator import Layout, session_lines
from monitor.feeds.replay import ReplayReader
from monitor.market.state import MarketState
from monitor.pipeline import Pipeline
from monitor.portfolio.model import load_portfolio
from monitor.pricing.expiry import year_fraction
from monitor.pricing.smiles import SmileState
from monitor.pricing.svi import ArbitrageCheck, SviFit, SviFitReason, SviParams, calendar_check
from monitor.pricing.valuation import ChainKey, Valuer

SEED = 7
APRIL = ("SPX", generator.SPX_EXPIRY)
MAY = ("SPX", date(2026, 5, 15))  # third Friday of May: AM-settled SPX, 73 days out
# The full vol-spike session (VIX doubles) at a step of 20 s, not 5 s, with a May chain.
LAYOUT = Layout(step_seconds=20.0, spx_expiries=(MAY[1],))
GRID_POINTS = 201
BOOK = """
account_size_usd = 1_000_000

[[strategies]]
name = "IC-APR17"
kind = "iron_condor"
legs = [
  { contract = "SPX 20260417 P6375", quantity = 50 },
  { contract = "SPX 20260417 P6425", quantity = -50 },
  { contract = "SPX 20260417 C7150", quantity = -50 },
  { contract = "SPX 20260417 C7200", quantity = 50 },
]

[[strategies]]
name = "IC-MAY15"
kind = "iron_condor"
legs = [
  { contract = "SPX 20260515 P6375", quantity = 50 },
  { contract = "SPX 20260515 P6425", quantity = -50 },
  { contract = "SPX 20260515 C7150", quantity = -50 },
  { contract = "SPX 20260515 C7200", quantity = 50 },
]
"""


@dataclass(frozen=True, slots=True)
class Pair:
    """One snapshot's comparison of the two slices in use."""

    at: datetime
    check: ArbitrageCheck  # the smallest w_May - w_April on the grid, and where
    k_range: tuple[float, float]
    carry: float  # ln(F_May / F_April) / (T_May - T_April): the forwards' implied carry
    detail: str  # both slices and the quotes near the worst k


@dataclass
class Day:
    snapshots: int = 0
    pairs: list[Pair] = field(default_factory=list)
    fits: dict[ChainKey, list[SviFit]] = field(default_factory=dict)  # new and OK, once each


def in_use(state: SmileState, years_now: float) -> SviParams:
    """The slice's total variance as the valuation uses it now: sqrt(w / T_fit) read at
    T_now, i.e. w scaled by T_now / T_fit (a and b; the shape parameters unchanged)."""
    assert state.fit is not None
    p, scale = state.fit.params, years_now / state.years
    return SviParams(p.a * scale, p.b * scale, p.rho, p.m, p.sigma)


def quoted(chain: list[Instrument], forward: float, market: MarketState) -> list[Instrument]:
    """The chain's out-of-the-money options with a valid mid, by strike."""
    out = [
        o
        for o in chain
        if o.strike is not None
        and o.is_call == (o.strike >= forward)
        and market.mid(o.id) is not None
    ]
    return sorted(out, key=lambda o: o.strike or 0.0)


def describe(
    check: ArbitrageCheck,
    states: dict[ChainKey, SmileState],
    years: dict[ChainKey, float],
    valuer: Valuer,
    market: MarketState,
) -> str:
    """Both slices (params, forward, times) and the quotes' vols at the strikes nearest the
    worst k, next to each fit's vol there."""
    lines = []
    for key, state in states.items():
        assert state.fit is not None
        p, t = state.fit.params, years[key]
        vol = float(in_use(state, t).implied_vol(np.array([check.at_k]), t)[0])
        lines.append(
            f"{key[0]} {key[1]}: F {state.forward:.2f}, T_fit {state.years:.6f}, T_now {t:.6f},"
            f" a {p.a:.6g} b {p.b:.6g} rho {p.rho:.6g} m {p.m:.6g} sigma {p.sigma:.6g};"
            f" vol at k {check.at_k:+.4f}: {100 * vol:.2f}"
        )
        options = quoted(valuer.chains[key], state.forward, market)
        near = sorted(
            options, key=lambda o: abs(math.log((o.strike or 1.0) / state.forward) - check.at_k)
        )[:4]
        for o in sorted(near, key=lambda o: o.strike or 0.0):
            k = math.log((o.strike or 1.0) / state.forward)
            quote = valuer.quote_iv.get(o.id)
            quote_vol = 100 * quote[1] if quote else math.nan
            fit_vol = 100 * float(in_use(state, t).implied_vol(np.array([k]), t)[0])
            lines.append(f"    {o.id} k {k:+.4f}: quote vol {quote_vol:.2f}, fit {fit_vol:.2f}")
    return "\n".join(lines)


def replay(session: Path, book: Path) -> Day:
    reader = ReplayReader(session)
    pipeline = Pipeline(
        universe=reader.header.instruments,
        portfolio=load_portfolio(book),
        rules=[],
        pricing=PricingConfig(smile="svi"),
    )
    market, valuer = pipeline.market, pipeline.valuer
    day = Day(fits={APRIL: [], MAY: []})
    seen: dict[ChainKey, SviFit | None] = {}
    for batch in reader.batches():
        market.apply(batch)
        now = market.time
        assert now is not None
        valuer.value(market, now)
        day.snapshots += 1
        states = {key: valuer.smiles.get(key, SmileState()) for key in (APRIL, MAY)}
        for key, state in states.items():  # a chain not refitted keeps its fit: count once
            if state.fit is not None and state.fit is not seen.get(key):
                if state.fit.reason is SviFitReason.OK:
                    day.fits[key].append(state.fit)
                seen[key] = state.fit
        if not all(s.fit is not None and s.latest is SviFitReason.OK for s in states.values()):
            continue
        years = {key: year_fraction(valuer.chains[key][0], now) for key in states}
        ends = []
        for key, state in states.items():
            ks = [
                math.log((o.strike or 1.0) / state.forward)
                for o in quoted(valuer.chains[key], state.forward, market)
            ]
            ends.append((min(ks), max(ks)))
        lo, hi = max(e[0] for e in ends), min(e[1] for e in ends)
        grid = np.linspace(lo, hi, GRID_POINTS)
        check = calendar_check(
            in_use(states[APRIL], years[APRIL]), in_use(states[MAY], years[MAY]), grid
        )
        carry = math.log(states[MAY].forward / states[APRIL].forward) / (years[MAY] - years[APRIL])
        worst = min((p.check.worst for p in day.pairs), default=math.inf)
        detail = describe(check, states, years, valuer, market) if check.worst < worst else ""
        day.pairs.append(Pair(now, check, (lo, hi), carry, detail))
    return day


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    directory = tmp_path_factory.mktemp("calendar")
    session = directory / "day.jsonl"
    with session.open("wb") as out:
        out.writelines(session_lines(SEED, layout=LAYOUT))
    book = directory / "book.toml"
    book.write_text(BOOK)
    return replay(session, book)


def test_the_true_surface_has_no_calendar_arbitrage() -> None:
    """w(k, T) = spx_smile(T)^2 T at fixed k = ln(K/F_T) grows from April to May every ten
    minutes of the session at any VIX of the day's range (10-45), over a range of k wider
    than the quoted one. (The smile depends on the forward only through k.)"""
    session = generator._Session(SEED, generator.SCENARIOS["vol-spike"], LAYOUT)
    april, may = (session.spx_chains[key[1]][0] for key in (APRIL, MAY))
    k = np.linspace(-0.5, 0.3, 801)
    margins = []
    now = session.open
    while now <= session.close:
        for vix in np.linspace(10.0, 45.0, 15):
            w = []
            for inst in (april, may):
                t = year_fraction(inst, now)
                forward = generator.spx_forward(generator.SPX_OPEN, t)
                vols = generator.spx_smile(forward * np.exp(k), forward, t, float(vix))
                w.append(vols * vols * t)
            margins.append(float(np.min(w[1] - w[0])))
        now += timedelta(minutes=10)
    assert len(margins) > 500
    assert min(margins) > 0.0


def test_no_calendar_arbitrage_between_the_fitted_slices(day: Day) -> None:
    assert day.snapshots > 1000
    assert len(day.pairs) > 0.95 * day.snapshots  # both fits in use nearly all day
    for pair in day.pairs:  # a real overlap of the two quoted ranges, not a point
        assert pair.k_range[1] - pair.k_range[0] > 0.05
    # Each chain is fitted at its own forward: the two carry at the rate less the dividends.
    carry = float(np.median([p.carry for p in day.pairs]))
    assert carry == pytest.approx(generator.RATE - generator.DIVIDEND_YIELD, abs=0.002)
    broken = [p for p in day.pairs if not p.check.free]
    worst = min(day.pairs, key=lambda p: p.check.worst)
    if broken:
        pytest.fail(
            f"{len(broken)} of {len(day.pairs)} snapshots break w_May >= w_April; the worst,"
            f" at {worst.at:%H:%M:%S}, k range {worst.k_range[0]:+.4f}..{worst.k_range[1]:+.4f}:"
            f" margin {worst.check.worst:.3g} at k {worst.check.at_k:+.4f}\n{worst.detail}"
        )


def test_both_expiries_fits_are_free_of_butterfly_arbitrage(day: Day) -> None:
    for key, fits in day.fits.items():
        assert len(fits) > day.snapshots // 2, key  # refitted at most snapshots
        broken = [f.butterfly for f in fits if not f.butterfly.free]
        if broken:
            check = min(broken, key=lambda b: b.worst)
            pytest.fail(
                f"{key[0]} {key[1]}: {len(broken)} of {len(fits)} fits break g >= 0;"
                f" the worst g {check.worst:.3g} at k {check.at_k:+.4f}"
            )
