"""Black-76 against published examples, a large random grid priced by QuantLib, and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql  # noqa: N813 - the name every QuantLib example uses
from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.pricing import black76
from monitor.pricing.black76 import IVReason

EPS = float(np.finfo(np.float64).eps)
MINUTE = 1.0 / (365.0 * 24.0 * 60.0)


def _published(printed: str) -> pytest.approx:
    """Matches values that round to ``printed``: within half a unit of its last decimal."""
    decimals = len(printed.partition(".")[2])
    return pytest.approx(float(printed), rel=0.0, abs=0.5 * 10.0**-decimals)


# --- 1. published values ---------------------------------------------------------------------
#
# Black-Scholes with cost of carry b maps onto Black-76 through the forward: with
# F = S exp(b T) and the discount factor exp(-r T), the generalized Black-Scholes value
# V(S, T) = B(S exp(b T), T), B the Black-76 value (b = r for Black-Scholes on a stock without
# dividends, b = r - q for Merton's continuous dividend yield q).


def _generalized_bs(
    spot: float, strike: float, years: float, *, rate: float, carry: float, vol: float, call: bool
) -> float:
    forward = spot * math.exp(carry * years)
    return float(black76.price(forward, strike, years, rate, vol, call))


def test_hull_black_scholes_call_and_greeks() -> None:
    # Hull, "Options, Futures, and Other Derivatives" (8th ed., 2012; 9th ed., 2015), chapter
    # "The Greek Letters": the running example of a European call on a non-dividend-paying
    # stock with S0 = 49, K = 50, r = 5 %, sigma = 20 %, T = 20 weeks = 0.3846 years. Hull
    # prints the Black-Scholes price 2.40 and delta = N(d1) = 0.522, gamma = 0.066, vega = 12.1
    # (per 1.0 of sigma, i.e. 0.121 per vol point) and theta = -4.31 per year (-0.0118 per
    # calendar day). Checked to the printed decimals (half a unit of the last one).
    spot, strike, rate, vol, years = 49.0, 50.0, 0.05, 0.20, 0.3846
    growth = math.exp(rate * years)
    forward = spot * growth
    greeks = black76.greeks(forward, strike, years, rate, vol, True)
    # With V(S, T) = B(S e^(rT), T): dV/dS = dB/dF e^(rT), d2V/dS2 = d2B/dF2 e^(2rT), and vega
    # is the same function of sigma. Black-Scholes theta holds S (not F) fixed as time passes:
    #     -dV/dT|_S = -dB/dF * dF/dT - dB/dT|_F = theta76 - r F delta_F,
    # since dF/dT = r F; theta76 = -dB/dT at fixed F is what black76.greeks returns.
    delta = float(greeks.delta) * growth
    gamma = float(greeks.gamma) * growth**2
    theta = float(greeks.theta) - rate * forward * float(greeks.delta)
    assert float(black76.price(forward, strike, years, rate, vol, True)) == _published("2.40")
    assert delta == _published("0.522")
    assert gamma == _published("0.066")
    assert float(greeks.vega) == _published("12.1")
    assert theta == _published("-4.31")


def test_haug_black76_example() -> None:
    # Haug, "The Complete Guide to Option Pricing Formulas" (2nd ed., 2007), section 1.1,
    # options on futures (Black 1976): F = K = 19, T = 0.75, r = 10 %, sigma = 28 % gives
    # c = p = 1.7011. Checked to the 4 printed decimals.
    assert float(black76.price(19.0, 19.0, 0.75, 0.10, 0.28, True)) == _published("1.7011")
    assert float(black76.price(19.0, 19.0, 0.75, 0.10, 0.28, False)) == _published("1.7011")


def test_haug_black_scholes_example() -> None:
    # Haug (2nd ed., 2007), section 1.1, the Black-Scholes (1973) stock option: S = 60,
    # K = 65, T = 0.25, r = 8 %, sigma = 30 % gives c = 2.1334 (b = r). To 4 decimals.
    call = _generalized_bs(60.0, 65.0, 0.25, rate=0.08, carry=0.08, vol=0.30, call=True)
    assert call == _published("2.1334")


def test_haug_merton_continuous_dividend_example() -> None:
    # Haug (2nd ed., 2007), section 1.1, Merton (1973) with a continuous dividend yield:
    # S = 100, K = 95, T = 0.5, r = 10 %, q = 5 %, sigma = 20 % gives p = 2.4648 (b = r - q).
    # To 4 decimals.
    put = _generalized_bs(100.0, 95.0, 0.5, rate=0.10, carry=0.10 - 0.05, vol=0.20, call=False)
    assert put == _published("2.4648")


def test_haug_generalized_black_scholes_example() -> None:
    # Haug (2nd ed., 2007), section 1.1, the generalized Black-Scholes-Merton formula with
    # cost of carry b: S = 75, K = 70, T = 0.5, r = 10 %, b = 5 %, sigma = 35 % gives
    # p = 4.0870. To 4 decimals.
    put = _generalized_bs(75.0, 70.0, 0.5, rate=0.10, carry=0.05, vol=0.35, call=False)
    assert put == _published("4.0870")


# --- 2. a random grid against QuantLib ---------------------------------------------------------

GRID_SIZE = 12_000


def _random_grid(size: int, seed: int) -> dict[str, np.ndarray]:
    """Calls and puts from one minute to two years, 5 % to 200 % vol, deep ITM to deep OTM.

    Half the strikes are spread in log-moneyness (|ln(K/F)| up to 2, which an hour out is
    thousands of standard deviations), half in standard deviations (|d| up to 12), where the
    values are neither 0 nor intrinsic.
    """
    rng = np.random.default_rng(seed)
    years = np.exp(rng.uniform(math.log(MINUTE), math.log(2.0), size))
    vols = np.exp(rng.uniform(math.log(0.05), math.log(2.0), size))
    std_dev = vols * np.sqrt(years)
    log_moneyness = np.where(
        rng.random(size) < 0.5,
        rng.uniform(-2.0, 2.0, size),
        np.clip(rng.uniform(-12.0, 12.0, size) * std_dev, -2.0, 2.0),
    )
    forwards = np.exp(rng.uniform(0.0, math.log(10_000.0), size))
    return {
        "F": forwards,
        "K": forwards * np.exp(log_moneyness),
        "T": years,
        "r": rng.uniform(-0.01, 0.1, size),
        "sigma": vols,
        "is_call": rng.random(size) < 0.5,
    }


def test_random_grid_matches_quantlib_black_calculator() -> None:
    grid = _random_grid(GRID_SIZE, seed=20260304)
    f, k, t, r, vol, call = (grid[n] for n in ("F", "K", "T", "r", "sigma", "is_call"))
    prices = black76.price(f, k, t, r, vol, call)
    greeks = black76.greeks(f, k, t, r, vol, call)
    failures: list[str] = []
    for i in range(GRID_SIZE):
        forward, strike, years, rate = float(f[i]), float(k[i]), float(t[i]), float(r[i])
        std_dev = float(vol[i]) * math.sqrt(years)
        discount = math.exp(-rate * years)
        option = ql.Option.Call if call[i] else ql.Option.Put
        calculator = ql.BlackCalculator(
            ql.PlainVanillaPayoff(option, strike), forward, std_dev, discount
        )
        d1 = math.log(forward / strike) / std_dev + 0.5 * std_dev
        # Relative tolerances with an explicit absolute floor each:
        # - price: relative 1e-12, floor 8 ulps of max(F, K): QuantLib forms F N(d1) - K N(d2),
        #   whose rounding is a few ulps of the larger term however small the difference.
        # - delta (dV/dF): relative 1e-12, floor 8 ulps of 1 plus 8 eps D exp(-d1^2/2)/s.
        #   QuantLib's N(d) is accurate in absolute, not relative, terms (1e-7 relative,
        #   4e-16 absolute at d = -5.6, where it changes method); and it takes log(F/K) of the
        #   rounded ratio, off by up to an ulp of 1, which moves d1 by eps/s: 3e-12 of delta an
        #   hour from expiry near the money (this code uses log1p of the exact F - K there).
        # - gamma and vega: relative 1e-12 (1 + d1^2) + 4000 eps (1 + |d1|)/s. Both carry
        #   exp(-d1^2/2), which turns an error e in d1 into d1^2 e whoever computes it; and
        #   QuantLib builds them from the derivatives of its alpha and beta terms, which cancel
        #   to about (1 + |d1|)/s: on this grid its gamma is up to 900 eps (1 + |d1|)/s off,
        #   1.6e-8 relative at s = 1e-4 (this code stays within 3 ulps (1 + d1^2) of 40-digit
        #   arithmetic). Floors 1e-280 of the natural scales D/(F s) and D F sqrt(T) absorb
        #   values that underflow on one side only, and QuantLib's cancellation within 20
        #   orders of magnitude of underflow, where its terms lose all their digits.
        # - theta: the gamma/vega tolerance on the time-decay term D F phi(d1) sigma/(2 sqrt(T))
        #   (QuantLib's theta goes through its gamma), plus r times the price floor (theta
        #   includes r V), plus 4 eps V/T (QuantLib's r V is -log(D)/T V, and log of the
        #   rounded D = exp(-rT) is off by eps relative to 1, i.e. eps/(rT) relative to rT),
        #   plus 1e-280 of D F s/T.
        curve = 1e-12 * (1.0 + d1 * d1) + 4000 * EPS * (1.0 + abs(d1)) / std_dev
        decay = abs(greeks.vega[i]) * float(vol[i]) / (2.0 * years)
        checks = (
            ("price", prices[i], calculator.value(), 1e-12, 8 * EPS * max(forward, strike)),
            (
                "delta",
                greeks.delta[i],
                calculator.deltaForward(),
                1e-12,
                8 * EPS + 8 * EPS * discount * math.exp(-0.5 * d1 * d1) / std_dev,
            ),
            (
                "gamma",
                greeks.gamma[i],
                calculator.gammaForward(),
                curve,
                1e-280 * discount / (forward * std_dev),
            ),
            (
                "vega",
                greeks.vega[i],
                calculator.vega(years),
                curve,
                1e-280 * discount * forward * math.sqrt(years),
            ),
            # QuantLib's theta(spot, T) holds spot fixed with carry log(F/spot)/T; at
            # spot = F (zero carry: a futures option) it is -dV/dT at fixed F and r, which is
            # r V - D F phi(d1) sigma/(2 sqrt(T)), the definition black76.greeks uses.
            (
                "theta",
                greeks.theta[i],
                calculator.theta(forward, years),
                0.0,
                curve * decay
                + abs(rate) * 8 * EPS * max(forward, strike)
                + 4 * EPS * abs(prices[i]) / years
                + 1e-280 * discount * forward * std_dev / years,
            ),
        )
        for name, ours, theirs, rel, floor in checks:
            if not abs(ours - theirs) <= rel * abs(theirs) + floor:
                failures.append(
                    f"{name}: {ours!r} vs QuantLib {theirs!r} at F={forward} K={strike} "
                    f"T={years} r={rate} sigma={vol[i]} call={call[i]}"
                )
    assert not failures, "\n".join(failures[:20])


# --- 3. implied volatility round trip, as properties -------------------------------------------


@st.composite
def _contract(draw: st.DrawFn) -> dict[str, float]:
    """An option anywhere in the domain the monitor prices, edges included.

    T from about 30 seconds (1e-6 years) to 3 years and sigma from 0.1 % to 500 %, so
    sigma sqrt(T) runs from 1e-6 to 8.7; strikes within 30 standard deviations of the
    forward (ln(F/K) = d sigma sqrt(T), |ln(F/K)| <= 5), which keeps the out-of-the-money
    value above the smallest normal double; F from 0.01 to 1e5; r from -5 % to 20 %.
    """
    years = 10.0 ** draw(st.floats(-6.0, math.log10(3.0)))
    vol = 10.0 ** draw(st.floats(-3.0, math.log10(5.0)))
    std_devs = draw(st.floats(-30.0, 30.0))
    log_moneyness = max(-5.0, min(5.0, std_devs * vol * math.sqrt(years)))
    forward = 10.0 ** draw(st.floats(-2.0, 5.0))
    return {
        "F": forward,
        "K": forward * math.exp(-log_moneyness),
        "T": years,
        "r": draw(st.floats(-0.05, 0.2)),
        "sigma": vol,
        "is_call": draw(st.booleans()),
    }


def _round_trip(option: dict[str, float]) -> tuple[float, float, int, float, float]:
    """Price, the implied vol and reason for it, the price again at that vol, and vega."""
    f, k, t, r, vol, call = (option[n] for n in ("F", "K", "T", "r", "sigma", "is_call"))
    target = float(black76.price(f, k, t, r, vol, call))
    implied, reason = black76.implied_vol_with_reason(target, f, k, t, r, call)
    again = float(black76.price(f, k, t, r, implied, call))
    vega = float(black76.greeks(f, k, t, r, vol, call).vega)
    return target, float(implied), int(reason), again, vega


@settings(max_examples=1500, deadline=None)
@given(_contract())
@example({"F": 100.0, "K": 100.0, "T": 1e-6, "r": 0.0, "sigma": 1e-3, "is_call": True})
@example({"F": 100.0, "K": 100.0, "T": 3.0, "r": 0.2, "sigma": 5.0, "is_call": False})
@example({"F": 1e5, "K": 1e5 * math.exp(5.0), "T": 3.0, "r": -0.05, "sigma": 5.0, "is_call": True})
def test_implied_vol_reproduces_the_price(option: dict[str, float]) -> None:
    target, implied, reason, again, vega = _round_trip(option)
    discount = math.exp(-option["r"] * option["T"])
    ceiling = discount * (option["F"] if option["is_call"] else option["K"])
    # Vega is negligible where doubling sigma would move the price by less than the
    # tolerance itself (sigma * vega <= 1e-12 * price): there, at the bounds of the price,
    # any vol reproduces it and a price rounded up to its ceiling has none (ABOVE_MAX).
    if option["sigma"] * vega <= 1e-12 * target:
        assert reason in {IVReason.OK, IVReason.ABOVE_MAX}
        return
    assert target < ceiling
    assert reason == IVReason.OK
    # Target: relative error of the reproduced price at most 1e-12.
    assert abs(again - target) <= 1e-12 * target, (target, again, implied)


@settings(max_examples=1500, deadline=None)
@given(_contract(), st.floats(-1.0, 1.0), st.floats(0.01, 8.0))
@example({"F": 100.0, "K": 100.0, "T": 1.0, "r": 0.05, "sigma": 0.2, "is_call": True}, 1.0, 0.01)
@example({"F": 100.0, "K": 100.0, "T": 1.0, "r": 0.05, "sigma": 0.2, "is_call": True}, -1.0, 8.0)
def test_implied_vol_recovers_sigma(
    option: dict[str, float], log_moneyness: float, std_dev: float
) -> None:
    # Target: relative vol error at most 1e-10 wherever |ln(F/K)| <= 1 and sigma sqrt(T) >= 0.01
    # (up to 8, where the price is within 2e-5 of its ceiling). The quote is the out-of-the-
    # money option at the strike (the same vol by put-call parity): an in-the-money quote is
    # discounted intrinsic plus time value, and deep in the money the time value survives
    # only to the last bits of the intrinsic, so no solver could recover sigma from it.
    # At |ln(F/K)| = 1 and sigma sqrt(T) = 0.01 (100 standard deviations) the out-of-the-money
    # value itself underflows, so the strikes are kept within 30 standard deviations (at
    # sigma sqrt(T) < 1/30 that caps |ln(F/K)| below 1).
    if abs(log_moneyness) > 30.0 * std_dev:
        log_moneyness = math.copysign(30.0 * std_dev, log_moneyness)
    years = option["T"]
    vol = std_dev / math.sqrt(years)
    forward = option["F"]
    strike = forward * math.exp(-log_moneyness)
    otm = {**option, "K": strike, "sigma": vol, "is_call": strike >= forward}
    _, implied, reason, _, _ = _round_trip(otm)
    assert reason == IVReason.OK
    assert abs(implied / vol - 1.0) <= 1e-10, (implied, vol)
