"""Implied vol and greeks throughput against vollib and QuantLib; the scenario grid's cost."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import QuantLib as ql  # noqa: N813 - the name QuantLib users know
from vollib.black.implied_volatility import implied_volatility as vollib_iv

from benchmarks.timing import median_seconds
from monitor.config import PricingConfig, ScenariosConfig
from monitor.domain.instruments import NEW_YORK, Instrument, parse_instrument_id
from monitor.portfolio.book import aggregate
from monitor.portfolio.model import Leg, Portfolio, Strategy, StrategyKind
from monitor.portfolio.scenarios import ScenarioEngine
from monitor.pricing import black76
from monitor.pricing.valuation import LegValue

SIZES = (4, 50, 500, 5000)
RATE = 0.04


def options(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """Realistic SPX options: 0DTE minutes to six months, deep OTM to ITM, 8 % to 80 % vol."""
    rng = np.random.default_rng(seed + n)
    forward = np.full(n, 6800.0)
    strike = np.round(forward * np.exp(rng.uniform(-0.3, 0.2, n)) / 5.0) * 5.0
    years = np.exp(rng.uniform(math.log(30 / 525_600), math.log(0.5), n))
    vol = rng.uniform(0.08, 0.8, n)
    is_call = rng.random(n) < 0.5
    price = black76.price(forward, strike, years, RATE, vol, is_call)
    return {"F": forward, "K": strike, "T": years, "sigma": vol, "call": is_call, "price": price}


def iv_ours(o: dict[str, np.ndarray]) -> None:
    black76.implied_vol(o["price"], o["F"], o["K"], o["T"], RATE, o["call"])


def iv_vollib(o: dict[str, np.ndarray]) -> None:
    for p, f, k, t, c in zip(o["price"], o["F"], o["K"], o["T"], o["call"], strict=True):
        try:
            vollib_iv(float(p), float(f), float(k), RATE, float(t), "c" if c else "p")
        except Exception:  # noqa: BLE001, S112 - vollib raises for prices at its bounds
            continue


def greeks_ours(o: dict[str, np.ndarray]) -> None:
    black76.greeks(o["F"], o["K"], o["T"], RATE, o["sigma"], o["call"])


def greeks_quantlib(o: dict[str, np.ndarray]) -> None:
    for f, k, t, s, c in zip(o["F"], o["K"], o["T"], o["sigma"], o["call"], strict=True):
        payoff = ql.PlainVanillaPayoff(ql.Option.Call if c else ql.Option.Put, float(k))
        calc = ql.BlackCalculator(payoff, float(f), float(s) * math.sqrt(t), math.exp(-RATE * t))
        calc.value()
        calc.deltaForward()
        calc.gammaForward()
        calc.vega(float(t))
        calc.theta(float(f), float(t))


def _leg_value(
    inst: Instrument, forward: float, years: float, vol: float, price: float, *, delta: float
) -> LegValue:
    return LegValue(
        instrument=inst,
        underlying_price=forward,
        years=years,
        iv=vol,
        model_priced=False,
        price=price,
        delta=delta,
        gamma=0.0,
        vega=0.0,
        theta=0.0,
    )


def forty_leg_book() -> Any:
    """Ten iron condors over three expiries (40 legs, with VIX futures and call spreads)."""
    now = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)
    strategies = []
    values = []
    expiries = ("20260320", "20260417", "20260515")
    for n in range(9):
        expiry = expiries[n % 3]
        base = 6300 + 25 * n
        ids = (
            f"SPX {expiry} P{base}",
            f"SPX {expiry} P{base + 50}",
            f"SPX {expiry} C{base + 800}",
            f"SPX {expiry} C{base + 850}",
        )
        legs = tuple(
            Leg(f"IC{n}", parse_instrument_id(i), q)
            for i, q in zip(ids, (10, -10, -10, 10), strict=True)
        )
        strategies.append(Strategy(f"IC{n}", StrategyKind.IRON_CONDOR, legs))
    hedge_ids = ("VX 20260318", "VX 20260415", "VIX 20260318 C22", "VIX 20260318 C27")
    hedge = tuple(
        Leg("SE", parse_instrument_id(i), q)
        for i, q in zip(hedge_ids, (2, 3, 20, -20), strict=True)
    )
    strategies.append(Strategy("SE", StrategyKind.SECOND_ENGINE, hedge))
    portfolio = Portfolio(Path("bench"), tuple(strategies))
    for leg in portfolio.legs:
        inst = leg.instrument
        years = (inst.expiry - now.date()).days / 365.0 if inst.expiry else 0.1
        if inst.strike is None:
            values.append(_leg_value(inst, 18.0, years, math.nan, 18.0, delta=1.0))
            continue
        forward = 6830.0 if inst.underlying == "SPX" else 17.0
        vol = 0.18 if inst.underlying == "SPX" else 0.9
        price = float(black76.price(forward, inst.strike, years, RATE, vol, inst.is_call))
        values.append(_leg_value(inst, forward, years, vol, price, delta=0.0))
    return aggregate(
        portfolio,
        values,
        6800.0,
        vix_points_per_spx_pct=PricingConfig().vix_points_per_spx_pct,
        vx_response_half_life_days=ScenariosConfig().vx_response_half_life_days,
    )


def run() -> dict[str, float]:
    results: dict[str, float] = {}
    for n in SIZES:
        o = options(n)
        ours = median_seconds(lambda o=o: iv_ours(o)) / n
        theirs = median_seconds(lambda o=o: iv_vollib(o), repeats=5 if n >= 500 else 11) / n
        results[f"iv_us_per_option_ours_n{n}"] = ours * 1e6
        results[f"iv_us_per_option_py_vollib_n{n}"] = theirs * 1e6
        results[f"iv_speedup_vs_py_vollib_n{n}"] = theirs / ours
        ours = median_seconds(lambda o=o: greeks_ours(o)) / n
        theirs = median_seconds(lambda o=o: greeks_quantlib(o), repeats=5 if n >= 500 else 11) / n
        results[f"greeks_us_per_option_ours_n{n}"] = ours * 1e6
        results[f"greeks_us_per_option_quantlib_n{n}"] = theirs * 1e6
        results[f"greeks_speedup_vs_quantlib_n{n}"] = theirs / ours
    book = forty_leg_book()
    spec = ScenariosConfig(spx_moves_pct=[float(m) for m in np.linspace(-10, 5, 15)])
    engine = ScenarioEngine(spec, RATE)
    results["scenario_grid_legs"] = float(len(book.legs))
    results["scenario_grid_40legs_ms"] = median_seconds(lambda: engine.grid(book)) * 1e3
    return results
