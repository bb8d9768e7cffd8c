"""Compiled loops of the SVI smile: the quasi-explicit slice fit and Durrleman's condition.

The fit is the quasi-explicit method of S. De Marco and C. Martini (Zeliade Systems),
"Quasi-explicit calibration of Gatheral's SVI model" (2009). With y = (k - m)/sigma, raw SVI
(J. Gatheral, "A parsimonious arbitrage-free implied volatility parametrization with
application to the valuation of volatility derivatives", 2004) reads

    w(k) = a + d y + c sqrt(y^2 + 1),    c = b sigma,  d = rho b sigma,

which for fixed (m, sigma) is linear in (a, d, c): a weighted least-squares problem with
linear constraints, solved exactly here (the 3 x 3 normal equations, and where their solution
leaves the domain, the faces of it that can hold the minimum). Only (m, sigma) are left to a
Nelder-Mead search. The linear problem is solved in the wing slopes c + d and c - d on the
columns (sqrt(y^2 + 1) + y)/2 and (sqrt(y^2 + 1) - y)/2, which stay apart when sigma is tiny,
where y and sqrt(y^2 + 1) become collinear.

The domain of (a, d, c) for fixed (m, sigma):
    |d| <= RHO_MAX c         |rho| < 1 (and b >= 0)
    c + |d| <= LEE * sigma   b (1 + |rho|) <= 2, R. Lee, "The moment formula for implied
                             volatility at extreme strikes" (Mathematical Finance, 2004)
    a <= max of the data     as in De Marco and Martini
De Marco and Martini's domain bounds c + |d| by 4 sigma and a below by 0; here the wing
bound is Lee's (see ``monitor.pricing.svi``) and a may be negative as long as the smallest
total variance, a + sqrt(c^2 - d^2), is positive: a slice where it is not is pushed away by a
penalty in the outer objective rather than cut off by a bound (a >= 0 would exclude the short-dated,
steeply skewed index slices whose fitted a is slightly negative).

Everything the compiled code calls lives in this module: numba does not notice when a
compiled function that another one calls changes in a different file. Compiled with numba in
nopython mode, numpy's error model, machine code cached next to this file.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import TypeVar, cast

import numpy as np
from numba import njit
from numpy.typing import NDArray

__all__ = ["durrleman", "fit_slice", "total_variance"]

_Function = TypeVar("_Function", bound=Callable[..., object])
FloatArray = NDArray[np.float64]


def _compiled(function: _Function) -> _Function:
    """``function`` compiled by numba in nopython mode, machine code cached next to this file
    (or under NUMBA_CACHE_DIR); where neither is writable, compiled again by each process."""
    try:
        compiled = njit(cache=True, nogil=True, error_model="numpy")(function)
    except RuntimeError:  # numba found no writable directory for its cache
        warnings.warn(
            "no writable cache directory for the compiled SVI kernels (set NUMBA_CACHE_DIR): "
            "every process compiles them on first use",
            RuntimeWarning,
            stacklevel=2,
        )
        compiled = njit(nogil=True, error_model="numpy")(function)
    return cast("_Function", compiled)


# Status codes of fit_slice; monitor.pricing.svi maps them to SviFitReason.
OK = 0
NOT_CONVERGED = 1  # the (m, sigma) search ran out of iterations
NEGATIVE_VARIANCE = 2  # the best fit's smallest total variance is not positive
NO_SOLUTION = 3  # no (a, d, c) in the domain for the best (m, sigma): degenerate data
TOO_FEW_STRIKES = 4  # fewer than MIN_STRIKES usable, distinct strikes
BAD_INPUT = 5  # years not positive and finite, or the arrays of different lengths

LEE = 2.0  # the largest slope of total variance in |k| (Lee's moment formula)
MIN_STRIKES = 5  # five parameters
MAX_ITERATIONS = 400

# The objective of (m, sigma) is flat along sigma for data on a straight line; the search
# keeps sigma within these multiples of the quoted range of k (and m within one range of it).
_SIGMA_LOW = 1e-4
_SIGMA_HIGH = 4.0
# Stop once the simplex is this small (m relative to sigma, ln sigma absolute) ...
_X_TIGHT = 1e-9
# ... or this small while the objective differs across it by at most _F_RELATIVE of its best
# value: past that the fitted vols no longer move (a noisy slice never reaches _X_TIGHT in a
# few iterations, and need not).
_X_LOOSE = 1e-4
_F_RELATIVE = 1e-8
_X_LOOSE_PENALISED = 1e-4
_F_RELATIVE_PENALISED = 1e-7
_NEGATIVE_PENALTY = 1e4
# A best fit whose smallest total variance is negative by less than this fraction of the
# largest quoted (the penalty above leaves the optimum on that edge) is lifted onto it.
_VARIANCE_SLACK = 1e-6
# The second pass, for a best fit with butterfly arbitrage: each objective adds
# _BUTTERFLY_PENALTY x (weights) x (largest total variance quoted x (the smallest g on
# the widened range - _G_MARGIN))^2 where that is negative, g floored at -_G_FLOOR (-inf
# where w <= 0); the smallest g from _COARSE_POINTS, then _GOLDEN_STEPS of golden section.
_BUTTERFLY_PENALTY = 1e4
_CHECK_POINTS = 201  # the grid of the check (SviFit.butterfly)
_COARSE_POINTS = 21
_GOLDEN_STEPS = 12
_G_FLOOR = 1e3
_G_MARGIN = 1e-4  # penalised below this, so that the optimum on the boundary is g >= 0
# A warm start whose smallest g (with the new quotes) is below this was on the boundary: its
# search is the penalised one from the start.
_ON_BOUNDARY = 10.0 * _G_MARGIN
# Cold start: the best of a grid of (m, sigma), then Nelder-Mead from it.
_GRID_M = 7
_GRID_SIGMA = 6
# Warm start: the first simplex spans this fraction of sigma in m and in ln sigma.
_WARM_STEP = 0.05

# The inner problem's unknowns are x = (a, p, q), p = c + d and q = c - d (the right and
# left wing slopes times sigma), on the columns 1, u = (z + y)/2 and t = (z - y)/2 of the
# data, u - t = y and u + t = z = sqrt(y^2 + 1). u t = 1/4, so whichever of the two is small
# is computed from the other without cancellation; with y and z as the columns, a tiny sigma
# makes them collinear to within 1/y^2 and the normal equations lose every digit.
# The constraints G x <= h, rows as (g_a, g_p, g_q): d <= RHO_MAX c, -d <= RHO_MAX c,
# c + d <= LEE sigma, c - d <= LEE sigma, a <= the largest total variance quoted.
# |rho| stops just short of 1, where the domain of raw SVI ends.
RHO_MAX = 1.0 - 1e-9
_G = np.array(
    [
        [0.0, 0.5 * (1.0 - RHO_MAX), -0.5 * (1.0 + RHO_MAX)],
        [0.0, -0.5 * (1.0 + RHO_MAX), 0.5 * (1.0 - RHO_MAX)],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [1.0, 0.0, 0.0],
    ]
)
_CONSTRAINTS = 5
# The faces of the domain as bit masks of the constraints held as equalities, at most three
# (a point in three dimensions), by the number held.
_FACES = np.array(
    sorted(
        (mask for mask in range(1, 1 << _CONSTRAINTS) if mask.bit_count() <= 3),
        key=lambda mask: (mask.bit_count(), mask),
    ),
    dtype=np.int64,
)


@_compiled
def total_variance(  # noqa: PLR0917 - the raw SVI parameters, positionally as in the papers
    a: float, b: float, rho: float, m: float, sigma: float, k: FloatArray, out: FloatArray
) -> None:
    """Fill ``out`` with raw SVI total variance at log-moneyness ``k``."""
    for i in range(k.size):
        x = k[i] - m
        out[i] = a + b * (rho * x + math.sqrt(x * x + sigma * sigma))


@_compiled
def _g_at(a: float, b: float, rho: float, m: float, sigma: float, k: float) -> float:  # noqa: PLR0917
    """Durrleman's g at one k (-inf where w(k) <= 0)."""
    x = k - m
    root = math.sqrt(x * x + sigma * sigma)
    w = a + b * (rho * x + root)
    if not w > 0.0:
        return -math.inf
    w1 = b * (rho + x / root)
    w2 = b * sigma * sigma / (root * root * root)
    first = 1.0 - k * w1 / (2.0 * w)
    return first * first - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2


