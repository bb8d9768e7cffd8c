"""Sanity bounds on every price and index value before the market state takes it.

A feed can send what no market can: an SPX of 0 or 1e300, an option at 1e-300, an SPX a
quarter lower five seconds after the last print. Such a tick is rejected: counted by reason,
logged once per instrument and reason, never used and never fatal; the instrument keeps its
last good value (which then ages, so staleness rules see the gap).

Three kinds of bound (``BOUNDS``, per instrument class; docs/faults.md has the table):

* absolute: a price must be finite and non-negative; a positive price below ``floor`` is
  below any tick the class trades in, one above ``cap`` is not a price of that class (an
  index value, which has no bid of 0, must lie within [floor, cap]); a put is worth less
  than its strike;
* spread: a future's two-sided quote wider than ``max_spread`` of its mid is no market;
* move: an index value or a future's mid may differ from the last good one by at most
  ``tick_move`` plus ``move_per_minute`` for each minute since it (in log terms), never more
  than ``max_ratio``; a bad print five seconds after a good one is judged against five
  seconds of movement, a value after an hour without data against an hour's. A value past
  that is a ``jump``. ``JUMP_CONFIRMATIONS`` values among the last ``JUMP_MEMORY`` jumps
  within ``JUMP_WINDOW`` that agree with each other (by the same rule) make the newest of
  them the new level, so a genuine gap (a halt, a reopening, a restart across days) is taken
  even with an outlier or a stale print among its first values; a lone outlier, or a few
  far apart in time, never is. Options have no move bound: a cheap
  wing can rightly move tenfold in minutes.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from monitor.domain.instruments import Instrument, Kind
from monitor.domain.quotes import Event, IndexValue, Quote

log = structlog.get_logger(__name__)

JUMP_CONFIRMATIONS = 3  # agreeing values that make a jump the new level
JUMP_MEMORY = 5  # the latest jumps of an instrument, among which they are looked for
JUMP_WINDOW = timedelta(minutes=1)  # ... if they came within this time of the newest


@dataclass(frozen=True, slots=True)
class Bounds:
    """What a believable price of one instrument class looks like."""

    floor: float  # smallest positive price (options, futures) or value (indexes)
    cap: float  # largest price or value
    max_ratio: float | None = None  # largest move from the last good value, as a ratio
    tick_move: float = 0.0  # largest |ln(new / last good)| at no time apart
    move_per_minute: float = 0.0  # what each minute since the last good value adds to it
    max_spread: float | None = None  # widest two-sided quote, as a fraction of its mid
    signed: bool = False  # a count such as NYSE net advances: |value| <= cap, any sign

    def allowed_move(self, minutes: float) -> float:
        """The largest |ln(new / last good)| believable ``minutes`` after the last good."""
        assert self.max_ratio is not None
        return min(math.log(self.max_ratio), self.tick_move + self.move_per_minute * minutes)


# SPX never moved more than 20.5 % in a session (1987; limit-down halts at 20 % since 2013)
# and about 6 % in its fastest minutes (2010-05-06): 3 % at once plus 2 % a minute, a third
# at most. VIX moved 60 % in an hour before the 2024-08-05 open and quadrupled at most (2018):
# 25 % at once plus 10 % a minute, five times at most; the futures move less than spot VIX,
# and quote 0.05 wide in calm markets, a point or two in a spike. Options' caps exceed any
# premium of the class.
BOUNDS: dict[tuple[Kind, str], Bounds] = {
    (Kind.INDEX, "SPX"): Bounds(
        floor=100.0, cap=100_000.0, max_ratio=1.0 / 0.75, tick_move=0.03, move_per_minute=0.02
    ),
    (Kind.INDEX, "VIX"): Bounds(
        floor=5.0, cap=250.0, max_ratio=5.0, tick_move=0.25, move_per_minute=0.10
    ),
    (Kind.INDEX, "AD-NYSE"): Bounds(floor=0.0, cap=10_000.0, signed=True),
    (Kind.FUTURE, "VX"): Bounds(
        floor=5.0,
        cap=250.0,
        max_ratio=5.0,
        tick_move=0.15,
        move_per_minute=0.05,
        max_spread=0.25,
    ),
    (Kind.OPTION, "SPX"): Bounds(floor=0.005, cap=50_000.0),
    (Kind.OPTION, "SPXW"): Bounds(floor=0.005, cap=50_000.0),
    (Kind.OPTION, "VIX"): Bounds(floor=0.005, cap=250.0),
}
# A class without its own row (none today): finite and non-negative only.
NO_BOUNDS = Bounds(floor=0.0, cap=math.inf)


class Reason:
    """Why a tick was rejected: the label of the counter and the log line."""

    NOT_FINITE = "not_finite"
    NEGATIVE = "negative"
    BELOW_FLOOR = "below_floor"
    ABOVE_CAP = "above_cap"
    ABOVE_STRIKE = "above_strike"  # a put worth more than its strike
    WIDE_SPREAD = "wide_spread"  # a future quoted wider than its class's max_spread
    JUMP = "jump"


@dataclass(slots=True)
class _Level:
    value: float
    time: datetime


@dataclass(slots=True)
class TickFilter:
    """Judges each event against its class's bounds; mutable, owned by the market state."""

    instruments: dict[str, Instrument]
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    _last_good: dict[str, _Level] = field(default_factory=dict)  # index value or quote mid
    _jumps: dict[str, deque[_Level]] = field(default_factory=dict)  # the latest jumps
    _logged: set[tuple[str, str]] = field(default_factory=set)

    def last_good(self, inst_id: str) -> float | None:
        """The level the next value of ``inst_id`` is judged against."""
        level = self._last_good.get(inst_id)
        return level.value if level is not None else None

    def admit(self, event: Event, now: datetime) -> bool:
        """True when the event (of the batch at ``now``) may be used; a rejected one is
        counted and logged once per instrument and reason."""
        inst = self.instruments.get(event.instrument)
        bounds = _bounds(inst)
        if isinstance(event, IndexValue):
            reason, detail = _index_problem(event.value, bounds)
            level: float | None = event.value
        else:
            reason, detail = _quote_problem(event, bounds, inst)
            level = _mid(event)
        if reason is None and level is not None and bounds.max_ratio is not None:
            reason, detail = self._jump(event.instrument, _Level(level, now), bounds)
        if reason is not None:
            self._reject(event.instrument, reason, detail)
            return False
        if level is not None:
            self._last_good[event.instrument] = _Level(level, now)
        return True

    def _jump(self, inst_id: str, level: _Level, bounds: Bounds) -> tuple[str | None, str]:
        last = self._last_good.get(inst_id)
        if last is None or _agrees(level, last, bounds):
            return None, ""
        jumps = self._jumps.setdefault(inst_id, deque(maxlen=JUMP_MEMORY))
        while jumps and level.time - jumps[0].time > JUMP_WINDOW:
            jumps.popleft()  # outliers far apart in time confirm nothing together
        agreeing = 1 + sum(1 for earlier in jumps if _agrees(level, earlier, bounds))
        if agreeing >= JUMP_CONFIRMATIONS:
            jumps.clear()
            log.warning(
                "tick_jump_confirmed",
                instrument=inst_id,
                previous=last.value,
                level=level.value,
                confirmations=agreeing,
            )
            return None, ""
        jumps.append(level)
        minutes = (level.time - last.time).total_seconds() / 60.0
        allowed = math.exp(bounds.allowed_move(minutes))
        return Reason.JUMP, (
            f"{level.value:g} is more than {allowed:.3g}x away from {last.value:g}, "
            f"{minutes:.2f} minutes before"
        )

    def _reject(self, inst_id: str, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        if (inst_id, reason) not in self._logged:
            self._logged.add((inst_id, reason))
            log.warning(
                "tick_rejected",
                instrument=inst_id,
                reason=reason,
                detail=detail,
                note="counted, not used; logged once per instrument and reason",
            )


def _agrees(level: _Level, reference: _Level, bounds: Bounds) -> bool:
    """``level`` is a believable move from ``reference``, given the time between them."""
    if reference.value <= 0.0 or level.value <= 0.0:
        return False
    minutes = abs((level.time - reference.time).total_seconds()) / 60.0
    return abs(math.log(level.value / reference.value)) <= bounds.allowed_move(minutes)


def _bounds(inst: Instrument | None) -> Bounds:
    if inst is None:
        return NO_BOUNDS
    return BOUNDS.get((inst.kind, inst.root), NO_BOUNDS)


def _index_problem(value: float, bounds: Bounds) -> tuple[str | None, str]:
    if not math.isfinite(value):
        return Reason.NOT_FINITE, f"value {value!r}"
    if bounds.signed:
        if abs(value) > bounds.cap:
            return Reason.ABOVE_CAP, f"|{value:g}| is above {bounds.cap:g}"
        return None, ""
    if value < 0.0:
        return Reason.NEGATIVE, f"value {value:g}"
    if value < bounds.floor or value == 0.0:
        return Reason.BELOW_FLOOR, f"value {value:g} is below {bounds.floor:g}"
    if value > bounds.cap:
        return Reason.ABOVE_CAP, f"value {value:g} is above {bounds.cap:g}"
    return None, ""


def _quote_problem(quote: Quote, bounds: Bounds, inst: Instrument | None) -> tuple[str | None, str]:
    for side, price in (("bid", quote.bid), ("ask", quote.ask), ("last", quote.last)):
        if price is None:
            continue
        if not math.isfinite(price):
            return Reason.NOT_FINITE, f"{side} {price!r}"
        if price < 0.0:
            return Reason.NEGATIVE, f"{side} {price:g}"
        if 0.0 < price < bounds.floor:
            return Reason.BELOW_FLOOR, f"{side} {price:g} is below {bounds.floor:g}"
        if price > bounds.cap:
            return Reason.ABOVE_CAP, f"{side} {price:g} is above {bounds.cap:g}"
        strike = inst.strike if inst is not None and inst.is_option and not inst.is_call else None
        if strike is not None and price > strike:
            return Reason.ABOVE_STRIKE, f"{side} {price:g} of a put struck at {strike:g}"
    mid = _mid(quote)
    if bounds.max_spread is not None and mid is not None:
        assert quote.bid is not None
        assert quote.ask is not None
        spread = quote.ask - quote.bid
        if spread > bounds.max_spread * mid:
            return Reason.WIDE_SPREAD, (
                f"{quote.bid:g}/{quote.ask:g} is {spread / mid:.0%} of its mid "
                f"(at most {bounds.max_spread:.0%})"
            )
    return None, ""


def _mid(quote: Quote) -> float | None:
    """The level a quote's jump is judged by: its two-sided mid, when it has one."""
    if quote.bid is None or quote.ask is None or quote.bid <= 0.0 or quote.bid > quote.ask:
        return None
    return 0.5 * (quote.bid + quote.ask)
