"""Deterministic generator of the bundled vol-spike session (replay format v1).

The day (2026-03-03, CBOE index-option hours from the exchange calendar): SPX drifts up in
the first hour while breadth weakens, then sells off about 4 % into the afternoon and
bounces a little; VIX roughly doubles; the VIX futures curve flips from contango to
backwardation. Option quotes come from a skewed smile whose level moves with VIX, rounded
to the class's tick sizes with realistic widths; a few quotes are bad on purpose (crossed,
zero bid, a missing side). The same seed writes the same bytes.

The bundled day quotes one SPX expiry (``SPX_EXPIRY``). A ``Layout`` may add more
(``spx_expiries``, ``--spx-expiry`` on the command line), each quoted at the same strikes and
priced at its own time to expiry and forward off the same smile, whose total variance at a
fixed forward log-moneyness grows with the expiry: the true surface has no calendar arbitrage.
"""

from __future__ import annotations

import gzip
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from monitor.calendars import Exchange, session
from monitor.domain.instruments import (
    Instrument,
    Kind,
    Right,
    future_id,
    option_id,
    parse_instrument_id,
)
from monitor.feeds.recorder import header, line
from monitor.pricing import black76
from monitor.pricing.expiry import ExpiryError, settlement, year_fraction

SESSION_DATE = date(2026, 3, 3)
SPX_EXPIRY = date(2026, 4, 17)  # third Friday of April: AM-settled SPX, 45 days out
VX_EXPIRIES = (date(2026, 3, 18), date(2026, 4, 15), date(2026, 5, 19), date(2026, 6, 17))
VX_BASE = (17.00, 18.30, 19.10, 19.60)  # futures at VIX 16: contango
VX_BETA = (0.62, 0.40, 0.28, 0.21)  # response of each tenor to a VIX move
PUT_LADDER = range(6350, 6501, 25)  # around the short 6425 / long 6375 puts
CALL_LADDER = range(7075, 7226, 25)  # around the short 7150 / long 7200 calls
PARITY_STRIKES = range(6500, 6851, 50)  # calls and puts near the money: the forward
VIX_CALLS = (18, 20, 22, 25, 27, 30, 35)
STEP_SECONDS = 5.0
RATE = 0.04
DIVIDEND_YIELD = 0.012
SPX_OPEN = 6800.0
VIX_OPEN = 16.0
VIX_ELASTICITY = 16.5  # VIX = 16 * exp(-16.5 * SPX log-return): doubles on a 4.2 % fall
# (minutes after the open, SPX log-return): the shape of the day.
SHAPE = (
    (0, 0.0),
    (75, 0.003),
    (135, -0.010),
    (200, -0.025),
    (285, -0.042),
    (330, -0.040),
    (405, -0.037),
)
# NYSE net advances at the same moments: weakening while SPX still rises.
BREADTH = (
    (0, 450.0),
    (75, -150.0),
    (135, -900.0),
    (200, -1700.0),
    (285, -2350.0),
    (330, -2100.0),
    (405, -1850.0),
)
CALM_SHAPE = ((0, 0.0), (100, 0.002), (200, -0.001), (300, 0.0025), (405, 0.001))
CALM_BREADTH = ((0, 300.0), (100, 600.0), (200, 150.0), (300, 500.0), (405, 400.0))


@dataclass(frozen=True, slots=True)
class Scenario:
    """The shape of a generated day: SPX log-return and NYSE net advances over the session."""

    name: str
    description: str
    shape: tuple[tuple[int, float], ...]
    breadth: tuple[tuple[int, float], ...]


SCENARIOS = {
    "vol-spike": Scenario("vol-spike", "synthetic vol-spike day", SHAPE, BREADTH),
    # A quiet day for checking that rules stay silent: SPX wanders within 0.3 %, VIX ~16.
    "calm": Scenario("calm", "synthetic calm day", CALM_SHAPE, CALM_BREADTH),
}
BAD_TICK_PROBABILITY = 0.006  # per option quote, split evenly among the three flaws
QUOTE_UPDATE_PROBABILITY = 0.25


