"""Implied vol and greeks throughput against vollib and QuantLib; the scenario grid's cost;
the SVI smile fit per expiry against scipy's least_squares."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import QuantLib as ql  # noqa: N813 - the name QuantLib users know
from scipy.optimize import least_squares
from vollib.black.implied_volatility import implied_volatility as vollib_iv

from benchmarks.timing import median_seconds
from monitor.config import PricingConfig, ScenariosConfig
from monitor.domain.instruments import NEW_YORK, Instrument, parse_instrument_id
from monitor.portfolio.book import aggregate
from monitor.portfolio.model import Leg, Portfolio, Strategy, StrategyKind
from monitor.portfolio.scenarios import ScenarioEngine
from monitor.pricing import black76
from monitor.pricing.svi import SviFit, SviParams, fit_slice, quote_weights
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


SMILE_SLICES = 12


def smile_slices(seed: int = 5) -> list[dict[str, Any]]:
    """Index-like expiries, 7 days to a year, 15 to 40 strikes, each quoted twice: mids
    within their bid/ask (0.1 vol point half-spread at the money, 1 on the wings), then the
    same quotes a snapshot later, moved by a few hundredths of a vol point."""
    rng = np.random.default_rng(seed)
    slices = []
    for i in range(SMILE_SLICES):
        years = float(np.exp(rng.uniform(math.log(7 / 365), 0.0)))
        root_t = math.sqrt(years)
        n = int(rng.integers(15, 41))
        k = np.linspace(-0.25 * root_t / 0.35 - 0.05, 0.1 * root_t / 0.35 + 0.02, n)
        sigma = float(rng.uniform(0.05, 0.2)) * root_t
        b = float(rng.uniform(0.1, 0.3)) * root_t
        rho = float(rng.uniform(-0.85, -0.5))
        atm = float(rng.uniform(0.12, 0.22)) ** 2 * years
        true = SviParams(atm - b * sigma, b, rho, 0.01 * (i % 3), sigma)
        half = 0.001 + 0.009 * np.minimum(np.abs(k) / (0.2 * root_t / 0.35 + 0.01), 1.0)
        mids = true.implied_vol(k, years) + rng.uniform(-1.0, 1.0, n) * half
        weights = quote_weights(2.0 * half, rng.integers(1, 200, n))
        before = fit_slice(k, mids, years, weights)
        moved = mids + rng.normal(0.0, 0.0003, n)
        slices.append(
            {"k": k, "vols": moved, "years": years, "weights": weights, "previous": before}
        )
    return slices


def smile_ours(slices: list[dict[str, Any]], *, warm: bool) -> None:
    for s in slices:
        fit_slice(
            s["k"], s["vols"], s["years"], s["weights"], s["previous"].params if warm else None
        )


def _svi_residuals(
    x: np.ndarray, k: np.ndarray, vols: np.ndarray, years: float, root_w: np.ndarray
) -> np.ndarray:
    a, b, rho, m, sigma = x
    w = a + b * (rho * (k - m) + np.sqrt((k - m) ** 2 + sigma * sigma))
    return root_w * (np.sqrt(np.maximum(w, 1e-12) / years) - vols)


def smile_scipy(slices: list[dict[str, Any]]) -> None:
    """The naive peer: scipy's least_squares (trust region reflective) on all five raw SVI
    parameters and the weighted vol errors, started from the same previous fit as ours."""
    lower = [-1.0, 0.0, -0.999, -1.0, 1e-4]
    upper = [1.0, 2.0, 0.999, 1.0, 4.0]
    for s in slices:
        previous: SviFit = s["previous"]
        p = previous.params
        start = np.clip([p.a, p.b, p.rho, p.m, p.sigma], lower, upper)
        least_squares(
            _svi_residuals,
            start,
            bounds=(lower, upper),
            args=(s["k"], s["vols"], s["years"], np.sqrt(s["weights"])),
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
    slices = smile_slices()
    warm = median_seconds(lambda: smile_ours(slices, warm=True)) / len(slices)
    cold = median_seconds(lambda: smile_ours(slices, warm=False)) / len(slices)
    peer = median_seconds(lambda: smile_scipy(slices), repeats=5) / len(slices)
    results["smile_fit_us_per_expiry"] = warm * 1e6
    results["smile_fit_cold_us_per_expiry"] = cold * 1e6
    results["smile_fit_us_per_expiry_scipy"] = peer * 1e6
    results["smile_fit_speedup_vs_scipy"] = peer / warm
    return results
