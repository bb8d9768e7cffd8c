"""A fitted smile per expiry: raw SVI parameters, the weighted slice fit and arbitrage checks.

Raw SVI (J. Gatheral, "A parsimonious arbitrage-free implied volatility parametrization with
application to the valuation of volatility derivatives", Global Derivatives, 2004) gives the
total implied variance w = sigma_BS^2 T of one expiry in log-moneyness k = ln(K/F):

    w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2)).

Its domain: b >= 0, |rho| < 1, sigma > 0 and a + b sigma sqrt(1 - rho^2) >= 0 (the smallest
total variance, at k = m - rho sigma / sqrt(1 - rho^2)). Far out, w grows linearly with
slopes b (1 - rho) to the left and b (1 + rho) to the right, and R. Lee, "The moment formula
for implied volatility at extreme strikes" (Mathematical Finance 14, 2004), bounds those
slopes of total variance by 2: lim sup w(k)/|k| <= 2, so b (1 + |rho|) <= 2. QuantLib's
SviSmileSection checks b (1 + |rho|) < 4 instead: 4 is the bound |dw/dk| <= 4 of L. C. G.
Rogers and M. R. Tehranchi, "Can the implied volatility surface move by parallel shifts?"
(Finance and Stochastics 14, 2010), which holds at every k but is weaker than Lee's in the
wings, where SVI's slope tends to b (1 +- rho). The fit enforces Lee's 2
(``LEE_WING_SLOPE``).

The fit (``fit_slice``) is the quasi-explicit calibration of S. De Marco and C. Martini,
"Quasi-explicit calibration of Gatheral's SVI model" (Zeliade Systems white paper, 2009):
for fixed (m, sigma) the best (a, b rho, b) is a linear least-squares problem on a polytope,
solved exactly; a Nelder-Mead search over (m, ln sigma) does the rest (see
``svi_kernels``). A previous fit of the same expiry, passed as ``previous``, starts that
search at its (m, sigma) with a small simplex, so a snapshot whose quotes barely moved
costs a few dozen evaluations of a 3 x 3 solve instead of a grid search.

Butterfly arbitrage: a slice is free of it where Durrleman's condition g(k) >= 0 holds and
w > 0 (J. Gatheral and A. Jacquier, "Arbitrage-free SVI volatility surfaces", Quantitative
Finance 14, 2014, section 2). The unconstrained best fit can break it, at and beyond the
outermost quoted strikes where a noisy quote bends a wing towards Lee's slope; where it does
(on the quoted range of k widened by a quarter of its width each side), the (m, sigma)
search runs again from it with negative g penalised (``svi_kernels``: a quadratic penalty
on the smallest g below a small margin, found on a coarse grid of the range and refined by
golden section), which gives a nearby slice free of it. A warm start from a previous fit
that sat on that boundary (g within a few margins of 0 at its (m, sigma) with the new
quotes) runs the penalised search from the start, and a second pass after a warm first
one starts from the better of its result and the previous fit, with the warm simplex.
``SviFit.butterfly`` reports the smallest g of the slice returned on 201 points of the
widened range, and where: a consumer that needs a density checks ``butterfly.free``.
Lee's wing bound is enforced, so the wings themselves never explode.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from monitor.pricing import svi_kernels as kernels

__all__ = [
    "LEE_WING_SLOPE",
    "MIN_STRIKES",
    "ArbitrageCheck",
    "SviFit",
    "SviFitReason",
    "SviParams",
    "butterfly_check",
    "calendar_check",
    "durrleman_g",
    "fit_slice",
    "quote_weights",
]

FloatArray = NDArray[np.float64]

LEE_WING_SLOPE = kernels.LEE
MIN_STRIKES = kernels.MIN_STRIKES
# quote_weights: a vol spread below this (decimal, 0.2 vol points) counts as this, so that
# one tight near-the-money quote cannot outweigh the wings a condor is short; a displayed
# size at or above SIZE_FULL_WEIGHT contracts takes the full weight.
SPREAD_FLOOR = 0.002
SIZE_FULL_WEIGHT = 50.0


class SviFitReason(enum.StrEnum):
    """Why ``fit_slice`` returned what it did."""

    OK = "ok"
    NOT_CONVERGED = "not_converged"  # the (m, sigma) search ran out of iterations
    NEGATIVE_VARIANCE = "negative_variance"  # the best fit's smallest total variance <= 0
    NO_SOLUTION = "no_solution"  # no parameters in the domain fit the data (degenerate)
    TOO_FEW_STRIKES = "too_few_strikes"  # fewer than MIN_STRIKES usable, distinct strikes
    BAD_INPUT = "bad_input"  # years not positive and finite, arrays of different lengths


_REASONS = {
    kernels.OK: SviFitReason.OK,
    kernels.NOT_CONVERGED: SviFitReason.NOT_CONVERGED,
    kernels.NEGATIVE_VARIANCE: SviFitReason.NEGATIVE_VARIANCE,
    kernels.NO_SOLUTION: SviFitReason.NO_SOLUTION,
    kernels.TOO_FEW_STRIKES: SviFitReason.TOO_FEW_STRIKES,
    kernels.BAD_INPUT: SviFitReason.BAD_INPUT,
}


def _floats(values: ArrayLike) -> FloatArray:
    """``values`` as a flat, C-contiguous float64 array, the one layout the kernels take."""
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))


@dataclass(frozen=True, slots=True)
class SviParams:
    """Raw SVI parameters of one expiry: total variance in log-moneyness k = ln(K/F)."""

    a: float  # level: w(m) = a + b sigma
    b: float  # wing slope
    rho: float  # rotation, -1 < rho < 1 (negative: the put wing is steeper)
    m: float  # horizontal shift of the vertex
    sigma: float  # curvature at the vertex, > 0

    def total_variance(self, k: ArrayLike) -> FloatArray:
        """w(k) = sigma_BS(k)^2 T, elementwise."""
        x = np.asarray(k, dtype=np.float64) - self.m
        root: FloatArray = np.sqrt(x * x + self.sigma * self.sigma)
        return self.a + self.b * (self.rho * x + root)

    def implied_vol(self, k: ArrayLike, years: float) -> FloatArray:
        """sqrt(w(k)/T) (decimal); NaN where w(k) < 0 or T <= 0."""
        w = self.total_variance(k)
        with np.errstate(invalid="ignore", divide="ignore"):
            vol: FloatArray = np.sqrt(w / years) if years > 0.0 else np.full_like(w, math.nan)
        return vol

    @property
    def minimum_variance(self) -> float:
        """The smallest total variance of the slice, a + b sigma sqrt(1 - rho^2)."""
        return self.a + self.b * self.sigma * math.sqrt(max(1.0 - self.rho * self.rho, 0.0))

    @property
    def wing_slopes(self) -> tuple[float, float]:
        """Slopes of w in |k| far out: (left, right) = (b (1 - rho), b (1 + rho))."""
        return self.b * (1.0 - self.rho), self.b * (1.0 + self.rho)

    def domain_error(self) -> str | None:
        """The first condition of the raw SVI domain or of Lee's wing bound that these
        parameters break, or None."""
        values = (self.a, self.b, self.rho, self.m, self.sigma)
        if not all(math.isfinite(v) for v in values):
            return "a parameter is not finite"
        if self.b < 0.0:
            return "b < 0"
        if not abs(self.rho) < 1.0:
            return "|rho| >= 1"
        if not self.sigma > 0.0:
            return "sigma <= 0"
        if self.minimum_variance < 0.0:
            return "a + b sigma sqrt(1 - rho^2) < 0: negative total variance"
        if self.b * (1.0 + abs(self.rho)) > LEE_WING_SLOPE:
            return "b (1 + |rho|) > 2: a wing steeper than Lee's moment formula allows"
        return None


@dataclass(frozen=True, slots=True)
class ArbitrageCheck:
    """The worst value of an arbitrage condition on a grid of k and where it was found.

    ``worst`` is the smallest g(k) for a butterfly check (-inf where w <= 0) and the
    smallest w_later(k) - w_earlier(k) for a calendar check; ``free`` is ``worst >= 0``.
    """

    worst: float
    at_k: float

    @property
    def free(self) -> bool:
        return self.worst >= 0.0


@dataclass(frozen=True, slots=True)
class SviFit:
    """One slice's fit. ``params`` are NaN when the fit failed before solving
    (``too_few_strikes``, ``bad_input``, ``no_solution``); for ``not_converged`` and
    ``negative_variance`` they are the best found, which a caller should not use."""

    params: SviParams
    reason: SviFitReason
    strikes_used: int
    rmse_vol_points: float  # fitted vs quoted vols at the strikes used, unweighted
    weighted_rmse_vol_points: float  # the same with the fit's weights
    iterations: int  # Nelder-Mead iterations over (m, sigma)
    evaluations: int  # inner solves, the cold start's grid included
    butterfly: ArbitrageCheck  # Durrleman's g on the quoted range widened by a quarter

    @property
    def converged(self) -> bool:
        return self.reason is SviFitReason.OK


def quote_weights(
    vol_spread: ArrayLike,
    size: ArrayLike,
    *,
    spread_floor: float = SPREAD_FLOOR,
    full_size: float = SIZE_FULL_WEIGHT,
) -> FloatArray:
    """Fit weights from each quote's bid/ask spread in vol terms (decimal) and its size.

    weight = sqrt(min(size, full_size) / full_size) / max(spread, spread_floor)^2.

    The spread is the uncertainty of the mid's vol, so weights go as its inverse square
    (inverse variance, the least-squares weight of an error of that size). The floor (0.2
    vol points) caps how far one tight near-the-money quote can outweigh a 2-vol-point wing
    (100x): otherwise the fit would match the at-the-money vol to a hundredth of a point and
    let the 15-delta wings, where the condor's short strikes sit, go. Size says how firm a
    quote is; it enters as a square root capped at ``full_size`` contracts, so a 1-lot quote
    counts about a seventh of a 50-lot one without size ever dominating the spread.
    Zero where the spread or size is NaN, negative (crossed) or the size is zero.
    """
    spread = np.asarray(vol_spread, dtype=np.float64)
    lots = np.asarray(size, dtype=np.float64)
    usable = np.isfinite(spread) & (spread >= 0.0) & np.isfinite(lots) & (lots > 0.0)
    width = np.maximum(np.where(usable, spread, 1.0), spread_floor)
    firmness = np.sqrt(np.minimum(np.where(usable, lots, 0.0), full_size) / full_size)
    weights: FloatArray = np.where(usable, firmness / (width * width), 0.0)
    return weights


def fit_slice(
    k: ArrayLike,
    vols: ArrayLike,
    years: float,
    weights: ArrayLike,
    previous: SviParams | None = None,
) -> SviFit:
    """Weighted raw SVI fit of one expiry's implied vols (decimal) at log-moneyness k.

    Strikes with a non-finite k or vol, a vol <= 0 or a weight that is not positive are left
    out; with fewer than ``MIN_STRIKES`` distinct strikes left the fit fails. The weights
    are on vol errors (see ``quote_weights``); the fit minimises the weighted squared errors
    of total variance, each divided by (2 vol T)^2, which to first order is the weighted
    squared error of the vols. ``previous`` (the last fit of this expiry) warm-starts it.
    Never raises on bad data: the result says why it failed.
    """
    params = np.empty(5)
    stats = np.empty(7)
    try:
        k_in, vol_in, weight_in = _floats(k), _floats(vols), _floats(weights)
        t = float(years)
    except (TypeError, ValueError):
        k_in = vol_in = weight_in = np.empty(0)
        t = math.nan
    m0 = previous.m if previous is not None else math.nan
    s0 = previous.sigma if previous is not None else math.nan
    status = kernels.fit_slice(k_in, vol_in, weight_in, t, m0, s0, params, stats)
    a, b, rho, m, sigma = params.tolist()
    used, iterations, evaluations, rmse, wrmse, worst, at = stats.tolist()
    return SviFit(
        params=SviParams(a, b, rho, m, sigma),
        reason=_REASONS[status],
        strikes_used=int(used),
        rmse_vol_points=100.0 * rmse,
        weighted_rmse_vol_points=100.0 * wrmse,
        iterations=int(iterations),
        evaluations=int(evaluations),
        butterfly=ArbitrageCheck(worst, at),
    )


def durrleman_g(params: SviParams, k: ArrayLike) -> FloatArray:
    """Durrleman's g(k) = (1 - k w'/(2w))^2 - (w'^2/4)(1/w + 1/4) + w''/2, -inf where
    w <= 0 (Gatheral and Jacquier 2014, section 2); the slice's implied density is
    non-negative where g >= 0."""
    grid = _floats(k)
    out = np.empty(grid.size)
    kernels.durrleman(params.a, params.b, params.rho, params.m, params.sigma, grid, out)
    return out


def _worst(values: FloatArray, grid: FloatArray) -> ArbitrageCheck:
    if values.size == 0 or np.isnan(values).all():
        return ArbitrageCheck(math.nan, math.nan)
    i = int(np.nanargmin(values))
    return ArbitrageCheck(float(values[i]), float(grid[i]))


def butterfly_check(params: SviParams, k: ArrayLike) -> ArbitrageCheck:
    """The smallest Durrleman g on the grid ``k`` and where; ``free`` when it is >= 0."""
    grid = _floats(k)
    return _worst(durrleman_g(params, grid), grid)


def calendar_check(earlier: SviParams, later: SviParams, k: ArrayLike) -> ArbitrageCheck:
    """The smallest w_later(k) - w_earlier(k) on the grid ``k`` and where: total variance
    must not decrease with expiry at any fixed k (Gatheral and Jacquier 2014, section 2;
    k = ln(K/F_T), each expiry's own forward log-moneyness), so ``free`` when it is >= 0."""
    grid = _floats(k)
    return _worst(later.total_variance(grid) - earlier.total_variance(grid), grid)
