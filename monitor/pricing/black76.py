"""Black-76 on the forward: option prices, implied volatilities and greeks, vectorized."""

from __future__ import annotations

import bisect
import enum
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

# scipy ships no type information; the wrappers below pin every result to float64.
from scipy import special  # type: ignore[import-untyped, unused-ignore]

__all__ = [
    "Greeks",
    "IVReason",
    "greeks",
    "implied_vol",
    "implied_vol_with_reason",
    "price",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IndexArray = NDArray[np.intp]

_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)
_SQRT_DBL_MAX = math.sqrt(float(np.finfo(np.float64).max))
_SQRT_TWO_PI = math.sqrt(2.0 * math.pi)
_INV_SQRT_TWO_PI = 1.0 / _SQRT_TWO_PI
_SQRT_PI_OVER_TWO = math.sqrt(0.5 * math.pi)
_INV_SQRT_TWO = 1.0 / math.sqrt(2.0)
_SQRT_THREE = math.sqrt(3.0)
_TWO_PI_OVER_SQRT_27 = 2.0 * math.pi / math.sqrt(27.0)

# Region boundaries of the normalised price, after Jaeckel's "Let's Be Rational" (2015): for
# t = s/2 < 2 * eps**(1/16) a Taylor series in t converges to machine precision, and below
# h = x/s = -10 the asymptotic series of Phi/phi does; elsewhere erfc/erfcx lose few digits.
# Jaeckel takes the asymptotic series wherever h < -10; here the Taylor series keeps those
# elements too while |x| = 2 |h| t <= 4.2 (see _small_t_b), which in practice is all of them.
_ASYMPTOTIC_H = -10.0
_SMALL_T = 2.0 * _EPS**0.0625
_CODY_THRESHOLD = 0.46875  # where erfc(q) and exp(-q^2) erfcx(q) trade accuracy

# Terms k = 0..8 of the small-t series: for h <= 0 term k is at most t^(2k)/(2k+1)!! times the
# first (see _small_t_b), so at t = 0.21 the first one left out is below 1e-21 of the sum.
_SMALL_T_TERMS = 9
# At most 30 terms of the asymptotic series, enough at its region's edge |h + t| = 9.79; further
# out fewer do, and each call takes the fewest for which a bound on the first term left out,
# relative to the sum, is below _TRUNCATION (under half an ulp).
_ASYMPTOTIC_TERMS = 30
# a = 1 + hY from its asymptotic series beyond h = -10 takes at most this many terms.
_A_SERIES_TERMS = 32
_TRUNCATION = 2.0**-57

# The series work on (terms, elements) arrays; beyond this many elements those get large enough
# (over 128 kB) for the allocator to map fresh pages for each, so long inputs go in blocks.
_BLOCK = 896
_SHARED = 128  # the solver shares the small-t series' coefficients from this many elements

# Delbourgo-Gregory rational cubic: r >= _MAX_R means "straight line"; r must stay above -1 for
# its denominator 1 + (r - 3) t (1 - t) to stay positive.
_MIN_R = -(1.0 - math.sqrt(_EPS))
_MAX_R = 2.0 / (_EPS * _EPS)

# Householder(3) from the initial guess converges with order four: the guess is within about
# 10 % of the root, one step leaves about 1e-6 at most, the next a few ulps. Two steps are
# taken everywhere, and the second one, which is about as large as the error it corrects, must
# be below _SETTLED (leaving an error below 1e-20) or the element goes on to the guarded loop.
# In samples of millions of contracts none did up to |ln(F/K)| = 18; beyond, where F/K is
# 10^8 or more, a few tenths of a percent do. In that loop the cap only matters for
# pathological inputs, where alternate steps are forced to bisect the bracket so that every
# element converges no matter what.
_FLAT_UPPER_MAP = 0.5 - 1e-4  # Phi(-s/2) above this: s < 5e-4
_FAST_STEPS = 2
_SETTLED = 1e-5
_MAX_ITERATIONS = 160
_FREE_ITERATIONS = 8


def _small_t_coefficients() -> FloatArray:
    # Y = Phi/phi has Y^(n+1) = h Y^(n) + n Y^(n-1); writing Y^(n) = alpha_n(h) + beta_n(h) Y with
    # integer polynomials and substituting hY = a - 1 (a = Y') gives, for odd n = 2k+1,
    # Y^(n) = P_k(h^2) + Q_k(h^2) a, P_k of degree k - 1 and Q_k of degree k. Entry [0, k, j]
    # ([1, k, j]) is the coefficient of h^2j in P_k (Q_k), divided by (2k+1)!.
    def combine(p: list[int], q: list[int], n: int) -> list[int]:  # h p + n q
        shifted = [0, *p]
        return [
            (shifted[i] if i < len(shifted) else 0) + n * (q[i] if i < len(q) else 0)
            for i in range(max(len(shifted), len(q)))
        ]

    alpha, beta = [[0], [1]], [[1], [0, 1]]
    for n in range(1, 2 * _SMALL_T_TERMS):
        alpha.append(combine(alpha[n], alpha[n - 1], n))
        beta.append(combine(beta[n], beta[n - 1], n))
    coefficients = np.zeros((2, _SMALL_T_TERMS, _SMALL_T_TERMS))
    for k in range(_SMALL_T_TERMS):
        even = alpha[2 * k + 1][0::2]  # alpha_(2k+1) is even in h and beta_(2k+1) odd
        gamma = beta[2 * k + 1][1::2]
        scale = math.factorial(2 * k + 1)
        for j, value in enumerate(even):
            coefficients[0, k, j] += value / scale
        for j, value in enumerate(gamma):
            coefficients[0, k, j] -= value / scale
            coefficients[1, k, j] = value / scale
    return coefficients


def _small_t_matrices() -> tuple[FloatArray, FloatArray]:
    # The series sum_k t^2k/(2k+1)! Y^(2k+1) is P + a Q with P = sum_(k, j) p_kj w^k H^j and Q
    # likewise (w = t^2, H = h^2, r = 0 for P and 1 for Q below). By k: row (r, j) of the first
    # matrix times the powers of w gives the coefficient of H^j. By m = k - j: since
    # w H = (h t)^2 = (x/2)^2 =: X, the terms are also w^m X^j, and row (r, m) of the second
    # matrix times the powers of X gives the coefficient of w^m, a function of x alone, which
    # the solver forms once for all its evaluations.
    coefficients = _small_t_coefficients()
    terms = _SMALL_T_TERMS
    by_k = coefficients.transpose(0, 2, 1).reshape(2 * terms, terms)
    by_x = np.zeros((2, terms, terms))
    for m in range(terms):
        for j in range(terms - m):
            by_x[:, m, j] = coefficients[:, m + j, j]
    return np.ascontiguousarray(by_k), by_x.reshape(2 * terms, terms)


