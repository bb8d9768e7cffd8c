"""Black-76 against published tables (Hull, Haug) and a 10,000-option QuantLib grid, and the
implied-vol round trip over the whole domain. Tolerances are stated next to each check."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import QuantLib as ql  # noqa: N813 - the name QuantLib users know
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from monitor.pricing import black76


def bs_as_black76(spot: float, carry: float, years: float) -> float:
    """Generalized Black-Scholes maps to Black-76 with F = S exp(bT), discount exp(-rT)."""
    return spot * math.exp(carry * years)


def test_hull_black_scholes_example() -> None:
    # Hull, "Options, Futures, and Other Derivatives", the 20-week call on a non-dividend
    # stock: S=49, K=50, r=5%, sigma=20%, T=0.3846; price 2.40, delta 0.522, gamma 0.066,
    # vega 12.1 (per 1.0 of sigma), theta -4.31 per year. Checked to the printed decimals.
    s, k, r, vol, t = 49.0, 50.0, 0.05, 0.20, 0.3846
    f = bs_as_black76(s, r, t)
    g = black76.greeks(f, k, t, r, vol, True)
    growth = math.exp(r * t)
    assert round(float(black76.price(f, k, t, r, vol, True)), 2) == 2.40
    assert round(float(g.delta) * growth, 3) == 0.522  # dV/dS = dV/dF * dF/dS
    assert round(float(g.gamma) * growth**2, 3) == 0.066
    assert round(float(g.vega), 1) == 12.1
    # V(S, T) = B(S e^{rT}, T): -dV/dT at fixed S = theta76 - r F dV/dF.
    assert round(float(g.theta) - r * f * float(g.delta), 2) == -4.31


@pytest.mark.parametrize(
    ("call", "spot", "strike", "years", "rate", "carry", "vol", "published"),
    [
        # Haug, "The Complete Guide to Option Pricing Formulas", 2nd ed.: Black-Scholes call
        (True, 60.0, 65.0, 0.25, 0.08, 0.08, 0.30, 2.1334),
        # Merton (1973) continuous dividend yield q=5%: put
        (False, 100.0, 95.0, 0.5, 0.10, 0.10 - 0.05, 0.20, 2.4648),
        # Generalized Black-Scholes, cost of carry b=5%: put
        (False, 75.0, 70.0, 0.5, 0.10, 0.05, 0.35, 4.0870),
        # Black (1976) on a future: F=19, K=19 (call and put are equal at the money forward)
        (True, 19.0, 19.0, 0.75, 0.10, 0.0, 0.28, 1.7011),
        (False, 19.0, 19.0, 0.75, 0.10, 0.0, 0.28, 1.7011),
    ],
)
def test_haug_examples(  # noqa: PLR0917 - one parameter per column of the table
    call: bool,
    spot: float,
    strike: float,
    years: float,
    rate: float,
    carry: float,
    vol: float,
    published: float,
) -> None:
    forward = bs_as_black76(spot, carry, years)
    value = float(black76.price(forward, strike, years, rate, vol, call))
    assert round(value, 4) == published  # to the 4 decimals printed


def quantlib_grid(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    forward = rng.uniform(5.0, 8000.0, n)
    years = np.exp(rng.uniform(math.log(1 / 8760), math.log(2.0), n))  # an hour to two years
    vol = rng.uniform(0.05, 2.0, n)
    # Strikes from deep ITM to deep OTM, within |d1| <= 6 where double precision holds for
    # QuantLib's own formulas (beyond it QuantLib, not the reference, loses digits).
    z = rng.uniform(-6.0, 6.0, n)
    strike = forward * np.exp(-z * vol * np.sqrt(years) + 0.5 * vol**2 * years)
    call = rng.random(n) < 0.5
    rate = rng.uniform(-0.01, 0.08, n)
    return {"F": forward, "K": strike, "T": years, "vol": vol, "call": call, "r": rate}


def test_ten_thousand_options_against_quantlib() -> None:
    g = quantlib_grid(10_000, seed=20260303)
    ours_price = black76.price(g["F"], g["K"], g["T"], g["r"], g["vol"], g["call"])
    ours = black76.greeks(g["F"], g["K"], g["T"], g["r"], g["vol"], g["call"])
    worst: dict[str, float] = dict.fromkeys(("price", "delta", "gamma", "vega", "theta"), 0.0)
    for i in range(len(g["F"])):
        f, k, t, r, v = (float(g[key][i]) for key in ("F", "K", "T", "r", "vol"))
        kind = ql.Option.Call if g["call"][i] else ql.Option.Put
        discount = math.exp(-r * t)
        calc = ql.BlackCalculator(ql.PlainVanillaPayoff(kind, k), f, v * math.sqrt(t), discount)
        d1 = math.log(f / k) / (v * math.sqrt(t)) + 0.5 * v * math.sqrt(t)
        density = norm.pdf(d1)
        theta_time = discount * f * density * v / (2 * math.sqrt(t))
        reference = {
            "price": calc.value(),
            "delta": calc.deltaForward(),
            "gamma": calc.gammaForward(),
            "vega": calc.vega(t),
            "theta": r * calc.value() - theta_time,
        }
        scale = {  # each quantity's natural size here (its terms before they cancel)
            "price": discount * max(f, k),
            "delta": discount,
            "gamma": discount * density / (f * v * math.sqrt(t)),
            "vega": discount * f * density * math.sqrt(t),
            # r V carries QuantLib's price error, a few ulps of max(F, K), into theta.
            "theta": theta_time + abs(r) * discount * max(f, k),
        }
        mine = {
            "price": float(ours_price[i]),
            "delta": float(ours.delta[i]),
            "gamma": float(ours.gamma[i]),
            "vega": float(ours.vega[i]),
            "theta": float(ours.theta[i]),
        }
        for name, ref in reference.items():
            error = abs(mine[name] - ref) / max(abs(ref), 1e-4 * scale[name])
            worst[name] = max(worst[name], error)
    # Relative error at most 1e-9; where a value is below 1e-4 of its natural scale (deep
    # wings, or theta's two terms cancelling), absolute error at most 1e-13 of that scale:
    # there QuantLib's double-precision formulas, not ours, lose relative digits.
    assert max(worst.values()) <= 1e-9, worst


@settings(max_examples=400, deadline=None)
@given(
    moneyness=st.floats(-3.0, 3.0),
    years=st.floats(1e-5, 3.0),
    vol=st.floats(0.005, 5.0),
    call=st.booleans(),
    rate=st.floats(-0.01, 0.10),
)
def test_implied_vol_round_trip_over_the_domain(
    moneyness: float, years: float, vol: float, call: bool, rate: float
) -> None:
    forward = 100.0
    strike = forward * math.exp(-moneyness)  # ln(F/K) = moneyness
    price = float(black76.price(forward, strike, years, rate, vol, call))
    vega = float(black76.greeks(forward, strike, years, rate, vol, call).vega)
    intrinsic = math.exp(-rate * years) * max((forward - strike) if call else (strike - forward), 0)
    if vega * vol < 1e-8 * price or price - intrinsic < 1e-12 * forward:
        return  # vega negligible: the price does not determine the vol
    iv = float(black76.implied_vol(price, forward, strike, years, rate, call))
    back = float(black76.price(forward, strike, years, rate, iv, call))
    assert abs(back - price) <= 1e-12 * price  # price round trip, relative 1e-12
    if abs(moneyness) <= 1.0 and vol * math.sqrt(years) >= 0.01:
        # Vol, relative 1e-10, in the central domain. A deep in-the-money price is rounded to
        # a double before any solver sees it; that rounding alone moves the vol by up to
        # ulp(price) / vega, which can exceed 1e-10 of the vol (time value ~1e-9 of the
        # price). The bound is the larger of the two.
        limit = max(1e-10 * vol, 2.0 * math.ulp(price) / vega)
        assert abs(iv - vol) <= limit


@pytest.mark.parametrize(
    ("forward", "strike", "years", "vol", "call"),
    [
        (6800.0, 4000.0, 0.12, 0.18, False),  # deep OTM put: price ~1e-60 of F
        (6800.0, 9000.0, 2.0, 0.15, True),  # far OTM call, long dated
        (6800.0, 6790.0, 30 / 525_600, 0.12, True),  # 0DTE, 30 minutes left
        (6800.0, 6700.0, 5 / 525_600, 0.25, False),  # 5 minutes left, OTM
        (17.0, 35.0, 15 / 365, 1.8, True),  # VIX call at 180 % vol
        (17.0, 12.0, 0.04, 2.5, False),  # VIX put, 250 % vol
        (100.0, 100.0, 3.0, 0.005, True),  # tiny vol, at the money
        (6800.0, 2000.0, 0.5, 0.2, True),  # deep ITM call
    ],
)
def test_extreme_points_against_50_digit_arithmetic(
    forward: float, strike: float, years: float, vol: float, call: bool
) -> None:
    """Where double-precision references fail, mpmath at 50 digits decides: relative 1e-13."""
    mp.mp.dps = 50
    f, k, t, v, r = (mp.mpf(x) for x in (forward, strike, years, vol, 0.04))

    def value(f: mp.mpf, t: mp.mpf, v: mp.mpf) -> mp.mpf:
        s = v * mp.sqrt(t)
        d1 = mp.log(f / k) / s + s / 2
        d2 = d1 - s
        disc = mp.e ** (-r * t)
        if call:
            return disc * (f * mp.ncdf(d1) - k * mp.ncdf(d2))
        return disc * (k * mp.ncdf(-d2) - f * mp.ncdf(-d1))

    exact = {
        "price": value(f, t, v),
        "delta": mp.diff(lambda x: value(x, t, v), f),
        "gamma": mp.diff(lambda x: value(x, t, v), f, 2),
        "vega": mp.diff(lambda x: value(f, t, x), v),
        "theta": -mp.diff(lambda x: value(f, x, v), t),
    }
    g = black76.greeks(forward, strike, years, 0.04, vol, call)
    ours = {
        "price": float(black76.price(forward, strike, years, 0.04, vol, call)),
        "delta": float(g.delta),
        "gamma": float(g.gamma),
        "vega": float(g.vega),
        "theta": float(g.theta),
    }
    for name, reference in exact.items():
        if reference == 0:
            assert ours[name] == 0.0
            continue
        assert abs(ours[name] - float(reference)) <= 1e-13 * abs(float(reference)), name