@_compiled
def durrleman(  # noqa: PLR0917 - the raw SVI parameters, positionally as in the papers
    a: float, b: float, rho: float, m: float, sigma: float, k: FloatArray, out: FloatArray
) -> None:
    """Fill ``out`` with Durrleman's g(k) (-inf where w(k) <= 0), Gatheral and Jacquier,
    "Arbitrage-free SVI volatility surfaces" (Quantitative Finance, 2014), section 2."""
    for i in range(k.size):
        out[i] = _g_at(a, b, rho, m, sigma, k[i])


@_compiled
def _worst_durrleman(  # noqa: PLR0917 - the raw SVI parameters, then the grid
    a: float, b: float, rho: float, m: float, sigma: float, low: float, high: float, n: int
) -> tuple[float, float]:
    """The smallest g(k) on n points from low to high, and where."""
    worst, at = math.inf, math.nan
    for i in range(n):
        k = low + (high - low) * i / (n - 1)
        g = _g_at(a, b, rho, m, sigma, k)
        if g == -math.inf:
            return g, k
        if g < worst:
            worst, at = g, k
    return worst, at


@_compiled
def _lowest_durrleman(  # noqa: PLR0917 - the raw SVI parameters, then the range
    a: float, b: float, rho: float, m: float, sigma: float, low: float, high: float
) -> float:
    """The smallest g(k) from low to high, found on _COARSE_POINTS and refined by golden
    section between the neighbours of the coarse minimum: the penalty's measure, a
    continuous function of the parameters at about a sixth of the check grid's cost."""
    step = (high - low) / (_COARSE_POINTS - 1)
    worst, at = math.inf, 0
    for i in range(_COARSE_POINTS):
        g = _g_at(a, b, rho, m, sigma, low + step * i)
        if g == -math.inf:
            return g
        if g < worst:
            worst, at = g, i
    left = low + step * max(at - 1, 0)
    right = low + step * min(at + 1, _COARSE_POINTS - 1)
    ratio = 0.5 * (math.sqrt(5.0) - 1.0)
    x1 = right - ratio * (right - left)
    x2 = left + ratio * (right - left)
    g1 = _g_at(a, b, rho, m, sigma, x1)
    g2 = _g_at(a, b, rho, m, sigma, x2)
    for _ in range(_GOLDEN_STEPS):
        if g1 < g2:
            right, x2, g2 = x2, x1, g1
            x1 = right - ratio * (right - left)
            g1 = _g_at(a, b, rho, m, sigma, x1)
        else:
            left, x1, g1 = x1, x2, g2
            x2 = left + ratio * (right - left)
            g2 = _g_at(a, b, rho, m, sigma, x2)
    return min(worst, g1, g2)