def _asymptotic_limits() -> tuple[float, ...]:
    # With p = 1/|h + t| the k-th term is at most (2k-1)!! (2k+1) p^(2k) (see _asymptotic_b);
    # entry n - 1 is the largest p for which n terms leave out less than _TRUNCATION.
    limits = []
    double_factorial = 1.0
    for n in range(1, _ASYMPTOTIC_TERMS + 1):
        double_factorial *= 2 * n - 1
        limits.append((_TRUNCATION / (double_factorial * (2 * n + 1))) ** (0.5 / n))
    return tuple(limits)


def _a_series_limits() -> tuple[float, ...]:
    # a = sum_(k=1..n) (-1)^(k+1) (2k-1)!! w^k leaves out at most (2n+1)!! w^(n+1), relative
    # to a ~ w at most (2n+1)!! w^n; entry n - 1 is the largest w for which that is below
    # _TRUNCATION.
    return tuple(
        (_TRUNCATION / math.prod(range(1, 2 * n + 2, 2))) ** (1.0 / n)
        for n in range(1, _A_SERIES_TERMS + 1)
    )


_SMALL_T_BY_K, _SMALL_T_BY_X = _small_t_matrices()
_SMALL_T_BY_K.flags.writeable = _SMALL_T_BY_X.flags.writeable = False
_A_SERIES_LIMITS = _a_series_limits()
_A_SERIES_COEFFICIENTS = np.array(
    [(-1) ** k * math.prod(range(1, 2 * k + 2, 2)) for k in range(_A_SERIES_TERMS)],
    dtype=np.float64,
)
_ASYMPTOTIC_LIMITS = _asymptotic_limits()
# (-1)^k (2k-1)!!, the coefficients of the asymptotic series of Phi/phi.
_ASYMPTOTIC_COEFFICIENTS = np.array(
    [(-1) ** k * math.prod(range(1, 2 * k, 2)) for k in range(_ASYMPTOTIC_TERMS)], dtype=np.float64
)


def _constant(value: float) -> FloatArray:
    constant = np.asarray(value, dtype=np.float64)
    constant.flags.writeable = False
    return constant


class _A:
    """Hot-path constants as 0-d arrays.

    numpy combines an array with a 0-d array about 40 % faster than with a Python float, which
    it converts on every call; on arrays of a few hundred elements that conversion is a large
    part of each operation.
    """

    zero = _constant(0.0)
    half = _constant(0.5)
    minus_half = _constant(-0.5)
    quarter = _constant(0.25)
    one = _constant(1.0)
    minus_one = _constant(-1.0)
    two = _constant(2.0)
    minus_two = _constant(-2.0)
    three = _constant(3.0)
    sixth = _constant(1.0 / 6.0)
    tiny = _constant(_TINY)
    settled = _constant(_SETTLED)
    inv_sqrt_two_pi = _constant(_INV_SQRT_TWO_PI)
    sqrt_pi_over_two = _constant(_SQRT_PI_OVER_TWO)
    minus_inv_sqrt_two = _constant(-_INV_SQRT_TWO)
    small_t = _constant(_SMALL_T)
    asymptotic_h = _constant(_ASYMPTOTIC_H)
    asymptotic_edge = _constant(_ASYMPTOTIC_H + _SMALL_T)
    series_x = _constant(2.0 * _ASYMPTOTIC_H * _SMALL_T)
    minus_sqrt_three = _constant(-_SQRT_THREE)
    sqrt_three = _constant(_SQRT_THREE)
    minus_lower_map = _constant(-_TWO_PI_OVER_SQRT_27)
    eighth = _constant(0.125)
    two_pi = _constant(2.0 * math.pi)
    max_r = _constant(_MAX_R)


class IVReason(enum.IntEnum):
    """Why ``implied_vol`` returned what it did, element by element."""

    OK = 0
    BELOW_INTRINSIC = 1  # price < discounted intrinsic value: no volatility reproduces it
    ABOVE_MAX = 2  # price >= discounted F (call) or K (put): only sigma = inf would
    EXPIRED = 3  # T <= 0: the price carries no information about volatility
    BAD_INPUT = 4  # NaN/inf anywhere, F <= 0, K <= 0 or a negative price


@dataclass(frozen=True, slots=True)
class Greeks:
    """Sensitivities of one option on one unit of the forward, in raw units.

    ``vega``, ``vanna`` and ``volga`` are per unit of sigma (1.0 = 100 vol points) and
    ``theta`` is -dV/dT per year with r held fixed, so it includes the r*V discounting term.
    """

    delta: FloatArray  # dV/dF
    gamma: FloatArray  # d2V/dF2
    vega: FloatArray  # dV/dsigma
    theta: FloatArray  # -dV/dT
    vanna: FloatArray  # d2V/dF dsigma
    volga: FloatArray  # d2V/dsigma2


def _accumulate_powers(table: FloatArray) -> None:
    """Rows base, base, ... of table become base, base^2, ... in place.

    cumprod is simplest but takes a few ns per element; on long rows a doubling scheme (one
    product per power of two) is faster.
    """
    if table[0].size <= 64:
        np.cumprod(table, axis=0, out=table)
        return
    done = 1
    while done < len(table):
        step = min(done, len(table) - done)
        np.multiply(table[:step], table[done - 1], out=table[done : done + step])
        done += step


def _ndtr(z: FloatArray) -> FloatArray:
    return np.asarray(special.ndtr(z), dtype=np.float64)


def _ndtri(p: FloatArray) -> FloatArray:
    return np.asarray(special.ndtri(p), dtype=np.float64)


def _erf(z: FloatArray) -> FloatArray:
    return np.asarray(special.erf(z), dtype=np.float64)


def _erfc(z: FloatArray) -> FloatArray:
    return np.asarray(special.erfc(z), dtype=np.float64)


def _erfcx(z: FloatArray) -> FloatArray:
    return np.asarray(special.erfcx(z), dtype=np.float64)


# --- the normalised Black function -----------------------------------------------------------
#
# With x = ln(F/K) and s = sigma*sqrt(T), every option price is
#     V = D * (intrinsic + sqrt(F*K) * b(-|x|, s)),
#     b(x, s) = exp(x/2) Phi(x/s + s/2) - exp(-x/2) Phi(x/s - s/2)   for x <= 0,
# the undiscounted time value of the out-of-the-money option: call and put at one strike share
# it (put-call parity), and working with the OTM side avoids subtracting from the intrinsic.
# With h = x/s and t = s/2, b = exp(-(h^2 + t^2)/2)/sqrt(2 pi) * (Y(h+t) - Y(h-t)) where
# Y = Phi/phi, which is how the far wings keep their relative accuracy. The prefactor is also
# db/ds, the normalised vega, so every evaluation returns both.
#
# All private functions below expect the caller to hold np.errstate(all="ignore"): the public
# functions enter it once per call rather than once per helper. Their cost is mostly numpy's
# per-call overhead, so they are written to take few array operations, not few flops.


