"""Time to expiry as a year fraction.

Convention: actual time to the settlement moment, counted in seconds of calendar time and
divided by a 365-day year (ACT/365F to the second). The settlement moment follows the
contract: SPXW at 16:00 ET on expiry day, SPX (AM) and VIX at the 09:30 ET opening quotation.
"""

from __future__ import annotations

from datetime import datetime

from monitor.domain.instruments import Instrument

SECONDS_PER_YEAR = 365.0 * 86_400.0


def year_fraction(inst: Instrument, now: datetime) -> float:
    """Years from ``now`` to the instrument's settlement; zero or negative once it has settled."""
    return (inst.settles_at() - now).total_seconds() / SECONDS_PER_YEAR
