"""Each expiry's fitted smile over time: the fit in use, its smoothing and its health.

``pricing.svi`` fits one slice to one set of quotes; this module keeps, per chain (class and
expiry), what the snapshots between those fits need:

* **Smoothing.** With ``[pricing] smile_half_life_seconds`` h > 0, a refit does not fit the
  quotes' vols alone but the blend alpha x quote vol + (1 - alpha) x the previous fit's vol
  at the same strike, alpha = 1 - 2^(-dt/h) for dt seconds since the previous fit. Weighted
  least squares on that blend is the fit to the quotes with a penalty for moving away from
  the previous smile (the two sums of squares differ by a constant), so the result is an
  exponentially weighted mean of the quotes' smiles with half-life h, and still one SVI
  slice. A real move is not smoothed away: when the previous smile lies outside more than
  ``RESET_FRACTION`` of the usable quotes' bid/ask (in vol, half the spread over vega each
  side of the mid), or outside more than that fraction of those quoted since the previous
  fit and at least ``RESET_STRIKES`` of them (the near-the-money strikes move first), the
  refit starts again from the quotes alone (``ChainFit.smoothed`` false), the quotes not
  requoted since the previous fit weighing ``UNMOVED_WEIGHT`` of their usual weight: they
  show the smile before the move. Moves smaller than the quotes' own spreads follow with the
  half-life.
* **Refits only on change.** A chain whose quotes and forward (to ``FORWARD_TOLERANCE``)
  are those of its last fit, and whose smoothing has settled (the gap left between the fit
  and the fit of its quotes alone, estimated as the last refit's move / alpha, is below
  ``SETTLED_VOL``), keeps its fit without refitting.
* **A failed refit.** The last good fit stays in use for ``smile_max_fit_age_seconds`` after
  it was made (``FitStatus.STALE``); after that, or without one, the expiry's legs are valued
  at their own quotes' vols (``FitStatus.FAILED``). A fit's vols are read as
  sqrt(w(k) / T_fit), with T_fit the time to expiry when it was made: the vols of unchanged
  quotes do not drift as time passes. Beyond the strikes it was made from, a fit's vol is
  flat at its value at the outermost one: a slice fitted near the money only (a 0DTE chain
  whose wings have no bid) says nothing about the wings, and its SVI wing, steep at Lee's
  slope, would price a far call above a nearer one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from monitor.pricing.svi import SPREAD_FLOOR, SviFit, SviFitReason

FloatArray = NDArray[np.float64]

RESET_FRACTION = 0.5  # the previous smile outside more than half the quotes: a real move
RESET_STRIKES = 3  # ... or outside more than half the fresh ones, and at least this many
UNMOVED_WEIGHT = 0.02  # after such a move, the weight of a quote not requoted since
OUTLIER_SPREADS = 4.0  # a vol this many half-spreads off its neighbours' line is left out
OUTLIER_SHARE = 0.25  # at most this share of the usable strikes is left out as outliers
OUTLIER_FLOOR = SPREAD_FLOOR  # decimal: a half-spread counts as at least 0.2 vol points
SETTLED_VOL = 1e-4  # decimal (0.01 vol points): the gap a settled smoothing may leave
FORWARD_TOLERANCE = 1e-6  # relative: a forward that moved less (the carry of a few
# seconds) needs no refit; its log-moneyness moved by as little


class FitStatus(StrEnum):
    FITTED = "fitted"  # valued off a fit of the expiry's current quotes
    STALE = "stale"  # the latest refit failed: the last good fit, not yet too old, in use
    FAILED = "failed"  # no fit in use: the legs at their own quotes' vols


@dataclass(frozen=True, slots=True)
class ChainFit:
    """What a snapshot shows of one expiry's smile (``name``: class and expiry, "SPXW
    2026-04-17")."""

    name: str
    status: FitStatus
    reason: SviFitReason  # of the latest attempt
    strikes_used: int  # quotes the fit in use was made from (0 without one)
    rmse_vol_points: float  # fit in use against the quotes' own vols, vol points
    age_seconds: float  # since the newest quote of the fit in use (NaN without one)
    butterfly_free: bool  # Durrleman's g >= 0 on the quoted range (svi.SviFit.butterfly)
    atm_vol_pct: float  # the fit's vol at the forward (k = 0), percent
    smoothed: bool  # the fit in use blended the previous one (False: fitted to quotes alone)
    model: str = ""  # "svi", "quadratic" (three or four strikes) or "" (none in use)

    @property
    def in_use(self) -> bool:
        return self.status is not FitStatus.FAILED