@dataclass(frozen=True, slots=True)
class Layout:
    """What is quoted and how often: the bundled session's defaults, or a denser day.

    ``instrument_ids`` None means the bundled set (``instruments(spx_expiries)``); SPX option
    ids may be on any SPX expiry (each priced at its own), VIX option ids must be on the front
    VIX future's expiry. ``spx_expiries`` are SPX (AM) expiries quoted besides ``SPX_EXPIRY``
    at its strikes; empty, the bundled day; they extend the bundled set, so they cannot be
    combined with ``instrument_ids``. ``hours`` None runs to the exchange's close.
    ``vix_every`` and ``breadth_every`` are in steps.
    """

    step_seconds: float = STEP_SECONDS
    jitter_ms: int = 900  # each step's stamp is delayed by up to this; below the step length
    update_probability: float = QUOTE_UPDATE_PROBABILITY  # per tradable per step
    vix_every: int = 3
    breadth_every: int = 6
    hours: float | None = None
    instrument_ids: tuple[str, ...] | None = None
    spx_expiries: tuple[date, ...] = ()


BUNDLED_LAYOUT = Layout()


def _interpolate(points: tuple[tuple[int, float], ...], minute: float) -> float:
    """Cosine interpolation between key points: smooth, monotone between them."""
    for (m0, v0), (m1, v1) in itertools.pairwise(points):
        if m0 <= minute <= m1:
            w = (1 - math.cos(math.pi * (minute - m0) / (m1 - m0))) / 2
            return v0 + (v1 - v0) * w
    return points[-1][1]


def spx_smile(strikes: np.ndarray, forward: float, years: float, vix: float) -> np.ndarray:
    """SPX implied vol: ATM at 0.88 x VIX, skewed down-strike, in standardized moneyness."""
    atm = 0.88 * vix / 100.0
    x = np.clip(np.log(strikes / forward) / (atm * math.sqrt(years)), -4.0, 3.0)
    return np.maximum(atm * (1.0 - 0.14 * x + 0.025 * x * x), 0.6 * atm)


def spx_forward(spx: float, years: float) -> float:
    """The forward of an SPX expiry ``years`` out: the index carried at the rate less the
    dividend yield."""
    return spx * math.exp((RATE - DIVIDEND_YIELD) * years)


def vix_smile(strikes: np.ndarray, future: float, vix: float) -> np.ndarray:
    """VIX option implied vol: vol of vol rising with VIX, skewed up-strike."""
    atm = 0.85 + 0.02 * (vix - VIX_OPEN)
    k = np.clip(np.log(strikes / future), -0.5, 1.0)
    return atm * (1.0 + 0.35 * k)


def instruments(spx_expiries: Sequence[date] = ()) -> list[Instrument]:
    """The bundled set: indexes, VX futures, the SPX chain of ``SPX_EXPIRY`` and then of each
    of ``spx_expiries`` (the same strikes), the front VIX calls."""
    ids = ["SPX", "VIX", "AD-NYSE"]
    ids += [future_id("VX", e) for e in VX_EXPIRIES]
    puts = sorted({*PUT_LADDER, *PARITY_STRIKES})
    calls = sorted({*PARITY_STRIKES, *CALL_LADDER})
    for expiry in (SPX_EXPIRY, *spx_expiries):
        ids += [option_id("SPX", expiry, Right.PUT, k) for k in puts]
        ids += [option_id("SPX", expiry, Right.CALL, k) for k in calls]
    ids += [option_id("VIX", VX_EXPIRIES[0], Right.CALL, k) for k in VIX_CALLS]
    return [parse_instrument_id(i) for i in ids]


@dataclass(frozen=True, slots=True)
class _Market:
    spx: float
    vix: float
    breadth: float
    futures: tuple[float, ...]


def _floor_tick(price: float, tick: float) -> float:
    return math.floor(price / tick + 1e-9) * tick


def _ceil_tick(price: float, tick: float) -> float:
    return math.ceil(price / tick - 1e-9) * tick


def _r2(value: float) -> float:
    return round(value, 2)


def _check_spx_expiries(layout: Layout) -> None:
    """Refuses extra SPX expiries that are repeated, the bundled one, not after the session
    day or not a CBOE trading day (``expiry.ExpiryError``), or given with explicit ids."""
    extra = layout.spx_expiries
    if not extra:
        return
    if layout.instrument_ids is not None:
        raise ValueError("spx_expiries extend the bundled set: list their options in the ids")
    if len(set(extra)) != len(extra) or SPX_EXPIRY in extra:
        raise ValueError(f"spx_expiries must be distinct and not {SPX_EXPIRY}: {extra}")
    for expiry in extra:
        if expiry <= SESSION_DATE:
            raise ValueError(f"SPX expiry {expiry} is not after the session day {SESSION_DATE}")
        try:
            settlement(parse_instrument_id(option_id("SPX", expiry, Right.PUT, PUT_LADDER[0])))
        except ExpiryError as exc:
            raise ExpiryError(f"SPX expiry {expiry} cannot be quoted: {exc}") from None


