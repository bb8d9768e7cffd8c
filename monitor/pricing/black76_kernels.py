"""Black-76 prices, greeks and implied volatilities as compiled loops over flat arrays.

All three rest on the normalised Black function: with x = ln(F/K) and s = sigma sqrt(T), every
option price is

    V = D (intrinsic + sqrt(F K) b(-|x|, s)),
    b(x, s) = exp(x/2) Phi(x/s + s/2) - exp(-x/2) Phi(x/s - s/2)   for x <= 0,

the undiscounted time value of the out-of-the-money option: call and put at one strike share it
(put-call parity), and working with the OTM side avoids subtracting from the intrinsic. With
h = x/s and t = s/2, b = exp(-(h^2 + t^2)/2)/sqrt(2 pi) (Y(h+t) - Y(h-t)) where Y = Phi/phi,
which is how the far wings keep their relative accuracy. The prefactor is also db/ds, the
normalised vega, so every evaluation returns both. Implied volatility inverts b in s after
Jaeckel, "Let's Be Rational" (Wilmott, 2015).

Every function here is compiled by numba in nopython mode, with numpy's error model (division
by zero gives inf or NaN, as in numpy), and the machine code is cached next to this file. numba
does not notice when a compiled function that another one calls changes in a different file,
so everything the compiled code calls lives in this one module.
"""

from __future__ import annotations

import enum
import math
import warnings
from collections.abc import Callable
from decimal import Decimal, localcontext
from typing import NamedTuple, TypeVar, cast

import numpy as np
from numba import njit
from numpy.typing import NDArray

__all__ = ["IVReason", "greeks", "implied_vols", "prices"]

_Function = TypeVar("_Function", bound=Callable[..., object])

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
ReasonArray = NDArray[np.int8]
# Coefficients handed between compiled functions travel as tuples, which are passed by value:
# an array argument would cost a reference count update at every call that is not inlined.
_Nine = tuple[float, float, float, float, float, float, float, float, float]
_Rational = tuple[_Nine, _Nine]  # numerator, denominator
_Series = tuple[_Nine, _Nine]  # the small-t series' P and Q, see _series_of


def _compiled(function: _Function) -> _Function:
    """``function`` compiled by numba in nopython mode, typed as the Python function is.

    The machine code is cached in __pycache__ next to this file, or under NUMBA_CACHE_DIR if
    that is set. Where neither can be written (a read-only install), each process compiles
    the kernels again on first use, which takes a few seconds.
    """
    try:
        compiled = njit(cache=True, nogil=True, error_model="numpy")(function)
    except RuntimeError:  # numba found no writable directory for its cache
        warnings.warn(
            "no writable cache directory for the compiled Black-76 kernels (set "
            "NUMBA_CACHE_DIR): every process compiles them on first use",
            RuntimeWarning,
            stacklevel=2,
        )
        compiled = njit(nogil=True, error_model="numpy")(function)
    return cast("_Function", compiled)


class IVReason(enum.IntEnum):
    """Why ``implied_vol`` returned what it did, element by element."""

    OK = 0
    BELOW_INTRINSIC = 1  # price < discounted intrinsic value: no volatility reproduces it
    ABOVE_MAX = 2  # price >= discounted F (call) or K (put): only sigma = inf would
    EXPIRED = 3  # T <= 0: the price carries no information about volatility
    BAD_INPUT = 4  # NaN/inf anywhere, F <= 0, K <= 0 or a negative price


# The codes as plain integers, which compiled code stores into an int8 array.
_OK = int(IVReason.OK)
_BELOW_INTRINSIC = int(IVReason.BELOW_INTRINSIC)
_ABOVE_MAX = int(IVReason.ABOVE_MAX)
_EXPIRED = int(IVReason.EXPIRED)
_BAD_INPUT = int(IVReason.BAD_INPUT)

