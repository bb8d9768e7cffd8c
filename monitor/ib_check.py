"""`condor-monitor ib-check`: one read-only look at the IB account through the live adapter.

It connects once with the config's ``[feed]``, imports the positions as a live run would,
subscribes the book and the indexes, waits for quotes, and reports: the account, every
position with how it was mapped (strategy, expiration against IB's last trading day, the
settlement moment), the market data type of every line and the entitlement errors. The exit
status says whether every leg of the book can be priced from quotes.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from monitor.config import IbFeedConfig
from monitor.domain.instruments import NEW_YORK, Instrument
from monitor.domain.quotes import IndexValue, Quote
from monitor.errors import MonitorError
from monitor.feeds.ib import IbFeed, MarketDataType
from monitor.feeds.ib_contracts import settlement_from
from monitor.feeds.ib_errors import ENTITLEMENT
from monitor.live import with_underlyings
from monitor.market.hours import market_view
from monitor.portfolio.grouping import group_positions
from monitor.portfolio.model import Portfolio
from monitor.pricing.expiry import settlement

POLL_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class PositionLine:
    strategy: str
    contract: str
    quantity: int
    settles: str  # "AM 2026-04-17 09:30 ET"
    expiration: str  # IB's realExpirationDate (or derived), YYYY-MM-DD
    last_trade: str  # IB's last trading day and time
    ib_settlement: str  # AM/PM as IB's dates say, "?" when they do not tell


@dataclass(frozen=True, slots=True)
class MarketLine:
    instrument: str
    leg: bool
    data_type: str  # live, frozen, delayed, delayed_frozen, none
    quote: str  # "bid 31.90 / ask 32.40", "6,800.25", "-"
    priced: bool  # a two-sided quote (options, futures) or a value (indexes)
    error: str  # entitlement error code and meaning, or ""


@dataclass(slots=True)
class CheckReport:
    address: str
    client_id: int
    server_version: int
    accounts: list[str]
    market_open: bool
    data_type_asked: str
    positions: list[PositionLine] = field(default_factory=list)
    not_modelled: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    lines: list[MarketLine] = field(default_factory=list)

    @property
    def unpriced_legs(self) -> list[str]:
        return [m.instrument for m in self.lines if m.leg and not m.priced]


def _moment(inst: Instrument) -> str:
    if inst.expiry is None or inst.settlement is None:
        return "-"
    at = settlement(inst).astimezone(NEW_YORK)
    return f"{inst.settlement.value} {at:%Y-%m-%d %H:%M} ET"


def _iso(yyyymmdd: str) -> str:
    text = yyyymmdd[:8]
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 else "-"


def _price(value: float | None) -> str:
    return f"{value:,.2f}" if value is not None and math.isfinite(value) else "-"


def _two_sided(quote: Quote) -> bool:
    bid, ask = quote.bid, quote.ask
    return (
        bid is not None
        and ask is not None
        and math.isfinite(bid)
        and math.isfinite(ask)
        and 0.0 < bid <= ask
    )


def _data_type(code: int | None) -> str:
    if code in (1, 2, 3, 4):
        return MarketDataType(code).name.lower()
    return "none"


async def _quotes(feed: IbFeed, wanted: set[str], wait: float) -> dict[str, Quote | IndexValue]:
    """The newest event per instrument, until every wanted one is priced or ``wait`` is up."""
    latest: dict[str, Quote | IndexValue] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait

    def done() -> bool:
        for inst_id in wanted:
            event = latest.get(inst_id)
            if event is None or (isinstance(event, Quote) and not _two_sided(event)):
                return False
        return True

    while loop.time() < deadline and not done():
        batch = await feed.next_batch(POLL_SECONDS)
        if batch is not None:
            latest |= {e.instrument: e for e in batch.events}
    return latest


async def collect(
    config: IbFeedConfig,
    instruments: list[Instrument],
    file_portfolio: Portfolio,
    *,
    wait_seconds: float,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CheckReport:
    """Connects, maps the positions, subscribes and waits for quotes; disconnects."""
    market_open = market_view(clock()).open
    if not market_open and config.market_data_type == "live":
        # IB's last quotes while the market is closed
        config = config.model_copy(update={"market_data_type": "frozen"})
    feed = IbFeed(config, instruments, clock=clock)
    address = f"{config.host}:{config.port}"
    try:
        try:
            await feed.connect()
        except (ConnectionError, OSError, TimeoutError) as exc:
            raise MonitorError(f"cannot reach IB: {feed.describe_failure(exc)}") from None
        positions, skipped = await feed.positions()
        grouping = group_positions(positions, file_portfolio, source=Path("IB account"))
        legs = [leg.instrument for leg in grouping.portfolio.legs]
        await feed.set_instruments(with_underlyings(instruments + legs), [i.id for i in legs])
        leg_ids = {i.id for i in legs}
        latest = await _quotes(feed, leg_ids | {"SPX", "VIX"}, wait_seconds)
        report = CheckReport(
            address=address,
            client_id=feed.client_id,
            server_version=feed.server_version(),
            accounts=feed.accounts(),
            market_open=market_open,
            data_type_asked=config.market_data_type,
            not_modelled=skipped,
            differences=list(grouping.differences),
        )
        for leg in grouping.portfolio.legs:
            listing = feed.listings.get(leg.instrument.id)
            ib_settles = settlement_from(listing) if listing is not None else None
            report.positions.append(
                PositionLine(
                    strategy=leg.strategy,
                    contract=leg.instrument.id,
                    quantity=leg.quantity,
                    settles=_moment(leg.instrument),
                    expiration=_iso(listing.real_expiration) if listing else "-",
                    last_trade=(
                        f"{_iso(listing.last_trade_date)} {listing.last_trade_time} "
                        f"{listing.time_zone}".strip()
                        if listing
                        else "-"
                    ),
                    ib_settlement=ib_settles.value if ib_settles is not None else "?",
                )
            )
        for inst_id in sorted(feed.instruments, key=lambda i: (i not in leg_ids, i)):
            status = feed.status[inst_id]
            event = latest.get(inst_id)
            if isinstance(event, IndexValue):
                text, priced = _price(event.value), True
            elif isinstance(event, Quote):
                text = f"bid {_price(event.bid)} / ask {_price(event.ask)}"
                priced = _two_sided(event)
            else:
                text, priced = "-", False
            code = status.denied_code
            error = f"{code} {ENTITLEMENT.get(code, '')}".strip() if code is not None else ""
            if inst_id not in feed.listings:
                error = "unknown to IB (no contract with this expiration)"
            report.lines.append(
                MarketLine(
                    instrument=inst_id,
                    leg=inst_id in leg_ids,
                    data_type=_data_type(status.market_data_type),
                    quote=text,
                    priced=priced,
                    error=error,
                )
            )
        return report
    finally:
        await feed.close()


def render(report: CheckReport) -> str:
    """The report as text, one table per part."""
    out = [
        (
            f"IB at {report.address}, client id {report.client_id}, server version "
            f"{report.server_version}, account(s) {', '.join(report.accounts) or '-'}"
        ),
        (
            f"market {'open' if report.market_open else 'closed'}; market data asked: "
            f"{report.data_type_asked}"
        ),
        "",
        f"Positions ({len(report.positions)} legs):",
    ]
    rows: list[tuple[str, ...]] = [
        ("strategy", "contract", "qty", "settles", "expiration", "last trade (IB)", "IB")
    ]
    rows += [
        (
            p.strategy,
            p.contract,
            f"{p.quantity:+d}",
            p.settles,
            p.expiration,
            p.last_trade,
            p.ib_settlement,
        )
        for p in report.positions
    ]
    out += _table(rows)
    if report.not_modelled:
        out.append(f"Not modelled: {', '.join(report.not_modelled)}")
    out += [f"Differs from the portfolio file: {d}" for d in report.differences]
    out += ["", f"Market data ({len(report.lines)} lines):"]
    rows = [("instrument", "leg", "type", "quote (points)", "priced", "error")]
    rows += [
        (
            m.instrument,
            "leg" if m.leg else "",
            m.data_type,
            m.quote,
            "yes" if m.priced else "no",
            m.error,
        )
        for m in report.lines
    ]
    out += _table(rows)
    unpriced = report.unpriced_legs
    out.append("")
    if unpriced:
        out.append(
            f"NOT OK: {len(unpriced)} leg(s) cannot be priced from quotes: {', '.join(unpriced)}"
        )
    else:
        out.append("OK: every leg of the book is priced from quotes")
    return "\n".join(out)


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
