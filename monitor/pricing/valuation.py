"""Per-leg valuation: forwards, implied vols from valid mids (model vol otherwise) and greeks.

Everything for one snapshot is priced in a single vectorized call. A leg without a valid
two-sided market takes a model volatility: its last good implied vol, else a fallback
(VIX/100 for SPX-family options, a configured level for VIX options); it is then flagged
``model_priced``. Numbers here are raw Black-76 units per option on one unit of the forward.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from monitor.domain.instruments import Instrument, Kind, Right
from monitor.market.state import MarketState
from monitor.pricing import black76
from monitor.pricing.expiry import year_fraction
from monitor.pricing.forwards import ParityPair, parity_forward


@dataclass(frozen=True, slots=True)
class PricingSettings:
    rate: float  # continuously compounded, decimal (0.04 = 4 %)
    vix_option_fallback_vol: float  # decimal; VIX options have no VIX-like index of their own
    spx_fallback_vol_per_vix: float = 1.0  # SPX-family fallback vol = this * VIX / 100


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


class Valuer:
    """Values a fixed set of instruments (the book's legs) against the market state."""

    def __init__(
        self, legs: list[Instrument], universe: dict[str, Instrument], settings: PricingSettings
    ) -> None:
        self.legs = legs
        self.settings = settings
        self.last_iv: dict[str, float] = {}
        self.last_forward: dict[tuple[str, date], float] = {}
        self.last_future_mid: dict[str, float] = {}
        # Strikes quoted on both sides, per (class, expiry): the put-call parity candidates.
        calls: dict[tuple[str, date, float], str] = {}
        puts: dict[tuple[str, date, float], str] = {}
        for inst in universe.values():
            if inst.kind is Kind.OPTION and inst.underlying == "SPX":
                assert inst.expiry is not None
                assert inst.strike is not None
                key = (inst.root, inst.expiry, inst.strike)
                (calls if inst.right is Right.CALL else puts)[key] = inst.id
        self.parity: dict[tuple[str, date], list[tuple[float, str, str]]] = defaultdict(list)
        for key, call_id in calls.items():
            if key in puts:
                self.parity[key[:2]].append((key[2], call_id, puts[key]))

    def _spx_forward(self, inst: Instrument, market: MarketState, years: float) -> float:
        assert inst.expiry is not None
        key = (inst.root, inst.expiry)
        spot = market.index("SPX")
        pairs = []
        for strike, call_id, put_id in self.parity.get(key, ()):
            call_mid, put_mid = market.mid(call_id), market.mid(put_id)
            if call_mid is not None and put_mid is not None:
                pairs.append(ParityPair(strike, call_mid, put_mid))
        forward = None
        if spot is not None:
            forward = parity_forward(pairs, spot=spot, rate=self.settings.rate, years=years)
        if forward is not None:
            self.last_forward[key] = forward
            return forward
        if key in self.last_forward:
            return self.last_forward[key]
        # No parity pair yet: carry the index at the rate (no dividend guess); rare and brief.
        return spot * math.exp(self.settings.rate * years) if spot is not None else math.nan

    def _future_price(self, future: str, market: MarketState) -> float:
        mid = market.mid(future)
        if mid is not None:
            self.last_future_mid[future] = mid
            return mid
        return self.last_future_mid.get(future, math.nan)

    def _fallback_vol(self, inst: Instrument, market: MarketState) -> float:
        if inst.id in self.last_iv:
            return self.last_iv[inst.id]
        if inst.root == "VIX":
            return self.settings.vix_option_fallback_vol
        vix = market.index("VIX")
        return vix / 100.0 * self.settings.spx_fallback_vol_per_vix if vix is not None else math.nan

    def value(self, market: MarketState, now: datetime) -> list[LegValue]:
        options = [i for i in self.legs if i.kind is Kind.OPTION]
        values: dict[str, LegValue] = {}
        for inst in self.legs:
            if inst.kind is Kind.FUTURE:
                price = self._future_price(inst.id, market)
                values[inst.id] = LegValue(
                    inst,
                    price,
                    year_fraction(inst, now),
                    math.nan,
                    market.mid(inst.id) is None,
                    price,
                    1.0,
                    0.0,
                    0.0,
                    0.0,
                    None if math.isfinite(price) else "no valid quote yet",
                )
        if options:
            years = np.array([year_fraction(i, now) for i in options])
            forwards = np.array(
                [
                    self._spx_forward(i, market, t)
                    if i.underlying == "SPX"
                    else self._future_price(i.underlying or "", market)
                    for i, t in zip(options, years, strict=True)
                ]
            )
            strikes = np.array([i.strike for i in options], dtype=float)
            is_call = np.array([i.is_call for i in options])
            mids = np.array([market.mid(i.id) for i in options], dtype=float)  # None -> nan
            iv = black76.implied_vol(mids, forwards, strikes, years, self.settings.rate, is_call)
            model = ~np.isfinite(iv)
            for k in np.flatnonzero(model):
                iv[k] = self._fallback_vol(options[k], market)
            for k in np.flatnonzero(~model):
                self.last_iv[options[k].id] = float(iv[k])
            prices = black76.price(forwards, strikes, years, self.settings.rate, iv, is_call)
            g = black76.greeks(forwards, strikes, years, self.settings.rate, iv, is_call)
            for index, inst in enumerate(options):
                reason = None
                if not math.isfinite(forwards[index]):
                    reason = "no forward: the underlying has no valid quote yet"
                elif not math.isfinite(iv[index]):
                    reason = "no valid quote and no fallback volatility yet"
                values[inst.id] = LegValue(
                    inst,
                    float(forwards[index]),
                    float(years[index]),
                    float(iv[index]),
                    bool(model[index]),
                    float(prices[index]),
                    float(g.delta[index]),
                    float(g.gamma[index]),
                    float(g.vega[index]),
                    float(g.theta[index]),
                    reason,
                )
        return [values[i.id] for i in self.legs]