def _asymptotic_b(h: FloatArray, t: FloatArray, s: FloatArray, vega: FloatArray) -> FloatArray:
    # Y(z) ~ sum_k (-1)^k (2k-1)!! |z|^-(2k+1) for z << 0. With p = -1/(h+t), q = 1/(t-h), each
    # difference p^n - q^n = (p - q) S_(n-1), S_m = sum_j p^j q^(m-j), is a sum of positive
    # terms, so the tiny difference Y(h+t) - Y(h-t) never comes from cancelling large numbers;
    # p - q = 2 t p q = s p q. Summing the geometric part first,
    #     S_2k = p^2k (1 + (1 + p/q) sum_(i=1..k) (q/p)^2i),
    # which takes the whole series in a few array operations over a second axis.
    p = -1.0 / (h + t)
    q = 1.0 / (t - h)
    # The limits increase with the number of terms.
    terms = min(bisect.bisect_left(_ASYMPTOTIC_LIMITS, float(p.max())) + 1, _ASYMPTOTIC_TERMS)
    total: FloatArray | float = 1.0
    if terms > 1:
        ratio = q / p
        powers = np.empty((terms - 1, 2, h.size))
        powers[:, 0] = p * p
        powers[:, 1] = ratio * ratio
        _accumulate_powers(powers)
        partial = powers[:, 0] * (1.0 + (1.0 + p / q) * np.cumsum(powers[:, 1], axis=0))
        total = 1.0 + _ASYMPTOTIC_COEFFICIENTS[1:terms] @ partial
    return vega * (s * p * q) * total


def _asymptotic_a(h: FloatArray) -> FloatArray:
    """a = Y'(h) = 1 + hY(h) for h < -10, where 1 + hY would cancel to ~h^2 ulps.

    Its asymptotic series sum_k (-1)^(k+1) (2k-1)!! h^-2k, to as many terms as the largest
    1/h^2 needs (28 at h = -10): one cumulative product and one dot.
    """
    w = _A.one / (h * h)
    terms = min(bisect.bisect_left(_A_SERIES_LIMITS, float(w.max())) + 1, _A_SERIES_TERMS)
    powers = np.empty((terms, w.size))
    powers[:] = w
    _accumulate_powers(powers)
    return _A_SERIES_COEFFICIENTS[:terms] @ powers


def _powers_of(*bases: FloatArray) -> FloatArray:
    """base^0 .. base^8 for each base, shape (9, len(bases), n), by doubling: three products
    (cumprod is slow on short axes)."""
    powers = np.empty((_SMALL_T_TERMS, len(bases), bases[0].size))
    powers[0].fill(1.0)
    for i, base in enumerate(bases):
        powers[1, i] = base
    np.multiply(powers[1], powers[1], out=powers[2])
    np.multiply(powers[1:3], powers[2], out=powers[3:5])
    np.multiply(powers[1:5], powers[4], out=powers[5:9])
    return powers


def _series_coefficients(x: FloatArray) -> FloatArray:
    """The small-t series' coefficients of w^m, shape (2, K, n): functions of x alone."""
    mixed = _SMALL_T_BY_X @ _powers_of(x * x * _A.quarter)[:, 0]
    return mixed.reshape(2, _SMALL_T_TERMS, x.size)


def _small_t_sums(w: FloatArray, h2: FloatArray, coefficients: FloatArray | None) -> FloatArray:
    """The P and Q parts of the small-t series (see _small_t_b), shape (2, n)."""
    if coefficients is not None:
        return np.einsum("kn,rkn->rn", _powers_of(w)[:, 0], coefficients)  # type: ignore[no-any-return]
    powers = _powers_of(w, h2)
    mixed = (_SMALL_T_BY_K @ powers[:, 0]).reshape(2, _SMALL_T_TERMS, w.size)
    return np.einsum("rjn,jn->rn", mixed, powers[:, 1])  # type: ignore[no-any-return]


def _small_t_b(
    h: FloatArray, s: FloatArray, vega: FloatArray, sums: FloatArray, far: IndexArray | None
) -> FloatArray:
    # Y(h+t) - Y(h-t) = 2 sum_k t^(2k+1)/(2k+1)! Y^(2k+1)(h), and Y^(2k+1) = P_k(h^2) + Q_k(h^2) a
    # with a = Y' = 1 + hY (Jaeckel's form of the expansion; see _small_t_matrices for how the
    # double sum over powers of t^2 and h^2 is taken). Since
    # Y^(n)(h) = int_0^inf u^n exp(h u - u^2/2) du, for h <= 0 Y^(n+2) <= (n+1) Y^(n) and term k
    # is at most t^(2k)/(2k+1)!! times the first. P_k and Q_k a nearly cancel for large |h|,
    # but relative to the sum each term's rounding is about (h t)^2k/(2k+1)! ulps, and
    # h t = x/2: a few ulps for |x| <= 4.2, which the regions ensure. What is lost is mostly in
    # a itself, which is small for h << 0 and so, beyond h = -10 (``far``), comes from its own
    # asymptotic series.
    a = _A.one + h * (_A.sqrt_pi_over_two * _erfcx(h * _A.minus_inv_sqrt_two))
    if far is not None and far.size:
        a[far] = _asymptotic_a(h[far])
    total: FloatArray = sums[0] + a * sums[1]
    return vega * s * total


def _erfc_b(x: FloatArray, h: FloatArray, t: FloatArray) -> FloatArray:
    # erfc keeps its relative accuracy for small arguments and erfcx for large ones; picking
    # per term avoids both underflow and the loss of digits of 1 - erfc.
    q1 = -_INV_SQRT_TWO * (h + t)
    q2 = -_INV_SQRT_TWO * (h - t)
    common = np.exp(-0.5 * (h * h + t * t))
    first = np.where(q1 < _CODY_THRESHOLD, np.exp(0.5 * x) * _erfc(q1), common * _erfcx(q1))
    second = np.where(q2 < _CODY_THRESHOLD, np.exp(-0.5 * x) * _erfc(q2), common * _erfcx(q2))
    return np.maximum(0.5 * (first - second), 0.0)


