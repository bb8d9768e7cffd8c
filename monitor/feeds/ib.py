"""The live Interactive Brokers feed, read-only, on ib_async: the only module that imports it.

It connects with a client id of its own (the next one when IB answers 326, "client id in
use"), finds every instrument in IB's contract details (by expiration month, matched on the
expiration date: ib_contracts.py says why), subscribes each within a budget of market-data lines
(indexes first, then the book's legs, then the rest of the curve, the strike ladder last:
ladder.py), and turns ticker updates
into the EventBatch stream a replay gives. Between two reads of the consumer it keeps only the
newest event per instrument (conflation), so a burst of ticks while the pipeline is busy costs
memory by instruments, not by ticks, and the next batch carries the newest quotes. It
reconnects with capped, jittered backoff and rebuilds every subscription; IB's notices are
handled by class (ib_errors.py): 1101 and a farm's OK after a broken-farm notice resubscribe
everything, entitlement errors fall back to delayed data once and mark the instrument, 1100
marks the feed disconnected. An instrument whose line IB serves delayed (its market data type
3 or 4, or notice 10167) is marked delayed.

What IB's tickers hold becomes events in ib_ticks.py, and contracts become plain listings in
ib_contracts.py: pure functions, tested from IB's own messages without a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

import ib_async
import structlog

from monitor.backoff import Backoff
from monitor.closing import AsyncClosing
from monitor.config import IbFeedConfig
from monitor.domain.account import AccountValues
from monitor.domain.instruments import Instrument, Kind
from monitor.domain.positions import Position
from monitor.domain.quotes import Event, EventBatch, IndexValue, Quote
from monitor.feeds.ib_contracts import (
    IbListing,
    listing_instrument,
    pick_listing,
    settlement_from,
    terms_for,
)
from monitor.feeds.ib_errors import FARM_BROKEN, FARM_RECOVERY, IbErrorClass, classify
from monitor.feeds.ib_ticks import event_of
from monitor.market.hours import market_view

log = structlog.get_logger(__name__)


class MarketDataType(IntEnum):
    """IB's market data types (reqMarketDataType)."""

    LIVE = 1
    FROZEN = 2
    DELAYED = 3
    DELAYED_FROZEN = 4


DELAYED_TYPES = frozenset({MarketDataType.DELAYED, MarketDataType.DELAYED_FROZEN})


# Reconnection waits about this long after a loss, then doubles (jittered) up to [feed]
# reconnect_max_seconds.
RECONNECT_FIRST_SECONDS = 1.0


@dataclass(slots=True)
class InstrumentStatus:
    """What the feed knows about one instrument, for metrics and rule variables."""

    subscribed: bool = False
    market_data_type: int | None = None  # as IB reports it for the subscription
    denied_code: int | None = None  # entitlement error; asked again delayed if allowed
    last_update: datetime | None = None

    @property
    def delayed(self) -> bool:
        """Subscribed, and IB serves the line delayed (type 3 or 4, or its notice 10167)."""
        return self.subscribed and self.market_data_type in DELAYED_TYPES


@dataclass(slots=True)
class FeedState:
    connected: bool = False
    ib_connected: bool = True  # False between IB's 1100 and its 1101/1102
    connections: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # by IbErrorClass
    broken_farms: set[int] = field(default_factory=set)
    unsubscribed_for_budget: tuple[str, ...] = ()
    last_error: str = ""  # why the last connection attempt failed; empty once connected
    failed_attempts: int = 0  # connection attempts failed since the last connection
    silent_recoveries: int = 0  # resubscribes and reconnects made for a silent feed
    # Session time market data was first asked for in this run, or the last wake for the
    # session; the data age counts from here until the first market event.
    data_requested_at: datetime | None = None
    # Instrument updates replaced by a newer one of the same instrument before the consumer
    # took them (a packet's several IB ticks of one instrument are one update already).
    conflated_ticks: int = 0


def listing_of(contract: ib_async.Contract, details: Any = None) -> IbListing:
    """IB's contract (and its details, when asked for) as plain values."""
    return IbListing(
        con_id=int(contract.conId or 0),
        sec_type=contract.secType,
        symbol=contract.symbol,
        trading_class=contract.tradingClass,
        last_trade_date=contract.lastTradeDateOrContractMonth,
        real_expiration=getattr(details, "realExpirationDate", "") or "",
        right=contract.right,
        strike=float(contract.strike or 0.0),
        last_trade_time=getattr(details, "lastTradeTime", "") or "",
        time_zone=getattr(details, "timeZoneId", "") or "",
        local_symbol=contract.localSymbol,
    )


