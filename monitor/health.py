"""Liveness and readiness: what /healthz and /readyz (and the systemd watchdog) report.

Ready means the monitor is watching the book: a first snapshot exists, the live feed is
connected, and during the SPX options session its market data is fresh (no older than
``max_data_age_seconds`` of session time). Outside the session quiet data is normal, so only
the first two hold; a live monitor started outside the session (its feed idling, see
``[feed] idle_outside_session``) is ready once connected and takes its first snapshot at the
open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from monitor.market.hours import market_view
from monitor.pipeline import Pipeline

DEFAULT_MAX_DATA_AGE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...]  # why not, in words; empty when ready
    market_open: bool
    connected: bool
    data_age_seconds: float  # session seconds since the last market event; NaN before one

    def document(self) -> dict[str, object]:
        age = self.data_age_seconds
        return {
            "ready": self.ready,
            "reasons": list(self.reasons),
            "market_open": self.market_open,
            "feed_connected": self.connected,
            "data_age_seconds": round(age, 3) if math.isfinite(age) else None,
        }


def readiness(
    pipeline: Pipeline, now: datetime, max_data_age_seconds: float = DEFAULT_MAX_DATA_AGE_SECONDS
) -> Readiness:
    """Readiness at ``now``: the session clock (wall clock live, replay time in a replay)."""
    view = pipeline.published  # the last evaluation, as every reader on another thread sees it
    link = pipeline.link_status() if pipeline.link_status else None
    connected = link.connected if link else True
    last = view.last_event
    age = (now - last).total_seconds() if last is not None else math.nan
    market_open = market_view(now).open
    reasons: list[str] = []
    # Live and closed, the first snapshot waits for the session (the feed idles meanwhile).
    if view.latest is None and (link is None or market_open):
        reasons.append("no book snapshot yet")
    if link is not None and link.connections == 0:
        tried = f"{link.failed_attempts} attempts failed" if link.failed_attempts else "connecting"
        why = f": {link.last_error}" if link.last_error else ""
        reasons.append(f"the live feed has not reached the broker since the start ({tried}){why}")
    elif not connected:
        why = f": {link.last_error}" if link is not None and link.last_error else ""
        reasons.append(f"the live feed is disconnected{why}")
    if market_open and not age <= max_data_age_seconds:
        shown = f"{age:,.0f} s old" if math.isfinite(age) else "missing"
        reasons.append(
            f"market data {shown} during market hours (limit {max_data_age_seconds:g} s)"
        )
    return Readiness(not reasons, tuple(reasons), market_open, connected, age)
