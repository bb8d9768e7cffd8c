"""Positions that change during the day: the book follows them, and only the market-data lines
of the instruments that came or went are touched (IB restarts a re-requested line from
nothing: a cancelled-and-renewed subscription is a gap in every leg's quotes).

The account of test_ib_dates (the bundled book and more) served by the emulator, run live
in-process; a weekly condor is opened, then the 0DTE condor closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

from harness.ports import free_port
from ibemu.gateway import IBGateway
from test_ib_dates import CLIENT_ID, HELD, NOW, VX, contracts, market, write_config
from test_ib_idle import SetClock, eventually, get, in_thread

from monitor.app import load_common
from monitor.config import load_config
from monitor.live import run_live

OPENED = {k: q for k, q in HELD.items() if k.startswith("SPXW 20260306")}
CLOSED = {k: q for k, q in HELD.items() if k.startswith("SPXW 20260303")}
AT_START = {k: q for k, q in HELD.items() if k not in OPENED}


def strategies(base: str) -> set[str]:
    status, body = get(f"{base}/state")
    return set(json.loads(body)["strategies"]) if status == 200 else set()


async def book_shows(gw: IBGateway, base: str, wanted: Callable[[set[str]], bool]) -> None:
    """Ticks (a snapshot publishes the changed book) until the book's strategies pass."""
    deadline = asyncio.get_running_loop().time() + 20.0
    while not wanted(await in_thread(lambda: strategies(base))):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out; the book shows {strategies(base)}")
        await in_thread(lambda: market(gw))
        await asyncio.sleep(0.2)


def test_a_position_change_touches_only_the_lines_that_came_or_went(tmp_path: Path) -> None:
    clock = SetClock(NOW.astimezone(UTC))
    metrics_port = free_port()
    base = f"http://127.0.0.1:{metrics_port}"
    held = [(k, float(q), 1.0) for k, q in AT_START.items()]
    with IBGateway(contracts(), held) as gw:
        config_path = write_config(tmp_path, gw.port, metrics_port)
        config = load_config(config_path)
        portfolio, rules = load_common(config, config_path)
        curve = {f"VX {e}" for e in VX} | {"SPX", "VIX", "AD-NYSE"}

        def keys(name: str) -> list[str]:
            return [str(r.key) for r in gw.requests(name, client_id=CLIENT_ID)]

        async def scenario() -> None:
            run = asyncio.create_task(
                run_live(config, portfolio, rules, config_path=config_path, clock=clock)
            )
            try:
                await eventually(
                    lambda: run.done() or gw.subscribed_keys(CLIENT_ID) >= set(AT_START) | curve,
                    "every leg subscribed",
                )
                assert not run.done()
                await in_thread(lambda: market(gw))
                await eventually(lambda: "IC-SPXW-20260303" in strategies(base), "the book")
                gw.clear_requests()
                # A weekly condor opened: its four lines subscribed, nothing else touched.
                for key, quantity in OPENED.items():
                    await in_thread(lambda k=key, q=quantity: gw.set_position(k, q, 1.0))
                await book_shows(gw, base, lambda shown: "IC-SPXW-20260306" in shown)
                await eventually(
                    lambda: gw.subscribed_keys(CLIENT_ID) >= set(OPENED), "the new lines"
                )
                await asyncio.sleep(0.5)  # let any stray request arrive
                assert sorted(keys("reqMktData")) == sorted(OPENED)
                assert keys("cancelMktData") == []
                gw.clear_requests()
                # The 0DTE condor closed: its four lines cancelled, the others keep streaming.
                for key in CLOSED:
                    await in_thread(lambda k=key: gw.set_position(k, 0))
                await book_shows(gw, base, lambda shown: "IC-SPXW-20260303" not in shown)
                await eventually(
                    lambda: not gw.subscribed_keys(CLIENT_ID) & set(CLOSED), "lines cancelled"
                )
                await asyncio.sleep(0.5)
                assert sorted(keys("cancelMktData")) == sorted(CLOSED)
                assert keys("reqMktData") == []
                still = set(HELD) - set(CLOSED)
                assert gw.subscribed_keys(CLIENT_ID) == still | curve
                assert not run.done()
            finally:
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)

        asyncio.run(scenario())