DETAILS_TIMEOUT_SECONDS = 20.0


def _priority(inst: Instrument, legs: set[str], ladder: Mapping[str, int]) -> tuple[int, int, str]:
    """Indexes, the book's legs, the curve, other instruments, then the strike ladder in its
    own order (nearest the money first, the expiries in turn)."""
    if inst.kind is Kind.INDEX:
        return (0, 0, inst.id)
    if inst.id in legs:
        return (1, 0, inst.id)
    if inst.id in ladder:
        return (4, ladder[inst.id], inst.id)
    return (2 if inst.kind is Kind.FUTURE else 3, 0, inst.id)


class IbFeed(AsyncClosing):
    """One IB connection kept up for the day; ``batches`` yields what it hears. ``run`` (or
    ``connect``) connects; ``close``, or leaving its ``async with`` block, disconnects."""

    def __init__(
        self,
        config: IbFeedConfig,
        instruments: Sequence[Instrument],
        *,
        legs: Sequence[str] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``config`` is the ``[feed]`` section of a live run (docs/ib.md), as it is."""
        self.config = config
        self.market_data_type = MarketDataType[config.market_data_type.upper()]
        self.backoff = Backoff(RECONNECT_FIRST_SECONDS, config.reconnect_max_seconds)
        self.instruments = {i.id: i for i in instruments}
        self.legs = set(legs)
        # The strike ladder's options (docs/ib.md, "Strike ladder") by their rank: subscribed
        # after everything else, and dropped with a warning when IB does not list them.
        self.ladder: dict[str, int] = {}
        self.clock = clock
        self.ib = ib_async.IB()
        self.state = FeedState()
        self.status = {i: InstrumentStatus() for i in self.instruments}
        self._client_id = config.client_id
        self._contracts: dict[str, ib_async.Contract] = {}
        self._by_con_id: dict[int, str] = {}
        # What IB's contract details say of each instrument (subscribed or held), by our id.
        self.listings: dict[str, IbListing] = {}
        self._found: dict[str, ib_async.Contract] = {}  # resolved, not necessarily subscribed
        self._tickers: dict[str, ib_async.Ticker] = {}
        self._history_contracts: set[int] = set()  # contracts of history requests in flight
        # The newest event per instrument since the consumer last took a batch, and the
        # time of the newest of them: bounded by the instruments, whatever the burst.
        self._pending: dict[str, Event] = {}
        self._pending_time: datetime | None = None
        self._pending_set = asyncio.Event()  # set while something is pending
        self._lost = asyncio.Event()
        self._last_stamp: datetime | None = None
        self._last_data = time.monotonic()  # when IB last sent market data (monotonic s)
        self._silent_steps = 0  # 1 after a resubscribe for silence, until data comes
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._on_disconnected
        self.ib.pendingTickersEvent += self._on_tickers
        self.ib.positionEvent += self._on_position
        self.ib.accountValueEvent += self._on_account_value
        # The account's margin and liquidity as IB sends them (monitor.domain.account).
        self.account = AccountValues()
        self.positions_changed = False  # set on every position message; the owner clears it
        self.idle = False  # outside the session: connected, nothing subscribed

    # -- connection -----------------------------------------------------------------------

    async def connect(self) -> None:
        """Connects once (trying further client ids on 326), qualifies and subscribes."""
        s = self.config
        last: Exception | None = None
        for _attempt in range(s.client_id_attempts):
            try:
                await self._connect_once()
            except (ConnectionError, OSError, TimeoutError) as exc:
                last = exc
                if self._client_id_refused:
                    self._client_id_refused = False
                    self._client_id += 1
                    log.warning("ib_client_id_in_use", next_client_id=self._client_id)
                    continue
                raise
            break
        else:
            raise ConnectionError(f"no free client id after {s.client_id_attempts} tries: {last}")
        self._lost.clear()
        self._client_id_refused = False
        self.state.ib_connected = True
        log.info("ib_connected", host=s.host, port=s.port, client_id=self._client_id)
        await self._qualify()
        if not self.ib.isConnected():  # lost while the contracts were looked up
            raise ConnectionError("the connection closed while contracts were looked up")
        # Connected for the owner only now: the contracts are known, the book can be built.
        self.state.connected = True
        self.state.connections += 1
        self.state.last_error = ""
        self.state.failed_attempts = 0
        if not self.idle:
            self.subscribe_all()

    async def _connect_once(self) -> None:
        """One connection attempt with the current client id; a 326 ends it at once (IB
        closes such a connection, but the client would wait out its whole timeout)."""
        s = self.config
        self._refused = asyncio.Event()
        attempt = asyncio.ensure_future(
            self.ib.connectAsync(
                s.host,
                s.port,
                clientId=self._client_id,
                timeout=s.connect_timeout_seconds,
                readonly=True,
                account=s.account,
                # Positions, and the account's values (margin, liquidity) when IB knows which
                # account: [feed] account, or the only one of the login.
                fetchFields=ib_async.StartupFetch.POSITIONS | ib_async.StartupFetch.ACCOUNT_UPDATES,
            )
        )
        refused = asyncio.ensure_future(self._refused.wait())
        try:
            await asyncio.wait({attempt, refused}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            refused.cancel()
            if not attempt.done():
                attempt.cancel()
            await asyncio.gather(attempt, refused, return_exceptions=True)
        if not attempt.cancelled() and attempt.exception() is None:
            return
        if self._client_id_refused:
            self.ib.disconnect()
            raise ConnectionError(f"client id {self._client_id} is in use (IB 326)")
        exc = attempt.exception() if not attempt.cancelled() else None
        raise exc if exc is not None else ConnectionError("connection attempt cancelled")

    _client_id_refused = False
    _refused: asyncio.Event | None = None

    async def set_instruments(
        self,
        instruments: Sequence[Instrument],
        legs: Sequence[str],
        *,
        ladder: Sequence[str] = (),
    ) -> None:
        """Makes ``instruments`` the feed's universe (the book changed during the day, or a
        ladder moved): new ones are qualified and subscribed, those no longer wanted
        cancelled; every other subscription stays as it is (IB restarts a re-requested line
        from nothing). ``ladder`` names the strike ladder's options among them, in the order
        the line budget takes them; one IB does not list is dropped (``instruments`` then no
        longer has it)."""
        wanted = {inst.id: inst for inst in instruments}
        for inst_id in [i for i in self.instruments if i not in wanted]:
            del self.instruments[inst_id]
            self.status.pop(inst_id, None)
            self._pending.pop(inst_id, None)  # the book no longer has it
        if not self._pending:
            self._pending_set.clear()
        for inst_id, inst in wanted.items():
            if inst_id not in self.instruments:
                self.instruments[inst_id] = inst
                self.status[inst_id] = InstrumentStatus()
        self.legs = set(legs)
        self.ladder = {inst_id: rank for rank, inst_id in enumerate(ladder)}
        if self.ib.isConnected():
            await self._qualify()
            if not self.idle:
                self.subscribe_changes()

    def go_idle(self) -> None:
        """Cancels every market-data subscription; the connection (and the position updates
        it brings) stays up. ``wake`` subscribes again."""
        if self.idle:
            return
        self.idle = True
        self._cancel_all()

    def wake(self) -> None:
        """Subscribes every instrument again after ``go_idle`` (now, or at the next connect)."""
        if not self.idle:
            return
        self.idle = False
        self.state.data_requested_at = self.clock()
        if self.ib.isConnected():
            self.subscribe_all()

    def _cancel_all(self) -> None:
        for inst_id in list(self._tickers):
            with contextlib.suppress(Exception):  # a subscription lost with the connection
                self.ib.cancelMktData(self._contracts[inst_id])
        self._tickers.clear()
        for status in self.status.values():
            status.subscribed = False

    def data_types(self) -> dict[str, int]:
        """Subscribed instruments counted by the market data type IB reports for them."""
        counts: dict[str, int] = {}
        for status in self.status.values():
            if status.subscribed:
                kind = status.market_data_type
                name = MarketDataType(kind).name.lower() if kind in (1, 2, 3, 4) else "pending"
                counts[name] = counts.get(name, 0) + 1
        return counts

    def delayed(self) -> frozenset[str]:
        """The instruments whose quotes IB serves delayed."""
        return frozenset(i for i, status in self.status.items() if status.delayed)

    @property
    def denied(self) -> int:
        return sum(1 for s in self.status.values() if s.denied_code is not None)

    async def _qualify(self) -> None:
        """Finds each new instrument in IB's contract details: asked for by its expiration
        month, the answer with our expiration date taken (IB dates contracts by their last
        trading day, so an exact date would miss AM-settled options)."""
        missing = [i for i in self.instruments if i not in self._contracts]
        asked = [i for i in missing if i not in self._found]
        answers = await asyncio.gather(
            *(self._details(self._contract(self.instruments[i])) for i in asked)
        )
        for inst_id, details in zip(asked, answers, strict=True):
            inst = self.instruments[inst_id]
            by_listing = [(listing_of(d.contract, d), d) for d in details if d.contract]
            chosen = pick_listing(inst, [listing for listing, _ in by_listing])
            if chosen is None and inst_id in self.ladder:
                self._unlisted(inst_id)
                continue
            if chosen is None:
                log.error(
                    "ib_unknown_instrument",
                    instrument=inst_id,
                    answers=[listing.local_symbol or listing.con_id for listing, _ in by_listing],
                )
                continue
            contract = next(d.contract for listing, d in by_listing if listing is chosen)
            self._resolved(inst, chosen, contract)
        for inst_id in missing:
            if inst_id in self._found:
                contract = self._found[inst_id]
                self._contracts[inst_id] = contract
                self._by_con_id[contract.conId] = inst_id

    def _unlisted(self, inst_id: str) -> None:
        """A ladder strike IB does not list for its expiry (its strikes come per class, for
        every expiry at once): dropped, the rest of the ladder goes on."""
        log.warning(
            "ib_ladder_strike_unlisted", instrument=inst_id, note="left out of the strike ladder"
        )
        del self.instruments[inst_id]
        self.status.pop(inst_id, None)
        self.ladder.pop(inst_id, None)

    async def listed_strikes(self, symbol: str) -> dict[str, tuple[float, ...]]:
        """The strikes IB lists for the options on index ``symbol`` (SPX, VIX), by trading
        class (SPX, SPXW; VIX), every exchange's together: IB's option chain parameters, which
        give one set of strikes per class for all its expiries. Empty when the index is not
        qualified or IB does not answer in time (logged)."""
        index = self._contracts.get(symbol)
        if index is None or not self.ib.isConnected():
            return {}
        try:
            async with asyncio.timeout(DETAILS_TIMEOUT_SECONDS):
                chains = await self.ib.reqSecDefOptParamsAsync(
                    symbol, "", index.secType, int(index.conId or 0)
                )
        except (ConnectionError, TimeoutError) as exc:
            log.warning("ib_option_chains_failed", symbol=symbol, error=str(exc))
            return {}
        strikes: dict[str, set[float]] = {}
        for chain in chains or []:
            strikes.setdefault(chain.tradingClass, set()).update(float(k) for k in chain.strikes)
        return {cls: tuple(sorted(ks)) for cls, ks in strikes.items()}

    def price(self, inst_id: str) -> float | None:
        """What the feed holds now for ``inst_id``: an index's value, a future's or an
        option's mid (its last trade without a two-sided quote); None before any."""
        ticker = self._tickers.get(inst_id)
        inst = self.instruments.get(inst_id)
        if ticker is None or inst is None:
            return None
        event = event_of(inst, ticker)
        if isinstance(event, IndexValue):
            return event.value
        if isinstance(event, Quote):
            if event.bid is not None and event.ask is not None and event.ask >= event.bid > 0:
                return (event.bid + event.ask) / 2.0
            return event.last
        return None

    async def _details(self, contract: ib_async.Contract) -> list[Any]:
        """IB's contract details for ``contract``; empty when IB has none or does not answer
        in time (its error is logged by the error handler)."""
        try:
            async with asyncio.timeout(DETAILS_TIMEOUT_SECONDS):
                return list(await self.ib.reqContractDetailsAsync(contract))
        except (ConnectionError, TimeoutError) as exc:
            log.warning("ib_contract_details_failed", contract=str(contract), error=str(exc))
            return []

    def _resolved(self, inst: Instrument, listing: IbListing, contract: ib_async.Contract) -> None:
        self.listings[inst.id] = listing
        self._found[inst.id] = contract
        settles = settlement_from(listing)
        if settles is not None and inst.settlement is not None and settles != inst.settlement:
            log.error(
                "ib_settlement_differs",
                instrument=inst.id,
                ours=inst.settlement.value,
                ib=settles.value,
                last_trade_date=listing.last_trade_date,
                expiration=listing.real_expiration,
                last_trade_time=listing.last_trade_time,
            )

    @staticmethod
    def _contract(inst: Instrument) -> ib_async.Contract:
        t = terms_for(inst)
        return ib_async.Contract(
            secType=t.sec_type,
            symbol=t.symbol,
            exchange=t.exchange,
            currency=t.currency,
            tradingClass=t.trading_class,
            lastTradeDateOrContractMonth=t.expiry,
            right=t.right,
            strike=t.strike,
            multiplier=t.multiplier,
        )

    def _chosen(self) -> list[str]:
        """The qualified instruments the line budget takes, in priority order; the rest are
        noted and logged."""
        order = sorted(
            (i for i in self.instruments if i in self._contracts),
            key=lambda i: _priority(self.instruments[i], self.legs, self.ladder),
        )
        budget = self.config.max_lines
        chosen, left_out = order[:budget], order[budget:]
        if tuple(left_out) != self.state.unsubscribed_for_budget and left_out:
            log.warning("ib_line_budget", subscribed=len(chosen), left_out=left_out)
        self.state.unsubscribed_for_budget = tuple(left_out)
        return chosen

    def subscribe_all(self) -> None:
        """(Re)subscribes every qualified instrument within the line budget."""
        self._cancel_all()
        if self.state.data_requested_at is None:
            self.state.data_requested_at = self.clock()
        self.ib.reqMarketDataType(int(self.market_data_type))
        for inst_id in self._chosen():
            self._subscribe(inst_id, self._data_type(inst_id))

    def subscribe_changes(self) -> None:
        """Subscribes the instruments that are wanted and not subscribed, cancels the lines of
        those no longer wanted (or pushed out of the budget); the others keep streaming."""
        chosen = self._chosen()
        for inst_id in [i for i in self._tickers if i not in chosen]:
            del self._tickers[inst_id]
            with contextlib.suppress(Exception):  # a subscription lost with the connection
                self.ib.cancelMktData(self._contracts[inst_id])
            if inst_id in self.status:
                self.status[inst_id].subscribed = False
        added = [i for i in chosen if i not in self._tickers]
        for inst_id in added:
            self._subscribe(inst_id, self._data_type(inst_id))
        log.info("ib_subscriptions_changed", added=added, streaming=len(self._tickers))

    def _falls_back(self) -> bool:
        """Whether a refused instrument is asked again with delayed data."""
        s = self.config
        return s.fall_back_to_delayed and self.market_data_type < MarketDataType.DELAYED

    def _data_type(self, inst_id: str) -> MarketDataType:
        """The configured type; delayed for an instrument already refused, when allowed."""
        if self.status[inst_id].denied_code is not None and self._falls_back():
            return MarketDataType.DELAYED
        return self.market_data_type

    def _subscribe(self, inst_id: str, data_type: MarketDataType) -> None:
        if data_type != self.market_data_type:
            self.ib.reqMarketDataType(int(data_type))
        self._tickers[inst_id] = self.ib.reqMktData(self._contracts[inst_id])
        self.status[inst_id].subscribed = True
        if data_type != self.market_data_type:
            self.ib.reqMarketDataType(int(self.market_data_type))

    async def run(self) -> None:
        """Keeps the connection up: reconnects with backoff and rebuilds the subscriptions. A
        lost connection is tried again within about a second, then with backoff doubling up to
        its cap; each failure is kept (``state.last_error``) for /readyz and the logs."""
        failures = 0
        while True:
            try:
                if not self.ib.isConnected():
                    await self.connect()
                    failures = 0
                await self._watch()
            except (ConnectionError, OSError, TimeoutError) as exc:
                failures += 1
                self.state.failed_attempts = failures
                self.state.last_error = self.describe_failure(exc)
                delay = self.backoff.delay(failures, self._rng)
                log.warning(
                    "ib_connect_failed",
                    error=self.state.last_error,
                    attempt=failures,
                    retry_in_seconds=round(delay, 2),
                )
                await asyncio.sleep(delay)
            else:
                failures += 1
                delay = self.backoff.delay(failures, self._rng)
                log.warning("ib_disconnected", retry_in_seconds=round(delay, 2))
                await asyncio.sleep(delay)

    def describe_failure(self, exc: BaseException) -> str:
        """A failed connection attempt in words, with the address tried."""
        where = f"{self.config.host}:{self.config.port}"
        if isinstance(exc, ConnectionRefusedError):
            return f"connection refused at {where}: no IB Gateway or TWS API listening there"
        if isinstance(exc, TimeoutError):
            return (
                f"no API handshake from {where} within "
                f"{self.config.connect_timeout_seconds:g} s (is the API enabled, and this "
                "host a trusted IP?)"
            )
        return f"{where}: {exc or type(exc).__name__}"

    def _expecting_data(self) -> bool:
        """Whether silence means something is wrong: subscribed, IB connected to its servers
        (after 1100 a new connection would not help) and the SPX options session open."""
        return (
            self.state.connected
            and self.state.ib_connected
            and not self.idle
            and any(s.subscribed for i, s in self.status.items() if i in self._tickers)
            and market_view(self.clock()).open
        )

    async def _watch(self) -> None:
        """Returns when the connection is lost. Meanwhile a feed that stays silent in the
        session for ``silent_seconds`` (the socket open, nothing sent: a hung gateway or a
        dead farm IB did not report) is resubscribed; silent as long again, it is
        disconnected so that ``run`` connects anew."""
        silent = self.config.silent_seconds
        check = min(1.0, silent / 4.0) if silent > 0 else 1.0
        self._last_data = time.monotonic()
        self._silent_steps = 0
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(check):
                    await self._lost.wait()
            if silent <= 0 or self._lost.is_set():
                continue
            if not self._expecting_data():
                self._last_data = time.monotonic()
                continue
            quiet = time.monotonic() - self._last_data
            if quiet < silent:
                continue
            self.state.silent_recoveries += 1
            if self._silent_steps == 0:
                log.warning("ib_feed_silent", seconds=round(quiet, 1), action="resubscribe")
                self._silent_steps = 1
                self._last_data = time.monotonic()
                self.subscribe_all()
                continue
            log.warning("ib_feed_silent", seconds=round(quiet, 1), action="reconnect")
            self.ib.disconnect()
            self._on_disconnected()
            return

    async def history(
        self, inst_id: str, bar_minutes: int, *, days: int = 2
    ) -> list[tuple[datetime, float, float, float, float]]:
        """Completed bars (UTC start, open, high, low, close) of the last ``days`` days, outside
        regular hours included: trades for indexes, midpoints for futures. Empty when IB has
        none or refuses (logged); an error here never touches the streaming subscription."""
        qualified = self._contracts.get(inst_id)
        inst = self.instruments.get(inst_id)
        if qualified is None or inst is None or not self.ib.isConnected():
            return []
        contract = copy.copy(qualified)  # its own object: errors are told apart by identity
        what = "TRADES" if inst.kind is Kind.INDEX else "MIDPOINT"
        size = f"{bar_minutes} min" if bar_minutes == 1 else f"{bar_minutes} mins"
        self._history_contracts.add(id(contract))
        try:
            bars = await self.ib.reqHistoricalDataAsync(
                contract,
                "",
                f"{days} D",
                size,
                what,
                useRTH=False,
                formatDate=2,
                timeout=self.config.history_timeout_seconds,
            )
        except (ConnectionError, TimeoutError) as exc:
            log.warning("ib_history_failed", instrument=inst_id, error=str(exc))
            return []
        finally:
            self._history_contracts.discard(id(contract))
        now = self.clock()
        width = timedelta(minutes=bar_minutes)
        out = []
        for bar in bars or []:
            start = bar.date
            if not isinstance(start, datetime):
                continue  # daily bars come as dates; these are intraday
            start = start if start.tzinfo else start.replace(tzinfo=UTC)
            if start + width <= now:  # the bar still forming is left to the ticks
                prices = (float(bar.open), float(bar.high), float(bar.low), float(bar.close))
                out.append((start, *prices))
        log.info("ib_history", instrument=inst_id, bars=len(out), what=what, size=size)
        return out

    async def close(self) -> None:
        self.ib.disconnectedEvent -= self._on_disconnected
        self.ib.disconnect()

    # -- events ---------------------------------------------------------------------------

    def _on_position(self, _position: object) -> None:
        self.positions_changed = True

    def _on_account_value(self, value: ib_async.AccountValue) -> None:
        if value.modelCode:  # a model portfolio's row (accountUpdateMulti), not the account
            return
        if self.config.account and value.account != self.config.account:
            return
        self.account.update(value.tag, value.value, value.currency, value.account, self.clock())

    def _on_disconnected(self) -> None:
        self.state.connected = False
        for status in self.status.values():
            status.subscribed = False
        self._lost.set()

    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        kind = classify(code)
        self.state.errors[kind.value] = self.state.errors.get(kind.value, 0) + 1
        inst_id = self._by_con_id.get(getattr(contract, "conId", 0) or 0) if contract else None
        if contract is not None and id(contract) in self._history_contracts:
            log.warning("ib_history_error", code=code, message=message, instrument=inst_id)
        elif kind is IbErrorClass.FARM_OK:
            broken = {b for b, ok in FARM_RECOVERY.items() if ok == code} & self.state.broken_farms
            log.info("ib_farm_ok", code=code, message=message)
            if broken:
                self.state.broken_farms -= broken
                if not self.idle:
                    self.subscribe_all()
        elif kind is IbErrorClass.FARM_BROKEN:
            self.state.broken_farms.add(code)
            log.warning("ib_farm_broken", code=code, farm=FARM_BROKEN[code], message=message)
        elif kind is IbErrorClass.CONNECTIVITY_LOST:
            self.state.ib_connected = False
            log.warning("ib_connectivity_lost", code=code, message=message)
        elif kind is IbErrorClass.RESTORED_DATA_LOST:
            self.state.ib_connected = True
            log.warning("ib_restored_data_lost", code=code, message=message)
            if not self.idle:
                self.subscribe_all()
        elif kind is IbErrorClass.RESTORED_DATA_KEPT:
            self.state.ib_connected = True
            log.info("ib_restored_data_kept", code=code, message=message)
        elif kind is IbErrorClass.CLIENT_ID_IN_USE:
            self._client_id_refused = True
            if self._refused is not None:
                self._refused.set()
            log.warning("ib_client_id_refused", client_id=self._client_id, message=message)
        elif kind is IbErrorClass.ENTITLEMENT and inst_id in self.status:
            self._denied(inst_id, code, message)
        elif kind is IbErrorClass.DELAYED_SHOWN and inst_id in self.status:
            status = self.status[inst_id]
            if status.market_data_type not in DELAYED_TYPES:
                status.market_data_type = MarketDataType.DELAYED  # until IB reports the type
            log.info("ib_delayed_data", instrument=inst_id, code=code, message=message)
        else:
            log.warning("ib_error", req_id=req_id, code=code, message=message, instrument=inst_id)

    def _denied(self, inst_id: str, code: int, message: str) -> None:
        status = self.status[inst_id]
        first = status.denied_code is None
        status.denied_code = code
        log.warning("ib_not_entitled", instrument=inst_id, code=code, message=message)
        if first and self._falls_back():
            if self._tickers.pop(inst_id, None) is not None:
                self.ib.cancelMktData(self._contracts[inst_id])
            self._subscribe(inst_id, MarketDataType.DELAYED)
        else:
            status.subscribed = False

    def _stamp(self) -> datetime:
        """Now, to the millisecond and later than the previous batch: a recording (whose
        times have milliseconds) then replays batch for batch as the live run saw them."""
        now = self.clock()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = now
        return now

    def _on_tickers(self, tickers: set[ib_async.Ticker]) -> None:
        self._last_data = time.monotonic()
        self._silent_steps = 0
        now = self._stamp()
        events: list[Event] = []
        for ticker in tickers:
            inst_id = self._by_con_id.get(ticker.contract.conId if ticker.contract else 0)
            if inst_id is None or inst_id not in self.instruments:
                continue  # not ours, or dropped from the book since
            event = event_of(self.instruments[inst_id], ticker)
            status = self.status[inst_id]
            status.market_data_type = ticker.marketDataType
            if event is not None:
                status.last_update = now
                events.append(event)
        if events:
            self._conflate(events, now)

    def _conflate(self, events: Sequence[Event], now: datetime) -> None:
        """Keeps each event as its instrument's newest until the consumer takes the batch. An
        event carries the whole ticker (both sides, sizes, the feed's greeks), so the newest
        one replaces the older without losing anything the pipeline reads."""
        pending = self._pending
        for event in events:
            if event.instrument in pending:
                self.state.conflated_ticks += 1
            pending[event.instrument] = event
        self._pending_time = now
        self._pending_set.set()

    # -- data -----------------------------------------------------------------------------

    def accounts(self) -> list[str]:
        """The accounts of the login (IB's managed accounts)."""
        return list(self.ib.managedAccounts())

    def server_version(self) -> int:
        return int(self.ib.client.serverVersion())

    @property
    def client_id(self) -> int:
        """The client id of the current (or last) connection."""
        return self._client_id

    @property
    def is_connected(self) -> bool:
        """Whether the API connection to TWS / IB Gateway is up (the socket and its
        handshake; ``state.connected`` also waits for the contracts)."""
        return bool(self.ib.isConnected())

    @property
    def pending(self) -> int:
        """Instruments with an event the consumer has not taken yet."""
        return len(self._pending)

    def _take(self) -> EventBatch:
        """Everything pending as one batch at the time of its newest event, in instrument
        order (as a packet's batch was), and nothing pending afterwards."""
        assert self._pending_time is not None
        events = tuple(sorted(self._pending.values(), key=lambda e: e.instrument))
        batch = EventBatch(self._pending_time, events)
        self._pending = {}
        self._pending_time = None
        self._pending_set.clear()
        return batch

    async def batches(self) -> AsyncIterator[EventBatch]:
        while True:
            while not self._pending:
                await self._pending_set.wait()
            yield self._take()

    async def next_batch(self, timeout: float) -> EventBatch | None:  # noqa: ASYNC109 - a poll
        """Everything heard since the last call as one batch (the newest event of each
        instrument), waiting up to ``timeout`` seconds for something; None if nothing came."""
        if not self._pending:
            try:
                async with asyncio.timeout(timeout):
                    while not self._pending:
                        await self._pending_set.wait()
            except TimeoutError:
                return None
        return self._take()

    async def positions(self) -> tuple[list[Position], list[str]]:
        """The account's positions the monitor models, and the ones it leaves out. Each held
        contract is identified from its contract details (asked for by conId, once): a
        position carries the last trading day and no expiration date."""
        held = [p for p in self.ib.positions(self.config.account) if p.position]
        by_con_id = {listing.con_id: i for i, listing in self.listings.items()}
        unknown = list(
            {
                p.contract.conId: p.contract
                for p in held
                if p.contract.conId
                and p.contract.conId not in by_con_id
                and p.contract.secType in {"OPT", "FUT", "IND"}
            }.values()
        )
        answers = await asyncio.gather(
            *(self._details(ib_async.Contract(conId=c.conId)) for c in unknown)
        )
        for position_contract, details in zip(unknown, answers, strict=True):
            detail = next((d for d in details if d.contract), None)
            if detail is None:
                log.warning(
                    "ib_contract_details_missing",
                    contract=position_contract.localSymbol or position_contract.conId,
                    note="dated from the position's last trading day",
                )
                listing = listing_of(position_contract)
                contract = position_contract
            else:
                listing = listing_of(detail.contract, detail)
                contract = detail.contract
            inst = listing_instrument(listing)
            if inst is not None:
                self._resolved(inst, listing, contract)
                by_con_id[listing.con_id] = inst.id
        modelled: list[Position] = []
        skipped: list[str] = []
        for p in held:
            c = p.contract
            inst_id = by_con_id.get(c.conId)
            inst = None
            if inst_id is not None:
                inst = self.instruments.get(inst_id) or listing_instrument(self.listings[inst_id])
            if inst is None:
                skipped.append(f"{c.secType} {c.localSymbol or c.symbol}")
            else:
                cost = float(p.avgCost) if p.avgCost else math.nan
                modelled.append(Position(inst, int(p.position), cost))
        return modelled, skipped