@_compiled
def _solve(system: FloatArray, n: int) -> bool:
    """Gaussian elimination with partial pivoting of the n x (n + 1) augmented ``system`` in
    place; the solution is left in its last column. False where a pivot vanishes."""
    for col in range(n):
        pivot = col
        for row in range(col + 1, n):
            if abs(system[row, col]) > abs(system[pivot, col]):
                pivot = row
        scale = abs(system[pivot, col])
        if not scale > 1e-300:
            return False
        if pivot != col:
            for j in range(n + 1):
                system[col, j], system[pivot, j] = system[pivot, j], system[col, j]
        for row in range(col + 1, n):
            factor = system[row, col] / system[col, col]
            for j in range(col, n + 1):
                system[row, j] -= factor * system[col, j]
    for row in range(n - 1, -1, -1):
        total = system[row, n]
        for j in range(row + 1, n):
            total -= system[row, j] * system[j, n]
        system[row, n] = total / system[row, row]
    # A nearly vanishing pivot overflows the back substitution: no usable solution.
    for row in range(n):  # noqa: SIM110 - numba compiles no generator expression here
        if not math.isfinite(system[row, n]):
            return False
    return True


@_compiled
def _feasible(a: float, p: float, q: float, h: FloatArray, tolerance: float) -> bool:
    for i in range(_CONSTRAINTS):
        if _G[i, 0] * a + _G[i, 1] * p + _G[i, 2] * q > h[i] + tolerance:
            return False
    return True


@_compiled
def _quadratic(normal: FloatArray, x0: float, x1: float, x2: float) -> float:
    """x' M x - 2 r' x, M and r the first 3 x 4 of ``normal``."""
    quad = (
        normal[0, 0] * x0 * x0
        + normal[1, 1] * x1 * x1
        + normal[2, 2] * x2 * x2
        + 2.0 * (normal[0, 1] * x0 * x1 + normal[0, 2] * x0 * x2 + normal[1, 2] * x1 * x2)
    )
    return float(quad - 2.0 * (normal[0, 3] * x0 + normal[1, 3] * x1 + normal[2, 3] * x2))


