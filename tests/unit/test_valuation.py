"""Valuation and book units: forwards from parity, model-vol fallback, dollars per unit."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pytest
import QuantLib as ql  # noqa: N813 - the name QuantLib users know

from monitor.config import PricingConfig, ScenariosConfig
from monitor.domain.instruments import NEW_YORK, parse_instrument_id
from monitor.domain.quotes import EventBatch, IndexValue, Quote
from monitor.market.state import MarketState
from monitor.portfolio.book import LegRisk, Risk, leg_risk
from monitor.portfolio.distance import (
    distance_pct,
    distance_points,
    distance_std_devs,
    in_the_money,
    inside_expected_move,
)
from monitor.portfolio.model import Leg
from monitor.pricing.expiry import year_fraction
from monitor.pricing.forwards import ParityPair, parity_forward
from monitor.pricing.valuation import Valuer, VolSource

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)
RATE = 0.04
IDS = (
    ["SPX", "VIX", "VX 20260318"]
    + [f"SPX 20260417 {r}{k}" for k in (6700, 6750, 6800, 6850, 6900) for r in "CP"]
    + ["VIX 20260318 C22"]
)
UNIVERSE = {i: parse_instrument_id(i) for i in IDS}
# Each quoted leg at its own mid's vol (the fitted smile's valuation: test_smile_noise.py).
SETTINGS = PricingConfig(rate=RATE, smile="quotes")
# How VIX legs enter the beta-weighted delta: [pricing] and [scenarios] as shipped.
BETA = {
    "vix_points_per_spx_pct": SETTINGS.vix_points_per_spx_pct,
    "vx_response_half_life_days": ScenariosConfig().vx_response_half_life_days,
}


def ql_price(forward: float, strike: float, years: float, vol: float, call: bool) -> float:
    kind = ql.Option.Call if call else ql.Option.Put
    return black(kind, strike, forward, vol, years).value()


def black(kind: int, strike: float, forward: float, vol: float, years: float) -> ql.BlackCalculator:
    payoff = ql.PlainVanillaPayoff(kind, strike)
    return ql.BlackCalculator(payoff, forward, vol * math.sqrt(years), math.exp(-RATE * years))


def chain(forward: float, vol: float, spx: float) -> list:
    """Quotes priced by QuantLib around ``forward``, a tick either side of the model price."""
    events: list = [IndexValue("SPX", spx), IndexValue("VIX", 18.0)]
    for inst in UNIVERSE.values():
        if inst.root == "SPX" and inst.strike is not None:
            years = year_fraction(inst, NOW)
            mid = ql_price(forward, inst.strike, years, vol, inst.is_call)
            events.append(Quote(inst.id, bid=mid - 0.05, ask=mid + 0.05))
    return events


def test_parity_forward_is_recovered_from_quotes() -> None:
    market = MarketState(UNIVERSE)
    market.apply(EventBatch(NOW, tuple(chain(6830.0, 0.17, 6800.0))))
    valuer = Valuer([UNIVERSE["SPX 20260417 P6800"]], UNIVERSE, SETTINGS)
    (value,) = valuer.value(market, NOW)
    assert value.underlying_price == pytest.approx(6830.0, abs=1e-9)
    assert value.iv == pytest.approx(0.17, abs=1e-9)
    assert not value.model_priced


def test_median_resists_one_bad_pair() -> None:
    pairs = [
        ParityPair(6800.0, 100.0, 70.0),
        ParityPair(6850.0, 73.0, 93.0),
        ParityPair(6750.0, 500.0, 0.5),
    ]  # the last is nonsense
    forward = parity_forward(pairs, spot=6800.0, rate=0.0, years=0.1)
    assert forward == pytest.approx(6830.0)


def test_crossed_quote_falls_back_to_last_good_iv() -> None:
    market = MarketState(UNIVERSE)
    market.apply(EventBatch(NOW, tuple(chain(6830.0, 0.17, 6800.0))))
    leg = UNIVERSE["SPX 20260417 P6800"]
    valuer = Valuer([leg], UNIVERSE, SETTINGS)
    valuer.value(market, NOW)
    crossed = Quote(leg.id, bid=90.0, ask=80.0)
    market.apply(EventBatch(NOW, (crossed,)))
    (value,) = valuer.value(market, NOW)
    assert value.model_priced
    assert value.iv == pytest.approx(0.17, abs=1e-9)  # its last good implied vol
    assert math.isfinite(value.delta)


def test_first_quote_unusable_uses_vix_scaled_fallback() -> None:
    market = MarketState(UNIVERSE)
    leg = UNIVERSE["SPX 20260417 P6800"]
    market.apply(
        EventBatch(
            NOW,
            (IndexValue("SPX", 6800.0), IndexValue("VIX", 18.0), Quote(leg.id, bid=0.0, ask=80.0)),
        )
    )
    (value,) = Valuer([leg], UNIVERSE, SETTINGS).value(market, NOW)
    assert value.model_priced
    assert value.iv == pytest.approx(0.18)  # VIX / 100


def test_vix_option_without_its_future_is_unvalued_not_wrong() -> None:
    market = MarketState(UNIVERSE)
    leg = UNIVERSE["VIX 20260318 C22"]
    market.apply(EventBatch(NOW, (IndexValue("VIX", 18.0), Quote(leg.id, bid=1.0, ask=1.1))))
    (value,) = Valuer([leg], UNIVERSE, SETTINGS).value(market, NOW)
    assert value.reason is not None
    assert "forward" in value.reason
    assert math.isnan(value.delta)


def test_dollar_units_against_quantlib_greeks() -> None:
    """-50 SPX puts: delta, gamma, vega and theta in the README's units."""
    market = MarketState(UNIVERSE)
    market.apply(EventBatch(NOW, tuple(chain(6830.0, 0.17, 6800.0))))
    inst = UNIVERSE["SPX 20260417 P6800"]
    (value,) = Valuer([inst], UNIVERSE, SETTINGS).value(market, NOW)
    years = year_fraction(inst, NOW)
    calc = black(ql.Option.Put, 6800.0, 6830.0, value.iv, years)
    risk = leg_risk(Leg("IC", inst, -50), value, spx=6800.0, **BETA)
    size = -50 * 100
    assert risk.delta_usd_per_spx_point == pytest.approx(size * calc.deltaForward(), rel=1e-9)
    assert risk.delta_usd_per_pct == pytest.approx(size * calc.deltaForward() * 68.0, rel=1e-9)
    assert risk.gamma_usd_per_pct == pytest.approx(
        size * calc.gammaForward() * 6800.0**2 * 1e-4, rel=1e-9
    )
    assert risk.vega_usd_per_vol_point == pytest.approx(size * calc.vega(years) * 0.01, rel=1e-9)
    # Theta: -dV/dT per year with r fixed, per calendar day. Central difference on QuantLib.
    h = 1e-5
    bumped = [
        black(ql.Option.Put, 6800.0, 6830.0, value.iv, t).value() for t in (years + h, years - h)
    ]
    theta_per_year = -(bumped[0] - bumped[1]) / (2 * h)
    assert risk.theta_usd_per_day == pytest.approx(size * theta_per_year / 365.0, rel=1e-6)
    # A short put gains when SPX rises and loses when vol rises.
    assert risk.delta_usd_per_spx_point > 0
    assert risk.vega_usd_per_vol_point < 0
    assert risk.theta_usd_per_day > 0