_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)
_SQRT_DBL_MAX = math.sqrt(float(np.finfo(np.float64).max))
_INV_SQRT_TWO_PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_PI_OVER_TWO = math.sqrt(0.5 * math.pi)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_TWO = 1.0 / math.sqrt(2.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_THREE = math.sqrt(3.0)
_TWO_PI = 2.0 * math.pi
_TWO_PI_OVER_SQRT_27 = 2.0 * math.pi / math.sqrt(27.0)
_SIXTH = 1.0 / 6.0

# Region boundaries of the normalised price, after Jaeckel: for t = s/2 < 2 * eps**(1/16) a
# Taylor series in t converges to machine precision, and below h = x/s = -10 the asymptotic
# series of Phi/phi does; elsewhere erfc/erfcx lose few digits. Jaeckel takes the asymptotic
# series wherever h < -10; here the Taylor series keeps those elements too while
# |x| = 2 |h| t <= 4.2 (see _small_t_b), which in practice is all of them.
_ASYMPTOTIC_H = -10.0
_SMALL_T = 2.0 * _EPS**0.0625
_ASYMPTOTIC_EDGE = _ASYMPTOTIC_H + _SMALL_T
_SERIES_X = 2.0 * _ASYMPTOTIC_H * _SMALL_T
_CODY_THRESHOLD = 0.46875  # where erfc(q) and exp(-q^2) erfcx(q) trade accuracy

# Terms k = 0..8 of the small-t series: for h <= 0 term k is at most t^(2k)/(2k+1)!! times the
# first (see _small_t_b), so at t = 0.21 the first one left out is below 1e-21 of the sum.
_SMALL_T_TERMS = 9
# At most 30 terms of the asymptotic series, enough at its region's edge |h + t| = 9.79; further
# out fewer do, and each evaluation takes the fewest for which a bound on the first term left
# out, relative to the sum, is below _TRUNCATION (under half an ulp).
_ASYMPTOTIC_TERMS = 30
# a = 1 + hY from its asymptotic series beyond h = -10 takes at most this many terms.
_A_SERIES_TERMS = 32
_TRUNCATION = 2.0**-57

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


# Products with 1/sqrt(2) exact to about 2^-100: the rounding error of 1/sqrt(2) itself, and
# Veltkamp's split of it into two halves of 26 bits, whose products with another split double
# are exact (Dekker, "A floating-point technique for extending the available precision", 1971).
_SPLITTER = 2.0**27 + 1.0


def _split(value: float) -> tuple[float, float]:
    scaled = _SPLITTER * value
    head = scaled - (scaled - value)
    return head, value - head


def _inv_sqrt_two_error() -> float:
    with localcontext() as context:
        context.prec = 50
        return float(1 / Decimal(2).sqrt() - Decimal(_INV_SQRT_TWO))


_INV_SQRT_TWO_HEAD, _INV_SQRT_TWO_TAIL = _split(_INV_SQRT_TWO)
_INV_SQRT_TWO_ERROR = _inv_sqrt_two_error()


# --- coefficient tables, built once at import --------------------------------------------------


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


def _small_t_by_x() -> FloatArray:
    # The series sum_k t^2k/(2k+1)! Y^(2k+1) is P + a Q with P = sum_(k, j) p_kj w^k H^j and Q
    # likewise (w = t^2, H = h^2). Since w H = (h t)^2 = (x/2)^2 =: X, the terms are also
    # w^m X^j with m = k - j: entry [r, m, j] (r = 0 for P, 1 for Q) is the coefficient of
    # w^m X^j, so the coefficient of each w^m is a polynomial in X, a function of x alone,
    # which the solver forms once for all its evaluations (see _series_of).
    coefficients = _small_t_coefficients()
    by_x = np.zeros((2, _SMALL_T_TERMS, _SMALL_T_TERMS))
    for m in range(_SMALL_T_TERMS):
        for j in range(_SMALL_T_TERMS - m):
            by_x[:, m, j] = coefficients[:, m + j, j]
    return by_x


def _asymptotic_limits() -> FloatArray:
    # With p = 1/|h + t| the k-th term is at most (2k-1)!! (2k+1) p^(2k) (see _asymptotic_b);
    # entry n - 1 is the largest p for which n terms leave out less than _TRUNCATION.
    limits = []
    double_factorial = 1.0
    for n in range(1, _ASYMPTOTIC_TERMS + 1):
        double_factorial *= 2 * n - 1
        limits.append((_TRUNCATION / (double_factorial * (2 * n + 1))) ** (0.5 / n))
    return np.array(limits)


def _a_series_limits() -> FloatArray:
    # a = sum_(k=1..n) (-1)^(k+1) (2k-1)!! w^k leaves out at most (2n+1)!! w^(n+1), relative
    # to a ~ w at most (2n+1)!! w^n; entry n - 1 is the largest w for which that is below
    # _TRUNCATION.
    return np.array(
        [
            (_TRUNCATION / math.prod(range(1, 2 * n + 2, 2))) ** (1.0 / n)
            for n in range(1, _A_SERIES_TERMS + 1)
        ]
    )


def _rational_table(numerator: list[float], denominator: list[float]) -> _Rational:
    """Numerator and denominator coefficients, constant term first, each padded with zeros to
    the nine terms _polynomial takes."""

    def nine(coefficients: list[float]) -> _Nine:
        return cast("_Nine", (*coefficients, *[0.0] * (9 - len(coefficients))))

    return nine(numerator), nine(denominator)


# Compiled code takes global arrays as constants; they are built here, in this file, so that a
# change to them is a change to the file that the compiled code's cache is keyed on.
_SMALL_T_BY_X = _small_t_by_x()
_ASYMPTOTIC_LIMITS = _asymptotic_limits()
# (-1)^k (2k-1)!!, the coefficients of the asymptotic series of Phi/phi.
_ASYMPTOTIC_COEFFICIENTS = np.array(
    [(-1) ** k * math.prod(range(1, 2 * k, 2)) for k in range(_ASYMPTOTIC_TERMS)], dtype=np.float64
)
_A_SERIES_LIMITS = _a_series_limits()
# (-1)^k (2k+1)!!, the coefficients of w^(k+1) in the asymptotic series of a = 1 + hY.
_A_SERIES_COEFFICIENTS = np.array(
    [(-1) ** k * math.prod(range(1, 2 * k + 2, 2)) for k in range(_A_SERIES_TERMS)],
    dtype=np.float64,
)

# W. J. Cody, "Rational Chebyshev approximations for the error function" (Math. Comp. 23,
# 1969): erf(y) = y R1(y^2) for y <= 0.46875, erfcx(y) = R2(y) up to y = 4 and
# erfcx(y) = (1/sqrt(pi) - R3(1/y^2)/y^2)/y beyond, each R a ratio of polynomials whose
# coefficients are listed from the constant term up (the denominators' leading ones are 1).
_CODY_R1 = _rational_table(
    [
        3.20937758913846947e03,
        3.77485237685302021e02,
        1.13864154151050156e02,
        3.16112374387056560e00,
        1.85777706184603153e-1,
    ],
    [
        2.84423683343917062e03,
        1.28261652607737228e03,
        2.44024637934444173e02,
        2.36012909523441209e01,
        1.0,
    ],
)
_CODY_R2 = _rational_table(
    [
        1.23033935479799725e03,
        2.05107837782607147e03,
        1.71204761263407058e03,
        8.81952221241769090e02,
        2.98635138197400131e02,
        6.61191906371416295e01,
        8.88314979438837594e00,
        5.64188496988670089e-1,
        2.15311535474403846e-8,
    ],
    [
        1.23033935480374942e03,
        3.43936767414372164e03,
        4.36261909014324716e03,
        3.29079923573345963e03,
        1.62138957456669019e03,
        5.37181101862009858e02,
        1.17693950891312499e02,
        1.57449261107098347e01,
        1.0,
    ],
)
_CODY_R3 = _rational_table(
    [
        6.58749161529837803e-4,
        1.60837851487422766e-2,
        1.25781726111229246e-1,
        3.60344899949804439e-1,
        3.05326634961232344e-1,
        1.63153871373020978e-2,
    ],
    [
        2.33520497626869185e-3,
        6.05183413124413191e-2,
        5.27905102951428412e-1,
        1.87295284992346725e00,
        2.56852019228982242e00,
        1.0,
    ],
)
_CODY_HUGE = 6.71e7  # beyond, 1/y^2 no longer changes 1/sqrt(pi) - R3/y^2
_ERFCX_NEGATIVE_LIMIT = -26.628  # below, 2 exp(y^2) overflows

# M. J. Wichura, "Algorithm AS 241: the percentage points of the normal distribution" (Applied
# Statistics 37, 1988), PPND16: Phi^-1(p) as a ratio of polynomials of degree 7 in
# r = 0.180625 - (p - 1/2)^2 near the centre, in r = sqrt(-ln(min(p, 1 - p))) - 1.6 up to
# r = 5 and in that r - 5 beyond; constant term first, denominators' constant terms 1.
_AS241_CENTRAL = _rational_table(
    [
        3.3871328727963666080e0,
        1.3314166789178437745e2,
        1.9715909503065514427e3,
        1.3731693765509461125e4,
        4.5921953931549871457e4,
        6.7265770927008700853e4,
        3.3430575583588128105e4,
        2.5090809287301226727e3,
    ],
    [
        1.0,
        4.2313330701600911252e1,
        6.8718700749205790830e2,
        5.3941960214247511077e3,
        2.1213794301586595867e4,
        3.9307895800092710610e4,
        2.8729085735721942674e4,
        5.2264952788528545610e3,
    ],
)
_AS241_NEAR = _rational_table(
    [
        1.42343711074968357734e0,
        4.63033784615654529590e0,
        5.76949722146069140550e0,
        3.64784832476320460504e0,
        1.27045825245236838258e0,
        2.41780725177450611770e-1,
        2.27238449892691845833e-2,
        7.74545014278341407640e-4,
    ],
    [
        1.0,
        2.05319162663775882187e0,
        1.67638483018380384940e0,
        6.89767334985100004550e-1,
        1.48103976427480074590e-1,
        1.51986665636164571966e-2,
        5.47593808499534494600e-4,
        1.05075007164441684324e-9,
    ],
)
_AS241_FAR = _rational_table(
    [
        6.65790464350110377720e0,
        5.46378491116411436990e0,
        1.78482653991729133580e0,
        2.96560571828504891230e-1,
        2.65321895265761230930e-2,
        1.24266094738807843860e-3,
        2.71155556874348757815e-5,
        2.01033439929228813265e-7,
    ],
    [
        1.0,
        5.99832206555887937690e-1,
        1.36929880922735805310e-1,
        1.48753612908506148525e-2,
        7.86869131145613259100e-4,
        1.84631831751005468180e-5,
        1.42151175831644588870e-7,
        2.04426310338993978564e-15,
    ],
)

for _table in (
    _SMALL_T_BY_X,
    _ASYMPTOTIC_LIMITS,
    _ASYMPTOTIC_COEFFICIENTS,
    _A_SERIES_LIMITS,
    _A_SERIES_COEFFICIENTS,
):
    _table.flags.writeable = False


# --- scalar helpers ----------------------------------------------------------------------------


@_compiled
def _maximum(a: float, b: float) -> float:
    """max(a, b), NaN if either is (as np.maximum)."""
    return a if (a >= b or a != a) else b  # noqa: PLR0124 - a != a tests for NaN


@_compiled
def _minimum(a: float, b: float) -> float:
    """min(a, b), NaN if either is (as np.minimum)."""
    return a if (a <= b or a != a) else b  # noqa: PLR0124 - a != a tests for NaN


@_compiled
def _polynomial(c: _Nine, z: float) -> float:
    """sum_i c[i] z^i.

    Estrin's scheme: the powers z^2 and z^4 let pairs of terms be summed side by side, so the
    longest chain of dependent operations is four products and sums where Horner's rule has
    eight. The terms here are all positive or fall off fast, so either rounds to a few ulps.
    """
    z2 = z * z
    z4 = z2 * z2
    low = (c[0] + c[1] * z) + z2 * (c[2] + c[3] * z)
    high = (c[4] + c[5] * z) + z2 * (c[6] + c[7] * z)
    return low + z4 * (high + z4 * c[8])


@_compiled
def _rational(table: _Rational, z: float) -> float:
    return _polynomial(table[0], z) / _polynomial(table[1], z)


# --- the normal distribution and the error function --------------------------------------------


@_compiled
def _erfcx(z: float) -> float:
    """exp(z^2) erfc(z), Cody's approximations (relative error a few ulps)."""
    y = abs(z)
    if y <= _CODY_THRESHOLD:
        square = y * y
        return math.exp(square) * (1.0 - z * _rational(_CODY_R1, square))
    if y <= 4.0:
        result = _rational(_CODY_R2, y)
    elif y >= _CODY_HUGE:
        result = _INV_SQRT_PI / y
    else:
        inverse = 1.0 / (y * y)
        correction = inverse * _rational(_CODY_R3, inverse)
        result = (_INV_SQRT_PI - correction) / y
    if z >= 0.0:
        return result
    if z < _ERFCX_NEGATIVE_LIMIT:
        return math.inf
    # erfcx(-y) = 2 exp(y^2) - erfcx(y), with y^2 split as a multiple of 1/256 (exact) plus the
    # rest, so that rounding y^2 does not cost y^2 ulps of exp(y^2).
    whole = math.trunc(y * 16.0) / 16.0
    exponential = math.exp(whole * whole) * math.exp((y - whole) * (y + whole))
    return (exponential + exponential) - result


@_compiled
def _ndtr(z: float) -> float:
    """Phi(z) to a few ulps, in relative terms for z < 0 and absolute ones for z > 0.

    Phi(z) = erfc(q)/2 with q = -z/sqrt(2). Rounding q would cost 2 q^2 of its ulps in the
    result (about 1e-13 at z = -19), so the rounding error dq of the product is formed exactly
    and erfc(q + dq) = erfc(q) - dq 2/sqrt(pi) exp(-q^2) to first order. Below q = 1 rounding
    costs under two ulps, and beyond q = 27 erfc underflows.
    """
    minus_z = -z
    q = minus_z * _INV_SQRT_TWO
    if not 1.0 < q < 27.0:
        return 0.5 * math.erfc(q)
    scaled = _SPLITTER * minus_z
    head = scaled - (scaled - minus_z)
    tail = minus_z - head
    product_error = (
        (head * _INV_SQRT_TWO_HEAD - q) + head * _INV_SQRT_TWO_TAIL + tail * _INV_SQRT_TWO_HEAD
    ) + tail * _INV_SQRT_TWO_TAIL
    dq = product_error + minus_z * _INV_SQRT_TWO_ERROR
    return 0.5 * (math.erfc(q) - dq * _TWO_OVER_SQRT_PI * math.exp(-q * q))


@_compiled
def _ndtri(p: float) -> float:
    """Phi^-1(p), Wichura's AS 241 (relative error about 1e-16)."""
    if not 0.0 < p < 1.0:
        if p == 0.0:
            return -math.inf
        return math.inf if p == 1.0 else math.nan
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * _rational(_AS241_CENTRAL, r)
    r = math.sqrt(-math.log(p if q < 0.0 else 1.0 - p))
    if r <= 5.0:
        z = _rational(_AS241_NEAR, r - 1.6)
    else:
        z = _rational(_AS241_FAR, r - 5.0)
    return -z if q < 0.0 else z


# --- the normalised Black function -------------------------------------------------------------


@_compiled
def _series_coefficient(row: int, m: int, big_x: float) -> float:
    total = 0.0
    for j in range(_SMALL_T_TERMS - 1 - m, -1, -1):
        total = total * big_x + _SMALL_T_BY_X[row, m, j]
    return total


@_compiled
def _series_row(row: int, big_x: float) -> _Nine:
    return (
        _series_coefficient(row, 0, big_x),
        _series_coefficient(row, 1, big_x),
        _series_coefficient(row, 2, big_x),
        _series_coefficient(row, 3, big_x),
        _series_coefficient(row, 4, big_x),
        _series_coefficient(row, 5, big_x),
        _series_coefficient(row, 6, big_x),
        _series_coefficient(row, 7, big_x),
        _series_coefficient(row, 8, big_x),
    )


@_compiled
def _series_of(x: float) -> _Series:
    """The small-t series' coefficients of w^0 .. w^8 in P and in Q.

    Each is a polynomial in X = x^2/4 (see _small_t_by_x), so one x serves every s.
    """
    big_x = 0.25 * x * x
    return _series_row(0, big_x), _series_row(1, big_x)


@_compiled
def _asymptotic_a(h: float) -> float:
    """a = Y'(h) = 1 + hY(h) for h < -10, where 1 + hY would cancel to ~h^2 ulps.

    Its asymptotic series sum_k (-1)^(k+1) (2k-1)!! h^-2k, to as many terms as 1/h^2 needs
    (28 at h = -10).
    """
    w = 1.0 / (h * h)
    terms = 1
    while terms < _A_SERIES_TERMS and _A_SERIES_LIMITS[terms - 1] < w:
        terms += 1
    total = 0.0
    power = 1.0
    for k in range(terms):
        power *= w
        total += _A_SERIES_COEFFICIENTS[k] * power
    return total


@_compiled
def _asymptotic_b(h: float, t: float, s: float, vega: float) -> float:
    # Y(z) ~ sum_k (-1)^k (2k-1)!! |z|^-(2k+1) for z << 0. With p = -1/(h+t), q = 1/(t-h), each
    # difference p^n - q^n = (p - q) S_(n-1), S_m = sum_j p^j q^(m-j), is a sum of positive
    # terms, so the tiny difference Y(h+t) - Y(h-t) never comes from cancelling large numbers;
    # p - q = 2 t p q = s p q. Summing the geometric part first,
    #     S_2k = p^2k (1 + (1 + p/q) sum_(i=1..k) (q/p)^2i).
    p = -1.0 / (h + t)
    q = 1.0 / (t - h)
    # The limits increase with the number of terms.
    terms = 1
    while terms < _ASYMPTOTIC_TERMS and _ASYMPTOTIC_LIMITS[terms - 1] < p:
        terms += 1
    total = 1.0
    if terms > 1:
        ratio = q / p
        p2 = p * p
        ratio2 = ratio * ratio
        factor = 1.0 + p / q
        power_p = 1.0
        power_ratio = 1.0
        geometric = 0.0
        tail = 0.0
        for k in range(1, terms):
            power_p *= p2
            power_ratio *= ratio2
            geometric += power_ratio
            tail += _ASYMPTOTIC_COEFFICIENTS[k] * (power_p * (1.0 + factor * geometric))
        total = 1.0 + tail
    return vega * (s * p * q) * total


@_compiled
def _small_t_b(  # noqa: PLR0917 - one evaluation's state
    h: float, s: float, w: float, vega: float, series: _Series, far: bool
) -> float:
    # Y(h+t) - Y(h-t) = 2 sum_k t^(2k+1)/(2k+1)! Y^(2k+1)(h), and Y^(2k+1) = P_k(h^2) + Q_k(h^2) a
    # with a = Y' = 1 + hY (Jaeckel's form of the expansion; see _small_t_by_x for how the
    # double sum over powers of t^2 and h^2 is taken). Since
    # Y^(n)(h) = int_0^inf u^n exp(h u - u^2/2) du, for h <= 0 Y^(n+2) <= (n+1) Y^(n) and term k
    # is at most t^(2k)/(2k+1)!! times the first. P_k and Q_k a nearly cancel for large |h|,
    # but relative to the sum each term's rounding is about (h t)^2k/(2k+1)! ulps, and
    # h t = x/2: a few ulps for |x| <= 4.2, which the regions ensure. What is lost is mostly in
    # a itself, which is small for h << 0 and so, beyond h = -10 (``far``), comes from its own
    # asymptotic series.
    if far:
        a = _asymptotic_a(h)
    else:
        a = 1.0 + h * (_SQRT_PI_OVER_TWO * _erfcx(h * -_INV_SQRT_TWO))
    return vega * s * (_polynomial(series[0], w) + a * _polynomial(series[1], w))


@_compiled
def _erfc_b(x: float, h: float, t: float) -> float:
    # erfc keeps its relative accuracy for small arguments and erfcx for large ones; picking
    # per term avoids both underflow and the loss of digits of 1 - erfc.
    q1 = -_INV_SQRT_TWO * (h + t)
    q2 = -_INV_SQRT_TWO * (h - t)
    common = math.exp(-0.5 * (h * h + t * t))
    if q1 < _CODY_THRESHOLD:
        first = math.exp(0.5 * x) * math.erfc(q1)
    else:
        first = common * _erfcx(q1)
    if q2 < _CODY_THRESHOLD:
        second = math.exp(-0.5 * x) * math.erfc(q2)
    else:
        second = common * _erfcx(q2)
    return _maximum(0.5 * (first - second), 0.0)


@_compiled
def _normalised(x: float, s: float, series: _Series) -> tuple[float, float, float]:
    """b(x, s), db/ds and h = x/s for x <= 0, s >= 0; ``series`` is _series_of(x).

    db/ds = exp(-(h^2 + t^2)/2)/sqrt(2 pi), with its s -> 0 limit (nonzero only at x = 0).
    """
    if s == 0.0:
        return 0.0, (_INV_SQRT_TWO_PI if x == 0.0 else 0.0), -math.inf
    h = x / s
    t = s * 0.5
    w = t * t
    vega = math.exp((h * h + w) * -0.5) * _INV_SQRT_TWO_PI
    if h < _ASYMPTOTIC_H:
        # Beyond h = -10 the small-t series still holds for |x| <= 4.2 (see _small_t_b); the
        # rest of the far wing takes the asymptotic series, and where the prefactor underflows
        # b is exactly 0.
        if t < _SMALL_T and x >= _SERIES_X and vega > 0.0:
            b = _small_t_b(h, s, w, vega, series, far=True)
        elif not vega > 0.0:
            b = 0.0
        elif h + t < _ASYMPTOTIC_EDGE:
            b = _asymptotic_b(h, t, s, vega)
        else:
            b = _erfc_b(x, h, t)
    elif t < _SMALL_T:
        b = _small_t_b(h, s, w, vega, series, far=False)
    else:
        b = _erfc_b(x, h, t)
    return b, vega, h


# --- the initial guess -------------------------------------------------------------------------
#
# The curve b(s) is cut at s_l < s_c (s_c = sqrt(2|x|) is its inflection point, s_l where the
# tangent there meets 0); on each piece a rational cubic in a transformed price gives a guess
# within 10 % of the root (see _initial_guess), then two Householder steps of order 3 on ln b
# finish it (see _step). The rare element whose second step is not small enough continues in a
# loop that keeps a bracket from its piece, tightened at each evaluation, to catch any step
# that would leave it.
#
# The rational cubic of Delbourgo and Gregory (1985) from (x_l, y_l) to (x_r, y_r) with end
# slopes d_l, d_r has a control parameter r: 3 gives the ordinary cubic Hermite spline, larger
# r pull it towards the chord, which is how it is kept monotone and convex where the data are.
# It is symmetric under swapping its ends, so every piece here is written with its left end
# where the second derivative is matched (or, at s_l, would be): at s_c for the lower and the
# upper piece, at s_l for the lowest.

_Ends = tuple[float, float, float, float, float, float]  # x_l, x_r, y_l, y_r, d_l, d_r


@_compiled
def _rational_cubic(x: float, ends: _Ends, r: float) -> float:
    x_l, x_r, y_l, y_r, d_l, d_r = ends
    width = x_r - x_l
    if width == 0.0:
        return 0.5 * (y_l + y_r)
    t = (x - x_l) / width
    u = 1.0 - t
    if r >= _MAX_R:
        return y_r * t + y_l * u
    outer = y_r * t + (r * y_r - width * d_r) * u
    inner = (r * y_l + width * d_l) * t + y_l * u
    return (outer * t * t + inner * u * u) / ((r - 3.0) * (t * u) + 1.0)


@_compiled
def _fit_left(ends: _Ends, second: float, prefer: bool) -> float:
    """r matching the second derivative ``second`` at x_l, raised to keep the shape.

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
    numerator = span if second == 0.0 else width * second * 0.5 + span
    fitted = numerator / left_gap
    r1 = (d_r + d_l) / slope
    # Strictly monotone and strictly convex or concave: then no division here is by zero, and
    # since span is the sum of the gaps, |span/gap| = 1 + (other gap)/gap.
    if right_gap * left_gap > 0.0 and d_l * slope > 0.0 and d_r * slope > 0.0:
        r2 = _maximum(right_gap / left_gap, left_gap / right_gap) + 1.0
        return _maximum(fitted, _maximum(r1, r2))
    # The general case, with every division by zero and unmet condition spelt out.
    if numerator == 0.0:
        fitted = 0.0
    elif left_gap == 0.0:
        fitted = _MAX_R if numerator > 0.0 else _MIN_R
    monotonic = d_l * slope >= 0.0 and d_r * slope >= 0.0
    shaped = (d_l <= slope <= d_r) or (d_l >= slope >= d_r)
    fallback = _MAX_R if prefer else -math.inf
    if not monotonic:
        r1 = -math.inf
    elif slope == 0.0:
        r1 = fallback
    if not shaped:
        r2 = _MAX_R if prefer and monotonic else -math.inf
    elif right_gap != 0.0 and left_gap != 0.0:
        r2 = _maximum(abs(span / right_gap), abs(span / left_gap))
    else:
        r2 = fallback
    r = _maximum(_maximum(r1, r2), _MIN_R) if monotonic or shaped else _MIN_R
    return _maximum(fitted, r)


@_compiled
def _central(x: float, b_max: float) -> float:
    """b at the inflection point s_c = sqrt(2|x|), where h + t = 0.

    b_c = b_max (1 - erfcx(y))/2 with y = sqrt(|x|); below y = 1, 1 - erfcx(y) is better formed
    as exp(y^2) erf(y) - expm1(y^2). Either way at most about two bits cancel.
    """
    minus_x = -x
    y = math.sqrt(minus_x)
    if y < 1.0:
        difference = math.exp(minus_x) * math.erf(y) - math.expm1(minus_x)
    else:
        difference = 1.0 - _erfcx(y)
    return difference * b_max * 0.5


@_compiled
def _lower_map(x: float, s: float) -> tuple[float, float]:
    """f = 2 pi |x| / sqrt(27) * Phi(-z)^3, z = |x|/(sqrt(3) s), and df/db (x <= 0).

    f matches b to leading order as s -> 0, so f(b) is close to the identity on the lowest
    piece and a rational cubic in b represents it well. Jaeckel also matches d2f/db2 at s_l;
    here the shape-preserving bound alone sets the cubic's r, which moves the guess by well
    under 1 % of s (the largest error on the piece stays near 10 %).
    """
    z = x / (s * -_SQRT_THREE)
    y = z * z
    cdf = _ndtr(-z)
    cdf2 = cdf * cdf
    f = cdf2 * -_TWO_PI_OVER_SQRT_27 * (cdf * x)
    fp = y * _TWO_PI * cdf2 * math.exp(s * s * 0.125 + y)
    return f, fp


@_compiled
def _inverse_lower_map(x: float, f: float) -> float:
    z = _ndtri(np.cbrt(f / (x * -_TWO_PI_OVER_SQRT_27)))
    return x / (z * _SQRT_THREE)


@_compiled
def _upper_map(x: float, s: float) -> tuple[float, float, float]:
    """f = Phi(-s/2) and df/db, d2f/db2: f(b) is close to linear near b_max."""
    h = x / s
    w = h * h
    f = _ndtr(-0.5 * s)
    fp = -0.5 * math.exp(0.5 * w)
    fpp = _SQRT_PI_OVER_TWO * math.exp(w + 0.125 * s * s) * w / s
    return f, fp, fpp


@_compiled
def _initial_guess(
    beta: float, x: float, b_max: float, series: _Series
) -> tuple[float, float, float, bool]:
    """The guess for s, the bracket (lo, hi) of its piece, and whether to solve near b_max.

    Jaeckel's pieces below the inflection point s_c: the lowest, up to s_l where the tangent
    at s_c meets 0, interpolates his lower map f(b) from (b_l, f(s_l)) to f(0) = 0, f' = 1;
    the lower one interpolates s(b) from (b_c, s_c), where s(b) has an inflection point
    (second derivative 0), to (b_l, s_l). Above s_c one piece interpolates the upper map
    f = Phi(-s/2) from (b_c, f(s_c)) to f(b_max) = 0, f' = -1/2 (the limit s -> inf); that
    saves evaluating b at Jaeckel's s_h and is, if anything, more accurate (within 2 % of
    the root, against 10 % on the lowest piece).
    """
    s_c = math.sqrt(x * -2.0)
    b_c = _central(x, b_max)
    # At s_c, exp(-(h^2 + t^2)/2) = exp(x/2) = b_max: the slope of s(b) there is d_c.
    d_c = 1.0 / (b_max * _INV_SQRT_TWO_PI)
    if beta >= b_c:
        f_c, fp_c, fpp_c = _upper_map(x, s_c)
        ends = (b_c, b_max, f_c, 0.0, fp_c, -0.5)
        f = _rational_cubic(beta, ends, _fit_left(ends, fpp_c, prefer=True))
        if not abs(fpp_c) < _SQRT_DBL_MAX:
            f = math.nan
        if not f > 0.0:
            width = b_max - b_c
            tau = (beta - b_c) / width
            f = (f_c * (1.0 - tau) + 0.5 * width * tau) * (1.0 - tau)
        # Phi(-s/2) is too close to 1/2 to carry a small s; there (s < 5e-4, so s_c is smaller
        # still and x nearly 0) the tangent at the inflection point s_c, which b leaves only at
        # third order, is the better guess.
        if f > _FLAT_UPPER_MAP:
            s = s_c + (beta - b_c) * d_c
        else:
            s = _ndtri(f) * -2.0
        # Near b_max, ln(b_max - b) is the objective that stays nearly linear.
        return s, s_c, math.inf, beta > b_max * 0.5
    s_l = _maximum(s_c - b_c * d_c, 0.0)
    b_l, v_l, _ = _normalised(x, s_l, series)
    if beta >= b_l:
        ends = (b_c, b_l, s_c, s_l, d_c, 1.0 / v_l)
        s = _rational_cubic(beta, ends, _fit_left(ends, 0.0, prefer=False))
        return s, s_l, s_c, False
    f_l, fp_l = _lower_map(x, s_l)
    ends = (b_l, 0.0, f_l, 0.0, fp_l, 1.0)
    f = _rational_cubic(beta, ends, _fit_left(ends, 0.0, prefer=True))
    # Round-off in the fit can leave f <= 0 for extreme |x|; the quadratic through
    # f(0) = 0, f'(0) = 1 and f(b_l) cannot.
    if not f > 0.0:
        tau = beta / b_l
        f = (f_l * tau + b_l * (1.0 - tau)) * tau
    return _inverse_lower_map(x, f), 0.0, s_l, False


# --- Householder iterations --------------------------------------------------------------------
#
# ln b(x, s) = ln beta is the equation solved. Householder's methods are invariant under
# Moebius transformations of the objective that keep its root (they are built on the
# derivatives of 1/g), so Jaeckel's objective for the lowest piece, 1/ln(b) - 1/ln(beta), takes
# exactly the steps of ln(b) - ln(beta). Solving for ln b everywhere is also at least as good
# as b - beta on his middle pieces, and takes one formula for all elements; near b_max
# (``upper``) the objective is ln(b_max - b) instead.


@_compiled
def _householder_step(newton: float, halley: float, hh3: float) -> float:
    """Householder(3): Newton's step corrected with g''/g' (halley) and g'''/g' (hh3)."""
    return (
        newton * (halley * newton * 0.5 + 1.0) / ((hh3 * newton * _SIXTH + halley) * newton + 1.0)
    )


@_compiled
def _step(  # noqa: PLR0917 - one iteration's state
    x: float, s: float, ln_beta: float, upper: bool, beta_gap: float, b_max: float, series: _Series
) -> tuple[float, float]:
    """ln b(s) and the Householder(3) step (NaN/inf where none can be taken).

    ``beta_gap`` is b_max - beta, which the ``upper`` objective needs.
    """
    b, vega, h = _normalised(x, s, series)
    h_over_s = h / s
    square = h_over_s * h_over_s
    halley = (square - 0.25) * s  # b''/b' = h^2/s - s/4
    hh3 = halley * halley - (square * 3.0 + 0.25)  # b'''/b'
    ln_b = math.log(b)
    if upper:
        # g = ln(b_max - beta) - ln(b_max - b), where b_max - b ~ exp(-s^2/8).
        gap = b_max - b
        g_prime = vega / gap
        ds = _householder_step(
            -math.log(beta_gap / gap) / g_prime,
            halley + g_prime,
            hh3 + g_prime * (2.0 * g_prime + 3.0 * halley),
        )
        return ln_b, ds
    # With v = d(ln b)/ds = vega/b, the second and third derivatives of ln b over the first
    # are halley - v and hh3 - 3 halley v + 2 v^2. v grows like 1/s (faster in the far wings),
    # so the Householder step is formed in v-relative terms, whose squares cannot overflow:
    # with gap = ln(beta) - ln(b), rho = halley/v, rho3 = hh3/v^2, it is
    # gap/v (1 + a gap/2)/(1 + a gap + c gap^2/6), a = rho - 1, c = rho3 - 3 rho + 2.
    inverse_v = b / vega
    gap = ln_beta - ln_b
    rho = halley * inverse_v
    a = rho - 1.0
    c = hh3 * inverse_v * inverse_v - rho * 3.0 + 2.0
    gap_a = gap * a
    ds = (gap * inverse_v) * (gap_a * 0.5 + 1.0) / (gap * gap * c * _SIXTH + gap_a + 1.0)
    return ln_b, ds