@_compiled
def _inner(  # noqa: PLR0917 - the slice, the point and the scratch space
    k: FloatArray,
    v: FloatArray,
    omega: FloatArray,
    n: int,
    m: float,
    sigma: float,
    v_max: float,
    energy: float,
    normal: FloatArray,
    system: FloatArray,
    h: FloatArray,
) -> tuple[float, float, float, float]:
    """The weighted sum of squared total-variance errors of the best (a, d, c) in the domain
    for this (m, sigma), and (a, d, c); inf and NaNs where there is none. ``energy`` is the
    weighted sum of the squared data.

    The least squares are solved in x = (a, p, q) on the columns (1, u, t), see _G, with the
    normal equations scaled to a unit diagonal (``normal[:, 4]`` keeps the scales): M and r
    in ``normal`` are those of the scaled unknowns x / scale."""
    s1 = su = st = suu = stt = sv = suv = stv = 0.0
    for i in range(n):
        y = (k[i] - m) / sigma
        z = math.sqrt(y * y + 1.0)
        if y >= 0.0:
            u = 0.5 * (z + y)
            t = 0.25 / u
        else:
            t = 0.5 * (z - y)
            u = 0.25 / t
        wi = omega[i]
        wu, wt = wi * u, wi * t
        s1 += wi
        su += wu
        st += wt
        suu += wu * u
        stt += wt * t
        sv += wi * v[i]
        suv += wu * v[i]
        stv += wt * v[i]
    sut = 0.25 * s1  # u t = 1/4
    e0, e1, e2 = 1.0 / math.sqrt(s1), 1.0 / math.sqrt(suu), 1.0 / math.sqrt(stt)
    normal[0, 0], normal[0, 1], normal[0, 2], normal[0, 3] = (
        1.0,
        su * e0 * e1,
        st * e0 * e2,
        sv * e0,
    )
    normal[1, 1], normal[1, 2], normal[1, 3] = 1.0, sut * e1 * e2, suv * e1
    normal[2, 2], normal[2, 3] = 1.0, stv * e2
    normal[1, 0], normal[2, 0], normal[2, 1] = normal[0, 1], normal[0, 2], normal[1, 2]
    normal[0, 4], normal[1, 4], normal[2, 4] = e0, e1, e2
    h[0], h[1], h[2], h[3], h[4] = 0.0, 0.0, LEE * sigma, LEE * sigma, v_max
    tolerance = 1e-12 * (v_max + sigma)
    for i in range(3):
        for j in range(4):
            system[i, j] = normal[i, j]
    best_a = best_p = best_q = math.nan
    best_x0 = best_x1 = best_x2 = math.nan
    found = False
    free_value = -math.inf  # the unconstrained minimum: a lower bound of every face's
    if _solve(system, 3):
        x0, x1, x2 = system[0, 3], system[1, 3], system[2, 3]
        if _feasible(x0 * e0, x1 * e1, x2 * e2, h, tolerance):
            best_x0, best_x1, best_x2 = x0, x1, x2
            found = True
        else:
            free_value = _quadratic(normal, x0, x1, x2)
    if not found:
        # The minimum lies on a face of the domain: the stationary point of every face
        # (one, two or three constraints held as equalities) that is in the domain is a
        # candidate, and the convex objective's minimum over the domain is the best of them.
        # A face's minimum is at least that of each face it lies in (one constraint fewer:
        # a larger affine set), so a face whose larger faces' minima are already no better
        # than the best candidate is not solved. Faces go by the number of constraints
        # held, so the larger ones come first.
        lower = np.empty(1 << _CONSTRAINTS)
        lower[0] = free_value
        best = math.inf
        for mask in _FACES:
            active = 0
            bound = -math.inf
            for i in range(_CONSTRAINTS):
                if (mask >> i) & 1:
                    active += 1
                    bound = max(bound, lower[mask ^ (1 << i)])
            lower[mask] = bound
            if bound >= best:
                continue
            size = 3 + active
            for i in range(size):
                for j in range(size + 1):
                    system[i, j] = 0.0
            for i in range(3):
                for j in range(3):
                    system[i, j] = normal[i, j]
                system[i, size] = normal[i, 3]
            row = 3
            for c_index in range(_CONSTRAINTS):
                if (mask >> c_index) & 1:
                    for j in range(3):
                        # KKT: M x + G_A' lambda/2 = r, G_A x = h_A (G scaled as x is)
                        scaled = _G[c_index, j] * normal[j, 4]
                        system[j, row] = scaled
                        system[row, j] = scaled
                    system[row, size] = h[c_index]
                    row += 1
            if not _solve(system, size):
                continue
            x0, x1, x2 = system[0, size], system[1, size], system[2, size]
            value = _quadratic(normal, x0, x1, x2)
            lower[mask] = max(bound, value)
            if not _feasible(x0 * e0, x1 * e1, x2 * e2, h, tolerance):
                continue
            if value < best:
                best = value
                best_x0, best_x1, best_x2 = x0, x1, x2
                found = True
    if not found:
        return math.inf, math.nan, math.nan, math.nan
    best_a, best_p, best_q = best_x0 * e0, best_x1 * e1, best_x2 * e2
    best_d, best_c = 0.5 * (best_p - best_q), 0.5 * (best_p + best_q)
    # The sum of squares from the normal equations, unless it is so small against the
    # data's own sum of squares that their cancellation would hide its digits (a
    # near-perfect fit): then from the residuals, a second pass.
    sse = energy + _quadratic(normal, best_x0, best_x1, best_x2)
    if sse > 1e-8 * energy:
        return sse, best_a, best_d, best_c
    sse = 0.0
    for i in range(n):
        y = (k[i] - m) / sigma
        z = math.sqrt(y * y + 1.0)
        if y >= 0.0:
            u = 0.5 * (z + y)
            t = 0.25 / u
        else:
            t = 0.5 * (z - y)
            u = 0.25 / t
        e = best_a + best_p * u + best_q * t - v[i]
        sse += omega[i] * e * e
    return sse, best_a, best_d, best_c


