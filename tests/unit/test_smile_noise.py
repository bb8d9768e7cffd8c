"""A day whose true smile is fixed and whose quotes are the true prices plus bid/ask noise: the
book valued off the fitted SVI smile ([pricing] smile = "svi", smoothed with its default
half-life) barely moves, the book valued at each quote's own vol ("quotes") moves with the
noise; a real move of the smile shows in the fitted book's greeks at the next snapshot. And
the smile's life between fits: no refit while nothing changed, the last good fit kept for a
while when refits fail, then each leg's own quote."""

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
    by_quote = Valuer(legs, universe, PricingConfig(rate=RATE, smile="quotes"))
    fitted = Valuer(legs, universe, PricingConfig(rate=RATE, smile="svi"))
    rng = np.random.default_rng(20260303)
    series: dict[str, list[tuple[float, float, float]]] = {"quotes": [], "svi": []}
    now = START
    for n in range(SNAPSHOTS + 1):
        now = START + timedelta(seconds=5 * n)
        events: tuple[Quote | IndexValue, ...] = (IndexValue("SPX", SPOT), *quotes(TRUE, now, rng))
        market.apply(EventBatch(now, events))
        series["quotes"].append(book(by_quote, market, now))
        series["svi"].append(book(fitted, market, now))
    values = {v.instrument.id: v for v in fitted.value(market, now)}
    assert all(v.vol_source is VolSource.FIT for v in values.values())
    assert not any(v.model_priced for v in values.values())
    for i, what in enumerate(("delta", "vega", "mark")):
        noisy = statistics.stdev(s[i] for s in series["quotes"])
        smooth = statistics.stdev(s[i] for s in series["svi"])
        # Measured on this day: 33x (delta), 46x (vega), 42x (mark) with the default 30 s
        # half-life; the fit alone (smile_half_life_seconds = 0) 7.0x, 8.1x and 8.0x.
        assert noisy > 10.0 * smooth, (what, noisy, smooth)

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
    (shown,) = fitted.smile_view(now).chains
    assert not shown.smoothed  # the previous smile was outside the quotes: started again


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
    # Two legs quoted (fewer than the three strikes of the quadratic): their own vols.
    two = {option("P6200").id, option("C6800").id}
    few = [q for q in everything if q.instrument in two]
    market.apply(EventBatch(START, (IndexValue("SPX", SPOT), *few)))
    values = {v.instrument.id: v for v in fitted.value(market, START)}
    assert all(values[i].vol_source is VolSource.QUOTE for i in two)
    assert all(values[i].quote_iv == values[i].iv for i in two)
    assert fitted.smile_view(START).chains[0].status == "failed"
    # The four legs quoted (fewer than the five strikes of SVI): the quadratic through them.
    four = [q for q in everything if q.instrument in {i.id for i in legs}]
    market.apply(EventBatch(START + timedelta(seconds=1), (IndexValue("SPX", SPOT), *four)))
    values = {v.instrument.id: v for v in fitted.value(market, START + timedelta(seconds=1))}
    (shown,) = fitted.smile_view(START + timedelta(seconds=1)).chains
    assert (shown.status.value, shown.model, shown.strikes_used) == ("fitted", "quadratic", 4)
    assert all(v.vol_source is VolSource.FIT for v in values.values())
    assert all(abs(v.quote_iv - v.iv) < 0.005 for v in values.values())  # within 0.5 points
    # The whole chain quoted without sizes (a recording that has none): a fit all the same.
    later = START + timedelta(seconds=5)
    bare = [Quote(q.instrument, q.bid, q.ask) for q in quotes(TRUE, later, rng)]
    market.apply(EventBatch(later, (IndexValue("SPX", SPOT), *bare)))
    values = fitted.value(market, later)
    assert [v.vol_source for v in values] == [VolSource.FIT] * len(legs)
    assert all(abs(v.quote_iv - v.iv) < 0.02 for v in values)  # within 2 vol points


