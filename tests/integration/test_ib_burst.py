"""A burst of ticks while the pipeline is busy, through the real ib_async client against the
emulator: the live feed keeps the newest event per instrument between two reads, so what waits
is bounded by the instruments (not the ticks) and the next batch carries the newest quotes."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from datetime import UTC, datetime

from harness.bursts import heard_everything
from harness.waiting import until
from ibemu.catalogue import default_contracts, option
from ibemu.gateway import IBGateway

from monitor.config import IbFeedConfig
from monitor.domain.instruments import NEW_YORK, Instrument, Kind, parse_instrument_id
from monitor.domain.quotes import IndexValue, Quote
from monitor.feeds.ib import IbFeed

IN_SESSION = datetime(2026, 3, 3, 10, 30, tzinfo=NEW_YORK).astimezone(UTC)
# The default catalogue (15 contracts) and 25 more SPXW puts: 40 instruments.
EXTRA_PUTS = [option("SPXW", "20260320", "P", 5000 + 20 * n) for n in range(25)]
KEYS = [spec.key for spec in default_contracts()] + [spec.key for spec in EXTRA_PUTS]
TICKS = 100_000
ROUNDS = TICKS // len(KEYS)
# What may stay allocated after the burst, per instrument: its pending event (a quote and its
# floats) and what ib_async keeps of the last packet, about 1 KiB in all, with room to spare.
# A feed that keeps something per packet holds megabytes after 100,000 ticks (one batch per
# packet: about 14 MB in 2,500 batches).
RETAINED_BYTES_PER_INSTRUMENT = 4096


def burst() -> tuple[list[tuple[str, str, float]], dict[str, tuple[float, float] | float]]:
    """One tick per instrument per round, instruments interleaved: indexes move their value,
    the others their bid (even rounds) or ask (odd rounds), each instrument at its own level.
    Also the newest value of each, as the ticks leave it: an index's value, or (bid, ask)."""
    ticks: list[tuple[str, str, float]] = []
    for r in range(ROUNDS):
        for n, key in enumerate(KEYS):
            price = round(100.0 + 10.0 * n + r / 1000.0, 3)
            if parse_instrument_id(key).kind is Kind.INDEX:
                ticks.append((key, "last", price))
            elif r % 2 == 0:
                ticks.append((key, "bid", price))
            else:
                ticks.append((key, "ask", round(price + 1.0, 3)))
    sides: dict[str, dict[str, float]] = {}
    for key, side, price in ticks:
        sides.setdefault(key, {})[side] = price
    newest: dict[str, tuple[float, float] | float] = {
        key: s["last"] if "last" in s else (s["bid"], s["ask"]) for key, s in sides.items()
    }
    return ticks, newest


def test_a_burst_while_the_pipeline_waits_keeps_the_newest_quote_per_instrument() -> None:
    ticks, newest = burst()
    assert len(ticks) == TICKS
    assert len(set(KEYS)) == 40

    async def scenario() -> None:
        # On the test's loop: each of the gateway's writes is read as one packet (burst).
        async with IBGateway() as gw:
            for spec in EXTRA_PUTS:
                gw.add_contract(spec)
            instruments: list[Instrument] = [parse_instrument_id(k) for k in KEYS]
            settings = IbFeedConfig(
                kind="ib", port=gw.port, client_id=41, connect_timeout_seconds=5
            )
            feed = IbFeed(settings, instruments, clock=lambda: IN_SESSION)
            try:
                await feed.connect()
                await until(lambda: gw.subscribed_keys() == set(KEYS), "40 lines")
                # Two-sided quotes with sizes first (a side of size 0 is no quote to ib_async);
                # the burst's prices then go out with these sizes.
                for key in KEYS:
                    if parse_instrument_id(key).kind is not Kind.INDEX:
                        gw.tick(key, bid=1.0, ask=2.0, bid_size=5, ask_size=5)
                await until(lambda: feed.pending == len(KEYS) - 3, "the first quotes")
                assert await feed.next_batch(1.0) is not None
                conflated_before = feed.state.conflated_ticks

                gc.collect()
                tracemalloc.start()
                before = tracemalloc.get_traced_memory()[0]
                # The consumer does not read (a pipeline slowed to a stop) while the whole
                # burst comes in, packet after packet.
                sending = asyncio.ensure_future(gw.burst(ticks, per_write=len(KEYS)))
                most_pending = 0
                while not sending.done():
                    most_pending = max(most_pending, feed.pending)
                    await asyncio.sleep(0)
                assert sending.result() == TICKS  # each tick reached its one subscription
                await until(lambda: heard_everything(feed, gw, newest), "the end of the burst")
                gc.collect()
                retained = tracemalloc.get_traced_memory()[0] - before
                tracemalloc.stop()
                conflated = feed.state.conflated_ticks - conflated_before
                figures = f"retained {retained} B, at most {most_pending} pending"
                assert retained < RETAINED_BYTES_PER_INSTRUMENT * len(KEYS), figures
                assert most_pending <= len(KEYS), figures
                assert feed.pending == len(KEYS)

                batch = await feed.next_batch(1.0)
                assert batch is not None
                assert [e.instrument for e in batch.events] == sorted(KEYS)  # one each, ordered
                for event in batch.events:
                    value = newest[event.instrument]
                    if isinstance(value, float):
                        assert event == IndexValue(event.instrument, value)
                    else:
                        assert isinstance(event, Quote)
                        assert (event.bid, event.ask) == value
                        assert (event.bid_size, event.ask_size) == (5, 5)
                stamps = [s.last_update for s in feed.status.values() if s.last_update]
                assert batch.time == max(stamps)  # the newest packet's time
                assert feed.pending == 0
                assert await feed.next_batch(0.05) is None  # nothing else was waiting
                # Many packets each moved every instrument; all but the newest were replaced.
                assert conflated > TICKS // 2, conflated
            finally:
                await feed.close()

    asyncio.run(scenario())