def test_vix_layer_vega_is_dollars_per_future_point() -> None:
    future = parse_instrument_id("VX 20260415")
    market = MarketState({future.id: future})
    market.apply(EventBatch(NOW, (Quote(future.id, bid=18.2, ask=18.3),)))
    (value,) = Valuer([future], {future.id: future}, SETTINGS).value(market, NOW)
    risk = leg_risk(Leg("SE", future, 3), value, spx=6800.0, **BETA)
    assert risk.vix_vega_usd_per_point == 3000.0  # 3 x $1,000 per VIX point
    assert risk.market_value_usd == pytest.approx(3 * 1000 * 18.25)
    assert np.isnan(risk.vega_usd_per_vol_point) is np.False_


def smile_chain(forward: float, spx: float) -> list:
    """Quotes from a known quadratic smile in k = ln(K/F), priced by QuantLib."""
    events: list = [IndexValue("SPX", spx), IndexValue("VIX", 18.0)]
    for inst in UNIVERSE.values():
        if inst.root == "SPX" and inst.strike is not None:
            k = math.log(inst.strike / forward)
            vol = 0.2 - 0.1 * k + 0.3 * k * k
            mid = ql_price(forward, inst.strike, year_fraction(inst, NOW), vol, inst.is_call)
            events.append(Quote(inst.id, bid=mid - 0.05, ask=mid + 0.05))
    return events


