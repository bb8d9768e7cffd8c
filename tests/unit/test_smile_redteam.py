"""The fitted smile ([pricing] smile = "svi") on markets a real feed sends: a 0DTE chain
quoted two-sided only near the money, a wing quoted with no bid, one stale quote among good
ones, a move that reaches the near-the-money quotes before the wings, option quotes that
arrive before their underlying, an expiry that has settled while its legs are still held."""

from __future__ import annotations

import math
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

RATE = 0.04
SPOT = 6600.0
SPX = parse_instrument_id("SPX")


def _universe(instruments: list[Instrument]) -> dict[str, Instrument]:
    return {i.id: i for i in instruments} | {SPX.id: SPX}


def _smile_quotes(
    smile: SviParams, options: list[Instrument], forward: float, now: datetime
) -> list[Quote]:
    """Each option's price at ``smile``'s vol, quoted 4 % wide (at least 0.10), 20 lots."""
    years = year_fraction(options[0], now)
    strikes = np.array([o.strike for o in options], dtype=float)
    n = len(options)
    prices = black76.price(
        np.full(n, forward),
        strikes,
        np.full(n, years),
        RATE,
        smile.implied_vol(np.log(strikes / forward), years),
        np.array([o.is_call for o in options]),
    )
    out = []
    for o, price in zip(options, prices.tolist(), strict=True):
        spread = max(0.10, 0.04 * price)
        bid = max(price - spread / 2.0, 0.05)
        out.append(Quote(o.id, round(bid, 2), round(bid + spread, 2), 20.0, 20.0))
    return out


# -- a 0DTE SPXW chain at noon, two-sided only within 25 points of the money ------------------

ZERO_DTE = "20260303"
NOON = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)  # 12:00 ET, four hours to the 16:00 close
NEAR_THE_MONEY = {
    "P6575": (2.10, 2.21),
    "P6580": (2.84, 2.99),
    "P6585": (3.82, 4.01),
    "P6590": (5.08, 5.34),
    "P6595": (6.74, 7.08),
    "C6600": (8.75, 9.20),
    "C6605": (6.44, 6.77),
    "C6610": (4.56, 4.79),
    "C6615": (3.02, 3.18),
    "C6620": (2.01, 2.11),
}


def _zero_dte(leg: str, leg_quote: Quote | None) -> tuple[Valuer, MarketState, Instrument]:
    def spxw(name: str) -> Instrument:
        return parse_instrument_id(f"SPXW {ZERO_DTE} {name}")

    chain = [spxw(name) for name in NEAR_THE_MONEY]
    inst = spxw(leg)
    universe = _universe([*chain, inst])
    market = MarketState(dict(universe))
    quotes = [Quote(spxw(n).id, b, a, 50.0, 50.0) for n, (b, a) in NEAR_THE_MONEY.items()]
    if leg_quote is not None:
        quotes.append(leg_quote)
    market.apply(EventBatch(NOON, (IndexValue("SPX", SPOT), *quotes)))
    return Valuer([inst], universe, PricingConfig(rate=RATE)), market, inst


def test_a_0dte_call_beyond_the_quoted_strikes_is_worth_less_than_a_quoted_lower_strike() -> None:
    # Ten near-the-money strikes quoted two-sided (vols 15-18 %); the book's 6660 call, 60
    # points out with four hours left, has no quote yet. A call is worth less than any call
    # struck lower: at most the 6620 call's ask (2.11).
    valuer, market, _ = _zero_dte("C6660", None)
    (value,) = valuer.value(market, NOON)
    assert value.vol_source is VolSource.FIT
    (shown,) = valuer.smile_view(NOON).chains
    assert shown.status == "fitted"
    assert shown.butterfly_free
    assert value.price <= 2.11, (value.iv, value.price)  # 65.09 at a vol of 163 %


def test_a_fitted_price_above_a_zero_bid_quotes_ask_is_flagged_outside_the_quote() -> None:
    # The same chain, the 6660 call offered at 0.05 with no bid (as far 0DTE wings are): its
    # fitted price must not be above what it can be bought for without saying so.
    leg_id = f"SPXW {ZERO_DTE} C6660"
    valuer, market, _ = _zero_dte("C6660", Quote(leg_id, 0.0, 0.05, 0.0, 500.0))
    (value,) = valuer.value(market, NOON)
    assert value.vol_source is VolSource.FIT
    assert value.price <= 0.05 or value.outside_quote, (value.price, value.outside_quote)


