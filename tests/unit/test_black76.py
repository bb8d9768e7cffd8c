"""Black-76 prices, greeks and implied vols against published values, QuantLib and identities."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import QuantLib as ql  # noqa: N813 - the name every QuantLib example uses
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.pricing import black76
from monitor.pricing.black76 import IVReason

EPS = float(np.finfo(np.float64).eps)
# pytest.approx adds an absolute 1e-12 unless told otherwise, which would wave through any
# relative error in prices of 1e-30: every relative comparison below passes abs explicitly.
HOUR = 1.0 / (365.0 * 24.0)

# Deep in-the-money to deep out-of-the-money, one hour to two years, 5 % to 200 % vol.
STRIKE_RATIOS = (0.2, 0.5, 0.7, 0.85, 0.95, 0.99, 0.999, 1.0, 1.001, 1.01, 1.05, 1.15, 1.4, 2.0)
MATURITIES = (HOUR, 1.0 / 365.0, 7.0 / 365.0, 0.1, 0.5, 1.0, 2.0)
VOLS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
FORWARD = 100.0
RATE = 0.05


def _grid() -> list[tuple[float, float, float, bool]]:
    return [
        (FORWARD * ratio, years, vol, call)
        for ratio, years, vol, call in itertools.product(
            STRIKE_RATIOS, MATURITIES, VOLS, (True, False)
        )
    ]


def _ql_type(call: bool) -> int:
    return int(ql.Option.Call if call else ql.Option.Put)


def _ql_price(call: bool, strike: float, forward: float, vol: float, years: float) -> float:
    return float(
        ql.blackFormula(
            _ql_type(call), strike, forward, vol * math.sqrt(years), math.exp(-RATE * years)
        )
    )


def _d1(forward: float, strike: float, vol: float, years: float) -> float:
    std_dev = vol * math.sqrt(years)
    return math.log(forward / strike) / std_dev + 0.5 * std_dev


# --- 1. published values ---------------------------------------------------------------------


def test_haug_black76_example() -> None:
    # Haug, "The Complete Guide to Option Pricing Formulas", 2nd ed. (2007), the Black (1976)
    # numerical example: F = K = 19, T = 0.75, r = 10 %, sigma = 28 % gives c = p = 1.7011.
    call = float(black76.price(19.0, 19.0, 0.75, 0.10, 0.28, True))
    put = float(black76.price(19.0, 19.0, 0.75, 0.10, 0.28, False))
    assert call == pytest.approx(1.7011, abs=5e-5)
    assert put == pytest.approx(1.7011, abs=5e-5)


def test_hull_put_futures_option_example() -> None:
    # Hull, "Options, Futures, and Other Derivatives", the European put futures option example
    # for Black's model: F0 = K = 20, r = 9 %, T = 4 months, sigma = 25 % gives p = 1.12.
    put = float(black76.price(20.0, 20.0, 4.0 / 12.0, 0.09, 0.25, False))
    assert put == pytest.approx(1.12, abs=5e-3)


# --- 2. QuantLib -----------------------------------------------------------------------------


def test_price_and_first_greeks_match_quantlib_black_calculator() -> None:
    grid = _grid()
    strikes = np.array([g[0] for g in grid])
    years = np.array([g[1] for g in grid])
    vols = np.array([g[2] for g in grid])
    calls = np.array([g[3] for g in grid])
    prices = black76.price(FORWARD, strikes, years, RATE, vols, calls)
    greeks = black76.greeks(FORWARD, strikes, years, RATE, vols, calls)
    for i, (strike, t, vol, call) in enumerate(grid):
        calculator = ql.BlackCalculator(
            ql.PlainVanillaPayoff(_ql_type(call), strike),
            FORWARD,
            vol * math.sqrt(t),
            math.exp(-RATE * t),
        )
        where = f"K={strike} T={t} sigma={vol} call={call}"
        # QuantLib prices a far wing as F N(d1) - K N(d2), leaving an absolute error of a few
        # ulps of the larger of F and K; near the money the comparison is relative 1e-12.
        assert prices[i] == pytest.approx(
            calculator.value(), rel=1e-12, abs=4 * EPS * max(FORWARD, strike)
        ), where
        # QuantLib's N(d) is accurate in absolute rather than relative terms in the tails.
        assert greeks.delta[i] == pytest.approx(calculator.deltaForward(), rel=1e-12, abs=4 * EPS)
        # Both carry phi(d1), which turns a relative error e in d1 into d1^2 e; QuantLib's d1 is
        # good to a few ulps up to |d1| ~ 15 but drifts beyond (1e-9 off at d1 = -18.6 an hour
        # out, where this code agrees with 50-digit arithmetic to 1e-15). The far wings'
        # own accuracy is pinned by the quadrature test below.
        d1 = _d1(FORWARD, strike, vol, t)
        tolerance = (1e-12 if abs(d1) <= 15.0 else 1e-10) * (1.0 + d1 * d1)
        assert greeks.gamma[i] == pytest.approx(
            calculator.gammaForward(), rel=tolerance, abs=0.0
        ), where
        assert greeks.vega[i] == pytest.approx(calculator.vega(t), rel=tolerance, abs=0.0), where


def _central(values: list[float], step: float) -> float:
    """Fourth-order central first derivative from f(-2h), f(-h), f(h), f(2h)."""
    m2, m1, p1, p2 = values
    return (m2 - 8.0 * m1 + 8.0 * p1 - p2) / (12.0 * step)


def _central_second(values: list[float], step: float) -> float:
    """Fourth-order central second derivative from f(-2h), f(-h), f(0), f(h), f(2h)."""
    m2, m1, zero, p1, p2 = values
    return (-m2 + 16.0 * m1 - 30.0 * zero + 16.0 * p1 - p2) / (12.0 * step * step)


_STENCIL = (-2, -1, 1, 2)


def _fd_greeks(
    strike: float, years: float, vol: float, call: bool, steps: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Theta, vanna and volga from central differences of QuantLib's blackFormula."""
    dt, df, dv = steps

    def value(forward: float = FORWARD, t: float = years, sigma: float = vol) -> float:
        return _ql_price(call, strike, forward, sigma, t)

    theta = -_central([value(t=years + k * dt) for k in _STENCIL], dt)
    vanna = _central(
        [
            _central([value(forward=FORWARD + i * df, sigma=vol + k * dv) for k in _STENCIL], dv)
            for i in _STENCIL
        ],
        df,
    )
    volga = _central_second([value(sigma=vol + k * dv) for k in (-2, -1, 0, 1, 2)], dv)
    return theta, vanna, volga