@_compiled
def _objective(  # noqa: PLR0917 - the slice, the point, the bounds and the scratch space
    k: FloatArray,
    v: FloatArray,
    omega: FloatArray,
    n: int,
    m: float,
    log_sigma: float,
    v_max: float,
    bounds: FloatArray,
    normal: FloatArray,
    system: FloatArray,
    h: FloatArray,
) -> float:
    """The outer objective of (m, ln sigma): the inner fit's sum of squares, plus a penalty
    where its smallest total variance is negative and, in the second pass (``bounds[6]``
    set), one where Durrleman's g is negative on the widened quoted range; inf outside the
    search box."""
    if not (bounds[0] <= m <= bounds[1] and bounds[2] <= log_sigma <= bounds[3]):
        return math.inf
    sigma = math.exp(log_sigma)
    sse, a, d, c = _inner(k, v, omega, n, m, sigma, v_max, bounds[5], normal, system, h)
    lowest = a + math.sqrt(max(c * c - d * d, 0.0))
    if lowest < 0.0:
        sse += _NEGATIVE_PENALTY * bounds[4] * lowest * lowest
    if bounds[6] > 0.0 and math.isfinite(sse):
        rho = min(max(d / c, -RHO_MAX), RHO_MAX) if c > 0.0 else 0.0
        b = c / sigma
        worst = _lowest_durrleman(a, b, rho, m, sigma, bounds[7], bounds[8])
        if worst < _G_MARGIN:
            depth = v_max * (max(worst, -_G_FLOOR) - _G_MARGIN)
            sse += _BUTTERFLY_PENALTY * bounds[4] * depth * depth
    return sse


@_compiled
def _free(  # noqa: PLR0917 - the inner solution, its (m, sigma), the bounds
    a: float, d: float, c: float, m: float, sigma: float, bounds: FloatArray
) -> bool:
    """Whether the fit (a, d, c) at (m, sigma) has a positive variance and Durrleman's
    g >= 0 on the widened quoted range (``bounds[7]`` to ``bounds[8]``)."""
    return _lowest_g(a, d, c, m, sigma, bounds) >= 0.0


@_compiled
def _lowest_g(  # noqa: PLR0917 - the inner solution, its (m, sigma), the bounds
    a: float, d: float, c: float, m: float, sigma: float, bounds: FloatArray
) -> float:
    """The smallest Durrleman g of the fit (a, d, c) at (m, sigma) on the check grid of the
    widened quoted range; -inf where its variance is not positive."""
    if a + math.sqrt(max(c * c - d * d, 0.0)) <= 0.0:
        return -math.inf
    rho = min(max(d / c, -RHO_MAX), RHO_MAX) if c > 0.0 else 0.0
    worst, _ = _worst_durrleman(a, c / sigma, rho, m, sigma, bounds[7], bounds[8], _CHECK_POINTS)
    return worst


