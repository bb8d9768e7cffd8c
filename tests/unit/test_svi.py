"""The SVI smile: recovery of known slices, QuantLib's SviSmileSection, fits to noisy quotes,
the arbitrage checks on the slices of Gatheral and Jacquier (2014), and degenerate input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql  # noqa: N813 - the name every QuantLib example uses

from monitor.pricing.svi import (
    SviFitReason,
    SviParams,
    butterfly_check,
    calendar_check,
    fit_slice,
    quote_weights,
)

FIELDS = ("a", "b", "rho", "m", "sigma")

# (params, years, quoted log-moneyness): an index-like 45-day slice (rho -0.7, a < 0), a
# 7-day one (sigma 0.02), a steep 3-month skew (rho -0.9, sigma 0.03), a mild one-year
# smile and the slice of Gatheral and Jacquier's Example 3.1 (Axel Vogt's parameters).
SLICES = {
    "index_45d": (SviParams(-0.0004, 0.04, -0.7, 0.01, 0.08), 45 / 365, (-0.25, 0.08, 30)),
    "short_7d": (SviParams(0.0002, 0.01, -0.6, 0.002, 0.02), 7 / 365, (-0.06, 0.03, 20)),
    "steep_3m": (SviParams(0.001, 0.05, -0.9, -0.02, 0.03), 0.25, (-0.3, 0.1, 40)),
    "mild_1y": (SviParams(0.04, 0.2, -0.1, 0.05, 0.3), 1.0, (-0.8, 0.6, 15)),
    "vogt": (SviParams(-0.0410, 0.1331, 0.3060, 0.3586, 0.4153), 0.9959, (-0.6, 0.6, 25)),
}
VOGT = SLICES["vogt"][0]


def _ssvi(theta: float, phi: float, rho: float) -> SviParams:
    """The SSVI slice theta/2 (1 + rho phi k + sqrt((phi k + rho)^2 + 1 - rho^2)) as raw SVI
    (Gatheral and Jacquier 2014, section 4): (a, b, rho, m, sigma) =
    (theta (1 - rho^2)/2, theta phi/2, rho, -rho/phi, sqrt(1 - rho^2)/phi)."""
    return SviParams(
        theta * (1 - rho * rho) / 2,
        theta * phi / 2,
        rho,
        -rho / phi,
        math.sqrt(1 - rho * rho) / phi,
    )


def _grid(spec: tuple[float, float, int]) -> np.ndarray:
    low, high, n = spec
    return np.linspace(low, high, n)


@pytest.mark.parametrize("name", [n for n in SLICES if n != "vogt"])
def test_recovers_known_parameters_from_exact_quotes(name: str) -> None:
    params, years, spec = SLICES[name]
    k = _grid(spec)
    fit = fit_slice(k, params.implied_vol(k, years), years, np.ones(k.size))
    assert fit.converged, fit.reason
    assert fit.strikes_used == k.size
    for field in FIELDS:
        assert getattr(fit.params, field) == pytest.approx(getattr(params, field), abs=1e-6)
    assert fit.rmse_vol_points < 1e-6


def test_matches_quantlib_svi_smile_section() -> None:
    # QuantLib takes its parameters in the order (a, b, sigma, rho, m): svismilesection.cpp
    # ("svi expects 5 parameters (a,b,sigma,rho,m)") and sviTotalVariance(a, b, sigma, rho, m, k).
    forward = 6800.0
    strikes = np.linspace(3000.0, 9000.0, 241)
    for name in ("index_45d", "short_7d", "steep_3m", "mild_1y"):
        params, years, _ = SLICES[name]
        section = ql.SviSmileSection(
            years, forward, [params.a, params.b, params.sigma, params.rho, params.m]
        )
        k = np.log(strikes / forward)
        ours_w, ours_vol = params.total_variance(k), params.implied_vol(k, years)
        for strike, w, vol in zip(strikes, ours_w, ours_vol, strict=True):
            assert w == pytest.approx(section.variance(float(strike)), rel=0, abs=1e-12)
            assert vol == pytest.approx(section.volatility(float(strike)), rel=0, abs=1e-12)


def test_fit_to_noisy_mids_is_closer_to_the_true_smile_than_the_mids() -> None:
    params, years, spec = SLICES["index_45d"]
    k = _grid(spec)
    true = params.implied_vol(k, years)
    # Half-spreads of 0.1 vol point at the money widening to 1 on the wings (full spreads 0.2
    # to 2 vol points); each mid lies uniformly within its bid/ask. Quoted sizes vary.
    half = 0.001 + 0.009 * np.minimum(np.abs(k) / 0.2, 1.0)
    ratios = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        mids = true + rng.uniform(-1.0, 1.0, k.size) * half
        weights = quote_weights(2.0 * half, rng.integers(1, 200, k.size))
        fit = fit_slice(k, mids, years, weights)
        assert fit.converged, fit.reason
        fitted_error = np.sqrt(np.mean((fit.params.implied_vol(k, years) - true) ** 2))
        ratios.append(fitted_error / np.sqrt(np.mean((mids - true) ** 2)))
    assert float(np.median(ratios)) < 0.4
    assert max(ratios) < 0.6


def test_quote_weights() -> None:
    weights = quote_weights(
        [0.01, 0.02, 0.0005, 0.01, math.nan, -0.01, 0.01], [50, 50, 50, 1, 50, 50, 0]
    )
    assert weights[0] == pytest.approx(1e4)
    assert weights[1] == pytest.approx(weights[0] / 4)  # inverse square of the spread
    assert weights[2] == pytest.approx(1 / 0.002**2)  # tighter than the floor: the floor
    assert weights[3] == pytest.approx(weights[0] / math.sqrt(50))  # 1 lot of 50
    assert weights[4:].tolist() == [0.0, 0.0, 0.0]  # NaN, crossed, no size


def test_butterfly_check_flags_vogt_and_passes_an_arbitrage_free_ssvi_slice() -> None:
    k = np.linspace(-1.5, 1.5, 601)
    # Gatheral and Jacquier (2014), Example 3.1: g(k) < 0 on part of the right wing.
    vogt = butterfly_check(VOGT, k)
    assert not vogt.free
    assert vogt.at_k > 0.0
    # Their Theorem 4.2: an SSVI slice with theta phi (1 + |rho|) < 4 and
    # theta phi^2 (1 + |rho|) <= 4 is free of butterfly arbitrage (here 0.34 and 1.7).
    ssvi = _ssvi(0.04, 5.0, -0.7)
    assert butterfly_check(ssvi, np.linspace(-3.0, 3.0, 601)).free
    assert ssvi.domain_error() is None


def test_the_fit_of_the_vogt_quotes_is_a_nearby_slice_free_of_butterfly_arbitrage() -> None:
    # Exact quotes of a slice with butterfly arbitrage on the quoted range: the best fit
    # would be that slice; the second, penalised pass gives one whose density is not negative
    # anywhere on the quoted range widened by a quarter, within 0.1 vol points of the quotes.
    params, years, spec = SLICES["vogt"]
    k = _grid(spec)
    assert not butterfly_check(params, np.linspace(-0.9, 0.9, 721)).free
    fit = fit_slice(k, params.implied_vol(k, years), years, np.ones(k.size))
    assert fit.converged
    assert fit.butterfly.free
    assert butterfly_check(fit.params, np.linspace(-0.9, 0.9, 721)).free
    assert 0.0 < fit.rmse_vol_points < 0.1  # not the Vogt slice, and close to its quotes
    assert fit.params.domain_error() is None


def test_calendar_check() -> None:
    k = np.linspace(-1.0, 1.0, 201)
    # SSVI with constant phi and theta increasing in T has no calendar arbitrage
    # (Gatheral and Jacquier 2014, Theorem 4.1).
    earlier, later = _ssvi(0.02, 4.0, -0.6), _ssvi(0.04, 4.0, -0.6)
    assert calendar_check(earlier, later, k).free
    # Steeper, lower later slice: crosses the earlier one in the put wing.
    crossing = SviParams(0.0, 0.2, -0.9, 0.1, 0.1)
    check = calendar_check(SviParams(0.01, 0.05, -0.2, 0.0, 0.2), crossing, k)
    assert not check.free
    assert check.worst < 0.0
    assert check.at_k > 0.0


@pytest.mark.parametrize(
    ("k", "vols", "years", "weights", "reason"),
    [
        ([-0.1, 0.0, 0.1], [0.2, 0.18, 0.17], 0.1, [1.0] * 3, SviFitReason.TOO_FEW_STRIKES),
        ([-0.1, 0.0, 0.1, 0.2, 0.3], [math.nan] * 5, 0.1, [1.0] * 5, SviFitReason.TOO_FEW_STRIKES),
        ([-0.1, 0.0, 0.1, 0.2, 0.3], [0.2] * 5, 0.1, [0.0] * 5, SviFitReason.TOO_FEW_STRIKES),
        ([0.05] * 8, [0.2] * 8, 0.1, [1.0] * 8, SviFitReason.TOO_FEW_STRIKES),
        ([-0.1, 0.0, 0.1, 0.2, 0.3], [-0.2] * 5, 0.1, [1.0] * 5, SviFitReason.TOO_FEW_STRIKES),
        ([-0.1, 0.0, 0.1, 0.2, 0.3], [0.2] * 5, 0.0, [1.0] * 5, SviFitReason.BAD_INPUT),
        ([-0.1, 0.0, 0.1, 0.2, 0.3], [0.2] * 5, math.nan, [1.0] * 5, SviFitReason.BAD_INPUT),
        ([-0.1, 0.0, 0.1, 0.2, 0.3], [0.2] * 4, 0.1, [1.0] * 5, SviFitReason.BAD_INPUT),
        ("not numbers", [0.2] * 5, 0.1, [1.0] * 5, SviFitReason.BAD_INPUT),
    ],
    ids=[
        "3 strikes",
        "NaN vols",
        "zero weights",
        "one strike",
        "negative vols",
        "expired",
        "NaN years",
        "lengths differ",
        "not numbers",
    ],
)
def test_degenerate_input_fails_with_a_reason(
    k: object, vols: object, years: float, weights: object, reason: SviFitReason
) -> None:
    fit = fit_slice(k, vols, years, weights)  # type: ignore[arg-type]
    assert not fit.converged
    assert fit.reason is reason
    assert math.isnan(fit.params.a)


def test_a_few_bad_strikes_are_left_out() -> None:
    params, years, spec = SLICES["index_45d"]
    k = _grid(spec)
    vols = params.implied_vol(k, years)
    vols[[3, 10]] = math.nan, -0.1
    fit = fit_slice(k, vols, years, np.ones(k.size))
    assert fit.converged
    assert fit.strikes_used == k.size - 2
    assert fit.params.rho == pytest.approx(params.rho, abs=1e-6)


def test_warm_start_takes_fewer_iterations_than_a_cold_one() -> None:
    params, years, spec = SLICES["index_45d"]
    k = _grid(spec)
    rng = np.random.default_rng(11)
    half = 0.001 + 0.009 * np.minimum(np.abs(k) / 0.2, 1.0)
    mids = params.implied_vol(k, years) + rng.uniform(-1.0, 1.0, k.size) * half
    weights = quote_weights(2.0 * half, np.full(k.size, 20))
    cold = fit_slice(k, mids, years, weights)
    warm = fit_slice(k, mids, years, weights, previous=cold.params)
    exact_cold = fit_slice(k, params.implied_vol(k, years), years, np.ones(k.size))
    exact_warm = fit_slice(k, params.implied_vol(k, years), years, np.ones(k.size), params)
    for c, w in ((cold, warm), (exact_cold, exact_warm)):
        assert c.converged
        assert w.converged
        assert w.iterations < c.iterations
        assert w.evaluations < c.evaluations / 1.5
    assert warm.rmse_vol_points == pytest.approx(cold.rmse_vol_points, rel=1e-6)


def test_domain_and_lee_bound() -> None:
    assert SLICES["index_45d"][0].domain_error() is None
    assert SviParams(0.01, -0.1, 0.0, 0.0, 0.1).domain_error() == "b < 0"
    assert SviParams(0.01, 0.1, 1.0, 0.0, 0.1).domain_error() == "|rho| >= 1"
    assert SviParams(0.01, 0.1, 0.0, 0.0, 0.0).domain_error() == "sigma <= 0"
    assert "negative total variance" in str(SviParams(-0.1, 0.1, 0.0, 0.0, 0.1).domain_error())
    # b (1 + |rho|) = 2.4: beyond Lee's 2 though within the 4 QuantLib checks.
    assert "Lee" in str(SviParams(0.01, 1.5, -0.6, 0.0, 0.1).domain_error())
    assert SviParams(0.01, 1.5, -0.6, 0.0, 0.1).wing_slopes == pytest.approx((2.4, 0.6))


def test_the_inner_least_squares_is_the_constrained_minimum_even_for_a_tiny_sigma() -> None:
    """For fixed (m, sigma) the fit of (a, d, c) is a linear least-squares problem on a
    polyhedron; its minimum matches scipy's bounded linear least squares (on the wing slopes
    c + d and c - d, where the domain is the box [0, LEE sigma]^2, up to RHO_MAX's 1e-9) at
    points inside the quotes, beyond them, and with sigma down to 1e-4 of their range, where
    the columns y and sqrt(y^2 + 1) are collinear to within 1/y^2."""
    from scipy.optimize import lsq_linear

    from monitor.pricing import svi_kernels as kernels

    rng = np.random.default_rng(7)
    truth, years = SviParams(-0.0004, 0.04, -0.9, 0.01, 0.05), 30 / 365
    k = np.linspace(-0.2, 0.05, 21)
    vol = truth.implied_vol(k, years) * (1 + 0.01 * rng.standard_normal(k.size))
    v = vol * vol * years
    omega = rng.uniform(0.5, 2.0, k.size) / (2 * vol * years) ** 2
    energy = float(np.sum(omega * v * v))
    span = float(k[-1] - k[0])
    normal, system, h = np.empty((3, 5)), np.empty((6, 7)), np.empty(5)
    checked = 0
    for m in (-0.3, -0.08, 0.0, 0.02, 0.2):
        for sigma in span * np.array([1e-4, 1e-3, 1e-2, 0.1, 1.0]):
            sse, a, d, c = kernels._inner(
                k, v, omega, k.size, m, sigma, float(v.max()), energy, normal, system, h
            )
            y = (k - m) / sigma
            z = np.sqrt(y * y + 1)
            design = np.sqrt(omega)[:, None] * np.column_stack(
                (np.ones_like(y), (z + y) / 2, (z - y) / 2)
            )
            # (z - y)/2 for y > 0 without cancellation: 1 / (2 (z + y))
            design[:, 2] = np.sqrt(omega) * np.where(y > 0, 0.5 / (z + y), (z - y) / 2)
            design[:, 1] = np.sqrt(omega) * np.where(y < 0, 0.5 / (z - y), (z + y) / 2)
            wing = kernels.LEE * sigma
            ref = lsq_linear(
                design,
                np.sqrt(omega) * v,
                bounds=([-np.inf, 0.0, 0.0], [float(v.max()), wing, wing]),
                method="bvls",
                tol=1e-15,
            )
            reference = float(np.sum(ref.fun**2))
            ours = float(np.sum(omega * (a + d * y + c * z - v) ** 2))
            assert math.isclose(ours, sse, rel_tol=1e-6), (m, sigma, ours, sse)
            assert ours <= reference * (1 + 1e-7) + 1e-18 * energy, (m, sigma, ours, reference)
            assert abs(d) <= kernels.RHO_MAX * c + 1e-15
            assert c + abs(d) <= wing * (1 + 1e-12)
            checked += 1
    assert checked == 25