def _fd_grid() -> list[tuple[float, float, float, bool]]:
    # Finite differences of QuantLib prices need prices well above QuantLib's own round-off.
    return [
        g
        for g in _grid()
        if _ql_price(g[3], g[0], FORWARD, g[2], g[1]) > 1e-6 * FORWARD
        and abs(_d1(FORWARD, g[0], g[2], g[1])) < 6.0
    ]


def test_theta_vanna_volga_match_finite_differences_of_quantlib() -> None:
    grid = _fd_grid()
    assert len(grid) > 300
    meaningful = 0
    for strike, t, vol, call in grid:
        greeks = black76.greeks(FORWARD, strike, t, RATE, vol, call)
        std_dev = vol * math.sqrt(t)
        d1 = _d1(FORWARD, strike, vol, t)
        d2 = d1 - std_dev
        # Bumps a small fraction of the scale on which each input moves the price: T and sigma
        # move d1 by about (1 + |d1|) per relative unit, F by 1/std_dev per relative unit.
        scale = 1.0 + abs(d1) * (1.0 + abs(d1))
        dt = 1e-2 * t / scale
        df = 1e-2 * FORWARD * std_dev / (1.0 + abs(d1))
        dv = 1e-2 * vol / scale
        theta_fd, vanna_fd, volga_fd = _fd_greeks(strike, t, vol, call, (dt, df, dv))

        # Each greek against its own natural size, so that zero crossings (d2 = 0 for vanna,
        # d1 d2 = 0 for volga) do not turn a 1e-9 absolute agreement into a relative failure.
        discount = math.exp(-RATE * t)
        f_phi = FORWARD * math.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
        value = _ql_price(call, strike, FORWARD, vol, t)
        theta_size = abs(RATE * value) + discount * f_phi * vol / (2.0 * math.sqrt(t))
        vanna_size = discount * f_phi / FORWARD * (1.0 + abs(d2)) / vol
        vega = discount * f_phi * math.sqrt(t)
        volga_size = vega * (1.0 + abs(d1 * d2)) / vol
        # Plus the round-off the stencils amplify (the sums of their weights): QuantLib's prices
        # carry a few ulps of max(F, K), which deep in the money swamps a 1e-8 vanna.
        noise = 4 * EPS * max(FORWARD, strike)
        theta_tolerance = 1e-6 * theta_size + 1.5 * noise / dt
        vanna_tolerance = 1e-6 * vanna_size + 2.25 * noise / (df * dv)
        volga_tolerance = 1e-6 * volga_size + 5.34 * noise / (dv * dv)
        where = f"K={strike} T={t} sigma={vol} call={call}"
        assert abs(float(greeks.theta) - theta_fd) <= theta_tolerance, where
        assert abs(float(greeks.vanna) - vanna_fd) <= vanna_tolerance, where
        assert abs(float(greeks.volga) - volga_fd) <= volga_tolerance, where
        meaningful += (
            max(
                theta_tolerance / theta_size,
                vanna_tolerance / vanna_size,
                volga_tolerance / volga_size,
            )
            < 2e-6
        )
    # The noise allowance must leave most points tested at the 1e-6 level.
    assert meaningful > 0.8 * len(grid)