def test_a_chain_whose_quotes_stand_still_settles_on_their_fit_and_is_then_not_refitted() -> None:
    universe = {i.id: i for i in chain()} | {"SPX": parse_instrument_id("SPX")}
    legs = [option(k) for k in CONDOR]
    market = MarketState(dict(universe))
    smoothed = Valuer(legs, universe, PricingConfig(rate=RATE, smile="svi"))
    alone = Valuer(legs, universe, PricingConfig(rate=RATE, smile="svi", smile_half_life_seconds=0))
    rng = np.random.default_rng(11)
    market.apply(EventBatch(START, (IndexValue("SPX", SPOT), *quotes(TRUE, START, rng))))
    smoothed.value(market, START)
    # Other quotes a little later: the smoothed fit blends them with the first one.
    later = START + timedelta(seconds=5)
    market.apply(EventBatch(later, (IndexValue("SPX", SPOT), *quotes(TRUE, later, rng))))
    expiry = option(CONDOR_FIRST).expiry
    assert expiry is not None
    key = ("SPX", expiry)
    fits = []
    now = later
    for n in range(90):  # then only the index, at the same level: the quotes stand still
        now = later + timedelta(seconds=3 * n)  # (for less than the 300 s they stay fresh)
        if n:
            market.apply(EventBatch(now, (IndexValue("SPX", SPOT),)))
        smoothed.value(market, now)
        fits.append(smoothed.smiles[key].fit)
    alone.value(market, now)
    assert fits[0] is not fits[1]  # still moving towards the standing quotes
    assert fits[-1] is fits[-2] is fits[-10]  # settled: not refitted any more
    strikes = np.array([o.strike for o in chain()], dtype=float)
    k = np.log(strikes / smoothed.smiles[key].forward)
    gap = np.abs(smoothed.smiles[key].vols(k) - alone.smiles[key].vols(k))
    assert float(gap.max()) < 2e-4  # where the fit of these quotes alone is: 0.02 vol points
    (shown,) = smoothed.smile_view(now).chains
    assert shown.status == "fitted"
    assert shown.age_seconds == (now - later).total_seconds()  # since its newest quote


CONDOR_FIRST = next(iter(CONDOR))


def test_failed_refits_keep_the_last_fit_for_its_max_age_then_the_legs_own_quotes() -> None:
    universe = {i.id: i for i in chain()} | {"SPX": parse_instrument_id("SPX")}
    legs = [option(k) for k in CONDOR]
    two_legs = {option("P6200").id, option("C6800").id}
    market = MarketState(dict(universe))
    fitted = Valuer(legs, universe, PricingConfig(rate=RATE, smile="svi"))
    rng = np.random.default_rng(5)
    market.apply(EventBatch(START, (IndexValue("SPX", SPOT), *quotes(TRUE, START, rng))))
    fitted.value(market, START)
    # Every quote but two legs' turns one-sided: two strikes cannot make a fit.
    statuses = []
    for n in (1, 6, 12, 13):
        now = START + timedelta(seconds=5 * n)
        events = [
            q if q.instrument in two_legs else Quote(q.instrument, None, q.ask)
            for q in quotes(TRUE, now, rng)
        ]
        market.apply(EventBatch(now, (IndexValue("SPX", SPOT), *events)))
        values = fitted.value(market, now)
        view = fitted.smile_view(now)
        (shown,) = view.chains
        statuses.append((shown.status.value, {v.vol_source.value for v in values}))
        assert shown.reason == "too_few_strikes"
    # Up to 60 s (smile_max_fit_age_seconds) after the last good fit, it is still in use.
    assert statuses == [
        ("stale", {"fit"}),
        ("stale", {"fit"}),
        ("stale", {"fit"}),
        ("failed", {"quote", "last_iv"}),  # the two unquoted legs: their last vols
    ]
    assert view.failed_expiries == 1.0
    assert view.stale_expiries == 0.0
    assert math.isnan(view.oldest_fit_age_seconds)  # no fit in use
