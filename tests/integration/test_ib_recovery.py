"""Recovery from what a real gateway does, in-process against the emulator: a gateway down for a
while and back (the daemon connects within its capped backoff, not up to a minute later), a
gateway that keeps the socket open and sends nothing (resubscribe, then reconnect), and a
client id in use (the next id at once, not after the connect timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from harness.waiting import until
from ibemu.gateway import IBGateway

from monitor.config import IbFeedConfig
from monitor.domain.instruments import NEW_YORK, parse_instrument_id
from monitor.feeds.ib import IbFeed

IDS = ("SPX", "VIX", "VX 20260318", "SPX 20260417 P6425")
IN_SESSION = datetime(2026, 3, 3, 10, 30, tzinfo=NEW_YORK).astimezone(UTC)
CLIENT_ID = 31


class Longest(random.Random):
    """Jitter that always draws the longest wait its range allows: the worst case."""

    def uniform(self, a: float, b: float) -> float:
        return max(a, b)


def feed_for(gw: IBGateway, **settings: object) -> IbFeed:
    base: dict[str, object] = {"kind": "ib", "port": gw.port, "client_id": CLIENT_ID}
    feed = IbFeed(
        IbFeedConfig.model_validate(base | settings),
        [parse_instrument_id(i) for i in IDS],
        legs=["SPX 20260417 P6425"],
        clock=lambda: IN_SESSION,
    )
    feed._rng = Longest()
    return feed


@contextlib.asynccontextmanager
async def running(feed: IbFeed) -> AsyncIterator[None]:
    """``feed.run()`` in the background for the block; the feed closed after it."""
    run = asyncio.create_task(feed.run())
    try:
        yield
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await feed.close()


def test_a_gateway_back_after_a_long_outage_is_reconnected_within_the_cap() -> None:
    """Down long enough for an uncapped (or 60 s capped) backoff to wait 16 s and more; with
    the cap at 2 s the connection is back within about 2 s of the gateway."""

    async def scenario() -> None:
        async with IBGateway() as gw:
            gw.stop()
            feed = feed_for(gw, reconnect_max_seconds=2.0, connect_timeout_seconds=2)
            async with running(feed):
                await until(lambda: feed.state.failed_attempts >= 6, "six failed attempts", 40)
                assert "refused" in feed.state.last_error.lower()
                gw.start()
                back = time.monotonic()
                await until(lambda: feed.state.connected, "the connection", 20)
                assert time.monotonic() - back < 2.0 + 2.0  # the cap and one connect
                assert feed.state.last_error == ""
                assert feed.state.failed_attempts == 0

    asyncio.run(scenario())


def test_a_silent_open_gateway_is_resubscribed_then_reconnected() -> None:
    async def scenario() -> None:
        async with IBGateway() as gw:
            feed = feed_for(gw, silent_seconds=1.0, connect_timeout_seconds=5)
            async with running(feed):
                await until(lambda: gw.subscribed_keys(CLIENT_ID) == set(IDS), "subscriptions")
                gw.tick("SPX", last=6800.0)
                assert await feed.next_batch(5.0) is not None
                sessions = len(gw.requests("handshake"))
                subscribed = len(gw.requests("reqMktData"))
                gw.pause()  # the socket stays open; nothing comes
                await until(
                    lambda: len(gw.requests("reqMktData")) >= subscribed + len(IDS),
                    "a resubscribe",
                )
                assert len(gw.requests("handshake")) == sessions  # same connection
                assert feed.state.silent_recoveries == 1
                await until(lambda: len(gw.requests("handshake")) > sessions, "a reconnect")
                await until(lambda: feed.state.connected, "connected again")
                assert feed.state.connections == 2
                gw.resume()
                gw.tick("SPX", last=6801.0)
                batch = await feed.next_batch(5.0)
                assert batch is not None
                assert [e.instrument for e in batch.events] == ["SPX"]

    asyncio.run(scenario())


def test_silence_outside_the_session_is_normal() -> None:
    async def scenario() -> None:
        async with IBGateway() as gw:
            feed = feed_for(gw, silent_seconds=0.5, connect_timeout_seconds=5)
            feed.clock = lambda: datetime(2026, 3, 7, 12, 0, tzinfo=NEW_YORK)  # a Saturday
            async with running(feed):
                await until(lambda: gw.subscribed_keys(CLIENT_ID) == set(IDS), "subscriptions")
                subscribed = len(gw.requests("reqMktData"))
                await asyncio.sleep(2.0)  # four silent periods
                assert len(gw.requests("reqMktData")) == subscribed
                assert feed.state.silent_recoveries == 0

    asyncio.run(scenario())


def test_a_client_id_in_use_moves_to_the_next_without_waiting_for_the_timeout() -> None:
    async def scenario() -> None:
        async with IBGateway() as gw:
            gw.reject_client_id(CLIENT_ID)
            feed = feed_for(gw, connect_timeout_seconds=30)
            started = time.monotonic()
            try:
                await feed.connect()
                # Waiting out the timeout would take 30 s; a 326 is answered in milliseconds.
                assert time.monotonic() - started < 15.0
                assert feed.client_id == CLIENT_ID + 1
                assert gw.client_ids == [CLIENT_ID + 1]
            finally:
                await feed.close()

    asyncio.run(scenario())


def test_the_reconnect_cap_and_the_silence_watch_come_from_the_config() -> None:
    default = IbFeed(IbFeedConfig(kind="ib"), [])
    assert (default.backoff.initial_seconds, default.backoff.cap_seconds) == (1.0, 10.0)
    assert default.config.silent_seconds == 30.0
    tuned = IbFeed(IbFeedConfig(kind="ib", reconnect_max_seconds=3, silent_seconds=0), [])
    assert (tuned.backoff.cap_seconds, tuned.config.silent_seconds) == (3.0, 0.0)


def test_the_feed_is_connected_for_its_owner_only_once_its_contracts_are_known() -> None:
    """The owner builds the book when ``state.connected`` turns true: not while the contracts
    are still looked up, and not at all for a connection lost meanwhile (it is a failed
    attempt, and the next one connects)."""

    async def scenario() -> None:
        async with IBGateway() as gw:
            feed = feed_for(gw, connect_timeout_seconds=5)
            real = feed._qualify
            seen: list[tuple[bool, int]] = []

            async def qualify() -> None:
                seen.append((feed.state.connected, feed.state.connections))
                if len(seen) == 1:  # the first connection drops while IB is asked
                    gw.drop_clients()
                    await until(lambda: not feed.is_connected, "the drop")
                await real()

            feed._qualify = qualify  # type: ignore[method-assign]
            async with running(feed):
                await until(lambda: feed.state.connected, "the second connection")
                assert seen[:2] == [(False, 0), (False, 0)]
                assert feed.state.connections == 1
                assert feed.client_id == CLIENT_ID  # 326 was not involved
                await until(lambda: gw.subscribed_keys(CLIENT_ID) == set(IDS), "subscriptions")

    asyncio.run(scenario())


def test_lines_ib_refused_are_not_a_silent_feed() -> None:
    """Every line refused (no subscription, no delayed fallback): silence is what IB said,
    and resubscribing or reconnecting would only be refused again, every ``silent_seconds``."""

    async def scenario() -> None:
        async with IBGateway() as gw:
            for key in IDS:
                gw.deny(key, 354)
            feed = feed_for(gw, silent_seconds=0.5, fall_back_to_delayed=False)
            async with running(feed):
                await until(lambda: feed.denied == len(IDS), "every line refused")
                await asyncio.sleep(2.0)  # four silent periods
                assert feed.state.silent_recoveries == 0
                assert len(gw.requests("handshake")) == 1
                assert len(gw.requests("reqMktData")) == len(IDS)

    asyncio.run(scenario())
