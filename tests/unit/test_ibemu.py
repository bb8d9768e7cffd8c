"""The emulated IB Gateway against the real ib_async client, and its wire format on raw sockets."""

from __future__ import annotations

import asyncio
import math
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from ib_async import (
    IB,
    BarData,
    BarDataList,
    Contract,
    Future,
    Index,
    LimitOrder,
    Option,
    OptionComputation,
    Position,
    Ticker,
)
from ibemu import (
    GREEK_SENTINEL,
    PRICE_SENTINEL,
    SERVER_VERSION,
    HistoryBar,
    IBGateway,
    TickType,
)
from ibemu.catalogue import ContractQuery, matches, occ_local_symbol, option
from ibemu.fixtures import ib_gateway_fixture  # noqa: F401 - the fixture
from ibemu.protocol import FrameBuffer, encode, parse_greeting, split_fields

SPXW_PUT = "SPXW 20260320 P6200"
ErrorRecord = tuple[int, int, str]


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Runs one test coroutine with a hard 5 s ceiling."""

    async def bounded() -> None:
        async with asyncio.timeout(5):
            await coro

    asyncio.run(bounded())


async def connect(gw: IBGateway, client_id: int = 1, limit: float = 2.0) -> IB:
    ib = IB()
    await ib.connectAsync(gw.host, gw.port, clientId=client_id, readonly=True, timeout=limit)
    return ib


@asynccontextmanager
async def connected(gw: IBGateway, client_id: int = 1) -> AsyncIterator[IB]:
    ib = await connect(gw, client_id)
    try:
        yield ib
    finally:
        ib.disconnect()


def collect_errors(ib: IB) -> list[ErrorRecord]:
    errors: list[ErrorRecord] = []

    def on_error(req_id: int, code: int, message: str, _contract: Contract | None) -> None:
        errors.append((req_id, code, message))

    ib.errorEvent += on_error
    return errors


def codes(errors: list[ErrorRecord]) -> list[int]:
    return [code for _, code, _ in errors]


async def until(gw: IBGateway, condition: Callable[[], bool], what: str = "condition") -> None:
    await gw.wait_until(condition, 2.0, what)


def spxw_put() -> Option:
    return Option("SPX", "20260320", 6200, "P", "CBOE", tradingClass="SPXW", multiplier="100")


async def qualify(ib: IB, contract: Contract) -> Contract:
    [qualified] = await ib.qualifyContractsAsync(contract)
    assert isinstance(qualified, Contract), contract
    return qualified


def greeks_of(ticker: Ticker) -> OptionComputation:
    assert ticker.modelGreeks is not None
    return ticker.modelGreeks


async def subscribe(gw: IBGateway, ib: IB, contract: Contract, key: str) -> Ticker:
    qualified = await qualify(ib, contract)
    ticker = ib.reqMktData(qualified)
    await until(gw, lambda: key in gw.subscribed_keys(), f"subscription to {key}")
    return ticker


# -- connecting ---------------------------------------------------------------------------------


def test_handshake_start_api_and_startup_requests(ib_gateway: IBGateway) -> None:
    gw = ib_gateway

    async def main() -> None:
        ib = IB()
        errors = collect_errors(ib)
        started = time.monotonic()
        await ib.connectAsync(gw.host, gw.port, clientId=3, readonly=True, timeout=2)
        try:
            assert time.monotonic() - started < 1.0  # every startup request was answered
            assert ib.isConnected()
            assert ib.client.serverVersion() == SERVER_VERSION
            assert ib.managedAccounts() == ["DU1234567"]
            await until(gw, lambda: len(errors) >= 3, "farm notices")
            assert codes(errors) == [2104, 2106, 2158]
            assert {req_id for req_id, _, _ in errors} == {-1}
            assert gw.client_ids == [3]
            names = [r.name for r in gw.requests(client_id=3)]
            assert names[0] == "startApi"
            assert {"reqPositions", "reqAccountUpdates", "reqExecutions"} <= set(names)
            assert "reqOpenOrders" not in names  # readonly
            [handshake] = gw.requests("handshake")
            assert handshake.fields == ("v157..178",)
            now = await ib.reqCurrentTimeAsync()
            assert abs((now - datetime.now(UTC)).total_seconds()) < 5
        finally:
            ib.disconnect()

    run(main())


def test_unknown_requests_are_recorded_and_ignored(ib_gateway: IBGateway) -> None:
    gw = ib_gateway

    async def main() -> None:
        async with connected(gw) as ib:
            errors = collect_errors(ib)
            ib.client.reqNewsBulletins(True)  # type: ignore[no-untyped-call]
            ib.client.reqIds(1)  # type: ignore[no-untyped-call]
            await gw.wait_for_requests("reqNewsBulletins")
            await gw.wait_for_requests("reqIds")
            assert ib.isConnected()
            assert (await ib.reqCurrentTimeAsync()).year >= 2024
            assert errors == []

    run(main())


def test_orders_are_refused_in_read_only_mode(ib_gateway: IBGateway) -> None:
    gw = ib_gateway

    async def main() -> None:
        async with connected(gw) as ib:
            errors = collect_errors(ib)
            spx = await qualify(ib, Index("SPX", "CBOE"))
            ib.placeOrder(spx, LimitOrder("BUY", 1, 1.0))
            await until(gw, lambda: 321 in codes(errors), "error 321")
            [order] = gw.requests("placeOrder")
            assert order.req_id == errors[-1][0]

    run(main())


# -- contracts ----------------------------------------------------------------------------------

QUALIFY_CASES: list[tuple[Contract, str]] = [
    (Index("SPX", "CBOE"), "SPX"),
    (Index("VIX", "CBOE"), "VIX"),
    (Index("AD-NYSE", "NYSE"), "AD-NYSE"),
    (Future("VIX", "20260318", "CFE", tradingClass="VX", multiplier="1000"), "VX 20260318"),
    (Future("VIX", "202604", "CFE", tradingClass="VX"), "VX 20260415"),
    (Future(localSymbol="VXK6", exchange="CFE"), "VX 20260520"),
    (
        # AM-settled options are dated by their last trading day, the day before expiration.
        Option("SPX", "20260416", 6425, "P", "CBOE", tradingClass="SPX", multiplier="100"),
        "SPX 20260417 P6425",
    ),
    (Option("SPX", "202604", 6800, "C", "CBOE", tradingClass="SPX"), "SPX 20260417 C6800"),
    (spxw_put(), SPXW_PUT),
    (Option("SPX", "20260320", 7000, "CALL", "SMART", tradingClass="SPXW"), "SPXW 20260320 C7000"),
    (Option("VIX", "20260317", 22, "C", "CBOE", tradingClass="VIX"), "VIX 20260318 C22"),
]


def test_dates_follow_ib_last_trading_day_convention() -> None:
    """An AM-settled option asked for by its expiration date is unknown to IB; its details
    carry the last trading day in lastTradeDateOrContractMonth and the expiration only in
    realExpirationDate. A lenient gateway takes either."""

    async def main(gw: IBGateway) -> None:
        async with connected(gw) as ib:
            by_expiration = Option("SPX", "20260417", 6425, "P", "CBOE", tradingClass="SPX")
            found = await ib.reqContractDetailsAsync(by_expiration)
            if not gw.catalogue.accept_expiration_dates:
                assert found == []
                return
            [details] = found
            assert details.contract is not None
            assert details.contract.lastTradeDateOrContractMonth == "20260416"
            assert details.realExpirationDate == "20260417"
            assert details.lastTradeTime == "15:15:00"
            assert details.contract.localSymbol == "SPX   260417P06425000"
            [vix] = await ib.reqContractDetailsAsync(Option("VIX", "20260318", 22, "C", "CBOE"))
            assert (vix.contract.lastTradeDateOrContractMonth, vix.realExpirationDate) == (
                "20260317",
                "20260318",
            )
            [future] = await ib.reqContractDetailsAsync(Future("VIX", "20260318", "CFE"))
            assert future.contract is not None
            assert future.contract.lastTradeDateOrContractMonth == future.realExpirationDate
            assert future.lastTradeTime == "08:00:00"

    for lenient in (False, True):
        with IBGateway(accept_expiration_dates=lenient) as gw:
            run(main(gw))


def test_qualify_every_kind_of_contract(ib_gateway: IBGateway) -> None:
    gw = ib_gateway

    async def main() -> None:
        async with connected(gw) as ib:
            contracts = [c for c, _ in QUALIFY_CASES]
            qualified = await ib.qualifyContractsAsync(*contracts)
            for (_, key), contract in zip(QUALIFY_CASES, qualified, strict=True):
                assert isinstance(contract, Contract), key
                spec = gw.contract(key)
                assert contract.conId == spec.con_id, key
                assert contract.secType == spec.sec_type
                assert contract.lastTradeDateOrContractMonth == spec.last_trade_date
                assert contract.tradingClass == spec.trading_class
                assert contract.multiplier == spec.multiplier
            by_key = {r.key for r in gw.requests("reqContractDetails")}
            assert by_key == {key for _, key in QUALIFY_CASES}
            assert len({c.conId for c in qualified if isinstance(c, Contract)}) == len(qualified)

    run(main())


def test_contract_details_fields(ib_gateway: IBGateway) -> None:
    gw = ib_gateway

    async def main() -> None:
        async with connected(gw) as ib:
            [details] = await ib.reqContractDetailsAsync(spxw_put())
            assert details.contract is not None
            assert details.contract.localSymbol == "SPXW  260320P06200000"
            assert details.contract.exchange == "CBOE"
            assert details.underConId == gw.contract("SPX").con_id
            assert details.realExpirationDate == "20260320"
            assert details.minTick == 0.05
            assert details.longName == "S&P 500 Stock Index"
            assert details.validExchanges == "SMART,CBOE"
            [future] = await ib.reqContractDetailsAsync(Future("VIX", "20260318", "CFE"))
            assert future.contract is not None
            assert future.contract.localSymbol == "VXH6"
            assert future.underConId == gw.contract("VIX").con_id
            chains = await ib.reqSecDefOptParamsAsync("SPX", "", "IND", gw.contract("SPX").con_id)
            classes = {(c.exchange, c.tradingClass) for c in chains}
            assert ("CBOE", "SPXW") in classes
            assert ("SMART", "SPX") in classes
            spxw = next(c for c in chains if c.tradingClass == "SPXW" and c.exchange == "CBOE")
            assert spxw.expirations == ["20260320"]
            assert spxw.strikes == [6200.0, 6250.0, 7000.0, 7050.0]

    run(main())


def test_unknown_and_ambiguous_contracts(ib_gateway: IBGateway) -> None:
    gw = ib_gateway

    async def main() -> None:
        async with connected(gw) as ib:
            errors = collect_errors(ib)
            unknown, ambiguous = await ib.qualifyContractsAsync(
                Index("NOPE", "CBOE"), Option("SPX", "20260320", exchange="CBOE")
            )
            assert unknown is None
            assert ambiguous is None  # four SPXW options match: ib_async gives up
            assert codes(errors) == [200]
            assert errors[0][2] == "No security definition has been found for the request"
            [request] = [r for r in gw.requests("reqContractDetails") if r.req_id == errors[0][0]]
            assert "NOPE" in request.fields

    run(main())


# -- market data --------------------------------------------------------------------------------


def test_ticks_reach_every_subscriber(ib_gateway: IBGateway) -> None:
    gw = ib_gateway

    async def main() -> None:
        async with connected(gw, 1) as ib1, connected(gw, 2) as ib2:
            ib1.reqMarketDataType(1)
            t1 = await subscribe(gw, ib1, spxw_put(), SPXW_PUT)
            t2 = await subscribe(gw, ib2, spxw_put(), SPXW_PUT)
            reached = gw.tick(SPXW_PUT, bid=10.5, ask=11.0, bid_size=5, ask_size=7, last=10.75)
            assert reached == 2
            await until(gw, lambda: t1.last == t2.last == 10.75, "last price")
            for ticker in (t1, t2):
                assert (ticker.bid, ticker.bidSize, ticker.ask, ticker.askSize) == (10.5, 5, 11, 7)
                assert ticker.marketDataType == 1
                assert ticker.minTick == 0.05
            gw.tick(SPXW_PUT, ask_size=9)  # a size alone: tickSize
            await until(gw, lambda: t1.askSize == 9, "ask size")
            assert t1.ask == 11.0
            gw.tick(SPXW_PUT, bid=10.0)  # a price alone keeps the last size
            await until(gw, lambda: t1.bid == 10.0, "bid")
            assert t1.bidSize == 5
            assert gw.market_data_type(1) == 1

            assert t2.contract is not None
            ib2.cancelMktData(t2.contract)
            await gw.wait_for_requests("cancelMktData", client_id=2)
            assert gw.subscribed_keys(2) == set()
            assert gw.tick(SPXW_PUT, last=12.0) == 1
            await until(gw, lambda: t1.last == 12.0, "last after cancel")
            assert t2.last == 10.75

    run(main())


def test_new_subscription_gets_current_values_and_snapshot(ib_gateway: IBGateway) -> None:
    gw = ib_gateway

    async def main() -> None:
        assert gw.tick("SPX", last=6543.21, close=6500.0) == 0  # nobody subscribed yet
        gw.tick("VX 20260318", bid=19.85, ask=19.9, bid_size=10, ask_size=12)
        async with connected(gw) as ib:
            spx = await subscribe(gw, ib, Index("SPX", "CBOE"), "SPX")
            await until(gw, lambda: spx.close == 6500.0, "SPX close")  # sent after the last
            assert spx.last == 6543.21
            assert math.isnan(spx.bid)
            vx = await qualify(ib, Future("VIX", "20260318", "CFE"))
            [snapshot] = await ib.reqTickersAsync(vx)
            assert (snapshot.bid, snapshot.ask) == (19.85, 19.9)
            assert "VX 20260318" not in gw.subscribed_keys()  # a snapshot does not stay

    run(main())


def test_option_computations_land_in_the_ticker(ib_gateway: IBGateway) -> None:
    gw = ib_gateway

    async def main() -> None:
        async with connected(gw) as ib:
            ticker = await subscribe(gw, ib, spxw_put(), SPXW_PUT)
            gw.option_computation(
                SPXW_PUT, iv=0.21, delta=-0.12, gamma=0.0011, vega=1.5, theta=-2.25, und_price=6480
            )
            await until(gw, lambda: ticker.modelGreeks is not None, "model greeks")
            greeks = ticker.modelGreeks
            assert greeks is not None
            assert (greeks.impliedVol, greeks.delta, greeks.gamma) == (0.21, -0.12, 0.0011)
            assert (greeks.vega, greeks.theta, greeks.undPrice) == (1.5, -2.25, 6480.0)
            assert greeks.optPrice is None  # not given: sent as -1
            assert greeks.tickAttrib == 0

            gw.option_computation(SPXW_PUT, iv=0.3, tick_type=TickType.BID_OPTION)
            await until(gw, lambda: ticker.bidGreeks is not None, "bid greeks")

            gw.option_computation(SPXW_PUT)  # every value not computed
            await until(gw, lambda: greeks_of(ticker).impliedVol is None, "sentinels")
            sentinel = ticker.modelGreeks
            assert sentinel is not None
            assert sentinel.delta is None
            assert sentinel.gamma is None
            assert sentinel.undPrice is None
            # ib_async maps -2 to None for delta and gamma but keeps it for vega and theta.
            assert sentinel.vega == GREEK_SENTINEL
            assert sentinel.theta == GREEK_SENTINEL

            gw.option_computation(SPXW_PUT, iv=PRICE_SENTINEL, delta=0.5, price_based=True)
            await until(gw, lambda: greeks_of(ticker).delta == 0.5, "explicit sentinel")
            assert greeks_of(ticker).impliedVol is None
            assert greeks_of(ticker).tickAttrib == 1

    run(main())


@pytest.mark.parametrize("code", [354, 10089, 10090, 10091, 10168, 10197])
def test_denied_market_data_reaches_the_error_event(ib_gateway: IBGateway, code: int) -> None:
    gw = ib_gateway
    gw.deny("VIX 20260318 C22", code)

    async def main() -> None:
        async with connected(gw) as ib:
            errors = collect_errors(ib)
            contract = await qualify(
                ib, Option("VIX", "20260317", 22, "C", "CBOE", tradingClass="VIX")
            )
            ticker = ib.reqMktData(contract)
            await until(gw, lambda: code in codes(errors), f"error {code}")
            [request] = gw.requests("reqMktData")
            assert errors[-1][0] == request.req_id
            assert request.key == "VIX 20260318 C22"
            partial = code in {10090, 10091}
            assert ("VIX 20260318 C22" in gw.subscribed_keys()) == partial
            assert gw.tick("VIX 20260318 C22", last=1.25) == int(partial)
            if partial:
                await until(gw, lambda: ticker.last == 1.25, "partial data")

    run(main())


def test_delayed_only_contract(ib_gateway: IBGateway) -> None:
    gw = ib_gateway
    gw.set_delayed("AD-NYSE")

    async def main() -> None:
        async with connected(gw) as ib:
            errors = collect_errors(ib)
            ad = await qualify(ib, Index("AD-NYSE", "NYSE"))
            live = ib.reqMktData(ad)
            await until(gw, lambda: 354 in codes(errors), "354 on live data")
            ib.cancelMktData(ad)
            ib.reqMarketDataType(3)
            ticker = ib.reqMktData(ad)
            await until(gw, lambda: 10167 in codes(errors), "warning 10167")
            assert "AD-NYSE" in gw.subscribed_keys()
            gw.tick("AD-NYSE", last=812.0)
            await until(gw, lambda: ticker.last == 812.0, "delayed last")
            assert ticker is live  # one Ticker per contract in ib_async
            assert ticker.marketDataType == 3
            assert gw.market_data_type(1) == 3

    run(main())


def test_pause_holds_back_ticks(ib_gateway: IBGateway) -> None:
    gw = ib_gateway

    async def main() -> None:
        async with connected(gw) as ib:
            vix = await subscribe(gw, ib, Index("VIX", "CBOE"), "VIX")
            gw.tick("VIX", last=18.5)
            await until(gw, lambda: vix.last == 18.5, "first tick")
            gw.pause()
            assert gw.paused
            assert gw.tick("VIX", last=19.0) == 0
            await asyncio.sleep(0.1)
            assert vix.last == 18.5
            gw.resume()
            gw.tick("VIX", last=19.5)
            await until(gw, lambda: vix.last == 19.5, "tick after resume")

    run(main())


# -- historical bars ----------------------------------------------------------------------------

SESSION_OPEN = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)


def five_minute_bars(count: int, first: float = 20.0) -> list[HistoryBar]:
    """``count`` 5-minute bars from 14:30 UTC on 3 March 2026, each 0.5 above the last."""
    bars = []
    for i in range(count):
        level = first + 0.5 * i
        start = SESSION_OPEN + timedelta(minutes=5 * i)
        bars.append(HistoryBar(start, level, level + 0.4, level - 0.3, level + 0.2, 100.0 * i))
    return bars


async def history(
    ib: IB,
    contract: Contract,
    end: datetime | str = "",
    *,
    format_date: int = 2,
    bar_size: str = "5 mins",
    limit: float = 2.0,
) -> BarDataList:
    return await ib.reqHistoricalDataAsync(
        contract,
        endDateTime=end,
        durationStr="1 D",
        barSizeSetting=bar_size,
        whatToShow="TRADES",
        useRTH=False,
        formatDate=format_date,
        timeout=limit,
    )


def ohlcv(bar: BarData) -> tuple[float, float, float, float, float]:
    return bar.open, bar.high, bar.low, bar.close, bar.volume


def test_historical_bars_with_epoch_dates(ib_gateway: IBGateway) -> None:
    gw = ib_gateway
    stored = five_minute_bars(3)
    gw.set_history("VIX", list(reversed(stored)))  # served oldest first whatever the order given

    async def main() -> None:
        async with connected(gw) as ib:
            errors = collect_errors(ib)
            vix = await qualify(ib, Index("VIX", "CBOE"))
            bars = await ib.reqHistoricalDataAsync(
                vix,
                endDateTime="",
                durationStr="1 D",
                barSizeSetting="5 mins",
                whatToShow="TRADES",
                useRTH=False,
                formatDate=2,
            )
            assert [b.date for b in bars] == [bar.start for bar in stored]
            for got in bars:
                assert isinstance(got.date, datetime)
                assert got.date.utcoffset() == timedelta(0)
            assert [ohlcv(b) for b in bars] == [
                (b.open, b.high, b.low, b.close, b.volume) for b in stored
            ]
            assert bars[1].average == bars[1].close
            [request] = gw.requests("reqHistoricalData")
            assert request.req_id == bars.reqId
            assert request.key == "VIX"
            assert dict(request.params) == {
                "includeExpired": "0",
                "endDateTime": "",
                "durationStr": "1 D",
                "barSizeSetting": "5 mins",
                "whatToShow": "TRADES",
                "useRTH": "0",
                "formatDate": "2",
                "keepUpToDate": "0",
                "chartOptions": "",
            }
            assert request.param("durationStr") == "1 D"
            with pytest.raises(KeyError):
                request.param("nope")
            assert codes(errors) == []

    run(main())


def test_historical_bars_before_the_end_date_time(ib_gateway: IBGateway) -> None:
    gw = ib_gateway
    stored = five_minute_bars(4, first=19.0)
    gw.set_history("VX 20260318", stored)

    async def main() -> None:
        async with connected(gw) as ib:
            future = Future("VIX", "20260318", "CFE")  # by contract fields, not conId
            cases: list[tuple[datetime | str, int]] = [
                (SESSION_OPEN + timedelta(minutes=10), 2),  # "20260303 14:40:00 UTC"
                ("20260303-14:35:00", 1),  # dashed form: UTC
                ("20260303 09:45:00 US/Eastern", 3),  # 14:45 UTC
                ("20260303 14:40:01", 3),  # no zone: the gateway's, UTC
                ("20260304 00:00:00 UTC", 4),
            ]
            for end, count in cases:
                bars = await history(ib, future, end)
                assert [b.date for b in bars] == [b.start for b in stored[:count]], end
            ends = [r.param("endDateTime") for r in gw.requests("reqHistoricalData")]
            assert ends[0] == "20260303 14:40:00 UTC"
            assert {r.key for r in gw.requests("reqHistoricalData")} == {"VX 20260318"}

    run(main())


def test_historical_bars_with_format_date_1_and_daily_bars(ib_gateway: IBGateway) -> None:
    gw = ib_gateway
    stored = five_minute_bars(2, first=6500.0)
    gw.set_history("SPX", stored)

    async def main() -> None:
        async with connected(gw) as ib:
            spx = await qualify(ib, Index("SPX", "CBOE"))
            bars = await history(ib, spx, format_date=1)
            # formatDate=1: UTC wall clock, which ib_async parses into naive datetimes
            assert [b.date for b in bars] == [b.start.replace(tzinfo=None) for b in stored]
            assert isinstance(bars[0].date, datetime)
            assert bars[0].date.tzinfo is None
            assert bars[0].open == 6500.0
            daily = await history(ib, spx, format_date=2, bar_size="1 day")
            assert [b.date for b in daily] == [date(2026, 3, 3)] * 2

    run(main())


def test_no_history_and_denied_history_answer_error_162(ib_gateway: IBGateway) -> None:
    gw = ib_gateway
    gw.set_history("VIX", five_minute_bars(1))
    gw.deny("VX 20260415")
    gw.set_history("VX 20260415", five_minute_bars(1))

    async def main() -> None:
        async with connected(gw) as ib:
            errors = collect_errors(ib)
            spx = await qualify(ib, Index("SPX", "CBOE"))
            vix = await qualify(ib, Index("VIX", "CBOE"))
            vx = await qualify(ib, Future("VIX", "20260415", "CFE"))
            cases = [
                (spx, "", "HMDS query returned no data: SPX@CBOE Trades"),
                (vix, "20260303 14:30:00 UTC", "HMDS query returned no data: VIX@CBOE Trades"),
                (vx, "", "No market data permissions for CFE FUT"),
            ]
            for contract, end, detail in cases:
                bars = await history(ib, contract, end)
                assert list(bars) == []
                req_id, code, message = errors[-1]
                assert (req_id, code) == (bars.reqId, 162)
                assert message == f"Historical Market Data Service error message:{detail}"
            assert codes(errors) == [162] * 3
            keys = [r.key for r in gw.requests("reqHistoricalData")]
            assert keys == ["SPX", "VIX", "VX 20260415"]

    run(main())


def test_history_requests_that_fail_validation_or_are_cancelled(ib_gateway: IBGateway) -> None:
    gw = ib_gateway
    gw.set_history("VIX", five_minute_bars(2))

    async def main() -> None:
        async with connected(gw) as ib:
            errors = collect_errors(ib)
            vix = await qualify(ib, Index("VIX", "CBOE"))
            live = await ib.reqHistoricalDataAsync(
                vix, "", "1 D", "5 mins", "TRADES", useRTH=True, keepUpToDate=True
            )
            assert len(live) == 2
            ib.cancelHistoricalData(live)
            [cancel] = await gw.wait_for_requests("cancelHistoricalData")
            assert (cancel.req_id, cancel.key) == (live.reqId, "VIX")
            [request] = gw.requests("reqHistoricalData")
            assert (request.param("keepUpToDate"), request.param("useRTH")) == ("1", "1")

            # 321 is a warning to ib_async: the request waits for its timeout, then cancels.
            bars = await history(ib, vix, "yesterday", limit=0.3)
            assert list(bars) == []
            assert codes(errors) == [321]
            assert "end date/time string [yesterday] is invalid" in errors[0][2]
            cancels = await gw.wait_for_requests("cancelHistoricalData", 2)
            assert (cancels[-1].req_id, cancels[-1].key) == (bars.reqId, None)
            assert ib.isConnected()

    run(main())


def test_history_bar_needs_an_aware_start() -> None:
    with pytest.raises(ValueError, match="time zone"):
        HistoryBar(datetime(2026, 3, 3, 14, 30), 1.0, 1.0, 1.0, 1.0)  # noqa: DTZ001


# -- positions ----------------------------------------------------------------------------------


def test_positions_and_updates() -> None:
    configured = [("SPXW 20260320 P6200", -2.0, 1234.5), ("VX 20260318", 1.0, 19850.0)]

    async def main(gw: IBGateway) -> None:
        async with connected(gw) as ib:
            positions = await ib.reqPositionsAsync()
            got = {(p.contract.conId, p.position, p.avgCost, p.account) for p in positions}
            assert got == {
                (gw.contract(key).con_id, qty, cost, "DU1234567") for key, qty, cost in configured
            }
            assert {p.contract.tradingClass for p in ib.positions()} == {"SPXW", "VX"}
            updates: list[float] = []

            def on_position(position: Position) -> None:
                updates.append(position.position)

            ib.positionEvent += on_position
            assert gw.set_position("VIX 20260318 C22", 10, 150.0) == 1
            gw.set_position("VX 20260318", 0)
            await until(gw, lambda: len(updates) == 2, "position updates")
            assert updates == [10.0, 0.0]
            held = {p.contract.localSymbol: p.position for p in ib.positions()}
            assert held == {"SPXW  260320P06200000": -2.0, "VIX   260318C00022000": 10.0}
            assert {p.key for p in gw.positions} == {"SPXW 20260320 P6200", "VIX 20260318 C22"}

    with IBGateway(positions=configured) as gateway:
        run(main(gateway))


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [1100, 1101, 1102, 2103, 2105, 2157, 2104, 2106, 2158])
def test_connectivity_notices_reach_the_error_event(ib_gateway: IBGateway, code: int) -> None:
    gw = ib_gateway

    async def main() -> None:
        async with connected(gw) as ib:
            errors = collect_errors(ib)
            assert gw.send_error(code) == 1
            await until(gw, lambda: code in codes(errors), f"notice {code}")
            assert errors[-1][0] == -1
            assert ib.isConnected()  # no notice ends the API connection
            if code == 1102:  # ib_async asks for the account summary again on 1102
                await gw.wait_for_requests("reqAccountSummary")

    run(main())


def test_connectivity_lost_then_restored_with_data_lost(ib_gateway: IBGateway) -> None:
    gw = ib_gateway

    async def main() -> None:
        async with connected(gw) as ib:
            errors = collect_errors(ib)
            spx = await subscribe(gw, ib, Index("SPX", "CBOE"), "SPX")
            gw.lose_connectivity()
            assert gw.tick("SPX", last=6500.0) == 0
            gw.restore_connectivity(data_kept=False)
            await until(gw, lambda: 1101 in codes(errors), "1101")
            assert codes(errors)[-2:] == [1100, 1101]
            assert gw.subscribed_keys() == set()
            assert gw.tick("SPX", last=6501.0) == 0  # gone until the client subscribes again
            assert spx.contract is not None
            ib.cancelMktData(spx.contract)
            again = ib.reqMktData(spx.contract)
            await until(gw, lambda: "SPX" in gw.subscribed_keys(), "resubscribed")
            gw.tick("SPX", last=6502.0)
            await until(gw, lambda: again.last == 6502.0, "data after resubscribing")

            gw.lose_connectivity()
            gw.restore_connectivity(data_kept=True)
            await until(gw, lambda: 1102 in codes(errors), "1102")
            assert gw.tick("SPX", last=6503.0) == 1

    run(main())


def test_subscription_error_mid_stream(ib_gateway: IBGateway) -> None:
    gw = ib_gateway

    async def main() -> None:
        async with connected(gw) as ib:
            errors = collect_errors(ib)
            await subscribe(gw, ib, Index("VIX", "CBOE"), "VIX")
            assert gw.subscription_error("VIX", 10197, cancel=True) == 1
            await until(gw, lambda: 10197 in codes(errors), "10197")
            assert gw.subscribed_keys() == set()

    run(main())


def test_drop_clients_fires_disconnected_and_a_reconnect_resubscribes(
    ib_gateway: IBGateway,
) -> None:
    gw = ib_gateway
    keys = {"SPX", "VIX", SPXW_PUT}

    async def subscribe_all(ib: IB) -> None:
        contracts = [Index("SPX", "CBOE"), Index("VIX", "CBOE"), spxw_put()]
        for contract in await ib.qualifyContractsAsync(*contracts):
            assert isinstance(contract, Contract)
            ib.reqMktData(contract)
        await until(gw, lambda: gw.subscribed_keys() == keys, "all subscribed")

    async def main() -> None:
        for reset in (False, True):
            ib = await connect(gw)
            try:
                dropped = asyncio.Event()
                ib.disconnectedEvent += dropped.set
                await subscribe_all(ib)
                assert gw.drop_clients(reset=reset) == 1
                await asyncio.wait_for(dropped.wait(), 2)
                assert not ib.isConnected()
                assert gw.subscribed_keys() == set()

                await ib.connectAsync(gw.host, gw.port, clientId=1, readonly=True, timeout=2)
                await subscribe_all(ib)
                sessions = [r.session for r in gw.requests("startApi")]
                first, second = sessions[-2:]
                for session in (first, second):
                    subscribed = {r.key for r in gw.requests("reqMktData") if r.session == session}
                    assert subscribed == keys
            finally:
                ib.disconnect()

    run(main())


def test_stop_and_start_on_the_same_port(ib_gateway: IBGateway) -> None:
    gw = ib_gateway
    port = gw.port

    async def main() -> None:
        ib = await connect(gw)
        try:
            dropped = asyncio.Event()
            ib.disconnectedEvent += dropped.set
            gw.stop()
            assert not gw.serving
            await asyncio.wait_for(dropped.wait(), 2)
            with pytest.raises(ConnectionRefusedError):
                await connect(gw, limit=1)
            gw.start()
            assert gw.port == port
            await ib.connectAsync(gw.host, gw.port, clientId=1, readonly=True, timeout=2)
            spx = await qualify(ib, Index("SPX", "CBOE"))
            assert spx.conId == gw.contract("SPX").con_id
            assert len(gw.requests("handshake")) == 2  # the refused attempt got no socket
        finally:
            ib.disconnect()

    run(main())


def test_rejected_and_duplicate_client_ids(ib_gateway: IBGateway) -> None:
    gw = ib_gateway
    gw.reject_client_id(5)

    async def attempt(client_id: int) -> list[ErrorRecord]:
        ib = IB()
        errors = collect_errors(ib)
        with pytest.raises(TimeoutError):  # ib_async waits for a start that never comes
            await ib.connectAsync(gw.host, gw.port, clientId=client_id, timeout=0.5)
        assert not ib.isConnected()
        return errors

    async def main() -> None:
        errors = await attempt(5)
        assert codes(errors) == [326]
        assert "already in use" in errors[0][2]
        gw.accept_client_id(5)
        async with connected(gw, 5):
            assert codes(await attempt(5)) == [326]  # taken by the live connection
            assert gw.client_ids == [5]

    run(main())


# -- running on the test's own event loop -------------------------------------------------------


def test_gateway_on_the_running_event_loop() -> None:
    async def main() -> None:
        async with IBGateway() as gw:
            ib = await connect(gw, 9)
            try:
                vix = await subscribe(gw, ib, Index("VIX", "CBOE"), "VIX")
                gw.tick("VIX", bid=18.0, ask=18.2, bid_size=1, ask_size=1)
                await until(gw, lambda: vix.ask == 18.2, "VIX ask")
                dropped = asyncio.Event()
                ib.disconnectedEvent += dropped.set
                gw.stop()
                await asyncio.wait_for(dropped.wait(), 2)
                gw.start()
                await ib.connectAsync(gw.host, gw.port, clientId=9, readonly=True, timeout=2)
                assert ib.isConnected()
            finally:
                ib.disconnect()
        assert not gw.serving

    run(main())


# -- the wire format without ib_async -----------------------------------------------------------


class RawReader:
    """Reads whole messages from a raw socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = FrameBuffer()
        self.pending: list[bytes] = []

    def next(self) -> list[str]:
        while not self.pending:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("closed")
            self.buffer.feed(data)
            self.pending.extend(self.buffer.frames())
        return split_fields(self.pending.pop(0))