@_compiled
def _usable(  # noqa: PLR0917 - the raw inputs, then the compacted slice
    k_in: FloatArray,
    vol_in: FloatArray,
    weight_in: FloatArray,
    years: float,
    k: FloatArray,
    v: FloatArray,
    omega: FloatArray,
    vol: FloatArray,
    weight: FloatArray,
) -> tuple[int, int]:
    """Copy the usable strikes (finite k, vol > 0, weight > 0) into the slice arrays: total
    variance and its weight, vol and its weight. Returns (usable, distinct strikes)."""
    n = 0
    for i in range(k_in.size):
        ki, sv, wi = k_in[i], vol_in[i], weight_in[i]
        if not (math.isfinite(ki) and math.isfinite(sv) and sv > 0.0):
            continue
        if not (math.isfinite(wi) and wi > 0.0):
            continue
        k[n] = ki
        v[n] = sv * sv * years
        # A vol error e is a total variance error of about 2 vol years e: weights on vols
        # become weights on total variances divided by that factor squared, so the linear
        # fit in w is a fit in vol to first order.
        scale = 2.0 * sv * years
        omega[n] = wi / (scale * scale)
        vol[n] = sv
        weight[n] = wi
        n += 1
    if n == 0:
        return 0, 0
    ordered = np.sort(k[:n])
    distinct = 1
    for i in range(1, n):
        if ordered[i] != ordered[i - 1]:
            distinct += 1
    return n, distinct


@_compiled
def _nelder_mead(  # noqa: PLR0917 - the slice, the start, the bounds and the scratch space
    k: FloatArray,
    v: FloatArray,
    omega: FloatArray,
    n: int,
    v_max: float,
    bounds: FloatArray,
    start_m: float,
    start_log_sigma: float,
    step_m: float,
    step_log_sigma: float,
    normal: FloatArray,
    system: FloatArray,
    h: FloatArray,
    x_loose: float,
    f_relative: float,
) -> tuple[float, float, int, int, bool]:
    """Nelder and Mead, "A simplex method for function minimization" (Computer Journal,
    1965), in two dimensions with the standard coefficients (1, 2, 1/2, 1/2). Returns the
    best (m, ln sigma), iterations, evaluations and whether it converged."""
    xs = np.empty((3, 2))
    fs = np.empty(3)
    xs[0, 0], xs[0, 1] = start_m, start_log_sigma
    xs[1, 0], xs[1, 1] = start_m + step_m, start_log_sigma
    xs[2, 0], xs[2, 1] = start_m, start_log_sigma + step_log_sigma
    evaluations = 0
    for i in range(3):
        fs[i] = _objective(k, v, omega, n, xs[i, 0], xs[i, 1], v_max, bounds, normal, system, h)
        evaluations += 1
    converged = False
    iteration = 0
    while iteration < MAX_ITERATIONS:
        # order: best 0, worst 2
        for i in range(1, 3):
            j = i
            while j > 0 and fs[j] < fs[j - 1]:
                fs[j], fs[j - 1] = fs[j - 1], fs[j]
                for c in range(2):
                    xs[j, c], xs[j - 1, c] = xs[j - 1, c], xs[j, c]
                j -= 1
        sigma_best = math.exp(xs[0, 1])
        size_m = max(abs(xs[1, 0] - xs[0, 0]), abs(xs[2, 0] - xs[0, 0])) / sigma_best
        size_s = max(abs(xs[1, 1] - xs[0, 1]), abs(xs[2, 1] - xs[0, 1]))
        size = max(size_m, size_s)
        spread = fs[2] - fs[0]
        if size <= _X_TIGHT or (size <= x_loose and spread <= f_relative * fs[0]):
            converged = True
            break
        iteration += 1
        cm = 0.5 * (xs[0, 0] + xs[1, 0])
        cs = 0.5 * (xs[0, 1] + xs[1, 1])
        rm, rs = cm + (cm - xs[2, 0]), cs + (cs - xs[2, 1])
        fr = _objective(k, v, omega, n, rm, rs, v_max, bounds, normal, system, h)
        evaluations += 1
        if fr < fs[0]:
            em, es = cm + 2.0 * (cm - xs[2, 0]), cs + 2.0 * (cs - xs[2, 1])
            fe = _objective(k, v, omega, n, em, es, v_max, bounds, normal, system, h)
            evaluations += 1
            if fe < fr:
                xs[2, 0], xs[2, 1], fs[2] = em, es, fe
            else:
                xs[2, 0], xs[2, 1], fs[2] = rm, rs, fr
            continue
        if fr < fs[1]:
            xs[2, 0], xs[2, 1], fs[2] = rm, rs, fr
            continue
        if fr < fs[2]:  # outside contraction
            qm, qs = cm + 0.5 * (rm - cm), cs + 0.5 * (rs - cs)
            fq = _objective(k, v, omega, n, qm, qs, v_max, bounds, normal, system, h)
            evaluations += 1
            accept = fq <= fr
        else:  # inside contraction
            qm, qs = cm + 0.5 * (xs[2, 0] - cm), cs + 0.5 * (xs[2, 1] - cs)
            fq = _objective(k, v, omega, n, qm, qs, v_max, bounds, normal, system, h)
            evaluations += 1
            accept = fq < fs[2]
        if accept:
            xs[2, 0], xs[2, 1], fs[2] = qm, qs, fq
            continue
        for i in range(1, 3):  # shrink towards the best
            xs[i, 0] = xs[0, 0] + 0.5 * (xs[i, 0] - xs[0, 0])
            xs[i, 1] = xs[0, 1] + 0.5 * (xs[i, 1] - xs[0, 1])
            fs[i] = _objective(k, v, omega, n, xs[i, 0], xs[i, 1], v_max, bounds, normal, system, h)
            evaluations += 1
    best = 0
    for i in range(1, 3):
        if fs[i] < fs[best]:
            best = i
    return xs[best, 0], xs[best, 1], iteration, evaluations, converged