# -- a 45-day SPX chain, 5800 to 6900 every 25 points ----------------------------------------

EXPIRY = "20260417"
START = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
TRUE = SviParams(a=0.0012, b=0.045, rho=-0.75, m=0.02, sigma=0.06)  # about 19.6 % ATM
SPIKE = SviParams(a=0.0032, b=0.045, rho=-0.75, m=0.02, sigma=0.06)  # about 24.5 % ATM
STRIKES = [5800.0 + 25.0 * n for n in range(45)]
CONDOR = ("P6150", "P6200", "C6800", "C6850")


def _spx(name: str) -> Instrument:
    return parse_instrument_id(f"SPX {EXPIRY} {name}")


def _chain() -> list[Instrument]:
    return [_spx(f"{'P' if k < SPOT else 'C'}{k:g}") for k in STRIKES]


def _forward(now: datetime) -> float:
    return SPOT * math.exp(RATE * year_fraction(_spx("P6200"), now))


def _with_stale(name: str, factor: float) -> tuple[list[Quote], Valuer, MarketState]:
    """The chain quoted at the TRUE smile but for ``name``, quoted at ``factor`` times its
    price (a stale quote left from earlier), valued for the condor."""
    universe = _universe(_chain())
    market = MarketState(dict(universe))
    quotes = []
    for q in _smile_quotes(TRUE, _chain(), _forward(START), START):
        if q.instrument != _spx(name).id:
            quotes.append(q)
            continue
        assert q.bid is not None
        assert q.ask is not None
        quotes.append(
            Quote(q.instrument, round(q.bid * factor, 2), round(q.ask * factor, 2), 20.0, 20.0)
        )
    market.apply(EventBatch(START, (IndexValue("SPX", SPOT), *quotes)))
    legs = [_spx(n) for n in CONDOR]
    return quotes, Valuer(legs, universe, PricingConfig(rate=RATE)), market


def test_one_stale_quote_at_half_price_among_45_good_ones_leaves_the_expiry_a_fit() -> None:
    # The 6100 put left at half its price. The best fit then lies where the smallest total
    # variance is zero; the search stops a hair below it (-2.9e-10) and the whole expiry is
    # refused a fit ("negative_variance"): its legs drop back to their own quotes' vols.
    # 18 of the 135 cases of one put or call of this chain at 0.5, 0.6 or 0.7 of its price
    # end so ("negative_variance" or "not_converged").
    _, valuer, market = _with_stale("P6100", 0.5)
    values = valuer.value(market, START)
    (shown,) = valuer.smile_view(START).chains
    assert shown.status == "fitted", shown.reason
    assert all(v.vol_source is VolSource.FIT for v in values)


def test_one_stale_wing_quote_does_not_push_the_condor_outside_its_own_quotes() -> None:
    # The 6900 call left at half its price (bid/ask halved, so tighter and weighed more):
    # every other strike, the condor's legs included, is quoted on the true smile.
    quotes, valuer, market = _with_stale("C6900", 0.5)
    by_id = {q.instrument: q for q in quotes}
    outside = []
    for value in valuer.value(market, START):
        q = by_id[value.instrument.id]
        assert q.bid is not None
        assert q.ask is not None
        if not q.bid <= value.price <= q.ask:
            outside.append((value.instrument.id, round(value.price, 2), q.bid, q.ask))
    # All four: the 6850 call at 57.91 against 72.42 / 75.38, 2 vol points under its quote.
    assert outside == []


def test_a_move_of_the_near_the_money_quotes_shows_before_the_wings_are_requoted() -> None:
    # The whole chain quoted on the TRUE smile; a second later the smile is 5 vol points
    # higher and the nine strikes within 100 points of the money (the condor's short legs
    # among them) are requoted on it, far outside their old bid/ask; the wings, which
    # trade less, have not ticked yet.
    universe = _universe(_chain())
    market = MarketState(dict(universe))
    legs = [_spx(n) for n in ("P6550", "C6650")]
    valuer = Valuer(legs, universe, PricingConfig(rate=RATE))
    first = _smile_quotes(TRUE, _chain(), _forward(START), START)
    market.apply(EventBatch(START, (IndexValue("SPX", SPOT), *first)))
    valuer.value(market, START)
    now = START + timedelta(seconds=1)
    near = [o for o in _chain() if abs((o.strike or 0.0) - SPOT) <= 100.0]
    moved = _smile_quotes(SPIKE, near, _forward(now), now)
    market.apply(EventBatch(now, (IndexValue("SPX", SPOT), *moved)))
    for value in valuer.value(market, now):
        assert value.vol_source is VolSource.FIT
        # 3.5 vol points under its own quote's vol, about 28 points under its bid
        assert abs(value.iv - value.quote_iv) < 0.01, (value.instrument.id, value.iv)