@dataclass(frozen=True, slots=True)
class SmileView:
    """The smiles the book is valued off ([pricing] smile = "svi"), one per option expiry of
    the book; ``enabled`` false (every number NaN to rules) with smile = "quotes"."""

    enabled: bool
    chains: tuple[ChainFit, ...] = ()

    @staticmethod
    def unknown() -> SmileView:
        return SmileView(enabled=False)

    def _in_use(self) -> list[ChainFit]:
        return [c for c in self.chains if c.in_use]

    @property
    def failed_expiries(self) -> float:
        return float(sum(c.status is FitStatus.FAILED for c in self.chains))

    @property
    def stale_expiries(self) -> float:
        return float(sum(c.status is FitStatus.STALE for c in self.chains))

    @property
    def unfitted(self) -> str:
        """The expiries without a current fit (failed or stale), comma-separated."""
        return ", ".join(c.name for c in self.chains if c.status is not FitStatus.FITTED)

    @property
    def butterfly_arbitrage_expiries(self) -> float:
        return float(sum(not c.butterfly_free for c in self._in_use()))

    @property
    def worst_rmse_vol_points(self) -> float:
        return max((c.rmse_vol_points for c in self._in_use()), default=math.nan)

    @property
    def fewest_strikes(self) -> float:
        return float(min((c.strikes_used for c in self._in_use()), default=math.nan))

    @property
    def oldest_fit_age_seconds(self) -> float:
        return max((c.age_seconds for c in self._in_use()), default=math.nan)


@dataclass(slots=True)
class SmileState:
    """One chain's smile between snapshots (kept by the Valuer)."""

    fit: SviFit | None = None  # the last good fit, when an SVI slice
    # ... or the quadratic of vol in k (c2, c1, c0) through three or four strikes
    quadratic: tuple[float, float, float] | None = None
    butterfly_free: bool = True  # Durrleman's g >= 0 on its quoted range widened by a quarter
    years: float = math.nan  # time to expiry when it was made (its vols: sqrt(w / years))
    fitted_at: datetime | None = None
    quoted_at: datetime | None = None  # the newest quote it was made from
    rmse_vol_points: float = math.nan  # against the quotes' own vols
    smoothed: bool = False
    inputs: tuple[datetime | None, ...] = ()  # quote times of the latest attempt's strikes
    forward: float = math.nan  # and its forward
    settled: bool = False  # a refit of the same inputs would not move it
    latest: SviFitReason = SviFitReason.OK
    strikes_used: int = 0
    k_low: float = -math.inf  # the log-moneyness range of the strikes it was made from
    k_high: float = math.inf

    def vols(self, k: FloatArray) -> FloatArray:
        """The good fit's vols (decimal) at log-moneyness ``k``, flat beyond the strikes it
        was made from."""
        x = np.clip(k, self.k_low, self.k_high)
        if self.quadratic is not None:
            c2, c1, c0 = self.quadratic
            curve: FloatArray = c0 + x * (c1 + x * c2)
            return curve
        assert self.fit is not None
        return self.fit.params.implied_vol(x, self.years)

    @property
    def model(self) -> str:
        """What the smile in use is: "svi", "quadratic" or "" (none yet)."""
        if self.quadratic is not None:
            return "quadratic"
        return "svi" if self.fit is not None else ""

    def same_forward(self, forward: float) -> bool:
        """Whether ``forward`` is the latest attempt's to within ``FORWARD_TOLERANCE``."""
        return abs(forward - self.forward) <= FORWARD_TOLERANCE * abs(self.forward)

    def usable(self, now: datetime, max_age_seconds: float) -> bool:
        """Whether the good fit is in use at ``now``: the latest attempt succeeded, or it
        failed and the good fit is at most ``max_age_seconds`` old."""
        if self.model == "" or self.fitted_at is None:
            return False
        if self.latest is SviFitReason.OK:
            return True
        return (now - self.fitted_at).total_seconds() <= max_age_seconds

    def shown(self, name: str, now: datetime, max_age_seconds: float) -> ChainFit:
        if not self.usable(now, max_age_seconds):
            nan = math.nan
            return ChainFit(
                name,
                FitStatus.FAILED,
                self.latest,
                0,
                nan,
                nan,
                butterfly_free=True,
                atm_vol_pct=nan,
                smoothed=False,
            )
        assert self.quoted_at is not None
        status = FitStatus.FITTED if self.latest is SviFitReason.OK else FitStatus.STALE
        return ChainFit(
            name,
            status,
            self.latest,
            self.strikes_used,
            self.rmse_vol_points,
            (now - self.quoted_at).total_seconds(),
            butterfly_free=self.butterfly_free,
            atm_vol_pct=100.0 * float(self.vols(np.zeros(1))[0]),
            smoothed=self.smoothed,
            model=self.model,
        )


def blend_weight(seconds: float, half_life_seconds: float) -> float:
    """alpha = 1 - 2^(-seconds / half-life), the weight of the new quotes; 1 without
    smoothing (half-life 0)."""
    if half_life_seconds <= 0.0:
        return 1.0
    return -math.expm1(-math.log(2.0) * max(seconds, 0.0) / half_life_seconds)


