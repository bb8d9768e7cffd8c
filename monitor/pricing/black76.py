"""Black-76 on the forward: option prices, implied volatilities and greeks, vectorized."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

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

_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)
_SQRT_DBL_MAX = math.sqrt(float(np.finfo(np.float64).max))
_SQRT_TWO_PI = math.sqrt(2.0 * math.pi)
_INV_SQRT_TWO_PI = 1.0 / _SQRT_TWO_PI
_SQRT_PI_OVER_TWO = math.sqrt(0.5 * math.pi)
_INV_SQRT_TWO = 1.0 / math.sqrt(2.0)
_SQRT_THREE = math.sqrt(3.0)
_TWO_PI_OVER_SQRT_27 = 2.0 * math.pi / math.sqrt(27.0)

# Region boundaries of the normalised price, after Jaeckel's "Let's Be Rational" (2015): below
# h = x/s = -10 the asymptotic series of Phi/phi converges to machine precision, and for
# t = s/2 < 2 * eps**(1/16) a Taylor series in t does; elsewhere erfc/erfcx lose few digits.
_ASYMPTOTIC_H = -10.0
_SMALL_T = 2.0 * _EPS**0.0625
_CODY_THRESHOLD = 0.46875  # where erfc(q) and exp(-q^2) erfcx(q) trade accuracy
# Terms needed for the truncation error to fall below eps at the edges of those regions.
_ASYMPTOTIC_TERMS = 30
_SMALL_T_TERMS = 8

# Delbourgo-Gregory rational cubic: r >= _MAX_R means "straight line"; r must stay above -1 for
# its denominator 1 + (r - 3) t (1 - t) to stay positive.
_MIN_R = -(1.0 - math.sqrt(_EPS))
_MAX_R = 2.0 / (_EPS * _EPS)

# Householder(3) from Jaeckel's initial guess converges in about two steps; the cap only
# matters for pathological inputs, where alternate steps are forced to bisect the bracket so
# that every element converges no matter what.
_MAX_ITERATIONS = 160
_FREE_ITERATIONS = 8

_PLAIN, _LOWER, _UPPER = 0, 1, 2


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


def _f64(values: object) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _ndtr(z: FloatArray) -> FloatArray:
    return _f64(special.ndtr(z))


def _ndtri(p: FloatArray) -> FloatArray:
    return _f64(special.ndtri(p))


def _erfc(z: FloatArray) -> FloatArray:
    return _f64(special.erfc(z))


def _erfcx(z: FloatArray) -> FloatArray:
    return _f64(special.erfcx(z))


# --- the normalised Black function -----------------------------------------------------------
#
# With x = ln(F/K) and s = sigma*sqrt(T), every option price is
#     V = D * (intrinsic + sqrt(F*K) * b(-|x|, s)),
#     b(x, s) = exp(x/2) Phi(x/s + s/2) - exp(-x/2) Phi(x/s - s/2)   for x <= 0,
# the undiscounted time value of the out-of-the-money option: call and put at one strike share
# it (put-call parity), and working with the OTM side avoids subtracting from the intrinsic.
# With h = x/s and t = s/2, b = exp(-(h^2 + t^2)/2)/sqrt(2 pi) * (Y(h+t) - Y(h-t)) where
# Y = Phi/phi, which is how the far wings keep their relative accuracy.


def _asymptotic_b(h: FloatArray, t: FloatArray) -> FloatArray:
    # Y(z) ~ sum_k (-1)^k (2k-1)!! |z|^-(2k+1) for z << 0. With u = -(h+t), v = -(h-t), each
    # difference u^-n - v^-n = (1/u - 1/v) * sum_j u^-j v^-(n-1-j) is a sum of positive terms,
    # so the tiny difference Y(h+t) - Y(h-t) never comes from cancelling large numbers.
    p = 1.0 / -(h + t)
    q = 1.0 / (t - h)
    p2 = p * p
    q2 = q * q
    p_plus_q = p + q
    partial = np.ones_like(h)  # sum_j p^j q^(n-1-j) for n = 1
    q_power = q.copy()
    total = np.ones_like(h)
    coefficient = 1.0
    for k in range(1, _ASYMPTOTIC_TERMS):
        partial = p2 * partial + q_power * p_plus_q
        q_power = q_power * q2
        coefficient *= -(2 * k - 1)
        total = total + coefficient * partial
    return _INV_SQRT_TWO_PI * np.exp(-0.5 * (h * h + t * t)) * (2.0 * t * p * q) * total


def _small_t_b(h: FloatArray, t: FloatArray) -> FloatArray:
    # Y(h+t) - Y(h-t) = 2 sum_k t^(2k+1)/(2k+1)! Y^(2k+1)(h), with Y' = 1 + hY and
    # Y^(n+1) = h Y^(n) + n Y^(n-1). The recurrence loses digits when |h| t is large, which
    # the region bounds (h >= -10, t < 0.21) keep to a few ulps.
    previous = _SQRT_PI_OVER_TWO * _erfcx(-_INV_SQRT_TWO * h)
    current = 1.0 + h * previous
    t2 = t * t
    total = current.copy()
    factor = np.ones_like(t)
    order = 1
    for k in range(1, _SMALL_T_TERMS + 1):
        for _ in range(2):
            previous, current = current, h * current + order * previous
            order += 1
        factor = factor * t2 / ((2 * k) * (2 * k + 1))
        total = total + factor * current
    return _INV_SQRT_TWO_PI * np.exp(-0.5 * (h * h + t * t)) * (2.0 * t) * total


def _erfc_b(x: FloatArray, h: FloatArray, t: FloatArray) -> FloatArray:
    # erfc keeps its relative accuracy for small arguments and erfcx for large ones; picking
    # per term avoids both underflow and the loss of digits of 1 - erfc.
    q1 = -_INV_SQRT_TWO * (h + t)
    q2 = -_INV_SQRT_TWO * (h - t)
    common = np.exp(-0.5 * (h * h + t * t))
    first = np.where(q1 < _CODY_THRESHOLD, np.exp(0.5 * x) * _erfc(q1), common * _erfcx(q1))
    second = np.where(q2 < _CODY_THRESHOLD, np.exp(-0.5 * x) * _erfc(q2), common * _erfcx(q2))
    return np.maximum(0.5 * (first - second), 0.0)


def _otm_b(x: FloatArray, s: FloatArray) -> FloatArray:
    """b(x, s) for x <= 0, s >= 0 (flat arrays of one shape)."""
    out = np.zeros_like(s)
    live = np.flatnonzero(s > 0.0)
    if live.size == 0:
        return out
    xs = x[live]
    ss = s[live]
    with np.errstate(all="ignore"):
        h = xs / ss
        t = 0.5 * ss
        asymptotic = (h < _ASYMPTOTIC_H) & (h + t < _ASYMPTOTIC_H + _SMALL_T)
        small_t = ~asymptotic & (t < _SMALL_T)
        rest = ~(asymptotic | small_t)
        values = np.empty_like(ss)
        values[asymptotic] = _asymptotic_b(h[asymptotic], t[asymptotic])
        values[small_t] = _small_t_b(h[small_t], t[small_t])
        values[rest] = _erfc_b(xs[rest], h[rest], t[rest])
    out[live] = values
    return out


def _otm_vega(x: FloatArray, s: FloatArray) -> FloatArray:
    """db/ds = exp(-(h^2 + t^2)/2)/sqrt(2 pi), with its s -> 0 limit (nonzero only at x = 0)."""
    with np.errstate(all="ignore"):
        h = x / s
        value = _INV_SQRT_TWO_PI * np.exp(-0.5 * (h * h + 0.25 * s * s))
    return np.where(s > 0.0, value, np.where(x == 0.0, _INV_SQRT_TWO_PI, 0.0))


# --- inputs ----------------------------------------------------------------------------------


def _flatten(
    values: tuple[ArrayLike, ...], is_call: ArrayLike
) -> tuple[tuple[int, ...], list[FloatArray], NDArray[np.bool_]]:
    arrays = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in values), np.asarray(is_call, dtype=np.bool_)
    )
    shape = arrays[0].shape
    floats = [np.ascontiguousarray(a, dtype=np.float64).ravel() for a in arrays[:-1]]
    calls = np.ascontiguousarray(arrays[-1], dtype=np.bool_).ravel()
    return shape, floats, calls


def _log_moneyness(forward: FloatArray, strike: FloatArray) -> FloatArray:
    # Near the money F - K is exact (Sterbenz), so log1p keeps x's relative accuracy where
    # the log of a rounded ratio would leave an absolute error of one ulp of 1.
    with np.errstate(all="ignore"):
        ratio = forward / strike
        near = (ratio > 0.5) & (ratio < 2.0)
        return np.where(near, np.log1p((forward - strike) / strike), np.log(ratio))


@dataclass(frozen=True, slots=True)
class _Contract:
    years: FloatArray  # max(T, 0): an expired option is worth its intrinsic value
    discount: FloatArray
    x: FloatArray
    root_fk: FloatArray
    intrinsic: FloatArray  # undiscounted


def _contract(
    forward: FloatArray,
    strike: FloatArray,
    expiry: FloatArray,
    rate: FloatArray,
    calls: NDArray[np.bool_],
) -> _Contract:
    with np.errstate(all="ignore"):
        years = np.maximum(expiry, 0.0)
        discount = np.exp(-rate * years)
        difference = forward - strike
        intrinsic = np.maximum(np.where(calls, difference, -difference), 0.0)
        root_fk = np.sqrt(forward) * np.sqrt(strike)
    return _Contract(years, discount, _log_moneyness(forward, strike), root_fk, intrinsic)


def _valid_contract(
    forward: FloatArray, strike: FloatArray, expiry: FloatArray, rate: FloatArray
) -> NDArray[np.bool_]:
    finite = np.isfinite(forward) & np.isfinite(strike) & np.isfinite(expiry) & np.isfinite(rate)
    with np.errstate(invalid="ignore"):
        return finite & (forward > 0.0) & (strike > 0.0)


def _valid_vol(sigma: FloatArray, expiry: FloatArray) -> NDArray[np.bool_]:
    # Once expired the value no longer depends on sigma, so a missing vol does not matter.
    with np.errstate(invalid="ignore"):
        return (expiry <= 0.0) | (np.isfinite(sigma) & (sigma >= 0.0))


def _std_dev(sigma: FloatArray, years: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore"):
        return np.where(years > 0.0, sigma * np.sqrt(years), 0.0)


# --- prices and greeks -----------------------------------------------------------------------


def price(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    F: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, sigma: ArrayLike, is_call: ArrayLike
) -> FloatArray:
    """Black-76 value exp(-rT) * E[payoff] of a European option on the forward F.

    Inputs broadcast against each other. T <= 0 or sigma == 0 give the discounted intrinsic
    value (T < 0 counts as T = 0). NaN where F or K is not positive, sigma is negative or
    anything is not finite.
    """
    shape, (f, k, t, rr, sig), calls = _flatten((F, K, T, r, sigma), is_call)
    contract = _contract(f, k, t, rr, calls)
    valid = _valid_contract(f, k, t, rr) & _valid_vol(sig, t)
    s = _std_dev(np.where(valid, sig, 0.0), contract.years)
    with np.errstate(all="ignore"):
        value = contract.discount * (
            contract.intrinsic + contract.root_fk * _otm_b(-np.abs(contract.x), s)
        )
    return np.where(valid, value, np.nan).reshape(shape)


def greeks(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    F: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, sigma: ArrayLike, is_call: ArrayLike
) -> Greeks:
    """Analytic Black-76 greeks; see ``Greeks`` for the units.

    At T <= 0 or sigma == 0 the option is its intrinsic value: delta is the discounted step
    (+-1 in the money, 0 out of it, +-0.5 exactly at the money), theta is r*V while T > 0
    (pure discounting) and 0 once expired, and gamma, vega, vanna and volga are 0.
    """
    shape, (f, k, t, rr, sig), calls = _flatten((F, K, T, r, sigma), is_call)
    contract = _contract(f, k, t, rr, calls)
    valid = _valid_contract(f, k, t, rr) & _valid_vol(sig, t)
    sig = np.where(valid, sig, 0.0)
    s = _std_dev(sig, contract.years)
    x = contract.x
    discount = contract.discount
    with np.errstate(all="ignore"):
        value = discount * (contract.intrinsic + contract.root_fk * _otm_b(-np.abs(x), s))
        h = x / s
        half_s = 0.5 * s
        d1 = h + half_s
        d2 = h - half_s
        # F * phi(d1) = sqrt(FK) * exp(-(h^2 + t^2)/2)/sqrt(2 pi): symmetric in F and K.
        f_phi = contract.root_fk * _INV_SQRT_TWO_PI * np.exp(-0.5 * (h * h + half_s * half_s))
        root_t = np.sqrt(contract.years)
        delta = np.where(calls, discount * _ndtr(d1), -discount * _ndtr(-d1))
        gamma = discount * f_phi / (f * f * s)
        vega = discount * f_phi * root_t
        theta = rr * value - discount * f_phi * sig / (2.0 * root_t)
        vanna = -discount * (f_phi / f) * d2 / sig
        volga = vega * d1 * d2 / sig

    diffusing = s > 0.0
    step = np.where(x > 0.0, 1.0, np.where(x < 0.0, 0.0, 0.5))
    step = np.where(calls, step, step - 1.0)
    delta = np.where(diffusing, delta, discount * step)
    theta = np.where(diffusing, theta, np.where(contract.years > 0.0, rr * value, 0.0))
    # Where the density underflows (or s = 0) gamma, vega, vanna and volga vanish; testing
    # f_phi also keeps 0 * inf out of d1 * d2 when h overflows.
    curved = diffusing & (f_phi > 0.0)

    def finish(values: FloatArray) -> FloatArray:
        return np.where(valid, values, np.nan).reshape(shape)

    return Greeks(
        delta=finish(delta),
        gamma=finish(np.where(curved, gamma, 0.0)),
        vega=finish(np.where(curved, vega, 0.0)),
        theta=finish(theta),
        vanna=finish(np.where(curved, vanna, 0.0)),
        volga=finish(np.where(curved, volga, 0.0)),
    )


# --- implied volatility ----------------------------------------------------------------------
#
# Jaeckel, "Let's Be Rational" (Wilmott, 2015), vectorized: the curve b(s) is cut at s_l < s_c
# < s_h (s_c = sqrt(2|x|) is its inflection point, s_l and s_h where the tangent there meets
# 0 and b_max); on each piece a rational cubic in a transformed price gives a guess a few
# digits off, then Householder steps of order 3 on an objective that is nearly linear on that
# piece finish it. A bracket from the piece, tightened at each evaluation, catches any step
# that would leave it.


@dataclass(frozen=True, slots=True)
class _Segment:
    """Delbourgo-Gregory (1985) rational cubic from (x_l, y_l) to (x_r, y_r), end slopes d.

    Its control parameter r is 3 for the ordinary cubic Hermite spline; larger r pull it
    towards the chord, which is how it is kept monotone and convex where the data are.
    """

    x_l: FloatArray
    x_r: FloatArray
    y_l: FloatArray
    y_r: FloatArray
    d_l: FloatArray
    d_r: FloatArray

    def at(self, x: FloatArray, r: FloatArray) -> FloatArray:
        width = self.x_r - self.x_l
        t = (x - self.x_l) / width
        u = 1.0 - t
        cubic = (
            self.y_r * t * t * t
            + (r * self.y_r - width * self.d_r) * t * t * u
            + (r * self.y_l + width * self.d_l) * t * u * u
            + self.y_l * u * u * u
        ) / (1.0 + (r - 3.0) * t * u)
        line = self.y_r * t + self.y_l * u
        middle = 0.5 * (self.y_l + self.y_r)
        return np.where(width == 0.0, middle, np.where(r >= _MAX_R, line, cubic))

    def fit_left(self, second: FloatArray, *, prefer_shape: bool) -> FloatArray:
        """r matching the second derivative at x_l, raised to keep the shape."""
        width = self.x_r - self.x_l
        slope = (self.y_r - self.y_l) / width
        numerator = 0.5 * width * second + (self.d_r - self.d_l)
        return self._shape_preserving(numerator, slope - self.d_l, slope, prefer_shape)

    def fit_right(self, second: FloatArray, *, prefer_shape: bool) -> FloatArray:
        """r matching the second derivative at x_r, raised to keep the shape."""
        width = self.x_r - self.x_l
        slope = (self.y_r - self.y_l) / width
        numerator = 0.5 * width * second + (self.d_r - self.d_l)
        return self._shape_preserving(numerator, self.d_r - slope, slope, prefer_shape)

    def _shape_preserving(
        self, numerator: FloatArray, denominator: FloatArray, slope: FloatArray, prefer: bool
    ) -> FloatArray:
        safe = np.where(denominator == 0.0, 1.0, denominator)
        fitted = np.where(
            numerator == 0.0,
            0.0,
            np.where(
                denominator == 0.0, np.where(numerator > 0.0, _MAX_R, _MIN_R), numerator / safe
            ),
        )
        return np.maximum(fitted, self._minimum_r(slope, prefer=prefer))

    def _minimum_r(self, slope: FloatArray, *, prefer: bool) -> FloatArray:
        # Delbourgo and Gregory's conditions (3.8) for monotonicity and (3.18) for convexity;
        # with prefer, a condition that cannot be met by any finite r falls back to the chord.
        d_l, d_r = self.d_l, self.d_r
        monotonic = (d_l * slope >= 0.0) & (d_r * slope >= 0.0)
        convex = (d_l <= slope) & (slope <= d_r)
        concave = (d_l >= slope) & (slope >= d_r)
        fallback = _MAX_R if prefer else -np.inf
        nonzero = slope != 0.0
        r1 = np.where(nonzero, (d_r + d_l) / np.where(nonzero, slope, 1.0), fallback)
        r1 = np.where(monotonic, r1, -np.inf)
        span = d_r - d_l
        right_gap = d_r - slope
        left_gap = slope - d_l
        proper = (right_gap != 0.0) & (left_gap != 0.0)
        r2 = np.maximum(
            np.abs(span / np.where(proper, right_gap, 1.0)),
            np.abs(span / np.where(proper, left_gap, 1.0)),
        )
        r2 = np.where(proper, r2, fallback)
        r2 = np.where(convex | concave, r2, _MAX_R if prefer else -np.inf)
        r2 = np.where(convex | concave | monotonic, r2, -np.inf)
        r = np.maximum(_MIN_R, np.maximum(r1, r2))
        return np.where(monotonic | convex | concave, r, _MIN_R)


def _lower_map(x: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """f = 2 pi |x| / sqrt(27) * Phi(-z)^3, z = |x|/(sqrt(3) s), and df/db, d2f/db2.

    f matches b to leading order as s -> 0, so f(b) is close to the identity on the lowest
    piece and a rational cubic in b represents it well.
    """
    ax = np.abs(x)
    z = ax / (_SQRT_THREE * s)
    y = z * z
    cdf = _ndtr(-z)
    pdf = _INV_SQRT_TWO_PI * np.exp(-0.5 * y)
    f = _TWO_PI_OVER_SQRT_27 * ax * cdf * cdf * cdf
    fp = 2.0 * math.pi * y * cdf * cdf * np.exp(y + 0.125 * s * s)
    fpp = (
        (math.pi / 6.0)
        * y
        / (s * s * s)
        * cdf
        * (8.0 * _SQRT_THREE * s * ax + (3.0 * s * s * (s * s - 8.0) - 8.0 * x * x) * cdf / pdf)
        * np.exp(2.0 * y + 0.25 * s * s)
    )
    return f, fp, fpp


def _inverse_lower_map(x: FloatArray, f: FloatArray) -> FloatArray:
    z = -_ndtri(np.cbrt(f / (_TWO_PI_OVER_SQRT_27 * np.abs(x))))
    return np.abs(x) / (_SQRT_THREE * z)


def _upper_map(x: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """f = Phi(-s/2) and df/db, d2f/db2: f(b) is close to linear near b_max."""
    w = (x / s) ** 2
    f = _ndtr(-0.5 * s)
    fp = -0.5 * np.exp(0.5 * w)
    fpp = _SQRT_PI_OVER_TWO * np.exp(w + 0.125 * s * s) * w / s
    return f, fp, fpp


def _householder_step(newton: FloatArray, halley: FloatArray, hh3: FloatArray) -> FloatArray:
    return newton * (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0))


def _initial_guess(
    beta: FloatArray, x: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.int8]]:
    """Guess, bracket (lo, hi) and objective for each element."""
    b_max = np.exp(0.5 * x)
    s_c = np.sqrt(-2.0 * x)
    b_c = _otm_b(x, s_c)
    v_c = _otm_vega(x, s_c)
    s_l = np.maximum(s_c - b_c / v_c, 0.0)
    b_l = _otm_b(x, s_l)
    s_h = np.where(v_c > _TINY, s_c + (b_max - b_c) / np.where(v_c > _TINY, v_c, 1.0), s_c)
    b_h = _otm_b(x, s_h)

    guess = np.full_like(beta, np.nan)
    lo = np.zeros_like(beta)
    hi = np.full_like(beta, np.inf)
    objective = np.full(beta.shape, _PLAIN, dtype=np.int8)

    lowest = beta < b_l
    lower = ~lowest & (beta < b_c)
    upper = ~lowest & ~lower & (beta <= b_h)
    highest = ~lowest & ~lower & ~upper

    if lowest.any():
        i = lowest
        f_l, fp_l, fpp_l = _lower_map(x[i], s_l[i])
        zero = np.zeros_like(f_l)
        segment = _Segment(zero, b_l[i], zero, f_l, np.ones_like(f_l), fp_l)
        f = segment.at(beta[i], segment.fit_right(fpp_l, prefer_shape=True))
        # Round-off in the fit can leave f <= 0 for extreme |x|; the quadratic through
        # f(0) = 0, f'(0) = 1 and f(b_l) cannot.
        tau = beta[i] / b_l[i]
        f = np.where(f > 0.0, f, (f_l * tau + b_l[i] * (1.0 - tau)) * tau)
        guess[i] = _inverse_lower_map(x[i], f)
        hi[i] = s_l[i]
        objective[i] = _LOWER
    if lower.any():
        i = lower
        v_l = _otm_vega(x[i], s_l[i])
        segment = _Segment(b_l[i], b_c[i], s_l[i], s_c[i], 1.0 / v_l, 1.0 / v_c[i])
        # s(b) has an inflection point at s_c, hence the zero second derivative there.
        r = segment.fit_right(np.zeros_like(v_l), prefer_shape=False)
        guess[i] = segment.at(beta[i], r)
        lo[i] = s_l[i]
        hi[i] = s_c[i]
    if upper.any():
        i = upper
        v_h = _otm_vega(x[i], s_h[i])
        segment = _Segment(b_c[i], b_h[i], s_c[i], s_h[i], 1.0 / v_c[i], 1.0 / v_h)
        r = segment.fit_left(np.zeros_like(v_h), prefer_shape=False)
        guess[i] = segment.at(beta[i], r)
        lo[i] = s_c[i]
        hi[i] = s_h[i]
    if highest.any():
        i = highest
        f_h, fp_h, fpp_h = _upper_map(x[i], s_h[i])
        # f'(b_max) = -1/2 in the limit s -> inf.
        segment = _Segment(b_h[i], b_max[i], f_h, np.zeros_like(f_h), fp_h, np.full_like(f_h, -0.5))
        f = segment.at(beta[i], segment.fit_left(fpp_h, prefer_shape=True))
        f = np.where(np.abs(fpp_h) < _SQRT_DBL_MAX, f, np.nan)
        width = b_max[i] - b_h[i]
        tau = (beta[i] - b_h[i]) / width
        f = np.where(f > 0.0, f, (f_h * (1.0 - tau) + 0.5 * width * tau) * (1.0 - tau))
        guess[i] = -2.0 * _ndtri(f)
        lo[i] = s_h[i]
        # Below b_max/2 the upper objective has no edge over the plain one.
        objective[i] = np.where(beta[i] > 0.5 * b_max[i], _UPPER, _PLAIN)
    return guess, lo, hi, objective


def _steps(
    beta: FloatArray,
    x: FloatArray,
    s: FloatArray,
    *,
    b: FloatArray,
    vega: FloatArray,
    objective: NDArray[np.int8],
) -> FloatArray:
    """Householder(3) step on each element's objective; NaN/inf where it cannot be taken."""
    h = x / s
    b_halley = h * h / s - 0.25 * s
    b_hh3 = b_halley * b_halley - 3.0 * (h / s) ** 2 - 0.25

    # g = b - beta on the middle pieces.
    plain = _householder_step((beta - b) / vega, b_halley, b_hh3)

    # g = 1/ln(b) - 1/ln(beta) on the lowest piece, where ln(b) ~ -x^2/(2 s^2).
    ln_b = np.log(b)
    ln_beta = np.log(beta)
    vega_over_b = vega / b
    factor = 1.0 + 2.0 / ln_b
    lower = _householder_step(
        (ln_beta - ln_b) * ln_b / ln_beta / vega_over_b,
        b_halley - vega_over_b * factor,
        b_hh3
        + 2.0 * vega_over_b**2 * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b))
        - 3.0 * b_halley * vega_over_b * factor,
    )

    # g = ln(b_max - beta) - ln(b_max - b) on the highest piece, where b_max - b ~ exp(-s^2/8).
    b_max = np.exp(0.5 * x)
    gap = b_max - b
    g_prime = vega / gap
    upper = _householder_step(
        -np.log((b_max - beta) / gap) / g_prime,
        b_halley + g_prime,
        b_hh3 + g_prime * (2.0 * g_prime + 3.0 * b_halley),
    )
    return np.where(objective == _LOWER, lower, np.where(objective == _UPPER, upper, plain))