def raw_hello(port: int, versions: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    text = versions
    sock.sendall(b"API\x00" + struct.pack(">I", len(text)) + text)
    return sock


def test_raw_handshake_and_start_api(ib_gateway: IBGateway) -> None:
    with raw_hello(ib_gateway.port, b"v100..200") as sock:
        reader = RawReader(sock)
        version, conn_time = reader.next()
        assert version == "178"
        assert conn_time.endswith("UTC")
        # startApi split across two writes
        start = encode([71, 2, 42, ""])
        sock.sendall(start[:5])
        time.sleep(0.02)
        sock.sendall(start[5:])
        received = [reader.next() for _ in range(6)]
        assert received[0] == ["15", "1", "DU1234567"]
        assert received[1] == ["9", "1", "1"]
        assert received[2][:2] == ["49", "1"]
        assert [f[3] for f in received[3:]] == ["2104", "2106", "2158"]
        assert all(f[:3] == ["4", "2", "-1"] and f[5] == "" for f in received[3:])
    ib_gateway.wait_until_sync(lambda: ib_gateway.client_ids == [], what="client gone")


def test_raw_garbage_is_recorded_and_survived(ib_gateway: IBGateway) -> None:
    with raw_hello(ib_gateway.port, b"v157..178 +PACEAPI") as sock:
        reader = RawReader(sock)
        assert reader.next()[0] == "178"
        sock.sendall(encode([49, 1]))  # before startApi: ignored
        sock.sendall(encode([71, 2, 8, ""]))
        for _ in range(6):
            reader.next()
        sock.sendall(encode(["abc"]) + encode([9, 8]) + encode([999, 1]) + encode([49, 1]))
        msg_id, version, epoch = reader.next()
        assert (msg_id, version) == ("49", "1")
        assert abs(int(epoch) - time.time()) < 5
    names = [r.name for r in ib_gateway.requests()]
    assert names == [
        "handshake",
        "reqCurrentTime",
        "startApi",
        "malformed",
        "reqContractDetails",
        "unknown999",
        "reqCurrentTime",
    ]
    assert ib_gateway.requests("reqCurrentTime")[0].client_id is None


def test_raw_client_without_version_178_is_refused(ib_gateway: IBGateway) -> None:
    with raw_hello(ib_gateway.port, b"v100..150") as sock:
        assert sock.recv(100) == b""


def test_framing_and_greeting_parsing() -> None:
    frame = encode([1, "a", None, True, 2.5])
    assert frame == struct.pack(">I", 11) + b"1\x00a\x00\x001\x002.5\x00"
    buffer = FrameBuffer()
    buffer.feed(frame[:3])
    assert buffer.frames() == []
    buffer.feed(frame[3:] + frame)
    assert [split_fields(p) for p in buffer.frames()] == [["1", "a", "", "1", "2.5"]] * 2
    greeting = parse_greeting(b"v157..178 +PACEAPI")
    assert (greeting.min_version, greeting.max_version, greeting.options) == (157, 178, "+PACEAPI")


def test_catalogue_matching_rules() -> None:
    spec = option("SPXW", "20260320", "P", 6200)
    assert spec.local_symbol == occ_local_symbol("SPXW", "20260320", "P", 6200)
    assert spec.key == SPXW_PUT
    ok = ["0", "SPX", "OPT", "202603", "6200.0", "PUT", "100", "SMART", "", "USD", "", "SPXW"]
    assert matches(spec, ContractQuery.from_fields(ok))
    wrong_class = [*ok[:11], "SPX"]
    assert not matches(spec, ContractQuery.from_fields(wrong_class))
    nothing_named = ["0", "", "OPT", "20260320", "6200", "P", "", "", "", "", "", ""]
    assert not matches(spec, ContractQuery.from_fields(nothing_named))
