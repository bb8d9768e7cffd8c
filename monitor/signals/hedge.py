"""The hedge ratio of the second-engine layer, and how much hedge brings it into its band.

Hedge ratio (docs/rules.md, "Hedge ratio"): for a coordinated +1 SPX-vol-point shock (spot
VIX up one point with it), the second-engine layer's dollar gain divided by the iron
condors' dollar loss, in percent. SPX options move by their vega; a VIX future moves by
the response of its tenor (``vx_response``), and a VIX option by its delta to its future
times that response. NaN when the condors do not lose from a vol rise.

Sizing: the extra gain that brings the ratio to the middle of the band, in whole VX2
futures, or in front-month VIX call spreads chosen among quoted strikes: the long strike
the lowest quoted one 3 to 5 points above VX1 (else the nearest to 4 above), the short
strike the quoted one nearest 5 points above it. Counts to add are rounded up; a negative
count (the layer is larger than the band asks for) is rounded to the nearest. Where a sizing
cannot be given (no VIX calls quoted, no VX2 tenor, no condor loss), ``sizing`` says which
and why instead of showing a count of 0 or a NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from monitor.config import HedgeConfig
from monitor.domain.instruments import Instrument, Kind, Right
from monitor.market.state import MarketState
from monitor.portfolio.book import Book
from monitor.portfolio.model import StrategyKind
from monitor.pricing import black76
from monitor.pricing.expiry import settlement, year_fraction
from monitor.signals.term_structure import TermStructure, vx_response


@dataclass(frozen=True, slots=True)
class CallSpread:
    """One front-month VIX call spread (1 long, 1 short call), in dollars and VIX points."""

    long_strike: float
    short_strike: float
    debit_usd: float  # mid to mid, per spread
    max_gain_usd: float  # width x 100 minus the debit
    break_even: float  # VIX at expiry
    gain_usd_per_vol_point: float  # for the coordinated shock


@dataclass(frozen=True, slots=True)
class HedgeView:
    ratio_pct: float
    condor_loss_usd_per_point: float  # positive: the condors lose this per +1 vol point
    hedge_gain_usd_per_point: float
    band_low_pct: float
    band_high_pct: float
    vx2_gain_usd_per_point: float  # one VX2 future
    vx2_futures_to_add: int
    spread: CallSpread | None
    call_spreads_to_add: int
    known: bool = True  # False for a book that knows nothing (``unknown``)
    spread_unavailable: str = ""  # why no spread is suggested ("" when one is)
    sizing: str = ""  # what brings the ratio to the band's middle, in words (``_sizing``)

    @classmethod
    def unknown(cls, config: HedgeConfig) -> HedgeView:
        """For a book that knows nothing: no ratio, nothing to add."""
        nan = math.nan
        return cls(
            nan,
            nan,
            nan,
            config.band_low_pct,
            config.band_high_pct,
            nan,
            0,
            None,
            0,
            known=False,
            spread_unavailable="the book is not valued yet",
            sizing="no sizing: the book is not valued yet",
        )

    @property
    def in_band(self) -> bool:
        return self.band_low_pct <= self.ratio_pct <= self.band_high_pct


def _count(needed: float, per_unit: float) -> int:
    """Units that cover ``needed``: rounded up when adding, to the nearest when removing."""
    if not (math.isfinite(needed) and math.isfinite(per_unit)) or per_unit <= 0.0:
        return 0
    units = needed / per_unit
    return math.ceil(units) if units > 0 else round(units)


def _mid(market: MarketState, inst: Instrument) -> float | None:
    return market.mid(inst.id)


def _call_delta(inst: Instrument, mid: float, future: float, now: datetime, rate: float) -> float:
    years = year_fraction(inst, now)
    strike = inst.strike or 0.0
    vol = float(black76.implied_vol(mid, future, strike, years, rate, True))  # noqa: FBT003
    if not math.isfinite(vol):
        return math.nan
    return float(black76.greeks(future, strike, years, rate, vol, True).delta)  # noqa: FBT003


def choose_spread(
    market: MarketState,
    vx1: Instrument,
    now: datetime,
    config: HedgeConfig,
    *,
    rate: float,
    vx_response_half_life_days: float,
) -> CallSpread | None:
    """The front-month call spread of ``config``'s strikes (its long strike that many points
    above VX1), priced at ``rate`` ([pricing]); its gain per vol point through VX1's response
    ([scenarios] ``vx_response_half_life_days``). None where none can be chosen (the reason:
    ``spread_or_reason``)."""
    spread = spread_or_reason(
        market, vx1, now, config, rate=rate, vx_response_half_life_days=vx_response_half_life_days
    )
    return spread if isinstance(spread, CallSpread) else None


def spread_or_reason(
    market: MarketState,
    vx1: Instrument,
    now: datetime,
    config: HedgeConfig,
    *,
    rate: float,
    vx_response_half_life_days: float,
) -> CallSpread | str:
    """``choose_spread``'s spread, or why there is none, in words."""
    future = market.mid_or_last(vx1.id)
    if future is None:
        return f"{vx1.id} has no quote"
    quoted = sorted(
        (
            (i.strike or 0.0, i, mid)
            for i in market.instruments.values()
            if i.kind is Kind.OPTION
            and i.root == "VIX"
            and i.right is Right.CALL
            and i.expiry == vx1.expiry
            and (mid := _mid(market, i)) is not None
        ),
        key=lambda row: row[0],
    )
    if len(quoted) < 2:
        return (
            f"{len(quoted)} VIX call{'' if len(quoted) == 1 else 's'} of {vx1.id}'s expiry "
            "quoted with a bid and an ask, at least 2 needed"
        )
    low, high = config.long_strike_offset_points
    inside = [row for row in quoted if future + low <= row[0] <= future + high]
    long_row = inside[0] if inside else min(quoted, key=lambda r: abs(r[0] - future - 4.0))
    above = [row for row in quoted if row[0] > long_row[0]]
    if not above:
        return f"no quoted VIX call strike above {long_row[0]:g} for the short leg"
    target = long_row[0] + config.spread_width_points
    short_row = min(above, key=lambda r: (abs(r[0] - target), r[0]))
    (k1, long_inst, mid1), (k2, short_inst, mid2) = long_row, short_row
    deltas = [
        _call_delta(i, m, future, now, rate) for i, m in ((long_inst, mid1), (short_inst, mid2))
    ]
    days = (settlement(vx1) - now).total_seconds() / 86_400.0
    response = vx_response(days, vx_response_half_life_days)
    gain = 100.0 * (deltas[0] - deltas[1]) * response
    if not (math.isfinite(gain) and gain > 0.0):
        return (
            f"the VIX {k1:g}/{k2:g} calls' vols cannot be solved from their mids "
            f"({mid1:.2f} and {mid2:.2f} with {vx1.id} at {future:.2f})"
            if not all(math.isfinite(d) for d in deltas)
            else f"the VIX {k1:g}/{k2:g} call spread gains nothing from a vol rise"
        )
    debit = (mid1 - mid2) * 100.0
    return CallSpread(
        long_strike=k1,
        short_strike=k2,
        debit_usd=debit,
        max_gain_usd=(k2 - k1) * 100.0 - debit,
        break_even=k1 + debit / 100.0,
        gain_usd_per_vol_point=gain,
    )