@_compiled
def _solve_otm(beta: float, x: float, b_max: float) -> float:
    """s with b(x, s) = beta, for x <= 0 and 0 < beta < b_max = exp(x/2)."""
    series = _series_of(x)
    s, lo, hi, upper = _initial_guess(beta, x, b_max, series)
    ln_beta = math.log(beta)
    beta_gap = b_max - beta
    ds = s
    for _ in range(_FAST_STEPS):
        _, ds = _step(x, s, ln_beta, upper, beta_gap, b_max, series)
        s += ds
    # |ds| is about the error of s - ds, which leaves s about _SETTLED**4 off at worst; NaN,
    # or a step from a negative s, fails the test.
    if abs(ds) <= (s - ds) * _SETTLED:
        return s
    # Guarded Householder iterations within a bracket that shrinks at every evaluation.
    midpoint = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * lo + 1.0
    if not lo < s < hi:
        s = midpoint
    for iteration in range(_MAX_ITERATIONS):
        ln_b, ds = _step(x, s, ln_beta, upper, beta_gap, b_max, series)
        ds = _maximum(ds, -0.5 * s)
        if ln_b < ln_beta:
            lo = _maximum(lo, s)
        if ln_b > ln_beta:
            hi = _minimum(hi, s)
        proposal = s + ds
        midpoint = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * lo + 1.0
        forced = iteration >= _FREE_ITERATIONS and iteration % 2 == 1
        hit = ln_b == ln_beta
        settled = hit or abs(ds) <= 2.0 * _EPS * s
        bisect = not settled and (forced or not lo < proposal < hi)
        if bisect:
            if hi - lo <= 2.0 * _EPS * hi:
                return midpoint
            s = midpoint
        elif settled:
            return s if hit else proposal
        else:
            s = proposal
    return s