def blend(
    vols: FloatArray,
    prior: FloatArray,
    half_spread: FloatArray,
    alpha: float,
    fresh: NDArray[np.bool_] | None = None,
) -> tuple[FloatArray, bool]:
    """The vols to fit (decimal) and whether they blend ``prior`` (the previous fit's vols at
    the same strikes): alpha x vols + (1 - alpha) x prior where both are known, or ``vols``
    alone when ``alpha`` is 1 or ``prior`` lies outside the quotes' vol half-spreads (a real
    move of the smile): outside more than ``RESET_FRACTION`` of them, or of the ``fresh``
    ones (quoted since the previous fit) when at least ``RESET_STRIKES`` of those are
    outside, so a move the near-the-money quotes show before the wings tick shows at once."""
    usable = np.isfinite(vols) & np.isfinite(prior) & np.isfinite(half_spread)
    if alpha >= 1.0 or not usable.any():
        return vols, False
    outside = usable & (np.abs(vols - prior) > half_spread)
    if float(outside.sum()) > RESET_FRACTION * float(usable.sum()):
        return vols, False
    if fresh is not None:
        moved = int((outside & fresh).sum())
        if moved >= RESET_STRIKES and moved > RESET_FRACTION * float((usable & fresh).sum()):
            return vols, False
    mixed: FloatArray = np.where(usable, alpha * vols + (1.0 - alpha) * prior, vols)
    return mixed, True


def outliers(k: FloatArray, vols: FloatArray, half_spread: FloatArray) -> NDArray[np.bool_]:
    """The quotes to leave out of a fit: a vol farther than ``OUTLIER_SPREADS`` half-spreads
    (its own or its neighbours', whichever is wider, and at least ``OUTLIER_FLOOR``) from the
    line through its two nearest usable neighbours in k (the two inside it, at either end of
    the chain), worst first, one at a time, at most ``OUTLIER_SHARE`` of the usable ones: a
    stale or mistyped quote among good ones, which would otherwise bend the whole smile (a
    tight stale quote weighs most)."""
    out = np.zeros(k.size, dtype=np.bool_)
    usable = np.isfinite(k) & np.isfinite(vols) & np.isfinite(half_spread)
    order = np.argsort(np.where(usable, k, np.inf))[: int(usable.sum())]
    for _ in range(int(OUTLIER_SHARE * order.size)):
        kept = order[~out[order]]
        if kept.size < 4:
            break
        x, y, h = k[kept], vols[kept], half_spread[kept]
        left = np.r_[1, np.arange(0, kept.size - 2), kept.size - 3]  # neighbours of each
        right = np.r_[2, np.arange(2, kept.size), kept.size - 2]
        slope = (y[right] - y[left]) / (x[right] - x[left])
        line = y[left] + slope * (x - x[left])
        width = np.maximum(np.maximum(h, 0.5 * (h[left] + h[right])), OUTLIER_FLOOR)
        excess = np.abs(y - line) / (OUTLIER_SPREADS * width)
        worst = int(np.argmax(excess))
        if not excess[worst] > 1.0:
            break
        out[kept[worst]] = True
    return out


def quadratic_smile(
    k: FloatArray, vols: FloatArray, weights: FloatArray
) -> tuple[float, float, float] | None:
    """The weighted least-squares quadratic of vol in k through three or four strikes (a line
    through three, as ``valuation.fit_smile``), (c2, c1, c0); None with fewer than three
    distinct strikes or a vol that is not positive on their range."""
    distinct = np.unique(k)
    if distinct.size < 3:
        return None
    degree = 2 if distinct.size > 3 else 1
    coefficients = np.polyfit(k, vols, degree, w=np.sqrt(weights))
    c2, c1, c0 = (0.0, *coefficients.tolist()) if degree == 1 else coefficients.tolist()
    grid = np.linspace(float(k.min()), float(k.max()), 41)
    if not bool(np.all(c0 + grid * (c1 + grid * c2) > 0.0)):
        return None
    return float(c2), float(c1), float(c0)


def quadratic_free(curve: tuple[float, float, float], state: SmileState) -> bool:
    """Durrleman's g >= 0 for the quadratic smile of ``state`` (w = vol^2 T, flat beyond its
    strikes) on its quoted range widened by a quarter each side."""
    c2, c1, c0 = curve
    span = state.k_high - state.k_low
    k = np.linspace(state.k_low - 0.25 * span, state.k_high + 0.25 * span, 201)
    x = np.clip(k, state.k_low, state.k_high)
    inside = (k >= state.k_low) & (k <= state.k_high)
    vol = c0 + x * (c1 + x * c2)
    slope = np.where(inside, c1 + 2.0 * c2 * x, 0.0)
    bend = np.where(inside, 2.0 * c2, 0.0)
    t = state.years
    w = vol * vol * t
    w1 = 2.0 * vol * slope * t
    w2 = 2.0 * (slope * slope + vol * bend) * t
    with np.errstate(divide="ignore", invalid="ignore"):
        first = 1.0 - k * w1 / (2.0 * w)
        g = first * first - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2
    return bool(np.all(w > 0.0) and np.all(g >= 0.0))
