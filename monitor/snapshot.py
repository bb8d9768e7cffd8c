"""One moment of the monitor, complete: the market inputs, the valued book and every view
computed from it. The rules, metrics, /state and sinks read only this.

A snapshot is built whole by the pipeline's step (``monitor.pipeline``); no part is filled
in later, so no reader checks for a missing stage. Before anything is valued (a live run not
connected yet) the book and its views are the "unknown" ones: NaN totals, an empty grid.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import datetime

from monitor.config import HedgeConfig, ScenariosConfig
from monitor.domain.account import AccountView
from monitor.domain.health import FeedHealth, StorageHealth
from monitor.market.hours import MarketView, market_view
from monitor.portfolio.book import Book
from monitor.portfolio.scenarios import ScenarioEngine, ScenarioGrid
from monitor.portfolio.stress import StressView
from monitor.pricing.smiles import SmileView
from monitor.signals.board import SignalBoard, SignalsView
from monitor.signals.events import EventCalendar, EventView, event_view, load_events
from monitor.signals.hedge import HedgeView
from monitor.signals.term_structure import TermStructure

NO_ACCOUNT = "no account values: not from a live IB feed"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the rules, metrics and sinks see of one moment."""

    time: datetime  # of this evaluation (the book may be older: see ``valued_at``)
    spx: float
    vix: float
    ad_nyse: float
    term: TermStructure
    book: Book
    feed: FeedHealth
    storage: StorageHealth
    scenarios: ScenarioGrid
    hedge: HedgeView
    signals: SignalsView
    events: EventView
    market: MarketView
    delta_change_15m_usd_per_pct: float = math.nan  # book delta now minus 15 minutes ago
    smile: SmileView = field(default_factory=SmileView.unknown)  # the fits valued off ("svi")
    account: AccountView = field(default_factory=lambda: AccountView.unknown(NO_ACCOUNT))
    stress: StressView = field(default_factory=StressView.unknown)  # portfolio/stress.py


@functools.cache
def _bundled_events() -> EventCalendar:
    return load_events()


def snapshot_of(
    time: datetime,
    book: Book,
    *,
    spx: float = math.nan,
    vix: float = math.nan,
    ad_nyse: float = math.nan,
    term: TermStructure | None = None,
    feed: FeedHealth | None = None,
    hedge: HedgeView | None = None,
    signals: SignalsView | None = None,
    delta_change_15m_usd_per_pct: float = math.nan,
) -> Snapshot:
    """A snapshot of ``book`` at ``time`` built by hand (tests, tools): the views not given
    are the unknown ones, the session and the next event those of ``time``."""
    return Snapshot(
        time=time,
        spx=spx,
        vix=vix,
        ad_nyse=ad_nyse,
        term=term or TermStructure.unknown(),
        book=book,
        feed=feed or FeedHealth(),
        storage=StorageHealth(),
        scenarios=ScenarioEngine(ScenariosConfig(), 0.0).unknown(),
        hedge=hedge or HedgeView.unknown(HedgeConfig()),
        signals=signals or SignalBoard().unknown(),
        events=event_view(_bundled_events(), time),
        market=market_view(time),
        delta_change_15m_usd_per_pct=delta_change_15m_usd_per_pct,
    )