# -- VIX options quoted before their future ----------------------------------------------------


def test_vix_options_quoted_before_their_future_take_their_own_vols_once_it_is_quoted() -> None:
    expiry = "20260318"
    strikes = [14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27.5, 30, 32.5, 35]
    calls = [parse_instrument_id(f"VIX {expiry} C{k:g}") for k in strikes]
    future = parse_instrument_id(f"VX {expiry}")
    universe = {i.id: i for i in [*calls, future]}
    legs = [parse_instrument_id(f"VIX {expiry} C{k}") for k in (22, 25, 30)]
    now = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    years = year_fraction(calls[0], now)
    k = np.array(strikes, dtype=float)
    prices = black76.price(18.3, k, years, RATE, 0.85 + 0.3 * np.log(k / 18.3), True)
    quotes = []
    for inst, price in zip(calls, prices.tolist(), strict=True):
        spread = max(0.05, 0.05 * price)
        bid = round(max(price - spread / 2.0, 0.01), 2)
        quotes.append(Quote(inst.id, bid, round(bid + spread, 2), 100.0, 100.0))
    market = MarketState(dict(universe))
    valuer = Valuer(legs, universe, PricingConfig(rate=RATE))
    # The gateway's first burst after a connect: the options, not the future yet.
    market.apply(EventBatch(now, tuple(quotes)))
    valuer.value(market, now)
    later = now + timedelta(seconds=1)
    market.apply(EventBatch(later, (Quote(future.id, 18.25, 18.35, 100.0, 100.0),)))
    values = valuer.value(market, later)
    (shown,) = valuer.smile_view(later).chains
    assert shown.status == "fitted"
    for value in values:
        # Each leg has a valid, fresh two-sided quote and now a forward to solve it on.
        assert not value.model_priced, value.instrument.id
        assert math.isfinite(value.quote_iv), value.instrument.id
    assert shown.strikes_used == len(strikes)  # the legs' own strikes left out: 14 of 17


# -- an AM expiry held after its settlement ------------------------------------------------------


def test_an_am_expiry_that_has_settled_is_not_counted_as_a_failed_fit() -> None:
    # The third Friday at 10:30 ET: the SPX (AM) options of the day settled at the open, the
    # SPXW (PM) options of the same day trade until 16:00 and are fitted. The book still
    # holds both until the positions are rolled off.
    expiry = "20260320"
    now = datetime(2026, 3, 20, 14, 30, tzinfo=UTC)
    strikes = [6400.0 + 10.0 * n for n in range(41)]
    pm = [parse_instrument_id(f"SPXW {expiry} {'P' if k < SPOT else 'C'}{k:g}") for k in strikes]
    am = [parse_instrument_id(f"SPX {expiry} {'P' if k < SPOT else 'C'}{k:g}") for k in strikes]
    universe = _universe([*pm, *am])
    legs = [parse_instrument_id(f"{r} {expiry} {n}") for r in ("SPX", "SPXW") for n in CONDOR]
    smile = SviParams(a=0.00005, b=0.0012, rho=-0.7, m=0.002, sigma=0.01)
    forward = SPOT * math.exp(RATE * year_fraction(pm[0], now))
    market = MarketState(dict(universe))
    market.apply(
        EventBatch(now, (IndexValue("SPX", SPOT), *_smile_quotes(smile, pm, forward, now)))
    )
    valuer = Valuer(legs, universe, PricingConfig(rate=RATE))
    valuer.value(market, now)
    view = valuer.smile_view(now)
    assert {c.name: c.status.value for c in view.chains}["SPXW 2026-03-20"] == "fitted"
    # SmileFitFailed reads these: "No current smile fit for SPX 2026-03-20 ... check that the
    # expiry's strike ladder is quoted", all day, for an expiry that no longer trades.
    assert (view.failed_expiries, view.unfitted) == (0.0, ""), view.chains
