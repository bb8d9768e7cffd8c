"""The IB adapter in-process against the emulator: the line budget, broken and restored data
farms, and the batches it makes of ticks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ibemu.gateway import IBGateway

from monitor.config import IbFeedConfig
from monitor.domain.instruments import parse_instrument_id
from monitor.domain.quotes import IndexValue, Quote
from monitor.feeds.ib import IbFeed

IDS = ("SPX", "VIX", "AD-NYSE", "VX 20260318", "VX 20260415", "SPX 20260417 P6425")


def feed_for(gw: IBGateway, max_lines: int = 90) -> IbFeed:
    settings = IbFeedConfig(
        kind="ib", port=gw.port, client_id=21, max_lines=max_lines, connect_timeout_seconds=5
    )
    return IbFeed(settings, [parse_instrument_id(i) for i in IDS], legs=["SPX 20260417 P6425"])


def test_line_budget_keeps_indexes_and_legs_first() -> None:
    async def scenario() -> None:
        async with IBGateway() as gw:
            feed = feed_for(gw, max_lines=4)
            try:
                await feed.connect()
                await gw.wait_until(lambda: len(gw.subscribed_keys()) == 4, what="4 lines")
                assert gw.subscribed_keys() == {"SPX", "VIX", "AD-NYSE", "SPX 20260417 P6425"}
                assert feed.state.unsubscribed_for_budget == ("VX 20260318", "VX 20260415")
            finally:
                await feed.close()

    asyncio.run(scenario())


def test_broken_farm_then_ok_renews_subscriptions_and_ticks_become_batches() -> None:
    async def scenario() -> None:
        async with IBGateway() as gw:
            feed = feed_for(gw)
            try:
                await feed.connect()
                await gw.wait_until(lambda: len(gw.subscribed_keys()) == len(IDS), what="lines")
                gw.tick("SPX", last=6801.25)
                gw.tick("SPX 20260417 P6425", bid=31.9, ask=32.4, bid_size=12, ask_size=7)
                events = {}
                while len(events) < 2:
                    batch = await feed.next_batch(2.0)
                    assert batch is not None
                    events |= {e.instrument: e for e in batch.events}
                assert events["SPX"] == IndexValue("SPX", 6801.25)
                quote = events["SPX 20260417 P6425"]
                assert isinstance(quote, Quote)
                assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (31.9, 32.4, 12, 7)
                count = len(gw.requests("reqMktData"))
                gw.send_error(2103, "Market data farm connection is broken:usfarm")
                await gw.wait_until(lambda: 2103 in feed.state.broken_farms, what="2103")
                assert len(gw.requests("reqMktData")) == count  # nothing renewed yet
                gw.send_error(2104, "Market data farm connection is OK:usfarm")
                await gw.wait_until(
                    lambda: len(gw.requests("reqMktData")) >= count + len(IDS), what="renewal"
                )
                assert not feed.state.broken_farms
                gw.send_error(1100, "Connectivity between IB and TWS has been lost.")
                await gw.wait_until(lambda: not feed.state.ib_connected, what="1100")
                gw.send_error(1102, "Connectivity restored - data maintained.")
                await gw.wait_until(lambda: feed.state.ib_connected, what="1102")
            finally:
                await feed.close()

    asyncio.run(scenario())


def data_types_of_requests(gw: IBGateway, key: str) -> list[int]:
    """The market data type in force (the last reqMarketDataType) at each reqMktData of key."""
    in_force, out = 1, []
    for request in gw.requests():
        if request.name == "reqMarketDataType":
            in_force = int(request.fields[-1])
        elif request.name == "reqMktData" and request.key == key:
            out.append(in_force)
    return out


@contextlib.asynccontextmanager
async def connected_feed(gw: IBGateway) -> AsyncIterator[IbFeed]:
    """The feed connected to ``gw`` (qualified and subscribed), closed afterwards."""
    feed = feed_for(gw)
    try:
        await feed.connect()
        yield feed
    finally:
        await feed.close()


def test_a_refused_instrument_stays_on_delayed_data_when_subscriptions_are_renewed() -> None:
    leg = "SPX 20260417 P6425"

    async def scenario() -> None:
        async with IBGateway() as gw:
            gw.deny(leg, 354)
            async with connected_feed(gw) as feed:
                await gw.wait_until(
                    lambda: len(data_types_of_requests(gw, leg)) == 2, what="the delayed retry"
                )
                assert feed.status[leg].denied_code == 354
                gw.lose_connectivity()
                gw.restore_connectivity(data_kept=False)  # 1101: every subscription renewed
                await gw.wait_until(
                    lambda: len(data_types_of_requests(gw, leg)) == 3, what="the renewal"
                )
                # Live first, then delayed after the refusal, and delayed again on renewal.
                assert data_types_of_requests(gw, leg) == [1, 3, 3]
                assert data_types_of_requests(gw, "SPX") == [1, 1]

    asyncio.run(scenario())


def test_idle_cancels_every_subscription_and_a_reconnect_while_idle_subscribes_nothing() -> None:
    async def scenario() -> None:
        async with IBGateway() as gw, connected_feed(gw) as feed:
            await gw.wait_until(lambda: len(gw.subscribed_keys()) == len(IDS), what="lines")
            feed.go_idle()
            await gw.wait_until(lambda: gw.subscribed_keys() == set(), what="cancels")
            assert feed.data_types() == {}
            before = len(gw.requests("reqMktData"))
            gw.lose_connectivity()
            gw.restore_connectivity(data_kept=False)  # 1101 would renew: not while idle
            await gw.wait_until(lambda: feed.state.ib_connected, what="1101")
            await asyncio.sleep(0.3)
            assert len(gw.requests("reqMktData")) == before
            feed.wake()
            await gw.wait_until(lambda: len(gw.subscribed_keys()) == len(IDS), what="wake")

    asyncio.run(scenario())


def test_delayed_lines_are_marked_from_10167_and_ibs_market_data_type() -> None:
    """A leg IB serves only delayed: refused live (354), asked again delayed, where IB says
    10167 and reports market data type 3; its ticks come on the delayed tick types. It is
    marked delayed; the live lines are not."""
    leg = "SPX 20260417 P6425"

    async def scenario() -> None:
        async with IBGateway() as gw:
            gw.set_delayed(leg)
            async with connected_feed(gw) as feed:
                await gw.wait_until(lambda: leg in feed.delayed(), what="the delayed mark")
                assert feed.delayed() == {leg}
                assert feed.status[leg].market_data_type == 3
                assert feed.status[leg].denied_code == 354  # refused live, then delayed
                assert feed.data_types()["delayed"] == 1
                gw.tick(leg, bid=31.9, ask=32.4, bid_size=12, ask_size=7)
                gw.tick("SPX", last=6801.25)
                quotes: dict[str, Quote] = {}
                while leg not in quotes:
                    batch = await feed.next_batch(2.0)
                    assert batch is not None
                    quotes |= {e.instrument: e for e in batch.events if isinstance(e, Quote)}
                assert (quotes[leg].bid, quotes[leg].ask) == (31.9, 32.4)
                assert feed.delayed() == {leg}  # ticks keep the type IB reported

    asyncio.run(scenario())


def test_configured_delayed_data_marks_only_the_lines_ib_serves_delayed() -> None:
    """With market data type 3 asked for, IB answers live where the login is entitled and
    10167 with delayed data where it is not; nothing is refused or asked again."""
    leg = "SPX 20260417 P6425"

    async def scenario() -> None:
        async with IBGateway() as gw:
            gw.set_delayed(leg)
            settings = IbFeedConfig(
                kind="ib",
                port=gw.port,
                client_id=22,
                connect_timeout_seconds=5,
                market_data_type="delayed",
            )
            feed = IbFeed(settings, [parse_instrument_id(i) for i in IDS], legs=[leg])
            try:
                await feed.connect()
                await gw.wait_until(lambda: feed.status[leg].market_data_type == 3, what="type 3")
                gw.tick("SPX", last=6801.25)
                await gw.wait_until(lambda: feed.status["SPX"].market_data_type == 1, what="live")
                assert feed.delayed() == {leg}
                assert feed.denied == 0
                assert len(data_types_of_requests(gw, leg)) == 1  # asked once
            finally:
                await feed.close()

    asyncio.run(scenario())
