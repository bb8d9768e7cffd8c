"""Forward of an option expiry from put-call parity of quoted strikes near the money."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

NEAR_MONEY_PAIRS = 3


@dataclass(frozen=True, slots=True)
class ParityPair:
    strike: float
    call_mid: float
    put_mid: float


def parity_forward(
    pairs: Sequence[ParityPair], *, spot: float, rate: float, years: float
) -> float | None:
    """F = K + exp(rT) (C - P), taken as the median over the pairs nearest the money.

    The median of a few near-money strikes resists one bad quote; None when no pair is quoted.
    """
    if not pairs or years <= 0:
        return None
    growth = math.exp(rate * years)
    nearest = sorted(pairs, key=lambda p: abs(p.strike - spot))[:NEAR_MONEY_PAIRS]
    return statistics.median(p.strike + growth * (p.call_mid - p.put_mid) for p in nearest)