def test_theta_matches_closed_form_on_quantlib_value() -> None:
    grid = _grid()
    strikes = np.array([g[0] for g in grid])
    years = np.array([g[1] for g in grid])
    vols = np.array([g[2] for g in grid])
    calls = np.array([g[3] for g in grid])
    theta = black76.greeks(FORWARD, strikes, years, RATE, vols, calls).theta
    for i, (strike, t, vol, call) in enumerate(grid):
        value = _ql_price(call, strike, FORWARD, vol, t)
        d1 = _d1(FORWARD, strike, vol, t)
        discount = math.exp(-RATE * t)
        decay = discount * FORWARD * math.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
        decay *= vol / (2.0 * math.sqrt(t))
        expected = RATE * value - decay  # the same for calls and puts
        # QuantLib's value carries a few ulps of max(F, K) (see above), times r here.
        floor = RATE * 4 * EPS * max(FORWARD, strike)
        tolerance = 1e-12 * (1.0 + d1 * d1) * (abs(RATE * value) + decay) + floor
        assert abs(theta[i] - expected) <= tolerance, f"K={strike} T={t} sigma={vol} {call}"


# --- far wings: relative accuracy QuantLib cannot check ---------------------------------------

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(20)


def _otm_price_by_quadrature(forward: float, strike: float, years: float, vol: float) -> float:
    """Out-of-the-money Black-76 price as the integral of its vega over sigma.

    d(time value)/ds = sqrt(FK) exp(-(x^2/s^2 + s^2/4)/2)/sqrt(2 pi) with s = sigma sqrt(T) and
    x = ln(F/K): a positive integrand, so Gauss-Legendre keeps full relative accuracy where
    the closed form subtracts two nearly equal numbers. The panels halve towards both ends.
    """
    x = math.log1p((forward - strike) / strike)  # exact F - K keeps x's relative accuracy
    s = vol * math.sqrt(years)
    halves = 0.5 ** np.arange(1, 60)
    edges = s * np.concatenate(([0.0], halves[::-1], 1.0 - halves, [1.0]))
    mid = 0.5 * (edges[1:] + edges[:-1])[:, None]
    half = 0.5 * (edges[1:] - edges[:-1])[:, None]
    u = mid + half * _NODES[None, :]
    integrand = np.exp(-0.5 * ((x / u) ** 2 + 0.25 * u * u)) / math.sqrt(2.0 * math.pi)
    normalised = float(np.sum(half * _WEIGHTS[None, :] * integrand))
    return math.exp(-RATE * years) * math.sqrt(forward * strike) * normalised


