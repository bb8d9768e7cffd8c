"""Per-leg valuation: forwards, implied vols and greeks.

With ``[pricing] smile = "svi"`` (the default) every option of an expiry whose smile has a fit
in use takes its vol from that fit (``pricing.svi``, kept over time by ``pricing.smiles``);
the rest, and every option with smile = "quotes", take the vol of their own valid mid, or a
model vol without one.

Everything for one snapshot is priced in vectorized calls. A leg without a valid, fresh
two-sided quote takes a model volatility, in this order:
  1. the smile of its expiry: a quadratic in log-moneyness fitted to the implied vols of the
     other quoted strikes of the same class and expiry (three or more), flat beyond them;
  2. its own last good implied vol;
  3. a fallback: VIX/100 x ``spx_fallback_vol_per_vix`` for SPX-family options, a configured
     level for VIX options; so a session with index values only still has greeks.
Such a leg is flagged ``model_priced`` with the source of its vol. Numbers here are raw
Black-76 units per option on one unit of the forward.

Quotes arrive at different moments, so every number is taken where it was quoted:
  * an option's implied vol is solved when its quote arrives, against the forward of that
    moment, and kept (sticky strike) until the next quote; greeks then use today's forward;
  * the SPX forward is spot x a ratio measured by put-call parity only from pairs whose call
    and put were both quoted in the same batch as spot, smoothed as the median of the last
    ``FORWARD_SAMPLES`` measurements.
Mixing a 20-second-old option quote with the current forward would move a condor's net
delta by thousands of dollars while SPX stands still.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

import numpy as np

from monitor.config import PricingConfig
from monitor.domain.instruments import Instrument, Kind, Right, Settlement
from monitor.market.state import MarketState
from monitor.pricing import black76
from monitor.pricing.expiry import year_fraction
from monitor.pricing.forwards import ParityPair, parity_forward
from monitor.pricing.smiles import (
    SETTLED_VOL,
    UNMOVED_WEIGHT,
    SmileState,
    SmileView,
    blend,
    blend_weight,
    outliers,
    quadratic_free,
    quadratic_smile,
)
from monitor.pricing.svi import SviFitReason, fit_slice, quote_weights

ChainKey = tuple[str, date]  # (class, expiry)
MIN_SMILE_POINTS = 3
SIZE_UNKNOWN = 50.0  # a quote without sizes (a replay that records none) weighs as a full one
FORWARD_SAMPLES = 20


class VolSource(StrEnum):
    QUOTE = "quote"  # implied from the leg's own valid mid
    SMILE = "smile"  # fitted to the other strikes of its expiry
    FIT = "fit"  # the SVI smile fitted to its expiry's quotes ([pricing] smile = "svi")
    LAST_IV = "last_iv"  # the leg's last good implied vol
    FALLBACK = "fallback"  # VIX-scaled (SPX family) or configured (VIX options)
    NONE = "none"  # futures have no volatility


# Why a valid two-sided quote gives no implied vol (its leg then takes a model vol), as
# counted in ``Valuer.unusable_quotes`` and shown with the quotes the market state refuses.
UNUSABLE_MIDS = {
    int(black76.IVReason.BELOW_INTRINSIC): "mid_below_intrinsic",
    int(black76.IVReason.ABOVE_MAX): "mid_above_no_arbitrage_bound",
    int(black76.IVReason.EXPIRED): "expired",
    int(black76.IVReason.BAD_INPUT): "no_vol_bad_input",
}


@dataclass(frozen=True, slots=True)
class LegValue:
    """One instrument's valuation; NaN fields mean it could not be valued (see ``reason``)."""

    instrument: Instrument
    underlying_price: float  # forward for options, mid for futures
    years: float
    iv: float
    model_priced: bool
    price: float
    delta: float
    gamma: float
    vega: float
    theta: float
    reason: str | None = None
    vol_source: VolSource = VolSource.QUOTE
    vanna: float = 0.0  # d2V/dF dsigma, per unit of sigma (0 for futures)
    charm: float = 0.0  # -d(delta)/dT, per year (0 for futures)
    quote_iv: float = math.nan  # the vol of its own valid mid (NaN without one)
    outside_quote: bool = False  # valued off a fit whose price is outside its own bid/ask
    spot: float = math.nan  # SPX when valued (SPX-family options; NaN otherwise)
    expected_move: float = math.nan  # index points: its expiry's ATM straddle (_straddle)
    # Past its settlement moment: marked at its settlement print, no greeks (``_settled``).
    settling: bool = False
    settlement_value: float = math.nan  # index points: the print it settles against


