"""A day whose true smile is fixed and whose quotes are the true prices plus bid/ask noise: the
book valued off the fitted SVI smile ([pricing] smile = "svi") barely moves, the book valued
at each quote's own vol ("quotes") moves with the noise; a real move of the smile shows in the
fitted book's greeks at the next snapshot."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta

import numpy as np

from monitor.config import PricingConfig
from monitor.domain.instruments import Instrument, parse_instrument_id
from monitor.domain.quotes import EventBatch, IndexValue, Quote
from monitor.market.state import MarketState
from monitor.pricing import black76
from monitor.pricing.expiry import year_fraction
from monitor.pricing.svi import SviParams
from monitor.pricing.valuation import Valuer, VolSource

SPOT = 6600.0
RATE = 0.04
START = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
EXPIRY = "20260417"
# An index-like 45-day smile (total variance in log-moneyness), the truth the quotes are made
# from: about 17 vol points at the money, skewed to the puts.
TRUE = SviParams(a=0.0012, b=0.045, rho=-0.75, m=0.02, sigma=0.06)
SPIKE = SviParams(a=0.0032, b=0.045, rho=-0.75, m=0.02, sigma=0.06)  # about +5 points ATM
STRIKES = [5800.0 + 25.0 * n for n in range(45)]  # 5800 .. 6900
CONDOR = {"P6200": -10, "P6150": 10, "C6800": -10, "C6850": 10}
SNAPSHOTS = 60


def option(name: str) -> Instrument:
    return parse_instrument_id(f"SPX {EXPIRY} {name}")


def chain() -> list[Instrument]:
    """Out-of-the-money options at every strike (puts below spot, calls above)."""
    return [option(f"{'P' if k < SPOT else 'C'}{k:g}") for k in STRIKES]


def quotes(smile: SviParams, now: datetime, rng: np.random.Generator) -> list[Quote]:
    """Each option's true price with a spread of realistic width (wider for dearer options,
    at least 0.10) and a mid off the true price by up to 30 % of the spread."""
    options = chain()
    true = true_prices(smile, options, now)
    out = []
    for inst, price in zip(options, true, strict=True):
        spread = max(0.10, 0.04 * float(price))
        mid = float(price) + rng.uniform(-0.3, 0.3) * spread
        bid = max(mid - spread / 2.0, 0.05)
        out.append(Quote(inst.id, round(bid, 2), round(bid + spread, 2), 20.0, 20.0))
    return out


def book(valuer: Valuer, market: MarketState, now: datetime) -> tuple[float, float, float]:
    """The condor's delta, vega and mark per unit of the multiplier."""
    values = {v.instrument.id: v for v in valuer.value(market, now)}
    legs = {option(k).id: q for k, q in CONDOR.items()}
    delta = sum(q * values[i].delta for i, q in legs.items())
    vega = sum(q * values[i].vega for i, q in legs.items())
    mark = sum(q * values[i].price for i, q in legs.items())
    return delta, vega, mark


def test_the_fitted_smile_takes_the_noise_out_of_the_book_and_keeps_a_real_move() -> None:
    universe = {i.id: i for i in chain()} | {"SPX": parse_instrument_id("SPX")}
    legs = [option(k) for k in CONDOR]
    market = MarketState(dict(universe))
    by_quote = Valuer(legs, universe, PricingConfig(rate=RATE))
    fitted = Valuer(legs, universe, PricingConfig(rate=RATE, smile="svi"))
    rng = np.random.default_rng(20260303)
    series: dict[str, list[tuple[float, float, float]]] = {"quotes": [], "svi": []}
    now = START
    for n in range(SNAPSHOTS + 1):
        now = START + timedelta(seconds=5 * n)
        events = (IndexValue("SPX", SPOT), *quotes(TRUE, now, rng))
        market.apply(EventBatch(now, events))
        series["quotes"].append(book(by_quote, market, now))
        series["svi"].append(book(fitted, market, now))
    values = {v.instrument.id: v for v in fitted.value(market, now)}
    assert all(v.vol_source is VolSource.FIT for v in values.values())
    assert not any(v.model_priced for v in values.values())
    for i, what in enumerate(("delta", "vega", "mark")):
        noisy = statistics.stdev(s[i] for s in series["quotes"])
        smooth = statistics.stdev(s[i] for s in series["svi"])
        # Measured on this day: 6.9x (delta), 8.0x (vega), 7.9x (mark).
        assert noisy > 5.0 * smooth, (what, noisy, smooth)

    # The smile moves up by 4 to 5 vol points: the next snapshot's mark moves as the true
    # prices do (the condor is short vega), not a fraction of it.
    before = book(fitted, market, now)
    now += timedelta(seconds=5)
    market.apply(EventBatch(now, (IndexValue("SPX", SPOT), *quotes(SPIKE, now, rng))))
    after = book(fitted, market, now)
    moved = true_mark(SPIKE, now) - true_mark(TRUE, now)
    assert moved < -15.0  # per unit of the multiplier: thousands of dollars on 10 lots
    assert math.isclose(after[2] - before[2], moved, rel_tol=0.2), (after, before, moved)
    assert after[1] > before[1] * 0.9  # and its vega is that of the new smile, not lost


def true_prices(smile: SviParams, options: list[Instrument], now: datetime) -> np.ndarray:
    """The options' Black-76 prices at the vols of ``smile`` on the carried forward."""
    years = year_fraction(options[0], now)
    forward = SPOT * math.exp(RATE * years)
    strikes = np.array([o.strike for o in options], dtype=float)
    vols = smile.implied_vol(np.log(strikes / forward), years)
    n = len(options)
    return black76.price(
        np.full(n, forward),
        strikes,
        np.full(n, years),
        RATE,
        vols,
        np.array([o.is_call for o in options]),
    )


def true_mark(smile: SviParams, now: datetime) -> float:
    """The condor's mark at the true prices of ``smile``."""
    prices = true_prices(smile, [option(k) for k in CONDOR], now)
    return float(sum(q * p for q, p in zip(CONDOR.values(), prices, strict=True)))


def test_an_expiry_with_too_few_quotes_keeps_each_legs_own_vol_and_sizes_may_be_missing() -> None:
    universe = {i.id: i for i in chain()} | {"SPX": parse_instrument_id("SPX")}
    legs = [option(k) for k in CONDOR]
    market = MarketState(dict(universe))
    fitted = Valuer(legs, universe, PricingConfig(rate=RATE, smile="svi"))
    rng = np.random.default_rng(7)
    everything = quotes(TRUE, START, rng)
    # Only the four legs quoted (fewer than the five strikes a fit needs): their own vols.
    few = [q for q in everything if q.instrument in {i.id for i in legs}]
    market.apply(EventBatch(START, (IndexValue("SPX", SPOT), *few)))
    values = fitted.value(market, START)
    assert [v.vol_source for v in values] == [VolSource.QUOTE] * len(legs)
    assert all(v.quote_iv == v.iv for v in values)
    assert all(not v.outside_quote for v in values)
    # The whole chain quoted without sizes (a recording that has none): a fit all the same.
    later = START + timedelta(seconds=5)
    bare = [Quote(q.instrument, q.bid, q.ask) for q in quotes(TRUE, later, rng)]
    market.apply(EventBatch(later, (IndexValue("SPX", SPOT), *bare)))
    values = fitted.value(market, later)
    assert [v.vol_source for v in values] == [VolSource.FIT] * len(legs)
    assert all(abs(v.quote_iv - v.iv) < 0.02 for v in values)  # within 2 vol points