def _sizing(
    needed: float,
    *,
    vx2: int,
    per_vx2: float,
    spreads: int,
    spread: CallSpread | None,
    why: str,
) -> str:
    """The sizing in words: the VX2 futures, or the call spreads, to add (or remove); for
    each one that cannot be given, why."""
    if not math.isfinite(needed):
        return "no sizing: the iron condors do not lose from a vol rise"
    futures = (
        f"{vx2:+d} VX2 future{'' if abs(vx2) == 1 else 's'}"
        if math.isfinite(per_vx2) and per_vx2 > 0.0
        else "no VX2 sizing: VX2's days to settlement are not known"
    )
    if spread is None:
        return f"{futures} (no call-spread sizing: {why})"
    return (
        f"{futures}, or {spreads:+d} VIX {spread.long_strike:g}/{spread.short_strike:g} call "
        f"spread{'' if abs(spreads) == 1 else 's'} (debit {spread.debit_usd:,.0f} $ each, "
        f"max gain {spread.max_gain_usd:,.0f} $, break-even VIX {spread.break_even:.2f})"
    )


def hedge_view(
    book: Book,
    term: TermStructure,
    now: datetime,
    market: MarketState,
    config: HedgeConfig,
    *,
    rate: float,
    vx_response_half_life_days: float,
) -> HedgeView:
    """The hedge ratio against ``config``'s band and what would bring it to the band's middle;
    ``rate`` and ``vx_response_half_life_days`` as in ``choose_spread``."""
    loss = -sum(
        s.risk.vol_shock_usd_per_point
        for s in book.strategies
        if s.kind is StrategyKind.IRON_CONDOR
    )
    gain = sum(
        s.risk.vol_shock_usd_per_point
        for s in book.strategies
        if s.kind is StrategyKind.SECOND_ENGINE
    )
    ratio = 100.0 * gain / loss if loss > 0.0 else math.nan
    target_pct = (config.band_low_pct + config.band_high_pct) / 2.0
    needed = target_pct / 100.0 * loss - gain if loss > 0.0 else math.nan
    per_vx2 = 1000.0 * vx_response(term.vx2_days, vx_response_half_life_days)
    vx1 = market.instruments.get(term.vx1_id) if term.vx1_id else None
    found = (
        spread_or_reason(
            market,
            vx1,
            now,
            config,
            rate=rate,
            vx_response_half_life_days=vx_response_half_life_days,
        )
        if vx1
        else "no VX1 future in the term structure"
    )
    spread = found if isinstance(found, CallSpread) else None
    why = "" if spread is not None else str(found)
    vx2_count = _count(needed, per_vx2)
    spread_count = _count(needed, spread.gain_usd_per_vol_point) if spread else 0
    return HedgeView(
        ratio_pct=ratio,
        condor_loss_usd_per_point=loss,
        hedge_gain_usd_per_point=gain,
        band_low_pct=config.band_low_pct,
        band_high_pct=config.band_high_pct,
        vx2_gain_usd_per_point=per_vx2,
        vx2_futures_to_add=vx2_count,
        spread=spread,
        call_spreads_to_add=spread_count,
        spread_unavailable=why,
        sizing=_sizing(
            needed, vx2=vx2_count, per_vx2=per_vx2, spreads=spread_count, spread=spread, why=why
        ),
    )