def _settled(inst: Instrument, years: float, market: MarketState) -> LegValue:
    """A leg past its settlement moment: worth what it settles for against its index's print
    (``market.prints``): an option its intrinsic value, a VX future the print itself, with
    every greek zero; unvalued with the reason while the print is unknown."""
    at = market.prints.print_of(inst)
    reason = None
    if at is None:
        side = "close" if inst.settlement is Settlement.PM else "opening"
        index = "SPX" if inst.underlying == "SPX" else "VIX"
        reason = (
            f"settled: the {index} {side} print it settles against was not seen (the feed "
            "started after it or had no value within 5 minutes of it)"
        )
    level = at if at is not None else math.nan
    if inst.kind is Kind.FUTURE:
        price = level
    else:
        strike = inst.strike or math.nan
        price = max(level - strike, 0.0) if inst.is_call else max(strike - level, 0.0)
        price = price if at is not None else math.nan
    return LegValue(
        inst,
        level,
        years,
        math.nan,
        model_priced=False,
        price=price,
        delta=0.0,
        gamma=0.0,
        vega=0.0,
        theta=0.0,
        reason=reason,
        vol_source=VolSource.NONE,
        spot=level if inst.underlying == "SPX" else math.nan,
        settling=True,
        settlement_value=level,
    )


def fit_smile(log_moneyness: np.ndarray, vols: np.ndarray, at: float) -> float:
    """Quadratic (linear for three points or fewer distinct) fit of vol in ln(K/F), read at
    ``at`` clamped to the fitted range; NaN if the fit is not a positive vol."""
    keep = np.isfinite(log_moneyness) & np.isfinite(vols)
    x, y = log_moneyness[keep], vols[keep]
    if len(x) < MIN_SMILE_POINTS:
        return math.nan
    degree = 2 if len(x) > MIN_SMILE_POINTS else 1
    # np.polyfit's own steps (columns scaled to unit norm, then least squares), without its
    # argument handling, which cost more than the fit on the snapshot path.
    lhs = np.vander(x, degree + 1)
    scale = np.sqrt((lhs * lhs).sum(axis=0))
    lhs /= scale
    coefficients = np.linalg.lstsq(lhs, y, rcond=len(x) * np.finfo(float).eps)[0] / scale
    read_at = min(max(at, float(x.min())), float(x.max()))
    value = 0.0
    for c in coefficients.tolist():  # Horner, as np.polyval
        value = value * read_at + c
    return value if value > 0.0 and math.isfinite(value) else math.nan


