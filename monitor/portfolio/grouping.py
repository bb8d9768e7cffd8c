"""A book from broker positions: iron condors found automatically, the VIX layer tagged.

The portfolio file, when given, overrides: each of its strategies keeps its name and kind
and takes the positions of the contracts it lists, at the broker's quantity (the account is
the truth; a different quantity in the file is reported). The other positions are grouped
here:
- VIX futures and VIX options join the file's Second Engine layer (its first strategy of kind
  ``second_engine``), or else form a ``SECOND-ENGINE`` layer.
- SPX and SPXW options of one class and expiry are matched into iron condors: a long put
  below a short put below a short call below a long call (the nearest wings), sized by the
  smallest of the four, until none is left; what cannot be matched stays as an ``other``
  strategy of that class and expiry.
Each leg's entry price (for P&L) is the file's where it gives one, else the account's average
cost over the contract's multiplier.
Every strategy name is unique: a generated name that a file strategy already has takes a
numbered suffix (``IC-SPXW-20260320-2``), so no two strategies share metric series or a row
of ``/state``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from monitor.domain.instruments import Instrument, Kind, Right
from monitor.domain.positions import Position
from monitor.portfolio.model import Leg, Portfolio, Strategy, StrategyKind

SECOND_ENGINE = "SECOND-ENGINE"


@dataclass(frozen=True, slots=True)
class Grouping:
    portfolio: Portfolio
    differences: tuple[str, ...]  # file quantities that differ from the account's
    joined: tuple[str, ...] = ()  # account positions added to a file strategy


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3`` ... when a strategy already has it; then taken."""
    chosen, n = name, 1
    while chosen in taken:
        n += 1
        chosen = f"{name}-{n}"
    taken.add(chosen)
    return chosen


def _condor(held: dict[Instrument, int]) -> tuple[tuple[Instrument, ...], int] | None:
    """A condor left in one class and expiry (from the highest short put), its size, or None."""
    puts = sorted((i for i in held if i.right is Right.PUT), key=lambda i: i.strike or 0.0)
    calls = sorted((i for i in held if i.right is Right.CALL), key=lambda i: i.strike or 0.0)
    for short_put in reversed([i for i in puts if held[i] < 0]):
        for short_call in [i for i in calls if held[i] < 0]:
            if (short_call.strike or 0.0) <= (short_put.strike or 0.0):
                continue
            long_puts = [
                i for i in puts if held[i] > 0 and (i.strike or 0) < (short_put.strike or 0)
            ]
            long_calls = [
                i for i in calls if held[i] > 0 and (i.strike or 0) > (short_call.strike or 0)
            ]
            if long_puts and long_calls:
                legs = (long_puts[-1], short_put, short_call, long_calls[0])  # nearest wings
                return legs, min(abs(held[i]) for i in legs)
    return None


def _label(inst: Instrument) -> str:
    assert inst.expiry is not None  # options have an expiry
    return f"{inst.root}-{inst.expiry:%Y%m%d}"


def group_positions(
    positions: Sequence[Position], overrides: Portfolio | None = None, *, source: Path
) -> Grouping:
    held = {p.instrument: p.quantity for p in positions if p.quantity != 0}
    strategies: list[Strategy] = []
    differences: list[str] = []
    for spec in overrides.strategies if overrides else ():
        kept: list[Leg] = []
        for leg in spec.legs:
            quantity = held.pop(leg.instrument, 0)
            if quantity != leg.quantity:
                differences.append(
                    f"{spec.name} {leg.instrument.id}: file {leg.quantity:+d}, "
                    f"account {quantity:+d} (the account's is used)"
                )
            if quantity:
                kept.append(Leg(spec.name, leg.instrument, quantity, leg.entry_price))
        if kept:
            strategies.append(Strategy(spec.name, spec.kind, tuple(kept)))
    taken = {spec.name for spec in overrides.strategies} if overrides else set()
    joined: list[str] = []
    vix_layer = sorted((i for i in held if i.root in {"VX", "VIX"}), key=lambda i: i.id)
    if vix_layer:
        layer = next(
            (
                spec
                for spec in (overrides.strategies if overrides else ())
                if spec.kind is StrategyKind.SECOND_ENGINE
            ),
            None,
        )
        name = layer.name if layer is not None else _unique(SECOND_ENGINE, taken)
        extra = tuple(Leg(name, i, held.pop(i)) for i in vix_layer)
        if layer is not None:
            joined += [f"{leg.instrument.id} {leg.quantity:+d} joined {name}" for leg in extra]
        at = next((n for n, s in enumerate(strategies) if s.name == name), None)
        if at is None:
            strategies.append(Strategy(name, StrategyKind.SECOND_ENGINE, extra))
        else:  # the file's layer, with the legs it listed
            strategies[at] = Strategy(name, StrategyKind.SECOND_ENGINE, strategies[at].legs + extra)
    by_expiry: dict[str, dict[Instrument, int]] = defaultdict(dict)
    for inst, quantity in held.items():
        if inst.kind is Kind.OPTION:
            by_expiry[_label(inst)][inst] = quantity
    for label, group in sorted(by_expiry.items()):
        while (found := _condor(group)) is not None:
            legs_found, size = found
            name = _unique(f"IC-{label}", taken)
            signs = (1, -1, -1, 1)
            strategies.append(
                Strategy(
                    name,
                    StrategyKind.IRON_CONDOR,
                    tuple(Leg(name, i, s * size) for i, s in zip(legs_found, signs, strict=True)),
                )
            )
            for inst, sign in zip(legs_found, signs, strict=True):
                group[inst] -= sign * size
                if group[inst] == 0:
                    del group[inst]
        if group:
            name = _unique(f"OTHER-{label}", taken)
            legs = tuple(Leg(name, i, q) for i, q in sorted(group.items(), key=lambda x: x[0].id))
            strategies.append(Strategy(name, StrategyKind.OTHER, legs))
    account = overrides.account_size_usd if overrides else None
    costs = {
        p.instrument: p.avg_cost / p.instrument.multiplier
        for p in positions
        if math.isfinite(p.avg_cost) and p.avg_cost > 0.0
    }
    priced = tuple(
        Strategy(s.name, s.kind, tuple(_with_cost(leg, costs) for leg in s.legs))
        for s in strategies
    )
    return Grouping(Portfolio(source, priced, account), tuple(differences), tuple(joined))


def _with_cost(leg: Leg, costs: dict[Instrument, float]) -> Leg:
    """``leg`` with the account's average price where the file gave no entry price."""
    if math.isfinite(leg.entry_price) or leg.instrument not in costs:
        return leg
    return replace(leg, entry_price=costs[leg.instrument])
