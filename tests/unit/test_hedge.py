"""Hedge ratio and sizing for a documented example book, worked by hand (and QuantLib for the
two option deltas of the suggested call spread)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import QuantLib as ql  # noqa: N813 - the name QuantLib users know

from monitor.config import HedgeConfig
from monitor.domain.instruments import NEW_YORK, parse_instrument_id
from monitor.domain.quotes import EventBatch, Quote
from monitor.market.state import MarketState
from monitor.portfolio.book import Book, Risk, StrategyRisk
from monitor.portfolio.model import StrategyKind
from monitor.pricing.expiry import settlement, year_fraction
from monitor.rules.loader import load_rule_file
from monitor.signals.hedge import HedgeView, hedge_view
from monitor.signals.term_structure import TermStructure

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)
RATE = 0.04
VX1_DAYS = (settlement(parse_instrument_id("VX 20260318")) - NOW).total_seconds() / 86_400.0
TERM = TermStructure(17.5, 18.0, 19.0, "VX 20260318", "VX 20260415", VX1_DAYS, 43.0)
PACK = Path(__file__).resolve().parents[2] / "rules" / "second-engine.yaml"
CALLS = {21.0: 1.20, 22.0: 0.95, 25.0: 0.50, 27.0: 0.30, 30.0: 0.15}


def book(condor_vega: float, hedge_gain: float) -> Book:
    strategies = (
        StrategyRisk(
            "IC", StrategyKind.IRON_CONDOR, Risk(vol_shock_usd_per_point=condor_vega), 0, 0
        ),
        StrategyRisk(
            "SE", StrategyKind.SECOND_ENGINE, Risk(vol_shock_usd_per_point=hedge_gain), 0, 0
        ),
    )
    return Book((), strategies, Risk())


def market() -> MarketState:
    ids = ["VX 20260318", "VX 20260415", *(f"VIX 20260318 C{k:g}" for k in CALLS)]
    state = MarketState({i: parse_instrument_id(i) for i in ids})
    quotes = [Quote("VX 20260318", 17.95, 18.05), Quote("VX 20260415", 18.95, 19.05)]
    quotes += [Quote(f"VIX 20260318 C{k:g}", m - 0.05, m + 0.05) for k, m in CALLS.items()]
    state.apply(EventBatch(NOW - timedelta(seconds=1), tuple(quotes)))
    return state


def quantlib_call_delta(strike: float, mid: float, forward: float, years: float) -> float:
    discount = math.exp(-RATE * years)
    std = ql.blackFormulaImpliedStdDev(ql.Option.Call, strike, forward, mid, discount)
    payoff = ql.PlainVanillaPayoff(ql.Option.Call, strike)
    return float(ql.BlackCalculator(payoff, forward, std, discount).deltaForward())


def hedged(book: Book, state: MarketState) -> HedgeView:
    """The view with [hedge]'s defaults, the test's rate and a 60-day VIX half-life."""
    return hedge_view(
        book, TERM, NOW, state, HedgeConfig(), rate=RATE, vx_response_half_life_days=60.0
    )


def test_example_book_below_the_band() -> None:
    """The condors lose 8,000 $ per vol point, the layer gains 1,000 $: 12.5 %."""
    state = market()
    view = hedged(book(-8_000.0, 1_000.0), state)
    assert view.ratio_pct == pytest.approx(12.5)
    assert not view.in_band
    # To 20 %: 1,600 - 1,000 = 600 $ more. One VX2 (43 days) gains 1,000 x 0.5**(43/60).
    per_vx2 = 1_000.0 * 0.5 ** (43 / 60)
    assert view.vx2_gain_usd_per_point == pytest.approx(per_vx2)  # 608.6
    assert view.vx2_futures_to_add == 1  # ceil(600 / 608.6)
    # The spread: VX1 at 18.00, long strike the lowest quoted in [21, 23] = 21, short the
    # quoted strike nearest 26 (25 and 27 tie: the lower) = 25.
    spread = view.spread
    assert spread is not None
    assert (spread.long_strike, spread.short_strike) == (21.0, 25.0)
    assert spread.debit_usd == pytest.approx(70.0)  # (1.20 - 0.50) x 100
    assert spread.max_gain_usd == pytest.approx(330.0)  # 4 x 100 - 70
    assert spread.break_even == pytest.approx(21.70)
    years = year_fraction(parse_instrument_id("VIX 20260318 C21"), NOW)
    days = (settlement(parse_instrument_id("VX 20260318")) - NOW).total_seconds() / 86_400.0
    delta_21 = quantlib_call_delta(21.0, 1.20, 18.0, years)
    delta_25 = quantlib_call_delta(25.0, 0.50, 18.0, years)
    per_spread = 100.0 * (delta_21 - delta_25) * 0.5 ** (days / 60)
    assert spread.gain_usd_per_vol_point == pytest.approx(per_spread, rel=1e-6)
    assert view.call_spreads_to_add == math.ceil(600.0 / per_spread)


def test_above_the_band_and_no_condor_loss() -> None:
    state = market()
    over = hedged(book(-5_000.0, 2_000.0), state)
    assert over.ratio_pct == pytest.approx(40.0)
    # 20 % of 5,000 is 1,000: 1,000 $ less, -1.64 VX2 rounds to -2.
    assert over.vx2_futures_to_add == -2
    flat = hedged(book(500.0, 2_000.0), state)
    assert math.isnan(flat.ratio_pct)  # the condors gain from a vol rise: no ratio
    assert flat.vx2_futures_to_add == 0
    assert flat.sizing == "no sizing: the iron condors do not lose from a vol rise"


def test_the_sizing_in_words_names_what_is_missing_instead_of_nan() -> None:
    """With no VIX calls quoted the VX2 sizing stands and the call-spread sizing says why it is
    missing; the default pack's action shows it instead of "+0 VIX nan/nan call spreads"."""
    [rule] = [r for r in load_rule_file(PACK) if r.name == "HedgeRatioOutOfBand"]
    assert rule.action is not None
    full = hedged(book(-8_000.0, 1_000.0), market())
    assert full.spread is not None
    assert full.spread_unavailable == ""
    assert full.sizing == (
        f"+1 VX2 future, or {full.call_spreads_to_add:+d} VIX 21/25 call spreads (debit 70 $ "
        "each, max gain 330 $, break-even VIX 21.70)"
    )
    futures_only = MarketState({i: parse_instrument_id(i) for i in ("VX 20260318", "VX 20260415")})
    futures_only.apply(
        EventBatch(NOW, (Quote("VX 20260318", 17.95, 18.05), Quote("VX 20260415", 18.95, 19.05)))
    )
    bare = hedged(book(-8_000.0, 1_000.0), futures_only)
    assert bare.spread is None
    assert bare.vx2_futures_to_add == 1
    assert bare.spread_unavailable == (
        "0 VIX calls of VX 20260318's expiry quoted with a bid and an ask, at least 2 needed"
    )
    text = rule.action.render({"hedge.sizing": bare.sizing})
    assert "nan" not in text.lower()
    assert text == (
        "Back to the band's middle: +1 VX2 future (no call-spread sizing: 0 VIX calls of "
        "VX 20260318's expiry quoted with a bid and an ask, at least 2 needed)."
    )