# --- element loops -----------------------------------------------------------------------------
#
# The public functions take one-dimensional, C-contiguous, writable arrays of one length: float64
# but for ``is_call`` (bool) and ``reason`` (int8). Any other array types would compile another
# specialisation, so callers convert first.


@_compiled
def _log_moneyness(forward: float, strike: float) -> float:
    # Near the money F - K is exact (Sterbenz), so log1p keeps x's relative accuracy where
    # the log of a rounded ratio would leave an absolute error of one ulp of 1.
    ratio = forward / strike
    if 0.5 < ratio < 2.0:
        return math.log1p((forward - strike) / strike)
    return math.log(ratio)


@_compiled
def _intrinsic(forward: float, strike: float, is_call: bool) -> float:
    """Undiscounted intrinsic value."""
    difference = forward - strike
    return _maximum(difference if is_call else -difference, 0.0)


@_compiled
def _valid(F: float, K: float, T: float, r: float, sigma: float) -> bool:
    """Finite inputs, F, K > 0 and sigma >= 0; once expired the value no longer depends on
    sigma, so a missing vol does not matter."""
    finite = math.isfinite(F) and math.isfinite(K) and math.isfinite(T) and math.isfinite(r)
    live = T <= 0.0 or (math.isfinite(sigma) and sigma >= 0.0)
    return finite and F > 0.0 and K > 0.0 and live


