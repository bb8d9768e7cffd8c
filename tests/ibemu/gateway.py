"""An emulated IB Gateway: the server side of the TWS socket API on a loopback port.

``IBGateway`` accepts real API clients (ib_async's ``IB.connectAsync``), completes the handshake
at server version 178 and answers the requests a read-only market-data client makes: contract
details from a catalogue, streaming market data driven by the test (``tick``, ``burst``,
``option_computation``), historical bars stored by the test (``set_history``), positions, current
time, order ids, and empty answers to the account, order and execution requests ib_async sends
while connecting. Anything else is logged, recorded and left unanswered.

Two ways to run it:
- ``with IBGateway() as gw:`` serves from a background thread with its own event loop, for
  synchronous tests and for tests that run their client in ``asyncio.run``;
- ``async with IBGateway() as gw:`` serves on the running event loop.
Every control method is synchronous and may be called from any thread: off the gateway's loop
thread it is handed to that loop and waited for.

Faults for a feed to survive: ``send_error`` (connectivity and farm notices), ``drop_clients``,
``stop``/``start`` on the same port, ``reject_client_id`` (error 326, then close), ``deny``
(entitlement errors on market-data requests), ``pause`` (ticks stop: a dead feed),
``lose_connectivity``/``restore_connectivity`` (1100, then 1101 with subscriptions dropped or
1102 with them kept). Every request a client sends is recorded (``requests``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self, TypeVar, cast

from ibemu import messages
from ibemu.catalogue import Catalogue, ContractQuery, ContractSpec, default_contracts
from ibemu.history import (
    HistoryBar,
    HistoryRequest,
    bars_before,
    format_bar_date,
    format_header_date,
    parse_end_date_time,
)
from ibemu.protocol import (
    DELAYED_TICK,
    ENTITLEMENT_CODES,
    GREEK_SENTINEL,
    GREETING,
    INCOMING_NAMES,
    PARTIAL_ENTITLEMENT_CODES,
    PRICE_SENTINEL,
    SERVER_VERSION,
    Field,
    FrameBuffer,
    Incoming,
    ProtocolError,
    TickType,
    encode,
    error_text,
    parse_greeting,
    split_fields,
)

T = TypeVar("T")

LOG = logging.getLogger("ibemu")
LOOPBACK = "127.0.0.1"
DEFAULT_ACCOUNT = "DU1234567"
FARM_OK_CODES = (2104, 2106, 2158)
CALL_TIMEOUT = 10.0

OptionValues = tuple[float, float, float, float, float, float, float, float]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One message a client sent, as received.

    ``fields`` are all fields after the message id; ``req_id`` and ``key`` (the catalogue key a
    contract request resolved to) are filled in for the requests that carry them. ``params``
    names the fields of the requests the emulator parses by name (reqHistoricalData: endDateTime,
    durationStr, barSizeSetting, whatToShow, useRTH, formatDate, keepUpToDate, ...), as raw text.
    """

    session: int
    client_id: int | None
    msg_id: int
    name: str
    fields: tuple[str, ...]
    req_id: int | None = None
    key: str | None = None
    at: float = 0.0
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str:
        """The raw text of the named parameter; KeyError if the request has none by that name."""
        for param_name, value in self.params:
            if param_name == name:
                return value
        raise KeyError(f"{self.name} has no parameter {name!r}")


@dataclass(frozen=True, slots=True)
class PositionSpec:
    """A position the gateway reports: catalogue key, quantity, average cost, account."""

    key: str
    quantity: float
    avg_cost: float
    account: str = DEFAULT_ACCOUNT