def test_unquoted_leg_takes_the_smile_of_its_expiry() -> None:
    market = MarketState(UNIVERSE)
    market.apply(EventBatch(NOW, tuple(smile_chain(6830.0, 6800.0))))
    leg = UNIVERSE["SPX 20260417 P6900"]
    market.apply(EventBatch(NOW, (Quote(leg.id, bid=0.0, ask=150.0),)))  # zero bid
    (value,) = Valuer([leg], UNIVERSE, SETTINGS).value(market, NOW)
    k = math.log(6900.0 / 6830.0)
    assert value.model_priced
    assert value.vol_source is VolSource.SMILE
    # Nine other quoted strikes on the exact quadratic: the fit recovers it.
    assert value.iv == pytest.approx(0.2 - 0.1 * k + 0.3 * k * k, rel=1e-9, abs=0)


def test_stale_quote_is_not_used() -> None:
    market = MarketState(UNIVERSE, max_quote_age=timedelta(seconds=300))
    leg = UNIVERSE["SPX 20260417 P6800"]
    valuer = Valuer([leg], UNIVERSE, SETTINGS)
    market.apply(EventBatch(NOW, tuple(chain(6830.0, 0.17, 6800.0))))
    (fresh,) = valuer.value(market, NOW)
    assert fresh.vol_source is VolSource.QUOTE
    later = NOW + timedelta(seconds=301)
    market.apply(EventBatch(later, (IndexValue("SPX", 6790.0),)))  # options went quiet
    (stale,) = valuer.value(market, later)
    assert stale.model_priced
    assert stale.vol_source is VolSource.LAST_IV  # every other strike is stale too: no smile
    assert stale.iv == pytest.approx(0.17, abs=1e-9)


def test_index_values_only_still_give_greeks() -> None:
    market = MarketState(UNIVERSE)
    market.apply(EventBatch(NOW, (IndexValue("SPX", 6800.0), IndexValue("VIX", 20.0))))
    leg = UNIVERSE["SPX 20260417 P6700"]
    (value,) = Valuer([leg], UNIVERSE, SETTINGS).value(market, NOW)
    assert value.vol_source is VolSource.FALLBACK
    assert value.iv == pytest.approx(0.20)
    assert value.underlying_price == pytest.approx(6800.0 * math.exp(RATE * value.years))
    assert -1.0 < value.delta < 0.0


def test_vol_is_solved_at_quote_time_and_kept_while_spot_moves() -> None:
    market = MarketState(UNIVERSE)
    leg = UNIVERSE["SPX 20260417 P6800"]
    valuer = Valuer([leg], UNIVERSE, SETTINGS)
    market.apply(EventBatch(NOW, tuple(chain(6830.0, 0.17, 6800.0))))
    (at_quote,) = valuer.value(market, NOW)
    later = NOW + timedelta(seconds=20)
    market.apply(EventBatch(later, (IndexValue("SPX", 6850.0),)))  # only spot moved
    (moved,) = valuer.value(market, later)
    assert moved.vol_source is VolSource.QUOTE
    assert moved.iv == at_quote.iv  # the quote's vol, not re-solved against a new forward
    # The forward follows spot at the parity ratio measured with the quotes.
    assert moved.underlying_price == pytest.approx(6850.0 * 6830.0 / 6800.0, rel=1e-12)
    assert moved.delta > at_quote.delta  # a put's delta rises toward 0 as SPX rises


