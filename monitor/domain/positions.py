"""A broker position: what the account holds of one instrument, as the feed reports it."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.domain.instruments import Instrument


@dataclass(frozen=True, slots=True)
class Position:
    instrument: Instrument
    quantity: int  # contracts, positive long