@dataclass(slots=True)
class _Quote:
    """The latest streamed values of one contract (None: never sent)."""

    bid: float | None = None
    bid_size: float | None = None
    ask: float | None = None
    ask_size: float | None = None
    last: float | None = None
    last_size: float | None = None
    close: float | None = None
    greeks: dict[int, tuple[OptionValues, bool]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Subscription:
    req_id: int
    key: str
    delayed: bool


@dataclass(frozen=True, slots=True)
class _Event:
    """One streamed field: a price (with size) or a size alone, or an option computation."""

    kind: str  # "price", "size" or "option"
    tick_type: int
    price: float = 0.0
    size: float = 0.0
    option: OptionValues | None = None
    price_based: bool = False

    def fields(self, sub: _Subscription) -> list[Field]:
        tick_type = self.tick_type
        if sub.delayed:
            tick_type = DELAYED_TICK.get(tick_type, tick_type)
        if self.kind == "price":
            return messages.tick_price(sub.req_id, tick_type, self.price, self.size)
        if self.kind == "size":
            return messages.tick_size(sub.req_id, tick_type, self.size)
        assert self.option is not None
        return messages.tick_option_computation(
            sub.req_id, tick_type, self.option, price_based=self.price_based
        )


Outcome = tuple[int | None, str | None]
"""What a handled request referred to: its request id and the catalogue key it resolved to."""

HMDS_NO_PERMISSIONS = "No market data permissions for {exchange} {sec_type}"
HMDS_NO_DATA = "HMDS query returned no data: {local_symbol}@{exchange} {what}"
BAD_END_DATE_TIME = (
    "Error validating request.-'bP' : cause - Historical data query end date/time string "
    "[{text}] is invalid.  Format is 'YYYYMMDD{{SPACE}}hh:mm:ss[{{SPACE}}TMZ]'."
)


def _named_params(msg_id: int, fields: list[str]) -> tuple[tuple[str, str], ...]:
    """The named parameters of a whole message (id first), for the requests parsed by name."""
    if msg_id != Incoming.REQ_HISTORICAL_DATA:
        return ()
    try:
        return HistoryRequest.from_fields(fields).params()
    except (IndexError, ValueError):
        return ()


class _Session(asyncio.Protocol):
    """One client connection: framing, handshake, per-connection state."""

    def __init__(self, gateway: IBGateway, number: int) -> None:
        self.gateway = gateway
        self.number = number
        self.transport: asyncio.Transport | None = None
        self.buffer = FrameBuffer()
        self.saw_prefix = False
        self.greeted = False
        self.client_id: int | None = None
        self.ready = False
        self.market_data_type = 1
        self.subscriptions: dict[int, _Subscription] = {}
        self.history_keys: dict[int, str] = {}
        self.positions_subscribed = False
        self.account_subscribed = False  # reqAccountUpdates(True, ...)
        self.next_order_id = 1
        self.held: list[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        self.gateway._sessions.append(self)
        LOG.debug("session %d: connected", self.number)

    def connection_lost(self, exc: Exception | None) -> None:
        LOG.debug("session %d (client %s): closed %s", self.number, self.client_id, exc or "")
        self.transport = None
        self.ready = False
        self.subscriptions.clear()
        if self in self.gateway._sessions:
            self.gateway._sessions.remove(self)

    def data_received(self, data: bytes) -> None:
        self.buffer.feed(data)
        try:
            if not self._prefix_complete():
                return
            for payload in self.buffer.frames():
                if self.transport is None:
                    return
                if self.greeted:
                    self.gateway._dispatch(self, split_fields(payload))
                else:
                    self._greet(payload)
        except ProtocolError:
            LOG.exception("session %d: protocol error, closing", self.number)
            self.abort()

    def _prefix_complete(self) -> bool:
        """Consumes the ``API\\0`` opening once; False while too few bytes have arrived."""
        if not self.saw_prefix:
            seen = self.buffer.take_prefix(GREETING)
            if seen is None:
                return False
            if not seen:
                raise ProtocolError("the connection did not open with API\\0")
            self.saw_prefix = True
        return True

    def _greet(self, payload: bytes) -> None:
        greeting = parse_greeting(payload)
        self.gateway._record(self, 0, "handshake", [payload.decode(errors="replace")])
        if not greeting.min_version <= SERVER_VERSION <= greeting.max_version:
            LOG.warning(
                "session %d: client speaks v%d..%d, not %d; closing",
                self.number,
                greeting.min_version,
                greeting.max_version,
                SERVER_VERSION,
            )
            self.close()
            return
        self.greeted = True
        self.send([SERVER_VERSION, time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime())])

    def send(self, fields: list[Field]) -> bool:
        """Writes one message (or holds it, see ``hold``); False when the connection is gone."""
        if self.transport is None or self.transport.is_closing():
            return False
        data = encode(fields)
        if self.held is not None:
            self.held.append(data)
        else:
            self.transport.write(data)
        return True

    def hold(self) -> None:
        """Keeps messages back until ``flush``, so a request's answers leave together."""
        if self.held is None:
            self.held = []

    def flush(self) -> None:
        """Writes the held messages in one go."""
        held, self.held = self.held, None
        if held and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(held))

    def close(self) -> None:
        """Closes after everything sent so far (held messages included) is written."""
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self, *, reset: bool = False) -> None:
        """Closes at once, dropping unsent data; with ``reset`` the peer gets a TCP RST."""
        transport = self.transport
        if transport is None:
            return
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