def _normalised(
    x: FloatArray,
    s: FloatArray,
    *,
    positive: bool = False,
    coefficients: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """b(x, s), db/ds and h = x/s for x <= 0, s >= 0 (flat arrays of one shape).

    db/ds = exp(-(h^2 + t^2)/2)/sqrt(2 pi), with its s -> 0 limit (nonzero only at x = 0).
    The asymptotic and erfc formulas run only on the elements in their regions; the small-t
    series, which has most of them, runs on all and is overwritten where it does not apply.
    ``positive`` skips the test for s = 0 (the solver's iterates are never 0; a NaN or a
    negative one just gives NaN or nonsense, which the solver catches); ``coefficients``
    are _series_coefficients(x), if the caller has them.
    """
    size = s.size
    if size > _BLOCK:
        b, vega, h = np.empty_like(s), np.empty_like(s), np.empty_like(s)
        for start in range(0, size, _BLOCK):
            block = slice(start, start + _BLOCK)
            part = None if coefficients is None else coefficients[:, :, block]
            b[block], vega[block], h[block] = _normalised(
                x[block], s[block], positive=positive, coefficients=part
            )
        return b, vega, h
    live = size if positive else np.count_nonzero(s)
    if live < size:
        b = np.zeros_like(s)
        vega = np.where(x == 0.0, _INV_SQRT_TWO_PI, 0.0)
        h = np.full_like(s, -np.inf)
        if live:
            i = s.nonzero()[0]
            part = None if coefficients is None else coefficients[:, :, i]
            b[i], vega[i], h[i] = _normalised(x[i], s[i], coefficients=part)
        return b, vega, h
    h = x / s
    t = s * _A.half
    w = t * t
    h2 = h * h
    vega = np.exp((h2 + w) * _A.minus_half) * _A.inv_sqrt_two_pi
    small_t = t < _A.small_t
    far = h < _A.asymptotic_h
    n_far = np.count_nonzero(far)
    series: IndexArray | None = None
    asymptotic = dead = None
    if n_far:
        # Beyond h = -10 the small-t series still holds for |x| <= 4.2 (see _small_t_b); the
        # rest of the far wing takes the asymptotic series, and where the prefactor underflows
        # b is exactly 0.
        in_series = far & small_t & (x >= _A.series_x) & (vega > _A.zero)
        series = in_series.nonzero()[0]
        if series.size < n_far:
            others = far ^ in_series
            alive = vega > _A.zero
            dead = (others & ~alive).nonzero()[0]
            asymptotic = (others & alive & (h + t < _A.asymptotic_edge)).nonzero()[0]
            small_t &= ~others
            small_t[asymptotic] = True
            small_t[dead] = True  # both taken care of below
    n_rest = size - np.count_nonzero(small_t)
    if n_rest == size:
        return _erfc_b(x, h, t), vega, h
    b = _small_t_b(h, s, vega, _small_t_sums(w, h2, coefficients), series)
    if asymptotic is not None and asymptotic.size:
        i = asymptotic
        b[i] = _asymptotic_b(h[i], t[i], s[i], vega[i])
    if dead is not None and dead.size:
        b[dead] = 0.0
    if n_rest:
        i = (~small_t).nonzero()[0]
        b[i] = _erfc_b(x[i], h[i], t[i])
    return b, vega, h


# --- inputs ----------------------------------------------------------------------------------


def _flatten(
    values: tuple[ArrayLike, ...], is_call: ArrayLike
) -> tuple[tuple[int, ...], list[FloatArray], BoolArray]:
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    calls = np.asarray(is_call, dtype=np.bool_)
    shapes = {a.shape for a in arrays}
    shapes.add(calls.shape)
    shapes.discard(())
    if len(shapes) > 1:
        shape = np.broadcast_shapes(*shapes)
    else:
        shape = shapes.pop() if shapes else ()
    size = math.prod(shape)
    floats = []
    for a in arrays:
        if a.shape == shape:
            # A view where possible: nothing below writes into its inputs.
            floats.append(a if a.ndim == 1 else a.ravel())
        elif a.ndim == 0:
            filled = np.empty(size)
            filled.fill(a)
            floats.append(filled)
        else:
            floats.append(np.broadcast_to(a, shape).ravel())
    if calls.shape != shape:
        calls = np.broadcast_to(calls, shape)
    return shape, floats, calls if calls.ndim == 1 else calls.ravel()


def _log_moneyness(forward: FloatArray, strike: FloatArray) -> FloatArray:
    # Near the money F - K is exact (Sterbenz), so log1p keeps x's relative accuracy where
    # the log of a rounded ratio would leave an absolute error of one ulp of 1.
    ratio = forward / strike
    near = (ratio > 0.5) & (ratio < 2.0)
    return np.where(near, np.log1p((forward - strike) / strike), np.log(ratio))


def _intrinsic(forward: FloatArray, strike: FloatArray, calls: BoolArray) -> FloatArray:
    """Undiscounted intrinsic value."""
    difference = forward - strike
    return np.maximum(np.where(calls, difference, -difference), 0.0)


def _valid_contract(
    forward: FloatArray, strike: FloatArray, expiry: FloatArray, rate: FloatArray
) -> BoolArray:
    finite = np.isfinite(forward) & np.isfinite(strike) & np.isfinite(expiry) & np.isfinite(rate)
    return finite & (forward > 0.0) & (strike > 0.0)


class _Priced(NamedTuple):
    """What ``price`` and ``greeks`` share: flat inputs, validity and the OTM time value."""

    shape: tuple[int, ...]
    forward: FloatArray
    rate: FloatArray
    sigma: FloatArray
    calls: BoolArray
    valid: BoolArray | None  # None when every element is valid
    years: FloatArray
    discount: FloatArray
    x: FloatArray  # ln(F/K)
    s: FloatArray  # sigma sqrt(T), 0 where expired or invalid
    root_fk: FloatArray
    value: FloatArray  # the discounted option value
    density: FloatArray  # db/ds


def _priced(values: tuple[ArrayLike, ...], is_call: ArrayLike) -> _Priced:
    shape, (f, k, t, rr, sig), calls = _flatten(values, is_call)
    # The common case first: a sum is finite only if every term is, and F, K > 0, sigma >= 0.
    plain = np.isfinite(f + k + t + rr + sig) & (np.minimum(f, k) > _A.zero) & (sig >= _A.zero)
    if np.count_nonzero(plain) == plain.size:
        valid = checked = None
    else:
        # Once expired the value no longer depends on sigma, so a missing vol does not matter.
        checked = _valid_contract(f, k, t, rr) & ((t <= 0.0) | (np.isfinite(sig) & (sig >= 0.0)))
        valid = None if np.count_nonzero(checked) == checked.size else checked
    years = np.maximum(t, _A.zero)
    discount = np.exp(rr * years * _A.minus_one)
    s = sig * np.sqrt(years)
    if valid is not None or np.count_nonzero(years) < years.size:
        live = years > 0.0 if checked is None else checked & (years > 0.0)
        s = np.where(live, s, 0.0)
    x = _log_moneyness(f, k)
    root_fk = np.sqrt(f) * np.sqrt(k)
    b, density, _ = _normalised(-np.abs(x), s)
    value = discount * (_intrinsic(f, k, calls) + root_fk * b)
    return _Priced(shape, f, rr, sig, calls, valid, years, discount, x, s, root_fk, value, density)


# --- prices and greeks -----------------------------------------------------------------------


def price(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    F: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, sigma: ArrayLike, is_call: ArrayLike
) -> FloatArray:
    """Black-76 value exp(-rT) * E[payoff] of a European option on the forward F.

    Inputs broadcast against each other. T <= 0 or sigma == 0 give the discounted intrinsic
    value (T < 0 counts as T = 0). NaN where F or K is not positive, sigma is negative or
    anything is not finite.
    """
    with np.errstate(all="ignore"):
        priced = _priced((F, K, T, r, sigma), is_call)
    value = priced.value
    if priced.valid is not None:
        value = np.where(priced.valid, value, np.nan)
    return value.reshape(priced.shape)


def greeks(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    F: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, sigma: ArrayLike, is_call: ArrayLike
) -> Greeks:
    """Analytic Black-76 greeks; see ``Greeks`` for the units.

    At T <= 0 or sigma == 0 the option is its intrinsic value: delta is the discounted step
    (+-1 in the money, 0 out of it, +-0.5 exactly at the money), theta is r*V while T > 0
    (pure discounting) and 0 once expired, and gamma, vega, vanna and volga are 0.
    """
    with np.errstate(all="ignore"):
        p = _priced((F, K, T, r, sigma), is_call)
        f, x, s, sig, calls, discount = p.forward, p.x, p.s, p.sigma, p.calls, p.discount
        size = s.size
        h = x / s
        half_s = s * _A.half
        d1 = h + half_s
        d2 = h - half_s
        # F * phi(d1) = sqrt(FK) * exp(-(h^2 + t^2)/2)/sqrt(2 pi): symmetric in F and K.
        discounted_f_phi = discount * (p.root_fk * p.density)
        root_t = np.sqrt(p.years)
        # Call delta D N(d1), put delta -D N(-d1): each side keeps its own tail's accuracy.
        delta = np.where(calls, discount, -discount) * _ndtr(np.where(calls, d1, -d1))
        gamma = discounted_f_phi / (f * f * s)
        vega = discounted_f_phi * root_t
        theta = p.rate * p.value - discounted_f_phi * sig / (root_t * _A.two)
        vanna = -(discounted_f_phi / f) * d2 / sig
        volga = vega * d1 * d2 / sig

        diffusing = s > 0.0
        if np.count_nonzero(diffusing) < size:
            step = np.where(x > 0.0, 1.0, np.where(x < 0.0, 0.0, 0.5))
            step = np.where(calls, step, step - 1.0)
            delta = np.where(diffusing, delta, discount * step)
            discounting = np.where(p.years > 0.0, p.rate * p.value, 0.0)
            theta = np.where(diffusing, theta, discounting)
        # Where the density underflows (or s = 0) gamma, vega, vanna and volga vanish; testing
        # the density also keeps 0 * inf out of d1 * d2 when h overflows.
        curved = diffusing & (discounted_f_phi > 0.0)
        if np.count_nonzero(curved) < size:
            gamma = np.where(curved, gamma, 0.0)
            vega = np.where(curved, vega, 0.0)
            vanna = np.where(curved, vanna, 0.0)
            volga = np.where(curved, volga, 0.0)
        fields = [delta, gamma, vega, theta, vanna, volga]
        if p.valid is not None:
            fields = [np.where(p.valid, field, np.nan) for field in fields]
    delta, gamma, vega, theta, vanna, volga = (field.reshape(p.shape) for field in fields)
    return Greeks(delta=delta, gamma=gamma, vega=vega, theta=theta, vanna=vanna, volga=volga)


# --- implied volatility ----------------------------------------------------------------------
#
# After Jaeckel, "Let's Be Rational" (Wilmott, 2015), vectorized: the curve b(s) is cut at
# s_l < s_c (s_c = sqrt(2|x|) is its inflection point, s_l where the tangent there meets 0);
# on each piece a rational cubic in a transformed price gives a guess within 10 % of the root
# (see _initial_guess), then two Householder steps of order 3 on ln b finish it (see
# _Problem). The rare element whose second step is not small enough continues in a loop that
# keeps a bracket from its piece, tightened at each evaluation, to catch any step that would
# leave it.
#
# The rational cubic of Delbourgo and Gregory (1985) from (x_l, y_l) to (x_r, y_r) with end
# slopes d_l, d_r has a control parameter r: 3 gives the ordinary cubic Hermite spline, larger
# r pull it towards the chord, which is how it is kept monotone and convex where the data are.
# It is symmetric under swapping its ends, so every piece here is written with its left end
# where the second derivative is matched (or, at s_l, would be): at s_c for the lower and the
# upper piece, at s_l for the lowest.


def _rational_cubic(x: FloatArray, ends: tuple[FloatArray, ...], r: FloatArray) -> FloatArray:
    x_l, x_r, y_l, y_r, d_l, d_r = ends
    width = x_r - x_l
    t = (x - x_l) / width
    u = _A.one - t
    outer = y_r * t + (r * y_r - width * d_r) * u
    inner = (r * y_l + width * d_l) * t + y_l * u
    cubic = (outer * t * t + inner * u * u) / ((r - _A.three) * (t * u) + _A.one)
    line = r >= _A.max_r
    if np.count_nonzero(line):
        cubic = np.where(line, y_r * t + y_l * u, cubic)
    if np.count_nonzero(width) < width.size:
        cubic = np.where(width == 0.0, 0.5 * (y_l + y_r), cubic)
    return cubic


def _fit_left(
    ends: tuple[FloatArray, ...], second: FloatArray | None, prefer: BoolArray | None
) -> FloatArray:
    """r matching the second derivative at x_l (0 if None), raised to keep the shape.

    Delbourgo and Gregory's conditions (3.8) for monotonicity and (3.18) for convexity give a
    lower bound for r; where ``prefer``, a condition that cannot be met by any finite r falls
    back to the chord.
    """
    x_l, x_r, y_l, y_r, d_l, d_r = ends
    width = x_r - x_l
    slope = (y_r - y_l) / width
    right_gap = d_r - slope
    left_gap = slope - d_l
    span = d_r - d_l
    numerator = span if second is None else width * second * _A.half + span
    fitted = numerator / left_gap
    r1 = (d_r + d_l) / slope
    # Strictly monotone and strictly convex or concave: then no division here is by zero, and
    # since span is the sum of the gaps, |span/gap| = 1 + (other gap)/gap.
    proper = (right_gap * left_gap > _A.zero) & (d_l * slope > _A.zero) & (d_r * slope > _A.zero)
    if np.count_nonzero(proper) == proper.size:
        r2 = np.maximum(right_gap / left_gap, left_gap / right_gap) + _A.one
        return np.maximum(fitted, np.maximum(r1, r2))
    return _fit_left_guarded(numerator, fitted, (d_l, d_r, slope, r1), prefer)


def _fit_left_guarded(
    numerator: FloatArray,
    fitted: FloatArray,
    shape: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    prefer: BoolArray | None,
) -> FloatArray:
    # The general case of _fit_left, with every division by zero and unmet condition spelt out.
    d_l, d_r, slope, r1 = shape
    span = d_r - d_l
    right_gap = d_r - slope
    left_gap = slope - d_l
    fitted = np.where(
        numerator == 0.0,
        0.0,
        np.where(left_gap == 0.0, np.where(numerator > 0.0, _MAX_R, _MIN_R), fitted),
    )
    monotonic = (d_l * slope >= 0.0) & (d_r * slope >= 0.0)
    shaped = ((d_l <= slope) & (slope <= d_r)) | ((d_l >= slope) & (slope >= d_r))
    fallback: FloatArray | float = -np.inf if prefer is None else np.where(prefer, _MAX_R, -np.inf)
    r1 = np.where(monotonic, np.where(slope == 0.0, fallback, r1), -np.inf)
    r2 = np.maximum(np.abs(span / right_gap), np.abs(span / left_gap))
    r2 = np.where((right_gap != 0.0) & (left_gap != 0.0), r2, fallback)
    linear = -np.inf if prefer is None else np.where(prefer & monotonic, _MAX_R, -np.inf)
    r2 = np.where(shaped, r2, linear)
    r = np.where(monotonic | shaped, np.maximum(np.maximum(r1, r2), _MIN_R), _MIN_R)
    return np.maximum(fitted, r)


def _central(x: FloatArray, b_max: FloatArray) -> FloatArray:
    """b at the inflection point s_c = sqrt(2|x|), where h + t = 0.

    b_c = b_max (1 - erfcx(y))/2 with y = sqrt(|x|); below y = 1, 1 - erfcx(y) is better formed
    as exp(y^2) erf(y) - expm1(y^2). Either way at most about two bits cancel.
    """
    minus_x = -x
    y = np.sqrt(minus_x)
    near = y < _A.one
    n_near = np.count_nonzero(near)
    if n_near == 0:
        return (_A.one - _erfcx(y)) * b_max * _A.half
    difference = np.exp(minus_x) * _erf(y) - np.expm1(minus_x)
    if n_near < y.size:
        difference = np.where(near, difference, 1.0 - _erfcx(y))
    return difference * b_max * _A.half


def _lower_map(x: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """f = 2 pi |x| / sqrt(27) * Phi(-z)^3, z = |x|/(sqrt(3) s), and df/db (x <= 0).

    f matches b to leading order as s -> 0, so f(b) is close to the identity on the lowest
    piece and a rational cubic in b represents it well. Jaeckel also matches d2f/db2 at s_l;
    here the shape-preserving bound alone sets the cubic's r, which moves the guess by well
    under 1 % of s (the largest error on the piece stays near 10 %) for a dozen fewer array
    operations.
    """
    z = x / (s * _A.minus_sqrt_three)
    y = z * z
    cdf = _ndtr(-z)
    cdf2 = cdf * cdf
    f = cdf2 * _A.minus_lower_map * (cdf * x)
    fp = y * _A.two_pi * cdf2 * np.exp(s * s * _A.eighth + y)
    return f, fp


def _inverse_lower_map(x: FloatArray, f: FloatArray) -> FloatArray:
    z = _ndtri(np.cbrt(f / (x * _A.minus_lower_map)))
    return x / (z * _A.sqrt_three)


def _upper_map(x: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """f = Phi(-s/2) and df/db, d2f/db2: f(b) is close to linear near b_max."""
    w = (x / s) ** 2
    f = _ndtr(-0.5 * s)
    fp = -0.5 * np.exp(0.5 * w)
    fpp = _SQRT_PI_OVER_TWO * np.exp(w + 0.125 * s * s) * w / s
    return f, fp, fpp


class _Guess(NamedTuple):
    """The initial guess and what the iterations need to know about each element."""

    s: FloatArray
    s_c: FloatArray
    s_l: FloatArray
    below: BoolArray  # beta < b_c: the lowest or the lower piece
    lowest: BoolArray | None  # None where no element is on the lowest piece
    upper: IndexArray  # elements iterated on ln(b_max - b) rather than ln(b)

    def bracket(self, i: IndexArray) -> tuple[FloatArray, FloatArray]:
        """(lo, hi) of the piece that holds each element of i."""
        below, s_c, s_l = self.below[i], self.s_c[i], self.s_l[i]
        lo = np.where(below, s_l, s_c)
        hi = np.where(below, s_c, np.inf)
        if self.lowest is not None:
            lowest = self.lowest[i]
            lo = np.where(lowest, 0.0, lo)
            hi = np.where(lowest, s_l, hi)
        return lo, hi


def _initial_guess(
    beta: FloatArray, x: FloatArray, b_max: FloatArray, coefficients: FloatArray | None
) -> _Guess:
    # Jaeckel's pieces below the inflection point s_c: the lowest, up to s_l where the tangent
    # at s_c meets 0, interpolates his lower map f(b) from (b_l, f(s_l)) to f(0) = 0, f' = 1;
    # the lower one interpolates s(b) from (b_c, s_c), where s(b) has an inflection point
    # (second derivative 0), to (b_l, s_l). Above s_c one piece interpolates the upper map
    # f = Phi(-s/2) from (b_c, f(s_c)) to f(b_max) = 0, f' = -1/2 (the limit s -> inf); that
    # saves evaluating b at Jaeckel's s_h and is, if anything, more accurate (within 2 % of
    # the root, against 10 % on the lowest piece).
    s_c = np.sqrt(x * _A.minus_two)
    b_c = _central(x, b_max)
    # At s_c, exp(-(h^2 + t^2)/2) = exp(x/2) = b_max: the slope of s(b) there is d_c.
    d_c = _A.one / (b_max * _A.inv_sqrt_two_pi)
    s_l = np.maximum(s_c - b_c * d_c, _A.zero)
    below = beta < b_c
    size = beta.size
    n_below = np.count_nonzero(below)
    lowest_mask = None
    lowest = upper = np.empty(0, dtype=np.intp)
    if n_below:
        b_l, v_l, _ = _normalised(x, s_l, coefficients=coefficients)
        lowest_mask = beta < b_l
        lowest_mask &= below
        lowest = lowest_mask.nonzero()[0]
        if lowest.size == 0:
            lowest_mask = None
    if n_below < size:
        upper = (~below).nonzero()[0]

    if lowest.size == 0 and upper.size == 0:  # all on the lower piece
        ends = (b_c, b_l, s_c, s_l, d_c, _A.one / v_l)
        s = _rational_cubic(beta, ends, _fit_left(ends, None, None))
        return _Guess(s, s_c, s_l, below, None, upper)

    # Each piece starts where its second derivative is matched.
    if n_below:
        outer = ~below if lowest_mask is None else lowest_mask | ~below
        x_l = np.where(lowest_mask, b_l, b_c) if lowest_mask is not None else b_c
        x_r = np.where(below, b_l, b_max)
        y_r = np.where(outer, _A.zero, s_l)
        d_r = np.where(below, _A.one / v_l, -0.5)
        if lowest_mask is not None:
            x_r[lowest] = 0.0
            d_r[lowest] = 1.0
    else:
        outer = ~below
        x_l, x_r, y_r = b_c, b_max, np.zeros(size)
        d_r = np.full(size, -0.5)
    y_l = s_c.copy()
    d_l = d_c.copy()
    second = None
    if lowest.size:
        y_l[lowest], d_l[lowest] = _lower_map(x[lowest], s_l[lowest])
    if upper.size:
        second = np.zeros(size)
        y_l[upper], d_l[upper], second[upper] = _upper_map(x[upper], s_c[upper])
    ends = (x_l, x_r, y_l, y_r, d_l, d_r)
    s = _rational_cubic(beta, ends, _fit_left(ends, second, outer))

    if lowest.size:
        i = lowest
        f, f_l, b_l_i = s[i], y_l[i], b_l[i]
        # Round-off in the fit can leave f <= 0 for extreme |x|; the quadratic through
        # f(0) = 0, f'(0) = 1 and f(b_l) cannot.
        if np.count_nonzero(f > _A.zero) < f.size:
            tau = beta[i] / b_l_i
            f = np.where(f > 0.0, f, (f_l * tau + b_l_i * (1.0 - tau)) * tau)
        s[i] = _inverse_lower_map(x[i], f)
    if upper.size and second is not None:
        i = upper
        f, f_c, b_c_i, fpp = s[i], y_l[i], b_c[i], second[i]
        f = np.where(np.abs(fpp) < _SQRT_DBL_MAX, f, np.nan)
        if np.count_nonzero(f > _A.zero) < f.size:
            width = b_max[i] - b_c_i
            tau = (beta[i] - b_c_i) / width
            f = np.where(f > 0.0, f, (f_c * (1.0 - tau) + 0.5 * width * tau) * (1.0 - tau))
        s_i = _ndtri(f) * _A.minus_two
        # Phi(-s/2) is too close to 1/2 to carry a small s; there (s < 5e-4, so s_c is smaller
        # still and x nearly 0) the tangent at the inflection point s_c, which b leaves only at
        # third order, is the better guess.
        flat = f > _FLAT_UPPER_MAP
        if np.count_nonzero(flat):
            s_i = np.where(flat, s_c[i] + (beta[i] - b_c_i) * d_c[i], s_i)
        s[i] = s_i
        # Near b_max, ln(b_max - b) is the objective that stays nearly linear.
        upper = i[beta[i] > b_max[i] * _A.half]
    return _Guess(s, s_c, s_l, below, lowest_mask, upper)


def _householder_step(newton: FloatArray, halley: FloatArray, hh3: FloatArray) -> FloatArray:
    """Householder(3): Newton's step corrected with g''/g' (halley) and g'''/g' (hh3)."""
    return (
        newton
        * (halley * newton * _A.half + _A.one)
        / ((hh3 * newton * _A.sixth + halley) * newton + _A.one)
    )


def _upper_step(  # noqa: PLR0917 - one iteration's state
    beta_gap: FloatArray,
    b_max: FloatArray,
    b: FloatArray,
    vega: FloatArray,
    halley: FloatArray,
    hh3: FloatArray,
) -> FloatArray:
    # g = ln(b_max - beta) - ln(b_max - b), where b_max - b ~ exp(-s^2/8).
    gap = b_max - b
    g_prime = vega / gap
    return _householder_step(
        -np.log(beta_gap / gap) / g_prime,
        halley + g_prime,
        hh3 + g_prime * (2.0 * g_prime + 3.0 * halley),
    )


class _Problem(NamedTuple):
    """ln b(x, s) = ln beta to solve, with what the steps need precomputed.

    Householder's methods are invariant under Moebius transformations of the objective that
    keep its root (they are built on the derivatives of 1/g), so Jaeckel's objective for the
    lowest piece, 1/ln(b) - 1/ln(beta), takes exactly the steps of ln(b) - ln(beta). Solving
    for ln b everywhere is also at least as good as b - beta on his middle pieces, and takes
    one formula for all elements; near b_max ``upper`` elements use ln(b_max - b) instead.
    """

    ln_beta: FloatArray
    x: FloatArray
    upper: IndexArray
    beta_gap: FloatArray  # b_max - beta on the upper elements
    b_max: FloatArray  # on the upper elements
    coefficients: FloatArray | None  # _series_coefficients(x)

    @staticmethod
    def of(
        beta: FloatArray,
        x: FloatArray,
        b_max: FloatArray,
        guess: _Guess,
        coefficients: FloatArray | None,
    ) -> _Problem:
        upper = guess.upper
        b_max_upper = b_max[upper]
        return _Problem(
            np.log(beta), x, upper, b_max_upper - beta[upper], b_max_upper, coefficients
        )

    def step(self, s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """ln b(s) and the Householder(3) step (NaN/inf where none can be taken)."""
        b, vega, h = _normalised(self.x, s, positive=True, coefficients=self.coefficients)
        h_over_s = h / s
        square = h_over_s * h_over_s
        halley = (square - _A.quarter) * s  # b''/b' = h^2/s - s/4
        hh3 = halley * halley - (square * _A.three + _A.quarter)  # b'''/b'
        ln_b = np.log(b)
        # With v = d(ln b)/ds = vega/b, the second and third derivatives of ln b over the
        # first are halley - v and hh3 - 3 halley v + 2 v^2. v grows like 1/s (faster in the
        # far wings), so the Householder step is formed in v-relative terms, whose squares
        # cannot overflow: with gap = ln(beta) - ln(b), rho = halley/v, rho3 = hh3/v^2, it is
        # gap/v (1 + a gap/2)/(1 + a gap + c gap^2/6), a = rho - 1, c = rho3 - 3 rho + 2.
        v = vega / b
        gap = self.ln_beta - ln_b
        rho = halley / v
        a = rho - _A.one
        c = hh3 / v / v - rho * _A.three + _A.two
        gap_a = gap * a
        ds = (gap / v) * (gap_a * _A.half + _A.one) / (gap * gap * c * _A.sixth + gap_a + _A.one)
        if self.upper.size:
            i = self.upper
            ds[i] = _upper_step(self.beta_gap, self.b_max, b[i], vega[i], halley[i], hh3[i])
        return ln_b, ds

    def subset(self, active: IndexArray) -> _Problem:
        """The same problem restricted to the elements ``active`` indexes (sorted)."""
        where_upper = np.isin(self.upper, active)
        position = np.full(self.ln_beta.size, -1, dtype=np.intp)
        position[active] = np.arange(active.size)
        return _Problem(
            self.ln_beta[active],
            self.x[active],
            position[self.upper[where_upper]],
            self.beta_gap[where_upper],
            self.b_max[where_upper],
            None if self.coefficients is None else self.coefficients[:, :, active],
        )


def _solve_otm(beta: FloatArray, x: FloatArray, b_max: FloatArray) -> FloatArray:
    """s with b(x, s) = beta, for x <= 0 and 0 < beta < b_max = exp(x/2) (flat arrays)."""
    if beta.size == 0:
        return np.empty_like(beta)
    # The small-t series' coefficients depend on x alone: one matrix product serves all three
    # evaluations of b. That pays once the arithmetic outweighs numpy's per-call overhead
    # (long inputs, which _normalised takes in blocks, make their own).
    coefficients = _series_coefficients(x) if _SHARED <= x.size <= _BLOCK else None
    guess = _initial_guess(beta, x, b_max, coefficients)
    problem = _Problem.of(beta, x, b_max, guess, coefficients)
    s = guess.s
    ds = s
    for _ in range(_FAST_STEPS):
        _, ds = problem.step(s)
        s = s + ds
    # |ds| is about the error of s - ds, which leaves s about _SETTLED**4 off at worst; NaN,
    # or a step from a negative s, fails the test.
    settled = np.abs(ds) <= (s - ds) * _A.settled
    if np.count_nonzero(settled) < settled.size:
        unsettled = (~settled).nonzero()[0]
        s[unsettled] = _polish(problem.subset(unsettled), s[unsettled], guess, unsettled)
    return s


def _polish(problem: _Problem, s: FloatArray, guess: _Guess, indices: IndexArray) -> FloatArray:
    """Guarded Householder iterations within a bracket that shrinks at every evaluation."""
    lo, hi = guess.bracket(indices)
    midpoint = np.where(np.isfinite(hi), 0.5 * (lo + hi), 2.0 * lo + 1.0)
    s = np.where((s > lo) & (s < hi), s, midpoint)
    active = np.arange(s.size)
    for iteration in range(_MAX_ITERATIONS):
        if active.size == 0:
            break
        si = s[active]
        lo_i = lo[active]
        hi_i = hi[active]
        part = problem.subset(active) if active.size < s.size else problem
        target = part.ln_beta
        ln_b, ds = part.step(si)
        ds = np.maximum(ds, -0.5 * si)
        lo_i = np.where(ln_b < target, np.maximum(lo_i, si), lo_i)
        hi_i = np.where(ln_b > target, np.minimum(hi_i, si), hi_i)
        proposal = si + ds
        midpoint = np.where(np.isfinite(hi_i), 0.5 * (lo_i + hi_i), 2.0 * lo_i + 1.0)
        forced = iteration >= _FREE_ITERATIONS and iteration % 2 == 1
        hit = ln_b == target
        settled = hit | (np.abs(ds) <= 2.0 * _EPS * si)
        bisect = ~settled & (forced | ~((proposal > lo_i) & (proposal < hi_i)))
        new = np.where(bisect, midpoint, np.where(hit, si, proposal))
        converged = settled | (bisect & (hi_i - lo_i <= 2.0 * _EPS * hi_i))
        s[active] = new
        lo[active] = lo_i
        hi[active] = hi_i
        active = active[~converged]
    return s


def implied_vol_with_reason(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    price: ArrayLike, F: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, is_call: ArrayLike
) -> tuple[FloatArray, NDArray[np.int8]]:
    """Black-76 implied volatility (decimal) and an ``IVReason`` code per element.

    The volatility is NaN unless the reason is OK. A price exactly at the discounted
    intrinsic value gives 0.0 (OK), as does a positive time value too small to be a normal
    double once divided by sqrt(F*K) and the discount factor.
    """
    shape, (p, f, k, t, rr), calls = _flatten((price, F, K, T, r), is_call)
    size = p.size
    with np.errstate(all="ignore"):
        discount = np.exp(rr * np.minimum(-t, _A.zero))  # T < 0 counts as T = 0
        difference = f - k
        intrinsic = np.maximum(np.where(calls, difference, -difference), _A.zero)
        time_value = p - discount * intrinsic
        ceiling = discount * np.where(calls, f, k)
        x = -np.abs(_log_moneyness(f, k))
        b_max = np.exp(x * _A.half)
        beta = time_value / (discount * (np.sqrt(f) * np.sqrt(k)))
        # NaN or inf anywhere, F, K <= 0 and a negative price all fail this test too.
        solvable = (beta >= _A.tiny) & (beta < b_max) & (p < ceiling) & (t > _A.zero)
        n_solvable = np.count_nonzero(solvable)
        if n_solvable == size:
            vol = _solve_otm(beta, x, b_max) / np.sqrt(t)
            return vol.reshape(shape), np.zeros(shape, dtype=np.int8)
        # Later assignments take precedence, in the order of the codes.
        reason = np.zeros(size, dtype=np.int8)
        reason[time_value < 0.0] = IVReason.BELOW_INTRINSIC
        reason[(p >= ceiling) | (beta >= b_max)] = IVReason.ABOVE_MAX
        reason[t <= 0.0] = IVReason.EXPIRED
        reason[~(_valid_contract(f, k, t, rr) & np.isfinite(p) & (p >= 0.0))] = IVReason.BAD_INPUT
        vol = np.where(reason == IVReason.OK, 0.0, np.nan)
        if n_solvable:
            i = solvable.nonzero()[0]
            vol[i] = _solve_otm(beta[i], x[i], b_max[i]) / np.sqrt(t[i])
    return vol.reshape(shape), reason.reshape(shape)


def implied_vol(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    price: ArrayLike, F: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, is_call: ArrayLike
) -> FloatArray:
    """Black-76 implied volatility (decimal); NaN where no volatility reproduces the price.

    See ``implied_vol_with_reason`` for why an element is NaN.
    """
    return implied_vol_with_reason(price, F, K, T, r, is_call)[0]