@pytest.mark.parametrize(
    ("forward", "strike", "years", "vol"),
    [
        (5000.0, 5100.0, HOUR, 0.15),  # 0DTE SPX wing: d1 about -9
        (5000.0, 4925.0, 2 * HOUR, 0.12),
        (5000.0, 5300.0, 1.0 / 365.0, 0.18),
        (5000.0, 3000.0, 0.25, 0.35),
        (18.0, 40.0, 7.0 / 365.0, 1.2),  # VIX call far out of the money
        (18.0, 60.0, 30.0 / 365.0, 1.8),
        (100.0, 100.05, HOUR, 0.05),
    ],
)
def test_far_wing_prices_keep_relative_accuracy(
    forward: float, strike: float, years: float, vol: float
) -> None:
    call = strike > forward
    expected = _otm_price_by_quadrature(forward, strike, years, vol)
    assert expected > 0.0
    assert float(black76.price(forward, strike, years, RATE, vol, call)) == pytest.approx(
        expected, rel=1e-12, abs=0.0
    )


# --- 3. implied volatility -------------------------------------------------------------------


def _roundtrip_sample(size: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    years = 10.0 ** rng.uniform(-5.0, math.log10(3.0), size)
    vols = 10.0 ** rng.uniform(math.log10(0.005), math.log10(5.0), size)
    std_dev = vols * np.sqrt(years)
    # Moneyness in standard deviations, capped at |ln(F/K)| <= 3.
    log_moneyness = np.clip(rng.uniform(-8.0, 8.0, size) * std_dev, -3.0, 3.0)
    forwards = 10.0 ** rng.uniform(1.0, 4.0, size)
    return {
        "F": forwards,
        "K": forwards * np.exp(-log_moneyness),
        "T": years,
        "r": rng.uniform(-0.01, 0.1, size),
        "sigma": vols,
        "is_call": rng.random(size) < 0.5,
    }


def _check_roundtrip(sample: dict[str, np.ndarray]) -> None:
    f, k, t, r, vol, call = (sample[n] for n in ("F", "K", "T", "r", "sigma", "is_call"))
    target = black76.price(f, k, t, r, vol, call)
    implied, reason = black76.implied_vol_with_reason(target, f, k, t, r, call)
    discount = np.exp(-r * t)
    ceiling = discount * np.where(call, f, k)
    # Prices within a few ulps of the upper bound say nothing about sigma.
    inside = target < ceiling * (1.0 - 1e-12)
    assert np.all(reason[inside] == IVReason.OK)
    assert np.all(np.isfinite(implied[inside]))
    again = black76.price(f, k, t, r, implied, call)
    error = np.abs(again - target)
    assert np.all((error <= 1e-12 * target) | (error <= 1e-14 * f) | ~inside)
    # Where a 1e-10 relative change of sigma moves the price by more than ~1e-14 of it, the
    # volatility itself must come back.
    vega = black76.greeks(f, k, t, r, vol, call).vega
    sensitive = inside & (vega * vol > 1e-4 * target)
    assert np.all(np.abs(implied[sensitive] / vol[sensitive] - 1.0) <= 1e-10)


def test_implied_vol_round_trip_over_a_wide_sample() -> None:
    sample = _roundtrip_sample(50_000, seed=20260303)
    _check_roundtrip(sample)


@st.composite
def _option(draw: st.DrawFn) -> dict[str, np.ndarray]:
    years = 10.0 ** draw(st.floats(-5.0, math.log10(3.0)))
    vol = 10.0 ** draw(st.floats(math.log10(0.005), math.log10(5.0)))
    # Moneyness in standard deviations, capped at |ln(F/K)| <= 3.
    log_moneyness = max(-3.0, min(3.0, draw(st.floats(-8.0, 8.0)) * vol * math.sqrt(years)))
    forward = draw(st.floats(1.0, 10_000.0))
    return {
        "F": np.array([forward]),
        "K": np.array([forward * math.exp(-log_moneyness)]),
        "T": np.array([years]),
        "r": np.array([draw(st.floats(-0.01, 0.1))]),
        "sigma": np.array([vol]),
        "is_call": np.array([draw(st.booleans())]),
    }


@settings(max_examples=300, deadline=None)
@given(_option())
def test_implied_vol_round_trip_property(option: dict[str, np.ndarray]) -> None:
    _check_roundtrip(option)


@pytest.mark.parametrize(
    ("forward", "strike", "years", "vol", "call"),
    [
        (5000.0, 5000.0, HOUR, 0.12, True),
        (5000.0, 4900.0, 3 * HOUR, 0.25, False),
        (5000.0, 5150.0, 1.0 / 365.0, 0.14, True),
        (5000.0, 4000.0, 0.5, 0.3, False),
        (18.0, 25.0, 30.0 / 365.0, 1.6, True),  # VIX call, vol above 150 %
        (18.0, 15.0, 60.0 / 365.0, 0.9, False),
        (18.0, 13.0, 0.1, 0.6, True),  # in the money
        (100.0, 100.0, 2.0, 0.01, False),
    ],
)
def test_implied_vol_agrees_with_quantlib(
    forward: float, strike: float, years: float, vol: float, call: bool
) -> None:
    discount = math.exp(-RATE * years)
    quoted = float(
        ql.blackFormula(_ql_type(call), strike, forward, vol * math.sqrt(years), discount)
    )
    expected = ql.blackFormulaImpliedStdDev(
        _ql_type(call), strike, forward, quoted, discount, 0.0, ql.nullDouble(), 1e-14, 200
    ) / math.sqrt(years)
    implied = float(black76.implied_vol(quoted, forward, strike, years, RATE, call))
    # QuantLib's quote is off by up to a few ulps of max(F, K) (see above), which moves the
    # implied vol by that much over vega; QuantLib's solver inverts its own noisy formula.
    vega = float(black76.greeks(forward, strike, years, RATE, vol, call).vega)
    tolerance = 1e-10 + 8 * EPS * max(forward, strike) / (vega * vol)
    assert implied == pytest.approx(expected, rel=tolerance, abs=0.0)
    assert implied == pytest.approx(vol, rel=tolerance, abs=0.0)


def test_implied_vol_reasons() -> None:
    f, k, t, r = 100.0, 90.0, 0.5, 0.05
    discount = math.exp(-r * t)
    intrinsic = discount * (f - k)
    cases = [
        # (price, F, K, T, call, reason)
        (intrinsic * 0.999, f, k, t, True, IVReason.BELOW_INTRINSIC),
        (discount * (110.0 - f) * 0.5, f, 110.0, t, False, IVReason.BELOW_INTRINSIC),
        (discount * f, f, k, t, True, IVReason.ABOVE_MAX),
        (discount * f * 1.5, f, k, t, True, IVReason.ABOVE_MAX),
        (discount * k * 1.01, f, k, t, False, IVReason.ABOVE_MAX),
        (12.0, f, k, 0.0, True, IVReason.EXPIRED),
        (12.0, f, k, -0.01, True, IVReason.EXPIRED),
        (math.nan, f, k, t, True, IVReason.BAD_INPUT),
        (-0.01, f, 110.0, t, True, IVReason.BAD_INPUT),
        (5.0, -100.0, k, t, True, IVReason.BAD_INPUT),
        (5.0, f, 0.0, t, True, IVReason.BAD_INPUT),
        (5.0, f, k, math.inf, True, IVReason.BAD_INPUT),
        (5.0, f, k, math.nan, True, IVReason.BAD_INPUT),
        (12.0, f, k, t, True, IVReason.OK),
    ]
    prices, forwards, strikes, years, calls, reasons = (
        np.array(c) for c in zip(*cases, strict=True)
    )
    vol, reason = black76.implied_vol_with_reason(prices, forwards, strikes, years, r, calls)
    assert reason.dtype == np.int8
    assert reason.tolist() == [int(c) for c in reasons]
    assert np.all(np.isnan(vol[:-1]))
    assert np.isfinite(vol[-1])
    assert np.array_equal(
        np.isnan(black76.implied_vol(prices, forwards, strikes, years, r, calls)), np.isnan(vol)
    )


def test_price_at_intrinsic_has_zero_vol() -> None:
    discount = math.exp(-0.05 * 0.5)
    vol, reason = black76.implied_vol_with_reason(
        [discount * 10.0, 0.0], 100.0, [90.0, 120.0], 0.5, 0.05, [True, True]
    )
    assert reason.tolist() == [IVReason.OK, IVReason.OK]
    assert vol.tolist() == [0.0, 0.0]


def test_implied_vol_broadcasts_and_returns_writable_arrays() -> None:
    strikes = np.array([[4900.0, 5000.0, 5100.0], [4800.0, 5000.0, 5200.0]])
    vols = np.array([0.2, 0.15, 0.18])
    prices = black76.price(5000.0, strikes, 0.05, 0.04, vols, True)
    assert prices.shape == (2, 3)
    implied = black76.implied_vol(prices, 5000.0, strikes, 0.05, 0.04, True)
    assert implied.shape == (2, 3)
    np.testing.assert_allclose(implied, np.broadcast_to(vols, (2, 3)), rtol=1e-12)
    implied[0, 0] = 0.3  # callers patch in fallback vols
    assert black76.price(100.0, 100.0, 1.0, 0.0, 0.2, [True, False]).shape == (2,)
    assert black76.price(100.0, 100.0, 1.0, 0.0, 0.2, True).shape == ()
    greeks = black76.greeks(5000.0, strikes[:, :, None], 0.05, 0.04, 0.2, [True, False])
    assert greeks.delta.shape == (2, 3, 2)
    assert greeks.volga.shape == (2, 3, 2)


# --- 4. put-call parity and the degenerate cases ---------------------------------------------


def test_put_call_parity() -> None:
    grid = _grid()
    strikes = np.array([g[0] for g in grid])
    years = np.array([g[1] for g in grid])
    vols = np.array([g[2] for g in grid])
    calls = black76.price(FORWARD, strikes, years, RATE, vols, True)
    puts = black76.price(FORWARD, strikes, years, RATE, vols, False)
    forward_value = np.exp(-RATE * years) * (FORWARD - strikes)
    # Relative to the option prices: C - P itself rounds at eps * max(C, P).
    scale = np.maximum(np.maximum(calls, puts), np.abs(forward_value))
    assert np.all(np.abs(calls - puts - forward_value) <= 1e-12 * scale)


def test_expired_or_zero_vol_is_discounted_intrinsic() -> None:
    f = 100.0
    strikes = np.array([90.0, 100.0, 110.0])
    expired = black76.price(f, strikes, 0.0, 0.05, 0.3, [[True], [False]])
    assert expired.tolist() == [[10.0, 0.0, 0.0], [0.0, 0.0, 10.0]]
    # After expiry the value does not depend on sigma, even a missing one.
    assert black76.price(f, 90.0, -0.01, 0.05, math.nan, True).tolist() == 10.0
    discount = math.exp(-0.05 * 0.5)
    frozen = black76.price(f, strikes, 0.5, 0.05, 0.0, [[True], [False]])
    np.testing.assert_allclose(frozen, discount * np.array([[10, 0, 0], [0, 0, 10]]), rtol=1e-15)


def test_greeks_of_frozen_options() -> None:
    strikes = np.array([90.0, 100.0, 110.0])
    expired = black76.greeks(100.0, strikes, 0.0, 0.05, 0.3, [[True], [False]])
    assert expired.delta.tolist() == [[1.0, 0.5, 0.0], [0.0, -0.5, -1.0]]
    for field in (expired.gamma, expired.vega, expired.theta, expired.vanna, expired.volga):
        assert np.all(field == 0.0)
    discount = math.exp(-0.05 * 0.5)
    still = black76.greeks(100.0, strikes, 0.5, 0.05, 0.0, True)
    np.testing.assert_allclose(still.delta, discount * np.array([1.0, 0.5, 0.0]), rtol=1e-15)
    # Pure discounting of the intrinsic value: -dV/dT = r V.
    np.testing.assert_allclose(still.theta, 0.05 * discount * np.array([10.0, 0, 0]), rtol=1e-15)
    assert np.all(still.gamma == 0.0)
    assert np.all(still.vega == 0.0)


def test_invalid_inputs_give_nan() -> None:
    args = (
        [100.0, -1.0, 100.0, 100.0, math.nan, 100.0],
        [100.0, 100.0, 0.0, 100.0, 100.0, 100.0],
        0.5,
        0.05,
        [0.2, 0.2, 0.2, -0.1, 0.2, math.inf],
        True,
    )
    prices = black76.price(*args)
    assert np.isfinite(prices[0])
    assert np.all(np.isnan(prices[1:]))
    greeks = black76.greeks(*args)
    for field in (greeks.delta, greeks.gamma, greeks.vega, greeks.theta, greeks.vanna):
        assert np.isfinite(field[0])
        assert np.all(np.isnan(field[1:]))


def _haug_vanna_charm(
    forward: float, strike: float, years: float, vol: float, call: bool
) -> tuple[float, float]:
    """Haug (2007), section 2.3 (generalized Black-Scholes-Merton) with cost of carry b = 0,
    the Black (1976) case: DdeltaDvol = -e^(-rT) n(d1) d2 / sigma and
    DdeltaDtime = e^(-rT) [n(d1) d2 / (2T) + r N(d1)] for a call, [... - r N(-d1)] for a put
    (delta's change as calendar time passes, i.e. -d(delta)/dT)."""
    d1 = _d1(forward, strike, vol, years)
    d2 = d1 - vol * math.sqrt(years)
    density = math.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
    discount = math.exp(-RATE * years)
    cumulative = (
        0.5 * math.erfc(-d1 / math.sqrt(2.0)) if call else -0.5 * math.erfc(d1 / math.sqrt(2.0))
    )
    vanna = -discount * density * d2 / vol
    charm = discount * (density * d2 / (2.0 * years) + RATE * cumulative)
    return vanna, charm


def test_vanna_and_charm_match_haug_and_quantlib() -> None:
    grid = [g for g in _fd_grid() if g[1] >= 1.0 / 365.0]
    assert len(grid) > 200
    for strike, t, vol, call in grid:
        greeks = black76.greeks(FORWARD, strike, t, RATE, vol, call)
        vanna, charm = _haug_vanna_charm(FORWARD, strike, t, vol, call)
        where = f"K={strike} T={t} sigma={vol} call={call}"
        size = math.exp(-0.5 * _d1(FORWARD, strike, vol, t) ** 2) * (1.0 + 1.0 / t)
        assert float(greeks.vanna) == pytest.approx(vanna, rel=1e-9, abs=1e-12 * size), where
        assert float(greeks.charm) == pytest.approx(charm, rel=1e-9, abs=1e-12 * size), where
        # Charm from QuantLib: a central difference in T of its forward delta.
        dt = 1e-4 * t

        def delta(
            years: float, strike: float = strike, vol: float = vol, call: bool = call
        ) -> float:
            payoff = ql.PlainVanillaPayoff(_ql_type(call), strike)
            calc = ql.BlackCalculator(
                payoff, FORWARD, vol * math.sqrt(years), math.exp(-RATE * years)
            )
            return float(calc.deltaForward())

        charm_fd = -(delta(t + dt) - delta(t - dt)) / (2.0 * dt)
        assert float(greeks.charm) == pytest.approx(charm_fd, rel=1e-4, abs=1e-6 * size), where


def test_a_worked_charm_and_vanna() -> None:
    # F = 100, K = 105, T = 0.5, r = 5 %, sigma = 20 %: d1 = -0.274288, d2 = -0.415709,
    # n(d1) = 0.384214, N(d1) = 0.391932, e^(-rT) = 0.975310, put into Haug's formulas above
    # (six digits).
    call = black76.greeks(100.0, 105.0, 0.5, RATE, 0.2, True)
    put = black76.greeks(100.0, 105.0, 0.5, RATE, 0.2, False)
    assert float(call.vanna) == pytest.approx(0.778889, rel=1e-5)
    assert float(call.charm) == pytest.approx(-0.136665, rel=1e-5)
    assert float(put.charm) == pytest.approx(-0.185431, rel=1e-5)
    assert float(put.vanna) == pytest.approx(float(call.vanna), rel=1e-12)