class _Session:
    def __init__(self, seed: int, scenario: Scenario, layout: Layout = BUNDLED_LAYOUT) -> None:
        self.scenario = scenario
        self.layout = layout
        self.rng = np.random.default_rng(seed)
        day = session(Exchange.CBOE_INDEX_OPTIONS, SESSION_DATE)
        if day is None:  # pragma: no cover - the session date is a known trading day
            raise ValueError(f"{SESSION_DATE} is not a CBOE index-options session")
        self.open, self.close = day.open, day.close
        if layout.hours is not None:
            self.close = min(self.close, self.open + timedelta(hours=layout.hours))
        ids = layout.instrument_ids
        _check_spx_expiries(layout)
        self.instruments = (
            instruments(layout.spx_expiries)
            if ids is None
            else [parse_instrument_id(i) for i in ids]
        )
        self.options = [i for i in self.instruments if i.kind is Kind.OPTION]
        self.spx_opts = [i for i in self.options if i.underlying == "SPX"]  # SPX and SPXW
        # Each SPX expiry's options, in the order listed: priced at that expiry's time.
        self.spx_chains: dict[date | None, list[Instrument]] = {}
        for inst in self.spx_opts:
            self.spx_chains.setdefault(inst.expiry, []).append(inst)
        self.vix_opts = [i for i in self.options if i.root == "VIX"]
        self.futures = [i for i in self.instruments if i.kind is Kind.FUTURE]

    def markets(self) -> Iterator[tuple[datetime, _Market]]:
        step_seconds = self.layout.step_seconds
        steps = int((self.close - self.open).total_seconds() // step_seconds)
        noise = 0.0
        vix_noise = 0.0
        for step in range(steps + 1):
            minute = step * step_seconds / 60.0
            # Mean-reverting noise around the day's shape: wiggles, never a different day.
            noise = 0.985 * noise + self.rng.normal(0.0, 0.00022)
            vix_noise = 0.97 * vix_noise + self.rng.normal(0.0, 0.004)
            ret = _interpolate(self.scenario.shape, minute) + noise
            spx = SPX_OPEN * math.exp(ret)
            vix = VIX_OPEN * math.exp(-VIX_ELASTICITY * ret + vix_noise)
            breadth = _interpolate(self.scenario.breadth, minute) + self.rng.normal(0.0, 40.0)
            futures = tuple(
                b + beta * (vix - VIX_OPEN) for b, beta in zip(VX_BASE, VX_BETA, strict=True)
            )
            jitter_ms = self.layout.jitter_ms
            jitter = timedelta(
                milliseconds=int(self.rng.integers(0, jitter_ms)) if jitter_ms else 0
            )
            stamp = self.open + timedelta(seconds=step * step_seconds) + jitter
            stamp = min(stamp, self.close)
            yield stamp, _Market(spx, vix, breadth, futures)

    def option_mids(self, now: datetime, m: _Market) -> dict[str, float]:
        mids: dict[str, float] = {}
        for chain in self.spx_chains.values():
            years = year_fraction(chain[0], now)
            forward = spx_forward(m.spx, years)
            strikes = np.array([i.strike for i in chain], dtype=float)
            calls = np.array([i.is_call for i in chain])
            vols = spx_smile(strikes, forward, years, m.vix)
            prices = black76.price(forward, strikes, years, RATE, vols, calls)
            mids.update({i.id: float(p) for i, p in zip(chain, prices, strict=True)})
        vx_years = year_fraction(self.vix_opts[0], now)
        vk = np.array([i.strike for i in self.vix_opts], dtype=float)
        vvols = vix_smile(vk, m.futures[0], m.vix)
        vprices = black76.price(m.futures[0], vk, vx_years, RATE, vvols, is_call=True)
        mids.update({i.id: float(p) for i, p in zip(self.vix_opts, vprices, strict=True)})
        return mids

    def quote(self, inst: Instrument, mid: float, vix: float) -> dict[str, Any]:
        tick = inst.tick_for(mid)
        stress = math.sqrt(vix / VIX_OPEN)
        if inst.kind is Kind.FUTURE:
            half = tick * (1.0 if vix < 25 else 2.0) / 2
            sizes = (5, 200)
        elif inst.root == "VIX":
            half = max(tick, 0.025 * mid * stress)
            sizes = (10, 500)
        else:
            half = max(tick, 0.008 * mid * stress)
            sizes = (1, 60)
        bid = max(_floor_tick(mid - half, tick), 0.0)
        ask = max(_ceil_tick(mid + half, tick), bid + tick)
        quote: dict[str, Any] = {
            "bid": _r2(bid),
            "ask": _r2(ask),
            "bid_size": int(self.rng.integers(*sizes)),
            "ask_size": int(self.rng.integers(*sizes)),
        }
        if self.rng.random() < 0.3:
            quote["last"] = _r2(
                _floor_tick(mid, tick) if self.rng.random() < 0.5 else _ceil_tick(mid, tick)
            )
        if inst.kind is Kind.OPTION and self.rng.random() < BAD_TICK_PROBABILITY:
            flaw = int(self.rng.integers(0, 3))
            if flaw == 0:  # crossed: the bid jumps above the ask
                quote["bid"], quote["ask"] = _r2(ask + tick), _r2(bid)
            elif flaw == 1:  # zero bid: the market maker pulled the bid
                quote["bid"] = 0.0
            else:  # one side missing
                del quote["ask"]
        return quote


def session_lines(
    seed: int,
    scenario: str = "vol-spike",
    *,
    layout: Layout = BUNDLED_LAYOUT,
    source: str | None = None,
) -> Iterator[bytes]:
    """The session, line by line: the header, then events in time order."""
    day = SCENARIOS[scenario]
    session = _Session(seed, day, layout)
    if source is None:
        flag = "" if scenario == "vol-spike" else f" --scenario {scenario}"
        flag += "".join(f" --spx-expiry {e.isoformat()}" for e in layout.spx_expiries)
        source = f"condor-monitor generate-session --seed {seed}{flag} ({day.description})"
    yield line(header(SESSION_DATE, source, session.instruments))
    tradables = [i for i in session.instruments if i.kind is not Kind.INDEX]
    indexes = {i.id for i in session.instruments if i.kind is Kind.INDEX}
    update_probability = layout.update_probability
    for step, (stamp, market) in enumerate(session.markets()):
        t = stamp.isoformat(timespec="milliseconds")
        if "SPX" in indexes:
            yield line({"t": t, "type": "index", "id": "SPX", "value": _r2(market.spx)})
        if "VIX" in indexes and step % layout.vix_every == 0:
            yield line({"t": t, "type": "index", "id": "VIX", "value": _r2(market.vix)})
        if "AD-NYSE" in indexes and step % layout.breadth_every == 0:
            yield line(
                {"t": t, "type": "index", "id": "AD-NYSE", "value": float(round(market.breadth))}
            )
        mids = session.option_mids(stamp, market)
        for inst in tradables:
            # A layout quoting everything every step draws no number for it.
            if step and update_probability < 1.0 and session.rng.random() >= update_probability:
                continue
            if inst.kind is Kind.FUTURE:
                mid = (
                    round(market.futures[VX_EXPIRIES.index(inst.expiry or SESSION_DATE)] / 0.05)
                    * 0.05
                )
            else:
                mid = mids[inst.id]
            quote = session.quote(inst, mid, market.vix)
            yield line({"t": t, "type": "quote", "id": inst.id, **quote})


def write_session(
    path: Path, *, seed: int, scenario: str = "vol-spike", layout: Layout = BUNDLED_LAYOUT
) -> Path:
    """Writes the session to ``path`` (gzip when it ends in .gz, with a fixed header time).

    Raises ValueError (``expiry.ExpiryError`` for a holiday) before writing anything when
    ``layout`` adds an SPX expiry that cannot be quoted."""
    _check_spx_expiries(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with (
            path.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as out,
        ):
            for line in session_lines(seed, scenario, layout=layout):
                out.write(line)
    else:
        with path.open("wb") as out:
            for line in session_lines(seed, scenario, layout=layout):
                out.write(line)
    return path
