"""Idling outside the session: the live run (in-process, on a clock the test sets) against the
IB API emulator. Connected on a Saturday, it subscribes nothing and is ready; fifteen minutes
before the next open it subscribes the book; fifteen minutes after that session's close it
cancels every subscription again, connection kept.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from harness.ports import free_port
from ibemu.gateway import IBGateway
from prometheus_client.parser import text_string_to_metric_families
from test_ib_live import RULES, Book, market

from monitor.app import load_common
from monitor.config import load_config
from monitor.domain.instruments import NEW_YORK
from monitor.live import run_live
from monitor.market.hours import next_open, options_session

CLIENT_ID = 7


class SetClock:
    """The wall clock of the run, moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    async def advance_to(self, moment: datetime) -> None:
        self.moment = max(self.moment, moment)


def next_saturday_noon(today: date) -> datetime:
    day = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    return datetime(day.year, day.month, day.day, 12, 0, tzinfo=NEW_YORK)


def write_config(tmp_path: Path, port: int, metrics_port: int, book: Book) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "live.yaml").write_text(RULES)
    legs = ", ".join(f'{{ contract = "{k}", quantity = {q} }}' for k, q in book.hedge.items())
    (tmp_path / "file-portfolio.toml").write_text(
        'account_size_usd = 1_000_000\n[[strategies]]\nname = "VIX-LAYER"\n'
        f'kind = "second_engine"\nlegs = [{legs}]\n'
    )
    path = tmp_path / "live.toml"
    path.write_text(
        'instance = "idle"\nportfolio = "file-portfolio.toml"\nrules = ["rules"]\n'
        f'[feed]\nkind = "ib"\nport = {port}\nclient_id = {CLIENT_ID}\n'
        "evaluation_interval_seconds = 0.2\nconnect_timeout_seconds = 5\n"
        "wake_minutes_before_open = 15\nidle_minutes_after_close = 15\n"
        '[signals]\nib_history = false\n[journal]\npath = "journal.sqlite"\n'
        f"[metrics]\nport = {metrics_port}\n[console]\nenabled = false\n"
    )
    return path


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except urllib.error.URLError as exc:  # the server is not up yet
        return 0, str(exc)


def gauge(base: str, name: str) -> float:
    _status, text = get(f"{base}/metrics")
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"no {name} in the scrape")


async def eventually(condition: Callable[[], bool], what: str, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def in_thread(fn: Callable[[], Any]) -> Any:
    """Blocking calls (HTTP to our own server, the emulator's thread) off the run's loop."""
    return await asyncio.to_thread(fn)


def test_idles_outside_the_session_and_wakes_before_the_open(tmp_path: Path) -> None:
    book = Book()
    saturday = next_saturday_noon(datetime.now(UTC).astimezone(NEW_YORK).date())
    opening = next_open(saturday)
    assert opening is not None
    closing = options_session(opening.date())
    assert closing is not None
    clock = SetClock(saturday.astimezone(UTC))
    metrics_port = free_port()
    base = f"http://127.0.0.1:{metrics_port}"
    with IBGateway(book.contracts(), book.positions()) as gw:
        config_path = write_config(tmp_path, gw.port, metrics_port, book)
        config = load_config(config_path)
        portfolio, rules = load_common(config, config_path)

        async def scenario() -> None:
            run = asyncio.create_task(
                run_live(config, portfolio, rules, config_path=config_path, clock=clock)
            )
            try:
                # Saturday: connected, the book imported, nothing subscribed, ready.
                await eventually(lambda: CLIENT_ID in gw.client_ids, "the connection")
                await eventually(lambda: run.done() or get(f"{base}/readyz")[0] == 200, "readiness")
                assert not run.done()
                status, body = await in_thread(lambda: get(f"{base}/readyz"))
                ready = json.loads(body)
                assert status == 200, ready
                assert (ready["market_open"], ready["feed_connected"]) == (False, True)
                assert await in_thread(lambda: gauge(base, "condor_feed_idle")) == 1.0
                assert await in_thread(lambda: gauge(base, "condor_feed_connected")) == 1.0
                await asyncio.sleep(1.0)  # several turns of the loop
                assert gw.requests("reqMktData", client_id=CLIENT_ID) == []
                assert gw.subscribed_keys(CLIENT_ID) == set()

                # Fifteen minutes before the open: the whole book is subscribed.
                clock.moment = (opening - timedelta(minutes=14)).astimezone(UTC)
                await eventually(lambda: "SPX" in gw.subscribed_keys(CLIENT_ID), "the wake-up")
                keys = gw.subscribed_keys(CLIENT_ID)
                assert {"VIX", *book.hedge, *book.condor} <= keys
                assert await in_thread(lambda: gauge(base, "condor_feed_idle")) == 0.0

                # In the session the ticks make a snapshot.
                clock.moment = (opening + timedelta(minutes=5)).astimezone(UTC)
                await in_thread(lambda: market(gw, book, 6450.0))
                await eventually(lambda: get(f"{base}/state")[0] == 200, "the first snapshot")

                # Fifteen minutes after the close: idle again, the connection kept.
                clock.moment = (closing.close + timedelta(minutes=16)).astimezone(UTC)
                await eventually(lambda: gw.subscribed_keys(CLIENT_ID) == set(), "idling")
                assert len(gw.requests("cancelMktData", client_id=CLIENT_ID)) >= len(keys)
                assert CLIENT_ID in gw.client_ids
                assert await in_thread(lambda: gauge(base, "condor_feed_idle")) == 1.0
                status, _ = await in_thread(lambda: get(f"{base}/readyz"))
                assert status == 200
            finally:
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)

        asyncio.run(scenario())