def _solve_otm(beta: FloatArray, x: FloatArray) -> FloatArray:
    """s with b(x, s) = beta, for x <= 0 and 0 < beta < exp(x/2) (flat arrays)."""
    with np.errstate(all="ignore"):
        s, lo, hi, objective = _initial_guess(beta, x)
        active = np.arange(beta.size)
        for iteration in range(_MAX_ITERATIONS):
            if active.size == 0:
                break
            si = s[active]
            xi = x[active]
            bi = beta[active]
            lo_i = lo[active]
            hi_i = hi[active]
            # A guess outside the bracket (or NaN) is replaced before it is evaluated.
            if iteration == 0:
                midpoint = np.where(np.isfinite(hi_i), 0.5 * (lo_i + hi_i), 2.0 * lo_i + 1.0)
                si = np.where((si > lo_i) & (si < hi_i), si, midpoint)
            b = _otm_b(xi, si)
            vega = _otm_vega(xi, si)
            lo_i = np.where(b < bi, np.maximum(lo_i, si), lo_i)
            hi_i = np.where(b > bi, np.minimum(hi_i, si), hi_i)
            ds = np.maximum(
                _steps(bi, xi, si, b=b, vega=vega, objective=objective[active]), -0.5 * si
            )
            proposal = si + ds
            midpoint = np.where(np.isfinite(hi_i), 0.5 * (lo_i + hi_i), 2.0 * lo_i + 1.0)
            forced = iteration >= _FREE_ITERATIONS and iteration % 2 == 1
            settled = (b == bi) | (np.abs(ds) <= 2.0 * _EPS * si)
            bisect = ~settled & (forced | ~((proposal > lo_i) & (proposal < hi_i)))
            new = np.where(bisect, midpoint, np.where(b == bi, si, proposal))
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
    contract = _contract(f, k, t, rr, calls)
    with np.errstate(all="ignore"):
        bad = ~_valid_contract(f, k, t, rr) | ~np.isfinite(p) | (p < 0.0)
        expired = ~bad & (t <= 0.0)
        discount = contract.discount
        ceiling = discount * np.where(calls, f, k)
        time_value = p - discount * contract.intrinsic
        beta = time_value / (discount * contract.root_fk)
        x = -np.abs(contract.x)
        above = ~bad & ~expired & ((p >= ceiling) | (beta >= np.exp(0.5 * x)))
        below = ~bad & ~expired & ~above & (time_value < 0.0)
    reason = np.full(p.shape, IVReason.OK, dtype=np.int8)
    reason[below] = IVReason.BELOW_INTRINSIC
    reason[above] = IVReason.ABOVE_MAX
    reason[expired] = IVReason.EXPIRED
    reason[bad] = IVReason.BAD_INPUT

    vol = np.full(p.shape, np.nan)
    ok = reason == IVReason.OK
    solvable = ok & (beta >= _TINY)
    vol[ok & ~solvable] = 0.0
    if solvable.any():
        s = _solve_otm(beta[solvable], x[solvable])
        vol[solvable] = s / np.sqrt(t[solvable])
    return vol.reshape(shape), reason.reshape(shape)


def implied_vol(  # noqa: PLR0917 - the Black-76 inputs, positionally as in the papers
    price: ArrayLike, F: ArrayLike, K: ArrayLike, T: ArrayLike, r: ArrayLike, is_call: ArrayLike
) -> FloatArray:
    """Black-76 implied volatility (decimal); NaN where no volatility reproduces the price.

    See ``implied_vol_with_reason`` for why an element is NaN.
    """
    return implied_vol_with_reason(price, F, K, T, r, is_call)[0]