class _Priced(NamedTuple):
    """What prices and greeks share for one valid option."""

    value: float  # the discounted option value
    x: float  # ln(F/K)
    s: float  # sigma sqrt(T), 0 once expired
    years: float  # max(T, 0)
    discount: float
    root_fk: float  # sqrt(F K)
    density: float  # db/ds


@_compiled
def _priced(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    F: float, K: float, T: float, r: float, sigma: float, is_call: bool
) -> _Priced:
    years = _maximum(T, 0.0)
    discount = math.exp(r * years * -1.0)
    s = sigma * math.sqrt(years) if years > 0.0 else 0.0
    x = _log_moneyness(F, K)
    root_fk = math.sqrt(F) * math.sqrt(K)
    otm = -abs(x)
    b, density, _ = _normalised(otm, s, _series_of(otm))
    value = discount * (_intrinsic(F, K, is_call) + root_fk * b)
    return _Priced(value, x, s, years, discount, root_fk, density)


@_compiled
def prices(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    F: FloatArray,
    K: FloatArray,
    T: FloatArray,
    r: FloatArray,
    sigma: FloatArray,
    is_call: BoolArray,
    value: FloatArray,
) -> None:
    """Fill ``value`` with Black-76 values, NaN where the inputs are invalid."""
    for i in range(F.size):
        if _valid(F[i], K[i], T[i], r[i], sigma[i]):
            value[i] = _priced(F[i], K[i], T[i], r[i], sigma[i], is_call[i]).value
        else:
            value[i] = math.nan