class IBGateway:
    """An emulated TWS/IB Gateway API endpoint on ``host:port`` (port 0 picks a free one, kept
    across ``stop``/``start``).

    ``contracts`` is the catalogue (default: ``default_contracts()``); ``positions`` lists
    (catalogue key, quantity, average cost) in ``account``. With ``readonly`` (the default)
    orders are refused with error 321, as a gateway with the Read-Only API setting does.
    Contracts are dated as IB dates them (catalogue.py): a request naming an option by its
    expiration date rather than its last trading day finds nothing, unless
    ``accept_expiration_dates``.
    """

    def __init__(
        self,
        contracts: Iterable[ContractSpec] | None = None,
        positions: Iterable[tuple[str, float, float]] = (),
        *,
        account: str = DEFAULT_ACCOUNT,
        host: str = LOOPBACK,
        port: int = 0,
        readonly: bool = True,
        send_current_time: bool = True,
        accept_expiration_dates: bool = False,
        account_values: Mapping[str, float] | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.account = account
        self.readonly = readonly
        self.send_current_time = send_current_time
        self.catalogue = Catalogue.of(
            default_contracts() if contracts is None else contracts,
            accept_expiration_dates=accept_expiration_dates,
        )
        self._positions: dict[str, PositionSpec] = {}
        # The account's values (reqAccountUpdates' updateAccountValue), by tag: value, currency.
        self._account_values: dict[str, tuple[str, str]] = {
            tag: (repr(float(value)), "USD") for tag, value in (account_values or {}).items()
        }
        for key, quantity, avg_cost in positions:
            self.catalogue.get(key)
            self._positions[key] = PositionSpec(key, quantity, avg_cost, account)
        self._quotes: dict[str, _Quote] = {}
        self._history: dict[str, tuple[HistoryBar, ...]] = {}
        self._denied: dict[str, int] = {}
        self._delayed: set[str] = set()
        self._rejected_ids: set[int] = set()
        self._paused = False
        self._history_held = False
        self._sessions: list[_Session] = []
        self._session_numbers = itertools.count(1)
        self._log: list[RecordedRequest] = []
        self._log_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._generation = 0
        self._pending_start: asyncio.Task[None] | None = None
        self._handlers: dict[int, Callable[[_Session, list[str]], Outcome]] = {
            Incoming.START_API: self._on_start_api,
            Incoming.REQ_MKT_DATA: self._on_req_mkt_data,
            Incoming.CANCEL_MKT_DATA: self._on_cancel_mkt_data,
            Incoming.REQ_CONTRACT_DETAILS: self._on_req_contract_details,
            Incoming.REQ_MARKET_DATA_TYPE: self._on_req_market_data_type,
            Incoming.REQ_POSITIONS: self._on_req_positions,
            Incoming.CANCEL_POSITIONS: self._on_cancel_positions,
            Incoming.REQ_CURRENT_TIME: self._on_req_current_time,
            Incoming.REQ_IDS: self._on_req_ids,
            Incoming.REQ_ACCOUNT_UPDATES: self._on_req_account_updates,
            Incoming.REQ_ACCOUNT_UPDATES_MULTI: self._on_req_id_answered(
                messages.account_update_multi_end
            ),
            Incoming.REQ_EXECUTIONS: self._on_req_id_answered(messages.execution_data_end),
            Incoming.REQ_ACCOUNT_SUMMARY: self._on_req_id_answered(messages.account_summary_end),
            Incoming.REQ_OPEN_ORDERS: self._on_open_orders,
            Incoming.REQ_ALL_OPEN_ORDERS: self._on_open_orders,
            Incoming.REQ_COMPLETED_ORDERS: self._on_completed_orders,
            Incoming.REQ_MANAGED_ACCTS: self._on_req_managed_accts,
            Incoming.PLACE_ORDER: self._on_place_order,
            Incoming.REQ_SEC_DEF_OPT_PARAMS: self._on_req_sec_def_opt_params,
            Incoming.REQ_HISTORICAL_DATA: self._on_req_historical_data,
            Incoming.CANCEL_HISTORICAL_DATA: self._on_cancel_historical_data,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The listening port (known once started; kept across restarts)."""
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to connect to."""
        return self.host, self._port

    @property
    def serving(self) -> bool:
        """Whether the gateway accepts connections right now."""
        return self._call(lambda: self._server is not None or self._pending_start is not None)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self.start()
        if self._pending_start is not None:
            await self._pending_start
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        await asyncio.sleep(0)  # let the aborted connections' callbacks run

    def start(self) -> None:
        """Starts listening (again) on the same port. The first start picks the mode: the running
        event loop of the calling thread if there is one (or the one ``async with`` set),
        otherwise a background thread with its own loop."""
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self._start_thread()
        if self.serving:
            return
        sock = self._listen()
        loop = self._loop
        assert loop is not None
        self._generation += 1
        coro = self._serve(sock, self._generation)
        if self._on_loop_thread():
            self._pending_start = loop.create_task(coro)
        else:
            asyncio.run_coroutine_threadsafe(coro, loop).result(CALL_TIMEOUT)
        LOG.info("emulated IB gateway listening on %s:%d", self.host, self._port)

    def stop(self) -> None:
        """Stops listening and closes every client connection abruptly (a gateway restart)."""
        self._call(self._stop_now)

    def close(self) -> None:
        """Stops the gateway and, in thread mode, its loop and thread. A later ``start`` picks
        the mode afresh."""
        if self._loop is None:
            return
        self.stop()
        thread, loop = self._thread, self._loop
        if thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(CALL_TIMEOUT)
            self._thread = None
        self._loop = None

    def _start_thread(self) -> None:
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()
            loop.run_until_complete(asyncio.sleep(0))  # callbacks of connections just closed
            loop.close()

        thread = threading.Thread(target=run, name="ibemu-gateway", daemon=True)
        thread.start()
        if not started.wait(CALL_TIMEOUT):
            raise RuntimeError("the gateway's event loop did not start")
        self._loop = loop
        self._thread = thread

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._port))
            sock.listen(64)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        return sock

    async def _serve(self, sock: socket.socket, generation: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                lambda: _Session(self, next(self._session_numbers)), sock=sock
            )
        except asyncio.CancelledError:
            sock.close()
            raise
        finally:
            self._pending_start = None
        if generation != self._generation or self._server is not None:
            server.close()  # stopped (or restarted) before the server came up
            return
        self._server = server

    def _stop_now(self) -> None:
        self._generation += 1
        if self._pending_start is not None:
            self._pending_start.cancel()
            self._pending_start = None
        if self._server is not None:
            self._server.close()
            self._server = None
        self._drop(reset=False)
        LOG.info("emulated IB gateway stopped")

    def _on_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _call(self, fn: Callable[[], T]) -> T:
        """Runs ``fn`` on the gateway's loop thread and returns its result."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running() or self._on_loop_thread():
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(CALL_TIMEOUT)

    # -- test controls: configuration ---------------------------------------------------------

    def add_contract(self, spec: ContractSpec) -> ContractSpec:
        """Adds (or replaces) a catalogue contract; returns it with its conId."""
        return self._call(lambda: self.catalogue.add(spec))

    def contract(self, key: str) -> ContractSpec:
        """The catalogue contract under ``key`` (with its conId)."""
        return self.catalogue.get(key)

    def deny(self, key: str, code: int = 354) -> None:
        """Answers market-data requests for ``key`` with entitlement error ``code`` (354, 10089,
        10090, 10091, 10168 or 10197). After 10090/10091 the subscription stays and ticks flow;
        after the others nothing is subscribed. Historical-data requests for ``key`` get error
        162 (no market data permissions) whatever the code."""
        self.catalogue.get(key)
        if code not in ENTITLEMENT_CODES:
            raise ValueError(f"{code} is not an entitlement code ({sorted(ENTITLEMENT_CODES)})")
        self._call(lambda: self._denied.__setitem__(key, code))

    def allow(self, key: str) -> None:
        """Undoes ``deny`` for ``key`` (for requests made from now on)."""
        self._call(lambda: self._denied.pop(key, None))

    def set_delayed(self, key: str, delayed: bool = True) -> None:
        """Marks ``key`` as delayed-only: a client that asked for market data type 3 or 4 gets
        warning 10167 and delayed tick types (66.., 80..) with market data type 3/4; a client on
        live data gets error 354."""
        self.catalogue.get(key)
        self._call(lambda: (self._delayed.add if delayed else self._delayed.discard)(key))

    def reject_client_id(self, client_id: int) -> None:
        """Future connections with ``client_id`` get error 326 and are closed."""
        self._call(lambda: self._rejected_ids.add(client_id))

    def accept_client_id(self, client_id: int) -> None:
        """Undoes ``reject_client_id``."""
        self._call(lambda: self._rejected_ids.discard(client_id))

    def hold_history(self, held: bool = True) -> None:
        """Leaves historical-data requests unanswered from now on (an HMDS farm that is slow
        or stuck: the client's own timeout ends them, and ib_async then cancels them)."""
        self._call(lambda: setattr(self, "_history_held", held))

    def pause(self) -> None:
        """Stops every market-data message (ticks and the initial values of new subscriptions):
        a dead feed. Values passed to ``tick`` meanwhile are remembered but not sent."""
        self._call(lambda: setattr(self, "_paused", True))

    def resume(self) -> None:
        """Lets market data flow again (from the next tick on; nothing is replayed)."""
        self._call(lambda: setattr(self, "_paused", False))

    @property
    def paused(self) -> bool:
        """Whether market data is held back."""
        return self._paused

    # -- test controls: market data and positions ----------------------------------------------

    def tick(
        self,
        key: str,
        *,
        bid: float | None = None,
        ask: float | None = None,
        last: float | None = None,
        bid_size: float | None = None,
        ask_size: float | None = None,
        last_size: float | None = None,
        close: float | None = None,
    ) -> int:
        """Streams new values of ``key`` to every subscriber; returns how many subscriptions got
        them (0 while paused).

        A price goes out as tickPrice carrying its size: the one given, else the last one sent
        (0 if none; ib_async reads a bid or ask with size 0 as no quote). A size alone goes out
        as tickSize. ``close`` is sent with size 0.
        """
        self.catalogue.get(key)
        return self._call(
            lambda: self._tick(
                key,
                bid=bid,
                ask=ask,
                last=last,
                bid_size=bid_size,
                ask_size=ask_size,
                last_size=last_size,
                close=close,
            )
        )

    async def burst(self, ticks: Iterable[tuple[str, str, float]], *, per_write: int = 40) -> int:
        """Streams many price ticks: each ``(key, side, price)`` (side "bid", "ask" or "last")
        goes out as one tickPrice, as ``tick`` sends it. Every ``per_write`` ticks are written
        together and the gateway's loop then runs once, so a client on that loop (``async with
        IBGateway()``) reads each write as one network packet, as from a gateway streaming a
        busy market. ``tick`` costs a round trip between threads per call off the gateway's
        loop; this is the way to 100,000 ticks in seconds. Returns how many subscriptions got
        a tick, summed over the ticks."""
        items = list(ticks)
        sides = {"bid", "ask", "last"}
        for key, side, _price in items:
            self.catalogue.get(key)
            if side not in sides:
                raise ValueError(f"{side!r} is not one of {sorted(sides)}")
        if per_write < 1:
            raise ValueError("per_write must be at least 1")

        async def run() -> int:
            reached = 0
            for start in range(0, len(items), per_write):
                for key, side, price in items[start : start + per_write]:
                    values: dict[str, float | None] = {"bid": None, "ask": None, "last": None}
                    values[side] = price
                    reached += self._tick(
                        key,
                        bid=values["bid"],
                        ask=values["ask"],
                        last=values["last"],
                        bid_size=None,
                        ask_size=None,
                        last_size=None,
                        close=None,
                        flush=False,
                    )
                for session in self._ready_sessions():
                    session.flush()
                await asyncio.sleep(0)  # the client's read of this write, on a shared loop
            return reached

        loop = self._loop
        if loop is None or self._on_loop_thread():
            return await run()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), loop))

    def option_computation(
        self,
        key: str,
        *,
        iv: float | None = None,
        delta: float | None = None,
        gamma: float | None = None,
        vega: float | None = None,
        theta: float | None = None,
        und_price: float | None = None,
        opt_price: float | None = None,
        pv_dividend: float | None = None,
        tick_type: int = TickType.MODEL_OPTION,
        price_based: bool = False,
    ) -> int:
        """Streams a tickOptionComputation (model greeks by default; 10/11/12 for bid/ask/last)
        to every subscriber of ``key``; returns how many got it.

        A value left None is sent as IB's not-computed sentinel: -1 for iv, opt_price,
        pv_dividend and und_price, -2 for delta, gamma, vega and theta. Sentinels may also be
        passed explicitly.
        """
        self.catalogue.get(key)
        values: OptionValues = (
            PRICE_SENTINEL if iv is None else iv,
            GREEK_SENTINEL if delta is None else delta,
            PRICE_SENTINEL if opt_price is None else opt_price,
            PRICE_SENTINEL if pv_dividend is None else pv_dividend,
            GREEK_SENTINEL if gamma is None else gamma,
            GREEK_SENTINEL if vega is None else vega,
            GREEK_SENTINEL if theta is None else theta,
            PRICE_SENTINEL if und_price is None else und_price,
        )
        event = _Event("option", tick_type, option=values, price_based=price_based)

        def run() -> int:
            self._quotes.setdefault(key, _Quote()).greeks[tick_type] = (values, price_based)
            return self._broadcast(key, [event])

        return self._call(run)

    def set_history(self, key: str, bars: Sequence[HistoryBar]) -> None:
        """Stores the historical bars of ``key`` (replacing any stored before; empty: none),
        served to reqHistoricalData.

        A request gets every stored bar that starts before its endDateTime (all of them for an
        empty one), oldest first, whatever its durationStr, whatToShow and useRTH. No such bar:
        error 162 (HMDS query returned no data). ``deny(key)`` makes requests get error 162
        with no market data permissions instead.
        """
        self.catalogue.get(key)
        ordered = tuple(sorted(bars, key=lambda bar: bar.start))
        self._call(lambda: self._history.__setitem__(key, ordered))

    def set_position(
        self, key: str, quantity: float, avg_cost: float = 0.0, account: str | None = None
    ) -> int:
        """Sets a position (0 closes it) and sends the update to every client subscribed to
        positions; returns how many clients got it."""
        spec = self.catalogue.get(key)
        position = PositionSpec(key, quantity, avg_cost, account or self.account)

        def run() -> int:
            if quantity:
                self._positions[key] = position
            else:
                self._positions.pop(key, None)
            fields = messages.position(position.account, spec, quantity, avg_cost)
            return sum(s.send(fields) for s in self._ready_sessions() if s.positions_subscribed)

        return self._call(run)

    def set_account_value(self, tag: str, value: float | str, currency: str = "USD") -> int:
        """Sets one account value (NetLiquidation, Cushion, ...) and sends it to every client
        subscribed to account updates, as IB does when it changes; returns how many got it."""
        text = value if isinstance(value, str) else repr(float(value))

        def run() -> int:
            self._account_values[tag] = (text, currency)
            fields = messages.account_value(tag, text, currency, self.account)
            return sum(s.send(fields) for s in self._ready_sessions() if s.account_subscribed)

        return self._call(run)

    @property
    def positions(self) -> list[PositionSpec]:
        """The positions reported to reqPositions."""
        return self._call(lambda: list(self._positions.values()))

    # -- test controls: faults -------------------------------------------------------------------

    def send_error(
        self,
        code: int,
        message: str | None = None,
        req_id: int = -1,
        *,
        client_id: int | None = None,
    ) -> int:
        """Sends an error or notice to every connected client (or only ``client_id``); the text
        defaults to IB's for the code. Returns how many clients got it. Sends only the message:
        see ``lose_connectivity``/``restore_connectivity`` for its effect on data."""
        fields = messages.error(req_id, code, message or error_text(code))
        return self._call(
            lambda: sum(
                s.send(fields)
                for s in self._ready_sessions()
                if client_id is None or s.client_id == client_id
            )
        )

    def subscription_error(
        self, key: str, code: int, message: str | None = None, *, cancel: bool = False
    ) -> int:
        """Sends error ``code`` with each subscriber's request id for ``key`` (e.g. 10197
        mid-session); with ``cancel`` those subscriptions end. Returns how many got it."""
        self.catalogue.get(key)
        text = message or error_text(code)

        def run() -> int:
            sent = 0
            for session in self._ready_sessions():
                for sub in list(session.subscriptions.values()):
                    if sub.key == key:
                        sent += session.send(messages.error(sub.req_id, code, text))
                        if cancel:
                            del session.subscriptions[sub.req_id]
            return sent

        return self._call(run)

    def lose_connectivity(self) -> int:
        """Error 1100 to every client and market data paused (IB's side of the gateway lost)."""
        self.pause()
        return self.send_error(1100)

    def restore_connectivity(self, *, data_kept: bool = True) -> int:
        """Ends ``lose_connectivity``: 1102 with subscriptions kept, or 1101 with every market
        data and position subscription dropped (the client must subscribe again); then resumes
        market data."""

        def run() -> int:
            if not data_kept:
                for session in self._ready_sessions():
                    session.subscriptions.clear()
                    session.positions_subscribed = False
            self._paused = False
            code = 1102 if data_kept else 1101
            fields = messages.error(-1, code, error_text(code))
            return sum(s.send(fields) for s in self._ready_sessions())

        return self._call(run)

    def drop_clients(self, *, reset: bool = False) -> int:
        """Closes every client connection abruptly (with ``reset``, by TCP RST); the gateway keeps
        listening. Returns how many were closed."""
        return self._call(lambda: self._drop(reset=reset))

    def _drop(self, *, reset: bool) -> int:
        sessions = list(self._sessions)
        self._sessions.clear()
        for session in sessions:
            session.ready = False
            session.subscriptions.clear()
            session.abort(reset=reset)
        return len(sessions)

    # -- inspection ------------------------------------------------------------------------------

    def requests(
        self, name: str | None = None, *, client_id: int | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests, oldest first, optionally of one message name (``reqMktData``,
        ``handshake``, ...) and one client id."""
        with self._log_lock:
            log = list(self._log)
        return [
            r
            for r in log
            if (name is None or r.name == name) and (client_id is None or r.client_id == client_id)
        ]

    def clear_requests(self) -> None:
        """Forgets the recorded requests."""
        with self._log_lock:
            self._log.clear()

    @property
    def client_ids(self) -> list[int]:
        """Client ids of the connections past startApi, in connection order."""
        return self._call(
            lambda: [s.client_id for s in self._ready_sessions() if s.client_id is not None]
        )

    def subscribed_keys(self, client_id: int | None = None) -> set[str]:
        """Catalogue keys with an active market-data subscription (of one client, or any)."""
        return self._call(
            lambda: {
                sub.key
                for s in self._ready_sessions()
                if client_id is None or s.client_id == client_id
                for sub in s.subscriptions.values()
            }
        )

    def market_data_type(self, client_id: int) -> int | None:
        """The market data type a client last asked for (1 if never), None if not connected."""
        return self._call(
            lambda: next(
                (s.market_data_type for s in self._ready_sessions() if s.client_id == client_id),
                None,
            )
        )

    async def wait_until(
        self, condition: Callable[[], bool], within: float = 2.0, what: str = "condition"
    ) -> None:
        """Polls ``condition`` from the calling event loop; TimeoutError after ``within`` s."""
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what} not met within {within}s")
            await asyncio.sleep(0.005)

    def wait_until_sync(
        self, condition: Callable[[], bool], within: float = 2.0, what: str = "condition"
    ) -> None:
        """Blocking ``wait_until`` for threads other than the gateway's loop thread."""
        if self._on_loop_thread():
            raise RuntimeError("wait_until_sync would block the gateway's own event loop")
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what} not met within {within}s")
            time.sleep(0.005)

    async def wait_for_requests(
        self, name: str, count: int = 1, *, client_id: int | None = None, within: float = 2.0
    ) -> list[RecordedRequest]:
        """Waits until at least ``count`` requests named ``name`` are recorded; returns them."""
        await self.wait_until(
            lambda: len(self.requests(name, client_id=client_id)) >= count,
            within,
            f"{count} x {name}",
        )
        return self.requests(name, client_id=client_id)

    # -- internals: dispatch -----------------------------------------------------------------

    def _ready_sessions(self) -> Iterator[_Session]:
        return (s for s in list(self._sessions) if s.ready)

    def _record(
        self,
        session: _Session,
        msg_id: int,
        name: str,
        fields: list[str],
        outcome: Outcome = (None, None),
        *,
        params: tuple[tuple[str, str], ...] = (),
    ) -> None:
        record = RecordedRequest(
            session=session.number,
            client_id=session.client_id,
            msg_id=msg_id,
            name=name,
            fields=tuple(fields),
            req_id=outcome[0],
            key=outcome[1],
            at=time.monotonic(),
            params=params,
        )
        with self._log_lock:
            self._log.append(record)

    def _dispatch(self, session: _Session, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except (IndexError, ValueError):
            LOG.warning("session %d: message without an id: %r", session.number, fields)
            self._record(session, -1, "malformed", fields)
            return
        name = INCOMING_NAMES.get(msg_id, f"unknown{msg_id}")
        handler = self._handlers.get(msg_id)
        outcome: Outcome = (None, None)
        # The answers leave after the request is recorded: a client that saw an answer can
        # rely on finding its request in the log.
        session.hold()
        try:
            if not session.ready and msg_id != Incoming.START_API:
                LOG.warning("session %d: %s before startApi, ignored", session.number, name)
            elif handler is None:
                LOG.info("session %d: %s ignored: %s", session.number, name, fields[1:])
            else:
                try:
                    outcome = handler(session, fields)
                except (IndexError, ValueError):
                    LOG.exception(
                        "session %d: could not handle %s %r", session.number, name, fields
                    )
        finally:
            params = _named_params(msg_id, fields)
            self._record(session, msg_id, name, fields[1:], outcome, params=params)
            session.flush()

    def _resolve(self, session: _Session, req_id: int, query: ContractQuery) -> ContractSpec | None:
        found = self.catalogue.find(query)
        if len(found) == 1:
            return found[0]
        if found:
            text = f"The contract description specified for {query.symbol} is ambiguous."
            session.send(messages.error(req_id, 200, text))
        else:
            session.send(messages.error(req_id, 200, error_text(200)))
        LOG.info("session %d: no single contract for %s", session.number, query.describe())
        return None

    # -- internals: handlers ------------------------------------------------------------------

    def _on_start_api(self, session: _Session, fields: list[str]) -> Outcome:
        client_id = int(fields[2])
        session.client_id = client_id
        in_use = any(s.client_id == client_id for s in self._ready_sessions())
        if client_id in self._rejected_ids or in_use:
            LOG.info("session %d: client id %d refused", session.number, client_id)
            session.send(messages.error(-1, 326, error_text(326)))
            session.close()
            return None, None
        session.ready = True
        session.send(messages.managed_accounts([self.account]))
        session.send(messages.next_valid_id(session.next_order_id))
        if self.send_current_time:
            session.send(messages.current_time(int(time.time())))
        for code in FARM_OK_CODES:
            session.send(messages.error(-1, code, error_text(code)))
        return None, None

    def _on_req_mkt_data(self, session: _Session, fields: list[str]) -> Outcome:
        # 1, version, reqId, 12 contract fields, [combo legs], delta-neutral flag [+3],
        # generic tick list, snapshot, regulatory snapshot, options
        req_id = int(fields[2])
        query = ContractQuery.from_fields(fields[3:15])
        rest = fields[15:]
        if query.sec_type == "BAG":
            rest = rest[1 + 4 * int(rest[0] or 0) :]
        rest = rest[4:] if rest and rest[0] == "1" else rest[1:]
        snapshot = len(rest) > 1 and rest[1] == "1"
        spec = self._resolve(session, req_id, query)
        if spec is None:
            return req_id, None
        self._subscribe(session, req_id, spec, snapshot=snapshot)
        return req_id, spec.key

    def _subscribe(
        self, session: _Session, req_id: int, spec: ContractSpec, *, snapshot: bool
    ) -> None:
        asked = session.market_data_type
        denied = self._denied.get(spec.key)
        delayed = False
        if denied is not None:
            session.send(messages.error(req_id, denied, error_text(denied)))
            if denied not in PARTIAL_ENTITLEMENT_CODES:
                return
        elif spec.key in self._delayed:
            if asked not in {3, 4}:
                session.send(messages.error(req_id, 354, error_text(354)))
                return
            session.send(messages.error(req_id, 10167, error_text(10167)))
            delayed = True
        data_type = asked if delayed else {1: 1, 2: 2, 3: 1, 4: 2}.get(asked, 1)
        sub = _Subscription(req_id, spec.key, delayed)
        if not snapshot:
            session.subscriptions[req_id] = sub
        session.send(messages.market_data_type(req_id, data_type))
        session.send(messages.tick_req_params(req_id, spec.min_tick))
        if not self._paused:
            for event in self._state_events(spec.key):
                session.send(event.fields(sub))
        if snapshot:
            session.send(messages.tick_snapshot_end(req_id))

    def _on_cancel_mkt_data(self, session: _Session, fields: list[str]) -> Outcome:
        req_id = int(fields[2])
        sub = session.subscriptions.pop(req_id, None)
        return req_id, sub.key if sub else None

    def _on_req_contract_details(self, session: _Session, fields: list[str]) -> Outcome:
        # 9, version 8, reqId, 12 contract fields, includeExpired, secIdType, secId, issuerId
        req_id = int(fields[2])
        query = ContractQuery.from_fields(fields[3:15])
        found = self.catalogue.find(query)
        if not found:
            LOG.info("session %d: no contract for %s", session.number, query.describe())
            session.send(messages.error(req_id, 200, error_text(200)))
            return req_id, None
        for spec in found:
            under = self.catalogue.underlying_con_id(spec)
            exchange = query.exchange.upper() or spec.exchange
            session.send(
                messages.contract_details(req_id, spec, exchange=exchange, under_con_id=under)
            )
        session.send(messages.contract_details_end(req_id))
        return req_id, found[0].key if len(found) == 1 else None

    def _on_req_market_data_type(self, session: _Session, fields: list[str]) -> Outcome:
        session.market_data_type = int(fields[2])
        return None, None

    def _on_req_positions(self, session: _Session, fields: list[str]) -> Outcome:
        session.positions_subscribed = True
        for pos in self._positions.values():
            spec = self.catalogue.get(pos.key)
            session.send(messages.position(pos.account, spec, pos.quantity, pos.avg_cost))
        session.send(messages.position_end())
        return None, None

    def _on_cancel_positions(self, session: _Session, fields: list[str]) -> Outcome:
        session.positions_subscribed = False
        return None, None

    def _on_req_current_time(self, session: _Session, fields: list[str]) -> Outcome:
        session.send(messages.current_time(int(time.time())))
        return None, None

    def _on_req_ids(self, session: _Session, fields: list[str]) -> Outcome:
        session.send(messages.next_valid_id(session.next_order_id))
        return None, None

    def _on_req_account_updates(self, session: _Session, fields: list[str]) -> Outcome:
        # 6, version 2, subscribe, account: the account's values, then accountDownloadEnd
        session.account_subscribed = fields[2] == "1"
        if session.account_subscribed:
            account = fields[3] or self.account
            for tag, (value, currency) in self._account_values.items():
                session.send(messages.account_value(tag, value, currency, account))
            session.send(messages.account_download_end(account))
        return None, None

    def _on_req_id_answered(
        self, answer: Callable[[int], list[Field]]
    ) -> Callable[[_Session, list[str]], Outcome]:
        """A handler for requests (msg id, version, reqId, ...) answered by one end message."""

        def handle(session: _Session, fields: list[str]) -> Outcome:
            req_id = int(fields[2])
            session.send(answer(req_id))
            return req_id, None

        return handle

    def _on_open_orders(self, session: _Session, fields: list[str]) -> Outcome:
        session.send(messages.open_order_end())
        return None, None

    def _on_completed_orders(self, session: _Session, fields: list[str]) -> Outcome:
        session.send(messages.completed_orders_end())
        return None, None

    def _on_req_managed_accts(self, session: _Session, fields: list[str]) -> Outcome:
        session.send(messages.managed_accounts([self.account]))
        return None, None

    def _on_place_order(self, session: _Session, fields: list[str]) -> Outcome:
        order_id = int(fields[1])
        if self.readonly:
            session.send(messages.error(order_id, 321, error_text(321)))
        else:
            LOG.warning("session %d: placeOrder %d not emulated", session.number, order_id)
        return order_id, None

    def _on_req_sec_def_opt_params(self, session: _Session, fields: list[str]) -> Outcome:
        # 78, reqId, underlying symbol, FUT/FOP exchange, underlying secType, underlying conId
        req_id = int(fields[1])
        symbol, under_con_id = fields[2], int(fields[5] or 0)
        chains: dict[tuple[str, str, str], tuple[set[str], set[float]]] = {}
        for spec in self.catalogue:
            if spec.sec_type != "OPT" or spec.under_symbol != symbol:
                continue
            for exchange in spec.exchanges():
                expiries, strikes = chains.setdefault(
                    (exchange, spec.trading_class, spec.multiplier), (set(), set())
                )
                expiries.add(spec.last_trade_date)
                strikes.add(spec.strike)
        for (exchange, trading_class, multiplier), (expiries, strikes) in chains.items():
            session.send(
                messages.option_chain(
                    req_id,
                    exchange=exchange,
                    under_con_id=under_con_id,
                    trading_class=trading_class,
                    multiplier=multiplier,
                    expirations=sorted(expiries),
                    strikes=sorted(strikes),
                )
            )
        session.send(messages.option_chain_end(req_id))
        return req_id, None

    def _on_req_historical_data(self, session: _Session, fields: list[str]) -> Outcome:
        request = HistoryRequest.from_fields(fields)
        req_id = request.req_id
        spec = self._resolve(session, req_id, request.contract)
        if spec is None:
            return req_id, None
        if self._history_held:
            return req_id, spec.key
        try:
            end = parse_end_date_time(request.end_date_time)
        except ValueError:
            text = BAD_END_DATE_TIME.format(text=request.end_date_time)
            session.send(messages.error(req_id, 321, text))
            return req_id, spec.key
        exchange = request.contract.exchange.upper() or spec.exchange
        if spec.key in self._denied:
            # The real gateway refuses historical data without permissions with 162 and this
            # wording; 354 and the other entitlement codes answer live market data only.
            detail = HMDS_NO_PERMISSIONS.format(exchange=exchange, sec_type=spec.sec_type)
            session.send(messages.error(req_id, 162, error_text(162) + detail))
            return req_id, spec.key
        bars = bars_before(self._history.get(spec.key, ()), end)
        if not bars:
            detail = HMDS_NO_DATA.format(
                local_symbol=spec.local_symbol or spec.symbol,
                exchange=exchange,
                what=request.what_to_show.title(),
            )
            session.send(messages.error(req_id, 162, error_text(162) + detail))
            return req_id, spec.key
        session.history_keys[req_id] = spec.key
        daily = request.daily
        dated = [
            (format_bar_date(bar.start, request.format_date, daily=daily), bar) for bar in bars
        ]
        start_text = format_header_date(bars[0].start)
        end_text = format_header_date(end or datetime.now(UTC))
        session.send(messages.historical_data(req_id, start_text, end_text, dated))
        return req_id, spec.key

    def _on_cancel_historical_data(self, session: _Session, fields: list[str]) -> Outcome:
        # 25, version 1, reqId: accepted without an answer, as for a request already complete.
        req_id = int(fields[2])
        return req_id, session.history_keys.pop(req_id, None)

    # -- internals: streaming ----------------------------------------------------------------

    def _tick(
        self,
        key: str,
        *,
        bid: float | None,
        ask: float | None,
        last: float | None,
        bid_size: float | None,
        ask_size: float | None,
        last_size: float | None,
        close: float | None,
        flush: bool = True,
    ) -> int:
        quote = self._quotes.setdefault(key, _Quote())
        events: list[_Event] = []
        sides = (
            ("bid", bid, bid_size, TickType.BID, TickType.BID_SIZE),
            ("ask", ask, ask_size, TickType.ASK, TickType.ASK_SIZE),
            ("last", last, last_size, TickType.LAST, TickType.LAST_SIZE),
        )
        for name, price, size, price_type, size_type in sides:
            if size is not None:
                setattr(quote, f"{name}_size", size)
            if price is not None:
                setattr(quote, name, price)
                current = getattr(quote, f"{name}_size")
                events.append(_Event("price", price_type, price, current or 0.0))
            elif size is not None:
                events.append(_Event("size", size_type, size=size))
        if close is not None:
            quote.close = close
            events.append(_Event("price", TickType.CLOSE, close, 0.0))
        return self._broadcast(key, events, flush=flush)

    def _broadcast(self, key: str, events: list[_Event], *, flush: bool = True) -> int:
        """Sends ``events`` to every subscriber of ``key``; without ``flush`` they stay held
        (``_Session.hold``) until the caller flushes, so several ticks leave in one write."""
        if self._paused or not events:
            return 0
        reached = 0
        for session in self._ready_sessions():
            session.hold()
            for sub in list(session.subscriptions.values()):
                if sub.key == key:
                    for event in events:
                        session.send(event.fields(sub))
                    reached += 1
            if flush:
                session.flush()
        return reached

    def _state_events(self, key: str) -> list[_Event]:
        """The current values of ``key`` as events, for a new subscription."""
        quote = self._quotes.get(key)
        if quote is None:
            return []
        events: list[_Event] = []
        for price, size, price_type in (
            (quote.bid, quote.bid_size, TickType.BID),
            (quote.ask, quote.ask_size, TickType.ASK),
            (quote.last, quote.last_size, TickType.LAST),
            (quote.close, 0.0, TickType.CLOSE),
        ):
            if price is not None:
                events.append(_Event("price", price_type, price, size or 0.0))
        events.extend(
            _Event("option", tick_type, option=values, price_based=price_based)
            for tick_type, (values, price_based) in quote.greeks.items()
        )
        return events