def test_pairs_quoted_at_different_moments_do_not_measure_the_forward() -> None:
    market = MarketState(UNIVERSE)
    leg = UNIVERSE["SPX 20260417 P6800"]
    valuer = Valuer([leg], UNIVERSE, SETTINGS)
    market.apply(EventBatch(NOW, tuple(chain(6830.0, 0.17, 6800.0))))
    valuer.value(market, NOW)
    samples = len(valuer.forward_ratio[("SPX", leg.expiry)])
    later = NOW + timedelta(seconds=5)
    # Only the call side is requoted (at a forward 100 points higher): no comparable pair.
    calls = [
        e for e in chain(6930.0, 0.17, 6800.0) if isinstance(e, Quote) and " C" in e.instrument
    ]
    market.apply(EventBatch(later, (IndexValue("SPX", 6800.0), *calls)))
    (value,) = valuer.value(market, later)
    assert len(valuer.forward_ratio[("SPX", leg.expiry)]) == samples
    assert value.underlying_price == pytest.approx(6830.0, rel=1e-12)


def test_dollar_vanna_and_charm_against_quantlib() -> None:
    """-50 SPX puts: vanna and charm in the README's units, from central differences of
    QuantLib's forward delta (in sigma, and in time with the discount moving too)."""
    market = MarketState(UNIVERSE)
    market.apply(EventBatch(NOW, tuple(chain(6830.0, 0.17, 6800.0))))
    inst = UNIVERSE["SPX 20260417 P6800"]
    (value,) = Valuer([inst], UNIVERSE, SETTINGS).value(market, NOW)
    years = year_fraction(inst, NOW)
    risk = leg_risk(Leg("IC", inst, -50), value, spx=6800.0, **BETA)
    per_pct = -50 * 100 * 6800.0 * 0.01  # size x SPX x 1 %

    def delta(vol: float, t: float) -> float:
        return float(black(ql.Option.Put, 6800.0, 6830.0, vol, t).deltaForward())

    dv, dt = 1e-5, 1e-5
    vanna = (delta(value.iv + dv, years) - delta(value.iv - dv, years)) / (2 * dv)
    charm = -(delta(value.iv, years + dt) - delta(value.iv, years - dt)) / (2 * dt)
    assert risk.vanna_usd_per_pct_per_vol_point == pytest.approx(per_pct * vanna * 0.01, rel=1e-6)
    assert risk.charm_usd_per_pct_per_day == pytest.approx(per_pct * charm / 365.0, rel=1e-6)
    # The units read directly: one whole vol point more moves the $-per-1% delta by about
    # vanna, one calendar day less to expiry by about charm (to first order: a scale slip
    # would be 100 or 365 times off).
    up = (delta(value.iv + 0.01, years) - delta(value.iv, years)) * per_pct
    assert risk.vanna_usd_per_pct_per_vol_point == pytest.approx(up, rel=0.15)
    later = (delta(value.iv, years - 1.0 / 365.0) - delta(value.iv, years)) * per_pct
    assert risk.charm_usd_per_pct_per_day == pytest.approx(later, rel=0.05)


def test_vix_legs_carry_no_vanna_or_charm() -> None:
    """Their delta is to a VIX future, not to SPX, so its change is none of SPX's."""
    market = MarketState(UNIVERSE)
    leg = UNIVERSE["VIX 20260318 C22"]
    future = UNIVERSE["VX 20260318"]
    market.apply(EventBatch(NOW, (Quote(future.id, 19.0, 19.1), Quote(leg.id, 1.0, 1.1))))
    (value,) = Valuer([leg], UNIVERSE, SETTINGS).value(market, NOW)
    assert value.vanna != 0.0
    risk = leg_risk(Leg("SE", leg, 20), value, spx=6800.0, **BETA)
    assert risk.vanna_usd_per_pct_per_vol_point == 0.0
    assert risk.charm_usd_per_pct_per_day == 0.0