@_compiled
def _greeks(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    F: float, K: float, T: float, r: float, sigma: float, is_call: bool
) -> tuple[float, float, float, float, float, float, float]:
    """delta, gamma, vega, theta, vanna, volga and charm of one valid option."""
    p = _priced(F, K, T, r, sigma, is_call)
    s, x, discount = p.s, p.x, p.discount
    if not s > 0.0:
        # The discounted step: +-1 in the money, 0 out of it, +-0.5 exactly at the money; theta
        # is pure discounting while T > 0.
        step = 1.0 if x > 0.0 else (0.0 if x < 0.0 else 0.5)
        delta = discount * (step if is_call else step - 1.0)
        theta = r * p.value if p.years > 0.0 else 0.0
        # The step's delta only decays with its discount factor while T > 0.
        charm = r * delta if p.years > 0.0 else 0.0
        return delta, 0.0, 0.0, theta, 0.0, 0.0, charm
    h = x / s
    half_s = s * 0.5
    d1 = h + half_s
    d2 = h - half_s
    # F * phi(d1) = sqrt(FK) * exp(-(h^2 + t^2)/2)/sqrt(2 pi): symmetric in F and K.
    discounted_f_phi = discount * (p.root_fk * p.density)
    root_t = math.sqrt(p.years)
    # Call delta D N(d1), put delta -D N(-d1): each side keeps its own tail's accuracy.
    delta = discount * _ndtr(d1) if is_call else -discount * _ndtr(-d1)
    theta = r * p.value - discounted_f_phi * sigma / (root_t * 2.0)
    # Where the density underflows gamma, vega, vanna and volga vanish; testing it also keeps
    # 0 * inf out of d1 * d2 when h overflows.
    if not discounted_f_phi > 0.0:
        return delta, 0.0, 0.0, theta, 0.0, 0.0, r * delta
    gamma = discounted_f_phi / (F * F * s)
    vega = discounted_f_phi * root_t
    vanna = -(discounted_f_phi / F) * d2 / sigma
    volga = vega * d1 * d2 / sigma
    # -d(delta)/dT: d(d1)/dT = -d2 / (2T) for both rights, and the discount adds r * delta.
    charm = r * delta + (discounted_f_phi / F) * d2 / (2.0 * p.years)
    return delta, gamma, vega, theta, vanna, volga, charm


