"""The compiled Black-76 kernels: their special functions and the normalised Black function
against 50-digit arithmetic, and how they are compiled."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from monitor.pricing import black76, black76_kernels
from monitor.pricing.black76 import IVReason

EPS = float(np.finfo(np.float64).eps)


def _relative(ours: float, exact: mp.mpf) -> float:
    return float(abs((mp.mpf(ours) - exact) / exact))


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    return np.exp(rng.uniform(math.log(low), math.log(high), size))


def test_erfcx_within_a_few_ulps() -> None:
    # Cody's rational approximations on each of their three ranges, and exp(z^2) erfc(z) for
    # negative z up to where 2 exp(z^2) overflows.
    rng = np.random.default_rng(1)
    points = np.concatenate(
        (
            rng.uniform(0.0, 0.46875, 200),
            rng.uniform(0.46875, 4.0, 200),
            _log_uniform(rng, 4.0, 1e9, 200),
            rng.uniform(-26.0, 0.0, 200),
        )
    )
    with mp.workdps(50):
        for z in points:
            exact = mp.exp(mp.mpf(z) ** 2) * mp.erfc(mp.mpf(z))
            assert _relative(black76_kernels._erfcx(float(z)), exact) <= 4 * EPS, z


def test_normal_cdf_keeps_relative_accuracy_in_the_lower_tail() -> None:
    # Rounding -z/sqrt(2) alone would leave 2 q^2 ulps (1e-13 at z = -19): the product is
    # carried to double-double precision instead.
    rng = np.random.default_rng(2)
    points = np.concatenate((rng.uniform(-37.0, -1.0, 400), rng.uniform(-1.0, 8.0, 100)))
    with mp.workdps(50):
        for z in points:
            exact = mp.ncdf(mp.mpf(z))
            assert _relative(black76_kernels._ndtr(float(z)), exact) <= 4 * EPS, z


def test_inverse_normal_cdf_within_a_few_ulps() -> None:
    rng = np.random.default_rng(3)
    points = np.concatenate(
        (
            rng.uniform(0.075, 0.925, 100),  # the central approximation
            _log_uniform(rng, 1e-11, 0.075, 100),  # the near tail
            _log_uniform(rng, 1e-300, 1e-11, 100),  # the far tail
            1.0 - _log_uniform(rng, 1e-15, 0.075, 100),
        )
    )
    with mp.workdps(50):
        for p in points:
            ours = black76_kernels._ndtri(float(p))
            # Newton's method from our value: two steps leave the root exact to 50 digits.
            exact = mp.mpf(ours)
            for _ in range(2):
                exact -= (mp.ncdf(exact) - mp.mpf(p)) / mp.npdf(exact)
            assert _relative(ours, exact) <= 4 * EPS, p
    assert black76_kernels._ndtri(0.0) == -math.inf
    assert black76_kernels._ndtri(1.0) == math.inf
    assert math.isnan(black76_kernels._ndtri(math.nan))


def _normalised_black(x: float, s: float) -> mp.mpf:
    x, s = mp.mpf(x), mp.mpf(s)
    return mp.exp(x / 2) * mp.ncdf(x / s + s / 2) - mp.exp(-x / 2) * mp.ncdf(x / s - s / 2)


def test_normalised_black_in_every_region() -> None:
    # The small-t series (with a = 1 + hY from erfcx, and from its asymptotic series beyond
    # h = -10), the asymptotic series and the erfc/erfcx formula. Forming h = x/s rounds h by
    # half an ulp, which the factor exp(-h^2/2) turns into h^2/2 ulps of b: the bound allows
    # a few ulps on top of that.
    rng = np.random.default_rng(4)
    size = 1500
    s = 10.0 ** rng.uniform(-4.0, 0.9, size)
    x = np.maximum(rng.uniform(-40.0, 0.0, size) * s, -30.0)
    regions = set()
    with mp.workdps(60):
        for xi, si in zip(x.tolist(), s.tolist(), strict=True):
            exact = _normalised_black(xi, si)
            if exact < 1e-300:
                continue
            b, vega, h = black76_kernels._normalised(xi, si, black76_kernels._series_of(xi))
            t = 0.5 * si
            regions.add((t < black76_kernels._SMALL_T, h < black76_kernels._ASYMPTOTIC_H))
            bound = 4 * EPS * (1.0 + h * h + t * t)
            assert _relative(b, exact) <= bound, (xi, si)
            assert vega == pytest.approx(math.exp(-0.5 * (h * h + t * t)) / math.sqrt(2 * math.pi))
    assert len(regions) == 4


def _inputs_of_every_layout() -> list[tuple[object, ...]]:
    forwards = np.linspace(90.0, 110.0, 12)
    strided = np.linspace(90.0, 110.0, 24)[::2]
    frozen = forwards.copy()
    frozen.flags.writeable = False
    return [
        (100.0, 105.0, 0.5, 0.01, True),
        ([100.0, 101.0], [95.0, 105.0], 0.5, 0.01, [True, False]),
        (forwards.astype(np.float32), 100.0, 0.25, 0.0, np.ones(12, dtype=np.int64)),
        (strided, 100.0, 0.25, 0.0, True),
        (frozen, 100.0, 0.25, 0.0, False),
        (np.asfortranarray(np.full((3, 4), 100.0)), forwards.reshape(3, 4), 0.5, 0.02, True),
        (np.array([]), np.array([]), 0.5, 0.0, True),
    ]


@pytest.mark.parametrize("inputs", _inputs_of_every_layout())
def test_one_compiled_specialisation_serves_every_input_layout(inputs: tuple[object, ...]) -> None:
    forward, strike, years, rate, call = inputs
    value = black76.price(forward, strike, years, rate, 0.2, call)
    greeks = black76.greeks(forward, strike, years, rate, 0.2, call)
    vol, reason = black76.implied_vol_with_reason(value, forward, strike, years, rate, call)
    assert value.shape == greeks.volga.shape == vol.shape == reason.shape
    assert np.all(reason == IVReason.OK)
    np.testing.assert_allclose(vol, 0.2, rtol=1e-12)
    for kernel in (black76_kernels.prices, black76_kernels.greeks, black76_kernels.implied_vols):
        assert len(kernel.signatures) == 1, kernel.signatures


def _add_one(x: float) -> float:
    return x + 1.0


def test_kernels_compile_without_a_writable_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # numba raises RuntimeError when it finds nowhere to write its cache (a read-only install
    # without NUMBA_CACHE_DIR); the kernels are then compiled in every process instead.
    real_njit = black76_kernels.njit

    def njit_without_cache(*args: object, cache: bool = False, **kwargs: object) -> object:
        if cache:
            raise RuntimeError("cannot cache function '_add_one': no locator available")
        return real_njit(*args, **kwargs)

    monkeypatch.setattr(black76_kernels, "njit", njit_without_cache)
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        add_one = black76_kernels._compiled(_add_one)
    assert add_one(1.0) == 2.0
