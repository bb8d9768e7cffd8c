"""Black-76 at extreme points (deep wings, minutes to expiry, VIX-level vols) against 50-digit
arithmetic, where double-precision references such as QuantLib lose digits themselves."""

from __future__ import annotations

import mpmath as mp
import pytest

from monitor.pricing import black76


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