@_compiled
def greeks(  # noqa: PLR0917 - the Black-76 inputs, then one output per greek
    F: FloatArray,
    K: FloatArray,
    T: FloatArray,
    r: FloatArray,
    sigma: FloatArray,
    is_call: BoolArray,
    out: FloatArray,
) -> None:
    """Fill the rows of ``out`` (shape (7, n)) with delta, gamma, vega, theta, vanna, volga and
    charm, NaN where the inputs are invalid."""
    for i in range(F.size):
        if _valid(F[i], K[i], T[i], r[i], sigma[i]):
            values = _greeks(F[i], K[i], T[i], r[i], sigma[i], is_call[i])
        else:
            nan = math.nan
            values = (nan, nan, nan, nan, nan, nan, nan)
        out[0, i], out[1, i], out[2, i], out[3, i], out[4, i], out[5, i], out[6, i] = values


@_compiled
def _implied_vol(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    price: float, F: float, K: float, T: float, r: float, is_call: bool
) -> tuple[float, int]:
    discount = math.exp(r * _minimum(-T, 0.0))  # T < 0 counts as T = 0
    time_value = price - discount * _intrinsic(F, K, is_call)
    ceiling = discount * (F if is_call else K)
    x = -abs(_log_moneyness(F, K))
    b_max = math.exp(x * 0.5)
    beta = time_value / (discount * (math.sqrt(F) * math.sqrt(K)))
    # NaN or inf anywhere, F, K <= 0 and a negative price all fail this test too.
    if beta >= _TINY and beta < b_max and price < ceiling and T > 0.0:
        return _solve_otm(beta, x, b_max) / math.sqrt(T), _OK
    # Later tests take precedence, in the order of the codes.
    reason = _OK
    if time_value < 0.0:
        reason = _BELOW_INTRINSIC
    if price >= ceiling or beta >= b_max:
        reason = _ABOVE_MAX
    if T <= 0.0:
        reason = _EXPIRED
    finite = math.isfinite(F) and math.isfinite(K) and math.isfinite(T) and math.isfinite(r)
    if not (finite and F > 0.0 and K > 0.0 and math.isfinite(price) and price >= 0.0):
        reason = _BAD_INPUT
    return (0.0 if reason == _OK else math.nan), reason


@_compiled
def implied_vols(  # noqa: PLR0917 - the Black-76 inputs, then the outputs
    price: FloatArray,
    F: FloatArray,
    K: FloatArray,
    T: FloatArray,
    r: FloatArray,
    is_call: BoolArray,
    vol: FloatArray,
    reason: ReasonArray,
) -> None:
    """Fill ``vol`` with implied volatilities and ``reason`` with IVReason codes.

    The volatility is NaN unless the reason is OK. A price exactly at the discounted intrinsic
    value gives 0.0 (OK), as does a positive time value too small to be a normal double once
    divided by sqrt(F*K) and the discount factor.
    """
    for i in range(price.size):
        vol[i], reason[i] = _implied_vol(price[i], F[i], K[i], T[i], r[i], is_call[i])
