"""The strike ladder: the extra options subscribed around each expiry the book holds, so the
forward has put-call parity pairs and the smile has strikes beyond the book's own four.

Pure functions (no ib_async): the live run asks IB for the listed strikes of a trading class
(``IbFeed.listed_strikes``), picks a ladder per expiry here, fits the ladders into the lines
the book leaves (``fit_to_lines``) and re-centres one when its underlying has moved
(``needs_recentre``). docs/ib.md, "Strike ladder", says what is subscribed and why.

A ladder per (class, expiry):
  * ``pairs`` call+put pairs at the listed strikes nearest the centre (the parity candidates);
  * ``wings`` OTM puts below the pairs and ``wings`` OTM calls above them, spread evenly over
    the listed strikes out to the book's farthest strike on that side of the centre (the
    last one at or beyond it, so the fitted smile spans every strike the book values), or the
    next listed strikes when the book has none on that side.
Rungs come nearest the money first, so a ladder cut short keeps what matters most: the pairs,
then the wings from the inside out.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from monitor.domain.instruments import Instrument, Right, option_id, parse_instrument_id

ChainKey = tuple[str, date]  # (trading class, expiry)
STEP_STRIKES = 10  # the strike step is read from this many listed strikes around the centre


@dataclass(frozen=True, slots=True)
class Ladder:
    """The ladder of one expiry: its centre, the listed strike step there, and its options
    nearest the money first."""

    chain: ChainKey
    centre: float
    step: float
    rungs: tuple[Instrument, ...]

    @property
    def label(self) -> str:
        return f"{self.chain[0]} {self.chain[1]:%Y%m%d}"


def book_chains(legs: Iterable[Instrument]) -> dict[ChainKey, list[float]]:
    """The option expiries the book holds (SPX, SPXW, VIX), each with the strikes of its
    legs, sorted."""
    chains: dict[ChainKey, set[float]] = {}
    for inst in legs:
        if inst.is_option and inst.expiry is not None and inst.strike is not None:
            chains.setdefault((inst.root, inst.expiry), set()).add(inst.strike)
    return {key: sorted(strikes) for key, strikes in sorted(chains.items())}


def strike_step(listed: Sequence[float], centre: float) -> float:
    """The spacing of the listed strikes around ``centre`` (the median gap of the
    ``STEP_STRIKES`` nearest); 1.0 with fewer than two strikes."""
    nearest = sorted(sorted(listed, key=lambda k: abs(k - centre))[:STEP_STRIKES])
    gaps = [b - a for a, b in itertools.pairwise(nearest) if b > a]
    return statistics.median(gaps) if gaps else 1.0


def _spread(candidates: Sequence[float], count: int) -> list[float]:
    """``count`` strikes of ``candidates`` (inside out) spread evenly, the last one kept."""
    if count <= 0 or not candidates:
        return []
    if len(candidates) <= count:
        return list(candidates)
    picks = [candidates[round((i + 1) * len(candidates) / count) - 1] for i in range(count)]
    return list(dict.fromkeys(picks))


def ladder_for(
    chain: ChainKey,
    book_strikes: Sequence[float],
    listed: Sequence[float],
    centre: float,
    *,
    pairs: int,
    wings: int,
) -> Ladder:
    """The ladder of ``chain`` around ``centre`` on the ``listed`` strikes (IB's, for the
    class), covering ``book_strikes`` (the book's strikes on that expiry)."""
    root, expiry = chain
    strikes = sorted(set(listed))
    step = strike_step(strikes, centre)
    middle = sorted(strikes, key=lambda k: (abs(k - centre), k))[:pairs]
    rungs: list[Instrument] = []
    for strike in middle:
        rungs += [
            _option(root, expiry, Right.CALL, strike),
            _option(root, expiry, Right.PUT, strike),
        ]
    low, high = (min(middle), max(middle)) if middle else (centre, centre)
    below = strikes[: bisect.bisect_left(strikes, low)][::-1]  # inside out
    above = strikes[bisect.bisect_right(strikes, high) :]
    puts = _spread(_out_to(below, min(book_strikes, default=low), wings, falling=True), wings)
    calls = _spread(_out_to(above, max(book_strikes, default=high), wings, falling=False), wings)
    for k in range(max(len(puts), len(calls))):  # the wings from the inside out
        if k < len(puts):
            rungs.append(_option(root, expiry, Right.PUT, puts[k]))
        if k < len(calls):
            rungs.append(_option(root, expiry, Right.CALL, calls[k]))
    return Ladder(chain, centre, step, tuple(rungs))


def _out_to(side: Sequence[float], farthest: float, wings: int, *, falling: bool) -> list[float]:
    """The listed strikes of one side (inside out) out to the first at or beyond
    ``farthest``; the next ``wings`` of them when the book reaches no further than that."""
    for k, strike in enumerate(side):
        if (strike <= farthest) if falling else (strike >= farthest):
            return list(side[: k + 1]) if k + 1 >= wings else list(side[:wings])
    return list(side)


def _option(root: str, expiry: date, right: Right, strike: float) -> Instrument:
    return parse_instrument_id(option_id(root, expiry, right, strike))


def needs_recentre(ladder: Ladder, underlying: float | None, steps: float) -> bool:
    """Whether the underlying has moved more than ``steps`` strike steps from the centre."""
    return underlying is not None and abs(underlying - ladder.centre) > steps * ladder.step


@dataclass(frozen=True, slots=True)
class Fitted:
    """The ladders' options that fit the lines left, in the order they were taken, and the
    ones left out, by ladder."""

    taken: tuple[Instrument, ...]
    left_out: dict[str, tuple[str, ...]]


def fit_to_lines(ladders: Sequence[Ladder], lines: int, already: Collection[str]) -> Fitted:
    """Shares ``lines`` among the ladders: one option of each in turn (so each expiry gets its
    fair share, and the share of a short ladder goes to the others), nearest the money first.
    Options ``already`` in the universe (a book leg at a ladder strike) take no line."""
    queues = [[i for i in ladder.rungs if i.id not in already] for ladder in ladders]
    taken: list[Instrument] = []
    seen: set[str] = set()
    depth = 0
    while len(taken) < lines and any(depth < len(q) for q in queues):
        for queue in queues:
            if depth < len(queue) and len(taken) < lines and queue[depth].id not in seen:
                taken.append(queue[depth])
                seen.add(queue[depth].id)
        depth += 1
    left_out = {
        ladder.label: tuple(i.id for i in queue if i.id not in seen)
        for ladder, queue in zip(ladders, queues, strict=True)
    }
    return Fitted(tuple(taken), {k: v for k, v in left_out.items() if v})


def underlying_of(chain: ChainKey) -> str:
    """The instrument a chain's ladder is centred on: SPX for SPX and SPXW options, the VX
    future of the same expiry for VIX options (the one they are priced on)."""
    root, expiry = chain
    underlying = _option(root, expiry, Right.CALL, 1.0).underlying
    assert underlying is not None  # every option class has one
    return underlying
