"""A broker position: what the account holds of one instrument, as the feed reports it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitor.domain.instruments import Instrument


@dataclass(frozen=True, slots=True)
class Position:
    instrument: Instrument
    quantity: int  # contracts, positive long
    # IB's average cost per contract, multiplier included (positive for shorts too); NaN
    # when the broker gave none.
    avg_cost: float = math.nan