def test_a_mid_below_intrinsic_is_counted_as_unusable_once_per_quote() -> None:
    """A valid two-sided quote whose mid is below the discounted intrinsic value has no vol:
    the leg takes the smile of its expiry's other strikes, and the quote is counted under its
    reason (once, however many snapshots value it), beside the quotes the market state
    refuses for a mid."""
    market = MarketState(UNIVERSE)
    market.apply(EventBatch(NOW, tuple(chain(6830.0, 0.17, 6800.0))))
    leg = UNIVERSE["SPX 20260417 C6700"]  # 130 points in the money against the 6,830 forward
    valuer = Valuer([leg], UNIVERSE, SETTINGS)
    valuer.value(market, NOW)
    assert sum(valuer.unusable_quotes.values()) == 0
    later = NOW + timedelta(seconds=1)
    market.apply(EventBatch(later, (Quote(leg.id, bid=100.0, ask=102.0),)))  # 101 < ~129
    for _ in range(3):
        (value,) = valuer.value(market, later)
    assert value.model_priced
    assert value.vol_source is VolSource.SMILE
    assert value.iv == pytest.approx(0.17, abs=1e-6)  # the chain's flat 17 %
    assert dict(valuer.unusable_quotes) == {"mid_below_intrinsic": 1}
    # A call dearer than the discounted forward: above the bound, no vol either.
    market.apply(EventBatch(later + timedelta(seconds=1), (Quote(leg.id, bid=6900.0, ask=6902.0),)))
    valuer.value(market, later + timedelta(seconds=1))
    assert dict(valuer.unusable_quotes) == {
        "mid_below_intrinsic": 1,
        "mid_above_no_arbitrage_bound": 1,
    }


@pytest.mark.parametrize("vol", [0.17, 0.03])
def test_strike_distance_and_the_expected_move_from_the_atm_straddle(vol: float) -> None:
    """Spot 6,800, forward 6,830, a chain priced by QuantLib at one vol: a short put at 6,700
    and a short call at 6,900 are 100 points (1.47 %) from spot; their distance in standard
    deviations is ln(F/K) / (vol sqrt(T)); the expected move is the ATM straddle between the
    6,800 and 6,850 strikes (QuantLib's prices), linear in the strike at the forward. At 17 %
    both strikes are inside it (about 320 points), at 3 % outside (about 57)."""
    market = MarketState(UNIVERSE)
    market.apply(EventBatch(NOW, tuple(chain(6830.0, vol, 6800.0))))
    put, call = UNIVERSE["SPX 20260417 P6700"], UNIVERSE["SPX 20260417 C6900"]
    valued = Valuer([put, call], UNIVERSE, SETTINGS).value(market, NOW)
    years = year_fraction(put, NOW)
    forward = valued[0].underlying_price
    assert forward == pytest.approx(6830.0, abs=1e-6)
    straddles = {
        k: ql_price(forward, k, years, vol, True) + ql_price(forward, k, years, vol, False)
        for k in (6800.0, 6850.0)
    }
    move = straddles[6800.0] + (straddles[6850.0] - straddles[6800.0]) * (forward - 6800) / 50
    for value, sign in zip(valued, (-1, 1), strict=True):
        leg = LegRisk(Leg("IC", value.instrument, -10), value, Risk())
        strike = value.instrument.strike or 0.0
        assert distance_points(leg) == pytest.approx(100.0)
        assert distance_pct(leg) == pytest.approx(100.0 / 6800 * 100)
        assert value.iv == pytest.approx(vol, abs=1e-9)
        expected_sd = sign * math.log(strike / forward) / (vol * math.sqrt(years))
        assert distance_std_devs(leg) == pytest.approx(expected_sd, rel=1e-9)
        assert value.expected_move == pytest.approx(move, abs=1e-6)
        assert inside_expected_move(leg) is (vol == 0.17)
        assert not in_the_money(leg)
        # SPX 150 points the other way: 50 points past each strike, in the money.
        past = LegRisk(leg.leg, replace(value, spot=6800.0 + sign * 150.0), Risk())
        assert distance_points(past) == pytest.approx(-50.0)
        assert in_the_money(past)
        unknown = LegRisk(leg.leg, replace(value, spot=math.nan), Risk())
        assert not in_the_money(unknown)
    assert (move > 300) is (vol == 0.17)
    # A future has no strike distance.
    future = Valuer([UNIVERSE["VX 20260318"]], UNIVERSE, SETTINGS).value(market, NOW)[0]
    assert math.isnan(distance_points(LegRisk(Leg("SE", future.instrument, 1), future, Risk())))