@_compiled
def fit_slice(  # noqa: PLR0917 - the slice, the warm start, then the outputs
    k_in: FloatArray,
    vol_in: FloatArray,
    weight_in: FloatArray,
    years: float,
    previous_m: float,
    previous_sigma: float,
    params: FloatArray,
    stats: FloatArray,
) -> int:
    """Fit raw SVI to one expiry's implied vols; returns a status code.

    ``params`` receives (a, b, rho, m, sigma) (NaN unless the status is OK, NOT_CONVERGED or
    NEGATIVE_VARIANCE); ``stats`` receives strikes used, iterations, evaluations, RMSE and
    weighted RMSE of the vols (decimal), the smallest Durrleman g on the quoted range of k
    widened by a quarter of it each side, and where it is. A finite previous (m, sigma)
    starts the search there; otherwise it starts from the best point of a grid.
    """
    for i in range(params.size):
        params[i] = math.nan
    for i in range(stats.size):
        stats[i] = math.nan
    stats[0], stats[1], stats[2] = 0.0, 0.0, 0.0
    size = k_in.size
    if vol_in.size != size or weight_in.size != size:
        return BAD_INPUT
    if not (math.isfinite(years) and years > 0.0):
        return BAD_INPUT
    k = np.empty(size)
    v = np.empty(size)
    omega = np.empty(size)
    vol = np.empty(size)
    weight = np.empty(size)
    n, distinct = _usable(k_in, vol_in, weight_in, years, k, v, omega, vol, weight)
    stats[0] = n
    if distinct < MIN_STRIKES:
        return TOO_FEW_STRIKES
    k_low, k_high, v_max, omega_sum, energy = k[0], k[0], v[0], 0.0, 0.0
    for i in range(n):
        k_low = min(k_low, k[i])
        k_high = max(k_high, k[i])
        v_max = max(v_max, v[i])
        omega_sum += omega[i]
        energy += omega[i] * v[i] * v[i]
    span = k_high - k_low
    # Search box: m within one quoted range of it, sigma from _SIGMA_LOW to _SIGMA_HIGH
    # quoted ranges; bounds[4] scales the negative-variance penalty to the weights and
    # bounds[5] is the weighted sum of the squared data.
    bounds = np.empty(9)
    bounds[0], bounds[1] = k_low - span, k_high + span
    bounds[2] = math.log(_SIGMA_LOW * span)
    bounds[3] = math.log(_SIGMA_HIGH * span)
    bounds[4] = omega_sum
    bounds[5] = energy
    bounds[6] = 0.0  # the butterfly penalty: off in the first pass
    bounds[7], bounds[8] = k_low - 0.25 * span, k_high + 0.25 * span
    normal = np.empty((3, 5))
    system = np.empty((6, 7))
    h = np.empty(_CONSTRAINTS)
    evaluations = 0
    warm = (
        math.isfinite(previous_m)
        and math.isfinite(previous_sigma)
        and previous_sigma > 0.0
        and bounds[0] <= previous_m <= bounds[1]
        and bounds[2] <= math.log(previous_sigma) <= bounds[3]
    )
    x_loose, f_relative = _X_LOOSE, _F_RELATIVE
    if warm:
        start_m, start_s = previous_m, math.log(previous_sigma)
        step_m, step_s = _WARM_STEP * previous_sigma, _WARM_STEP
        sse, a, d, c = _inner(
            k, v, omega, n, previous_m, previous_sigma, v_max, bounds[5], normal, system, h
        )
        evaluations += 1
        lowest = _lowest_g(a, d, c, previous_m, previous_sigma, bounds)
        if math.isfinite(sse) and lowest < _ON_BOUNDARY:
            # The previous fit sat on the arbitrage boundary (at its (m, sigma) with these
            # quotes g is at most a few margins from 0): one penalised search from it.
            # Where the penalty is zero the objective is the unconstrained one, so a free
            # optimum away from the boundary is still found.
            bounds[6] = 1.0
            x_loose, f_relative = _X_LOOSE_PENALISED, _F_RELATIVE_PENALISED
    else:
        best = math.inf
        start_m, start_s = 0.5 * (k_low + k_high), math.log(0.1 * span)
        low_s, high_s = math.log(0.01 * span), math.log(2.0 * span)
        step_m = 1.5 * span / (_GRID_M - 1)
        step_s = (high_s - low_s) / (_GRID_SIGMA - 1)
        for i in range(_GRID_M):
            m = k_low - 0.25 * span + i * step_m
            for j in range(_GRID_SIGMA):
                s = low_s + j * step_s
                f = _objective(k, v, omega, n, m, s, v_max, bounds, normal, system, h)
                evaluations += 1
                if f < best:
                    best, start_m, start_s = f, m, s
        step_m *= 0.5
        step_s *= 0.5
    m, log_sigma, iterations, used, converged = _nelder_mead(
        k,
        v,
        omega,
        n,
        v_max,
        bounds,
        start_m,
        start_s,
        step_m,
        step_s,
        normal,
        system,
        h,
        x_loose,
        f_relative,
    )
    evaluations += used
    sigma = math.exp(log_sigma)
    sse, a, d, c = _inner(k, v, omega, n, m, sigma, v_max, bounds[5], normal, system, h)
    if bounds[6] == 0.0 and math.isfinite(sse) and not _free(a, d, c, m, sigma, bounds):
        # The best fit has butterfly arbitrage (or a negative variance): a second search,
        # from it, with Durrleman's g penalised; its result is kept whether or not it is
        # free, and reported.
        bounds[6] = 1.0
        start_m, start_s = m, log_sigma
        step_m, step_s = 0.25 * span, 0.5
        if warm:
            # The previous fit of this expiry was near the constrained optimum: the search
            # starts from whichever of it and the unconstrained best is better under the
            # penalty, with the warm start's small simplex.
            here = _objective(k, v, omega, n, m, log_sigma, v_max, bounds, normal, system, h)
            back = math.log(previous_sigma)
            there = _objective(k, v, omega, n, previous_m, back, v_max, bounds, normal, system, h)
            evaluations += 2
            if there < here:
                start_m, start_s = previous_m, back
            step_m, step_s = _WARM_STEP * math.exp(start_s), _WARM_STEP
        m, log_sigma, more, used, converged = _nelder_mead(
            k,
            v,
            omega,
            n,
            v_max,
            bounds,
            start_m,
            start_s,
            step_m,
            step_s,
            normal,
            system,
            h,
            _X_LOOSE_PENALISED,
            _F_RELATIVE_PENALISED,
        )
        iterations += more
        evaluations += used
        sigma = math.exp(log_sigma)
        sse, a, d, c = _inner(k, v, omega, n, m, sigma, v_max, bounds[5], normal, system, h)
    stats[1], stats[2] = iterations, evaluations
    if not math.isfinite(sse):
        return NO_SOLUTION
    b = c / sigma
    rho = min(max(d / c, -RHO_MAX), RHO_MAX) if c > 0.0 else 0.0  # c ~ 0: d/c is noise
    lowest = a + c * math.sqrt(max(1.0 - rho * rho, 0.0))
    if -_VARIANCE_SLACK * v_max < lowest <= 0.0:
        # The best fit on the edge of positive variance, below it by rounding: on it.
        a += _VARIANCE_SLACK * 1e-3 * v_max - lowest
    params[0], params[1], params[2], params[3], params[4] = a, b, rho, m, sigma
    squares = weighted = weights = 0.0
    for i in range(n):
        x = k[i] - m
        w = a + b * (rho * x + math.sqrt(x * x + sigma * sigma))
        e = (math.sqrt(w / years) if w > 0.0 else 0.0) - vol[i]
        squares += e * e
        weighted += weight[i] * e * e
        weights += weight[i]
    stats[3] = math.sqrt(squares / n)
    stats[4] = math.sqrt(weighted / weights)
    worst, at = _worst_durrleman(
        a, b, rho, m, sigma, k_low - 0.25 * span, k_high + 0.25 * span, _CHECK_POINTS
    )
    stats[5], stats[6] = worst, at
    if a + c * math.sqrt(max(1.0 - rho * rho, 0.0)) <= 0.0:
        return NEGATIVE_VARIANCE
    return OK if converged else NOT_CONVERGED