class Valuer:
    """Values a fixed set of instruments (the book's legs) against the market state, with
    ``config``'s rate (continuously compounded, decimal) and fallback vols (decimal: VIX
    options have no VIX-like index of their own; SPX-family options take VIX / 100 x
    ``spx_fallback_vol_per_vix``)."""

    def __init__(
        self, legs: list[Instrument], universe: dict[str, Instrument], config: PricingConfig
    ) -> None:
        self.legs = legs
        self.config = config
        self.last_iv: dict[str, float] = {}
        self.quote_iv: dict[str, tuple[datetime, float]] = {}  # vol solved at quote time
        # Valid two-sided quotes whose mid no vol reproduces, by reason (``UNUSABLE_MIDS``),
        # each counted once, when its vol is solved against a known forward.
        self.unusable_quotes: Counter[str] = Counter()
        self.forward_ratio: dict[ChainKey, deque[float]] = defaultdict(
            lambda: deque(maxlen=FORWARD_SAMPLES)
        )
        self._forwards: tuple[datetime | None, dict[ChainKey, float]] = (None, {})
        self.smiles: dict[ChainKey, SmileState] = {}  # each chain's smile ("svi")
        self.chains: dict[ChainKey, list[Instrument]] = defaultdict(list)
        calls: dict[tuple[str, date, float], str] = {}
        puts: dict[tuple[str, date, float], str] = {}
        for inst in universe.values():
            if inst.kind is not Kind.OPTION or inst.expiry is None or inst.strike is None:
                continue
            self.chains[(inst.root, inst.expiry)].append(inst)
            if inst.underlying == "SPX":
                key = (inst.root, inst.expiry, inst.strike)
                (calls if inst.right is Right.CALL else puts)[key] = inst.id
        # Strikes listed on both sides, per chain: the put-call parity candidates.
        self.parity: dict[ChainKey, list[tuple[float, str, str]]] = defaultdict(list)
        for key, call_id in calls.items():
            if key in puts:
                self.parity[key[:2]].append((key[2], call_id, puts[key]))

    def _forward(self, inst: Instrument, market: MarketState, years: float, now: datetime) -> float:
        if inst.underlying != "SPX":
            # VIX options are priced on the same-expiry future, never on spot VIX.
            mid = market.mid_or_last(inst.underlying or "")
            return mid if mid is not None else math.nan
        assert inst.expiry is not None
        key = (inst.root, inst.expiry)
        stamp, cache = self._forwards
        if stamp != now:
            cache = {}
            self._forwards = (now, cache)
        if key not in cache:
            cache[key] = self._spx_forward(key, market, years, now)
        return cache[key]

    def _spx_forward(
        self, key: ChainKey, market: MarketState, years: float, now: datetime
    ) -> float:
        spot = market.index("SPX")
        if spot is None:
            return math.nan
        pairs = []
        for strike, call_id, put_id in self.parity.get(key, ()):
            call, put = market.quotes.get(call_id), market.quotes.get(put_id)
            if call is None or put is None or call.time != now or put.time != now:
                continue  # quoted at another moment than this spot: not comparable
            call_mid, put_mid = call.mid, put.mid
            if call_mid is not None and put_mid is not None:
                pairs.append(ParityPair(strike, call_mid, put_mid))
        measured = parity_forward(pairs, spot=spot, rate=self.config.rate, years=years)
        if measured is not None:
            self.forward_ratio[key].append(measured / spot)
        ratios = self.forward_ratio[key]
        if ratios:
            return spot * statistics.median(ratios)
        # No parity pair quoted yet: the index carried at the rate stands in.
        return spot * math.exp(self.config.rate * years)

    def _quote_vols(
        self,
        options: list[Instrument],
        forwards: np.ndarray,
        years: np.ndarray,
        market: MarketState,
    ) -> np.ndarray:
        """Implied vols of options with a valid, fresh quote (NaN otherwise), each solved when
        its quote arrived and kept until the next one."""
        vols = np.full(len(options), math.nan)
        solve: list[int] = []
        mids: list[float] = []
        for k, inst in enumerate(options):
            mid = market.mid(inst.id)
            if mid is None:
                continue
            quoted_at = market.quotes[inst.id].time
            known = self.quote_iv.get(inst.id)
            if known is not None and known[0] == quoted_at:
                vols[k] = known[1]
            else:
                solve.append(k)
                mids.append(mid)
        if solve:
            idx = np.array(solve)
            fresh, reasons = black76.implied_vol_with_reason(
                np.array(mids),
                forwards[idx],
                np.array([options[k].strike for k in solve], float),
                years[idx],
                self.config.rate,
                np.array([options[k].is_call for k in solve]),
            )
            for k, vol, reason in zip(solve, fresh, reasons, strict=True):
                vols[k] = vol
                if math.isfinite(forwards[k]):  # else solved again once the forward is known
                    self.quote_iv[options[k].id] = (market.quotes[options[k].id].time, float(vol))
                    if reason != black76.IVReason.OK:
                        self.unusable_quotes[UNUSABLE_MIDS[int(reason)]] += 1
        return vols

    def _smile_vol(
        self, inst: Instrument, forward: float, market: MarketState, now: datetime
    ) -> float:
        assert inst.expiry is not None
        others = [o for o in self.chains[(inst.root, inst.expiry)] if o.id != inst.id]
        if not math.isfinite(forward) or len(others) < MIN_SMILE_POINTS:
            return math.nan
        years = np.full(len(others), year_fraction(inst, now))
        vols = self._quote_vols(others, np.full(len(others), forward), years, market)
        strikes = np.array([o.strike for o in others], dtype=float)
        return fit_smile(np.log(strikes / forward), vols, math.log((inst.strike or 1.0) / forward))

    def _model_vol(
        self, inst: Instrument, forward: float, market: MarketState, now: datetime
    ) -> tuple[float, VolSource]:
        smile = self._smile_vol(inst, forward, market, now)
        if math.isfinite(smile):
            return smile, VolSource.SMILE
        if inst.id in self.last_iv:
            return self.last_iv[inst.id], VolSource.LAST_IV
        if inst.root == "VIX":
            return self.config.vix_option_fallback_vol, VolSource.FALLBACK
        vix = market.index("VIX")
        scaled = vix / 100.0 * self.config.spx_fallback_vol_per_vix if vix else math.nan
        return scaled, VolSource.FALLBACK

    def _future(self, inst: Instrument, market: MarketState, now: datetime) -> LegValue:
        years = year_fraction(inst, now)
        if years <= 0.0:
            return _settled(inst, years, market)
        price = market.mid_or_last(inst.id)
        reason = None if price is not None else "no valid quote yet"
        value = price if price is not None else math.nan
        return LegValue(
            inst,
            value,
            years,
            math.nan,
            market.mid(inst.id) is None,
            value,
            1.0,
            0.0,
            0.0,
            0.0,
            reason,
            VolSource.NONE,
        )

    def value(self, market: MarketState, now: datetime) -> list[LegValue]:
        values = {i.id: self._future(i, market, now) for i in self.legs if i.kind is Kind.FUTURE}
        options = [i for i in self.legs if i.kind is Kind.OPTION]
        if options:
            values.update(self._options(options, market, now))
        return [values[i.id] for i in self.legs]

    def _options(
        self, options: list[Instrument], market: MarketState, now: datetime
    ) -> dict[str, LegValue]:
        rate = self.config.rate
        years = np.array([year_fraction(i, now) for i in options])
        forwards = np.array(
            [self._forward(i, market, t, now) for i, t in zip(options, years, strict=True)]
        )
        strikes = np.array([i.strike for i in options], dtype=float)
        is_call = np.array([i.is_call for i in options])
        quoted = self._quote_vols(options, forwards, years, market)
        iv = quoted.copy()
        sources = [VolSource.QUOTE] * len(options)
        fitted = (
            self._fitted_vols(options, forwards, years, market, now)
            if self.config.smile == "svi"
            else None
        )
        for k, inst in enumerate(options):
            if math.isfinite(quoted[k]):
                self.last_iv[inst.id] = float(quoted[k])
            if fitted is not None and math.isfinite(fitted[k]):
                iv[k], sources[k] = fitted[k], VolSource.FIT
            elif not math.isfinite(quoted[k]):
                iv[k], sources[k] = self._model_vol(inst, float(forwards[k]), market, now)
        prices = black76.price(forwards, strikes, years, rate, iv, is_call)
        g = black76.greeks(forwards, strikes, years, rate, iv, is_call)
        out = {}
        spot = market.index("SPX") or math.nan
        moves: dict[ChainKey, float] = {}
        for k, inst in enumerate(options):
            if years[k] <= 0.0:
                out[inst.id] = _settled(inst, float(years[k]), market)
                continue
            reason = None
            if not math.isfinite(forwards[k]):
                reason = "no forward: the underlying has no valid quote yet"
            elif not math.isfinite(iv[k]):
                reason = "no valid quote and no model volatility yet"
            out[inst.id] = LegValue(
                inst,
                float(forwards[k]),
                float(years[k]),
                float(iv[k]),
                not math.isfinite(quoted[k]),  # no valid quote of its own
                float(prices[k]),
                float(g.delta[k]),
                float(g.gamma[k]),
                float(g.vega[k]),
                float(g.theta[k]),
                reason,
                sources[k],
                vanna=float(g.vanna[k]),
                charm=float(g.charm[k]),
                quote_iv=float(quoted[k]),
                outside_quote=sources[k] is VolSource.FIT
                and _outside(market, inst.id, float(prices[k])),
                spot=spot if inst.underlying == "SPX" else math.nan,
                expected_move=self._straddle(inst, float(forwards[k]), market, moves),
            )
        return out

    def _straddle(
        self,
        inst: Instrument,
        forward: float,
        market: MarketState,
        cache: dict[ChainKey, float],
    ) -> float:
        """The expected move to expiry of ``inst``'s chain, index points: the mid of its ATM
        straddle (call + put at one strike), linear in the strike between the two quoted
        straddles either side of the forward; NaN without a quoted straddle on each side."""
        assert inst.expiry is not None
        key = (inst.root, inst.expiry)
        if key in cache:
            return cache[key]
        below = above = None
        for strike, call_id, put_id in self.parity.get(key, ()):
            call, put = market.mid(call_id), market.mid(put_id)
            if call is None or put is None or not math.isfinite(forward):
                continue
            if strike <= forward and (below is None or strike > below[0]):
                below = (strike, call + put)
            if strike >= forward and (above is None or strike < above[0]):
                above = (strike, call + put)
        move = math.nan
        if below is not None and above is not None:
            (k1, s1), (k2, s2) = below, above
            move = s1 if k2 == k1 else s1 + (s2 - s1) * (forward - k1) / (k2 - k1)
        cache[key] = move
        return move

    def _fitted_vols(
        self,
        options: list[Instrument],
        forwards: np.ndarray,
        years: np.ndarray,
        market: MarketState,
        now: datetime,
    ) -> np.ndarray:
        """Each option's vol on the SVI smile of its chain (NaN where the chain has no fit in
        use)."""
        vols = np.full(len(options), math.nan)
        by_chain: dict[ChainKey, list[int]] = defaultdict(list)
        for k, inst in enumerate(options):
            if inst.expiry is not None:
                by_chain[(inst.root, inst.expiry)].append(k)
        for key, ks in by_chain.items():
            forward, t = float(forwards[ks[0]]), float(years[ks[0]])
            smile = self._fit_chain(key, forward, t, market, now)
            if smile is None:
                continue
            strikes = np.array([options[k].strike for k in ks], dtype=float)
            vols[ks] = smile.vols(np.log(strikes / forward))
        return vols

    def _fit_chain(
        self, key: ChainKey, forward: float, years: float, market: MarketState, now: datetime
    ) -> SmileState | None:
        """The chain's smile in use after refitting it to its out-of-the-money quotes where
        they or the forward changed (``pricing.smiles``); None when it has none (the legs
        keep their own quotes' vols)."""
        state = self.smiles.setdefault(key, SmileState())
        max_age = self.config.smile_max_fit_age_seconds
        if not (math.isfinite(forward) and years > 0.0):
            state.latest, state.inputs = SviFitReason.BAD_INPUT, ()
            return state if state.usable(now, max_age) else None
        chain = _one_per_strike(self.chains.get(key, ()), forward)
        n = len(chain)
        f, t = np.full(n, forward), np.full(n, years)
        strikes = np.array([o.strike for o in chain], dtype=float)
        vols = self._quote_vols(chain, f, t, market)
        inputs = tuple(
            market.quotes[o.id].time if math.isfinite(v) else None
            for o, v in zip(chain, vols, strict=True)
        )
        if state.settled and inputs == state.inputs and state.same_forward(forward):
            return state if state.usable(now, max_age) else None
        state.inputs, state.forward, state.settled = inputs, forward, False
        if n < MIN_SMILE_POINTS:
            state.latest = SviFitReason.TOO_FEW_STRIKES
            return state if state.usable(now, max_age) else None
        is_call = np.array([o.is_call for o in chain])
        vega = black76.greeks(f, strikes, t, self.config.rate, vols, is_call).vega
        spread, size = np.full(n, math.nan), np.full(n, math.nan)
        newest: datetime | None = None
        for k, o in enumerate(chain):
            quoted = market.quotes.get(o.id)
            if quoted is None or not math.isfinite(vols[k]):
                continue
            q = quoted.quote
            assert q.bid is not None
            assert q.ask is not None
            spread[k] = q.ask - q.bid
            # A two-sided quote showing no size (0 or missing, as some feeds send off-hours)
            # weighs as SIZE_UNKNOWN.
            sizes = [x for x in (q.bid_size, q.ask_size) if x is not None and x > 0.0]
            size[k] = min(sizes) if sizes else SIZE_UNKNOWN
            newest = quoted.time if newest is None else max(newest, quoted.time)
        k_now = np.log(strikes / forward)
        with np.errstate(invalid="ignore", divide="ignore"):
            vol_spread = spread / vega
            weights = quote_weights(vol_spread, size)
            weights[outliers(k_now, np.where(weights > 0.0, vols, np.nan), vol_spread / 2.0)] = 0.0
        target, smoothed, alpha = vols, False, 1.0
        in_use = state.usable(now, max_age)
        previous = state.fit.params if in_use and state.fit is not None else None
        if in_use and state.fitted_at is not None:
            alpha = blend_weight(
                (now - state.fitted_at).total_seconds(), self.config.smile_half_life_seconds
            )
            fresh = np.array(
                [t is not None and t > state.fitted_at for t in inputs], dtype=np.bool_
            )
            target, smoothed = blend(vols, state.vols(k_now), vol_spread / 2.0, alpha, fresh)
            if not smoothed and alpha < 1.0:
                # A real move: the quotes that have not ticked since show the smile before it.
                weights = np.where(fresh, weights, weights * UNMOVED_WEIGHT)
        fit = fit_slice(k_now, target, years, weights, previous)
        if fit.reason is not SviFitReason.OK and previous is not None:
            # A warm start can sit in a poor basin after a move: once more from the grid.
            fit = fit_slice(k_now, target, years, weights)
        state.latest = fit.reason
        used = np.isfinite(vols) & np.isfinite(target) & (weights > 0.0)
        quadratic = None
        if fit.reason is SviFitReason.TOO_FEW_STRIKES:
            # Three or four strikes: the quadratic in log-moneyness through them instead.
            quadratic = quadratic_smile(k_now[used], target[used], weights[used])
            if quadratic is None:
                return state if in_use else None
            state.latest = SviFitReason.OK
        elif fit.reason is not SviFitReason.OK:
            return state if in_use else None
        before = state.vols(k_now) if smoothed else None
        state.fit, state.quadratic = (None, quadratic) if quadratic else (fit, None)
        state.years, state.fitted_at, state.quoted_at = years, now, newest
        state.k_low, state.k_high = float(k_now[used].min()), float(k_now[used].max())
        fitted = state.vols(k_now)
        moved = float(np.nanmax(np.abs(fitted[used] - before[used]))) if before is not None else 0.0
        state.strikes_used, state.smoothed = int(used.sum()), smoothed
        state.rmse_vol_points = 100.0 * float(np.sqrt(np.mean((fitted[used] - vols[used]) ** 2)))
        state.butterfly_free = (
            fit.butterfly.free if quadratic is None else quadratic_free(quadratic, state)
        )
        state.settled = moved < alpha * SETTLED_VOL  # the gap left to the quotes' own fit
        return state

    def smile_view(self, now: datetime) -> SmileView:
        """The smiles of the book's option expiries as the last ``value`` left them."""
        if self.config.smile != "svi":
            return SmileView.unknown()
        keys = sorted(  # the expiries still trading: a settled one has no smile
            {
                (i.root, i.expiry)
                for i in self.legs
                if i.kind is Kind.OPTION and i.expiry and year_fraction(i, now) > 0.0
            }
        )
        max_age = self.config.smile_max_fit_age_seconds
        return SmileView(
            enabled=True,
            chains=tuple(
                self.smiles.get(key, SmileState()).shown(
                    f"{key[0]} {key[1].isoformat()}", now, max_age
                )
                for key in keys
            ),
        )


def _one_per_strike(options: Iterable[Instrument], forward: float) -> list[Instrument]:
    """The fit's quotes: at each strike the out-of-the-money option (the put below the
    forward, the call at or above it), or the other one where only it is listed (a chain
    of calls alone, as VIX options often are)."""
    by_strike: dict[float, Instrument] = {}
    for o in options:
        if o.strike is None:
            continue
        otm = o.is_call == (o.strike >= forward)
        if otm or o.strike not in by_strike:
            by_strike[o.strike] = o
    return [by_strike[k] for k in sorted(by_strike)]


def _outside(market: MarketState, instrument: str, price: float) -> bool:
    """Whether ``price`` is above the instrument's ask or below its bid, where it shows one
    (a zero-bid or one-sided quote too; a crossed quote says nothing)."""
    state = market.quotes.get(instrument)
    if state is None or not math.isfinite(price) or market.time is None:
        return False
    if market.time - state.time > market.max_quote_age:
        return False  # a stale quote says nothing either
    bid, ask = state.quote.bid, state.quote.ask
    if bid is not None and ask is not None and bid > ask:
        return False
    return (ask is not None and price > ask) or (bid is not None and bid > 0.0 and price < bid)
