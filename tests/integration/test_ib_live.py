"""The live IB feed end to end: the daemon (`condor-monitor run`) with the real ib_async client
talking over TCP to the IB API emulator in tests/ibemu.

One session walks through a trading day's troubles: the book imported from positions, ticks
streamed into greeks and alerts, an instrument without entitlement, the connection dropped
(reconnect, resubscribe, a stale-feed alert that fires and resolves), IB's 1101, and finally
the recording replayed to the same alerts.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ibemu.catalogue import index, option, vix_future
from ibemu.gateway import IBGateway
from ibemu.history import HistoryBar
from prometheus_client.parser import text_string_to_metric_families

from monitor.calendars import Exchange, session, vix_future_expiries
from monitor.cli import EXIT_OK, main

RULES = """
groups:
  - name: live
    rules:
      - alert: SpxBelow6500
        expr: spx < 6500
        severity: critical
        labels: {category: greeks}
        value: spx
        unit: index points
        summary: "SPX {spx:,.2f} below 6,500; book delta {book.delta_usd_per_pct:,.0f} $/1%"
      - alert: CondorVegaShort
        for_each: strategy
        expr: strategy.kind == "iron_condor" and strategy.vega_usd_per_vol_point < 0
        severity: info
        labels: {category: greeks}
        value: strategy.vega_usd_per_vol_point
        unit: $ per SPX vol point
        summary: "{strategy.name} vega {value:,.0f} $ per vol point"
      - alert: FeedStale
        expr: feed.data_age_seconds > 2
        severity: critical
        labels: {category: feed}
        value: feed.data_age_seconds
        unit: seconds since the last market event
        summary: "no market data for {value:,.1f} s"
      - alert: ShortLegModelPriced
        for_each: short_leg
        expr: leg.model_priced
        for: 2s
        severity: warning
        labels: {category: feed}
        value: leg.iv_pct
        unit: "% implied vol (model)"
        summary: "{strategy.name} short {leg.right} {leg.strike:.0f} has no usable quote"
      - alert: NotEntitled
        expr: feed.denied_instruments > 0
        severity: warning
        labels: {category: feed}
        value: feed.denied_instruments
        unit: instruments
        summary: "{value:.0f} instrument(s) without market data: model-priced"
"""


def next_friday_session(after: date) -> date:
    day = after + timedelta(days=(4 - after.weekday()) % 7 or 7)
    while session(Exchange.CBOE_INDEX_OPTIONS, day) is None or day.weekday() != 4:
        day += timedelta(days=7)
    return day


class Book:
    """Contracts dated from today, so the live clock sees them unexpired."""

    def __init__(self) -> None:
        today = date.today()  # noqa: DTZ011 - the machine's day, as the live run sees it
        self.vx = [d.strftime("%Y%m%d") for d in vix_future_expiries(today + timedelta(days=1), 4)]
        self.spxw = next_friday_session(today + timedelta(days=28)).strftime("%Y%m%d")
        e = self.spxw
        self.condor = {
            f"SPXW {e} P6200": 10,
            f"SPXW {e} P6250": -10,
            f"SPXW {e} C7000": -10,
            f"SPXW {e} C7050": 10,
        }
        v = self.vx[0]
        self.hedge = {f"VX {self.vx[1]}": 2, f"VIX {v} C22": 20, f"VIX {v} C30": -20}
        # Opening prices per unit, by strike (or the future's expiry): the condor's credit is
        # 17.50 - 14.50 + 6.50 - 4.20 = 5.30 points, 5,300 $ for 10 lots.
        self.entry = {"P6200": 14.50, "P6250": 17.50, "C7000": 6.50, "C7050": 4.20}
        self.entry |= {"C22": 1.00, "C30": 0.50, self.vx[1]: 18.60}
        # Traded during the day in one test: a second condor further out.
        self.later = {
            f"SPXW {e} P6100": 5,
            f"SPXW {e} P6150": -5,
            f"SPXW {e} C7100": -5,
            f"SPXW {e} C7150": 5,
        }

    def contracts(self) -> list[Any]:
        out = [index("SPX", "CBOE"), index("VIX", "CBOE"), index("AD-NYSE", "NYSE")]
        out += [vix_future(e) for e in self.vx]
        hedge_options = [k for k in self.hedge if k.startswith("VIX ")]
        for key in (*self.condor, *self.later, *hedge_options):
            cls, expiry, rs = key.split()
            out.append(option(cls, expiry, rs[0], float(rs[1:])))
        return out

    def positions(self) -> list[tuple[str, float, float]]:
        """(contract, quantity, IB's average cost: the price times the multiplier)."""
        return [
            (k, float(q), self.entry[k.split()[-1]] * (1000.0 if k.startswith("VX ") else 100.0))
            for k, q in (*self.condor.items(), *self.hedge.items())
        ]


def market(gw: IBGateway, book: Book, spx: float) -> None:
    """One round of ticks: indexes, the VX curve, every option near a plausible price."""
    gw.tick("SPX", last=spx)
    gw.tick("VIX", last=17.5)
    gw.tick("AD-NYSE", last=-350.0)
    for n, e in enumerate(book.vx):
        gw.tick(f"VX {e}", bid=18.0 + 0.5 * n, ask=18.1 + 0.5 * n, bid_size=20, ask_size=20)
    prices = {"P6200": 14.0, "P6250": 17.0, "C7000": 6.0, "C7050": 4.0, "C22": 1.2, "C30": 0.4}
    prices |= {"P6100": 9.0, "P6150": 11.0, "C7100": 2.8, "C7150": 1.9}
    drop = max(6800.0 - spx, 0.0) / 50.0
    for key in (*book.condor, *book.later, *book.hedge):
        strike = key.split()[-1]
        if strike in prices:
            mid = prices[strike] * (1.0 + drop) if strike.startswith("P") else prices[strike]
            gw.tick(key, bid=round(mid - 0.1, 1), ask=round(mid + 0.1, 1), bid_size=5, ask_size=5)
    # IB's own model for the short put; vega and theta "not computed" (IB's -2).
    short_put = next(k for k, q in book.condor.items() if q < 0 and " P" in k)
    gw.option_computation(short_put, iv=0.19, delta=-0.21, gamma=0.0004, und_price=spx)


class Daemon:
    """`condor-monitor run` as a process; its log lines collected as they come."""

    def __init__(self, config: Path, *, record_to: Path | None = None) -> None:
        self.lines: list[str] = []
        command = ["run", "--config", str(config)]
        if record_to is not None:
            command = ["record", "--config", str(config), "--out", str(record_to)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "--log-level", "info", *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=config.parent,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def logged(self, event: str) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("event") == event:
                out.append(record)
        return out

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self._reader.join(timeout=5)
        return code


def scrape(url: str) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http
        text = response.read().decode()
    return {
        (s.name, s.labels.get("market_data_type", s.labels.get("underlying", ""))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def spx_in_state(metrics_url: str) -> float | None:
    """SPX in the daemon's /state document, as its latest snapshot has it."""
    url = metrics_url.replace("/metrics", "/state")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http
            return json.loads(response.read())["spx"]
    except urllib.error.HTTPError:  # 503 before the first snapshot
        return None


def vix_history(count: int) -> list[HistoryBar]:
    """``count`` completed 5-minute bars of spot VIX ending at least five minutes ago, on the
    New York grid, rising by 0.05 a bar."""
    now = datetime.now(UTC)
    last = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5 + 10)
    starts = [last - timedelta(minutes=5 * k) for k in reversed(range(count))]
    return [HistoryBar(t, 17.0 + 0.05 * i, 17.1 + 0.05 * i, 16.9 + 0.05 * i, 17.0 + 0.05 * i)
            for i, t in enumerate(starts)]  # fmt: skip


def indicator(url: str, name: str, series: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("series") == series:
                return float(sample.value)
    raise AssertionError(f"no {name}{{series={series!r}}} in the scrape")


def by_label(url: str, name: str, label: str) -> dict[str, float]:
    """The samples of metric ``name`` by the value of their ``label``."""
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http
        text = response.read().decode()
    return {
        s.labels[label]: float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def states(path: Path, rule: str) -> list[str]:
    return [a["state"] for a in alerts(path) if a["rule"] == rule]


@pytest.fixture
def gateway_and_book() -> Iterator[tuple[IBGateway, Book]]:
    book = Book()
    with IBGateway(book.contracts(), book.positions()) as gw:
        yield gw, book


def write_config(
    tmp_path: Path, port: int, book: Book, *, rules_text: str = RULES, feed: str = ""
) -> Path:
    """The daemon's config; ``feed`` adds lines to its [feed] section."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "live.yaml").write_text(rules_text)
    # The file names the VIX layer; the condor is found in the account's positions.
    legs = ", ".join(f'{{ contract = "{k}", quantity = {q} }}' for k, q in book.hedge.items())
    (tmp_path / "file-portfolio.toml").write_text(
        'account_size_usd = 1_000_000\n[[strategies]]\nname = "VIX-LAYER"\n'
        f'kind = "second_engine"\nlegs = [{legs}]\n'
    )
    path = tmp_path / "live.toml"
    path.write_text(
        'instance = "live"\nportfolio = "file-portfolio.toml"\nrules = ["rules"]\n'
        'alerts_out = "alerts.jsonl"\n'
        f'[feed]\nkind = "ib"\nport = {port}\nclient_id = 7\nrecord_dir = "recordings"\n'
        "evaluation_interval_seconds = 0.5\nconnect_timeout_seconds = 5\n"
        "idle_outside_session = false\n"  # subscribed at any hour the test runs
        f"{feed}"
        '[journal]\npath = "journal.sqlite"\n[metrics]\nport = 0\n'
        "[console]\nenabled = false\n"
    )
    return path


def replay_alerts(tmp_path: Path, recording: Path, book: Book) -> list[dict[str, Any]]:
    """The recording replayed through the same rules and the book the live run imported."""
    condor = ", ".join(f'{{ contract = "{k}", quantity = {q} }}' for k, q in book.condor.items())
    hedge = ", ".join(f'{{ contract = "{k}", quantity = {q} }}' for k, q in book.hedge.items())
    portfolio = tmp_path / "imported.toml"
    portfolio.write_text(
        "account_size_usd = 1_000_000\n"
        f'[[strategies]]\nname = "VIX-LAYER"\nkind = "second_engine"\nlegs = [{hedge}]\n'
        f'[[strategies]]\nname = "IC-SPXW-{book.spxw}"\nkind = "iron_condor"\n'
        f"legs = [{condor}]\n"
    )
    out = tmp_path / "replayed.jsonl"
    args = [
        "replay",
        str(recording),
        "--portfolio",
        str(portfolio),
        "--rules",
        str(tmp_path / "rules"),
    ]
    args += ["--journal", str(tmp_path / "replay.sqlite"), "--alerts-out", str(out), "--quiet"]
    assert main(args) == EXIT_OK
    return alerts(out)


def test_a_live_day_with_the_ib_emulator(tmp_path: Path, gateway_and_book) -> None:
    gw, book = gateway_and_book
    denied = f"SPXW {book.spxw} C7000"  # a short leg
    gw.deny(denied, 354)
    gw.set_history("VIX", vix_history(40))  # IB's recent bars warm MACD and RSI up
    daemon = Daemon(write_config(tmp_path, gw.port, book))
    out = tmp_path / "alerts.jsonl"
    try:
        wait_until(lambda: daemon.logged("live_start"), 30, "the live run to start")
        history = {r["series"]: r["bars"] for r in daemon.logged("signals_history")}
        assert history == {"spx": 0, "vix": 40, "vx1": 0, "vx2": 0}
        (request,) = [r for r in gw.requests("reqHistoricalData") if r.key == "VIX"]
        assert (request.param("barSizeSetting"), request.param("whatToShow")) == (
            "5 mins",
            "TRADES",
        )
        (imported,) = daemon.logged("book_imported")
        assert imported["strategies"] == {
            "VIX-LAYER": "second_engine",
            f"IC-SPXW-{book.spxw}": "iron_condor",
        }
        # Ticks flow into greeks and rules.
        market(gw, book, 6800.0)
        wait_until(lambda: "firing" in states(out, "CondorVegaShort"), 15, "the condor's greeks")
        # An SPX print of 0 and one of 1e300 (absurd, but feeds send them): rejected by the
        # sanity bounds and counted; the run goes on and nothing fires on them.
        url = daemon.logged("metrics_serving")[0]["url"]
        gw.tick("SPX", last=0.0)  # one at a time: ib_async keeps a ticker's newest value
        wait_until(lambda: len(daemon.logged("tick_rejected")) >= 1, 10, "0 rejected")
        gw.tick("SPX", last=1e300)
        wait_until(lambda: len(daemon.logged("tick_rejected")) >= 2, 10, "1e300 rejected")
        assert {r["reason"] for r in daemon.logged("tick_rejected")} == {"below_floor", "above_cap"}
        assert scrape(url)[("condor_ticks_rejected_total", "")] >= 1
        assert "SpxBelow6500" not in {a["rule"] for a in alerts(out)}
        # SPX falls 5 % in two steps a moment apart (at once it would be a jump, rejected).
        for level in (6600.0, 6450.0):
            gw.tick("SPX", last=level)
            wait_until(lambda level=level: spx_in_state(url) == level, 10, f"SPX {level}")
        market(gw, book, 6450.0)
        wait_until(lambda: "firing" in states(out, "SpxBelow6500"), 10, "the SPX alert")
        fired = next(a for a in alerts(out) if a["rule"] == "SpxBelow6500")
        assert fired["value"] == 6450.0
        # The leg IB refuses (354) is asked again with delayed data, refused again, and
        # model-priced; the rules see it.
        assert "firing" in states(out, "NotEntitled")
        assert daemon.logged("ib_not_entitled")[0]["instrument"] == denied
        wait_until(lambda: "firing" in states(out, "ShortLegModelPriced"), 10, "model pricing")
        scraped = scrape(url)
        assert scraped[("condor_feed_connected", "")] == 1
        # 40 bars rising steadily: RSI 100 and MACD (needs 34) positive from the first tick.
        assert indicator(url, "condor_indicator_rsi", "vix") == 100.0
        assert indicator(url, "condor_indicator_macd", "vix") > 0.0
        assert math.isnan(indicator(url, "condor_indicator_macd", "spx"))
        assert scraped[("condor_feed_instruments", "denied")] == 1
        assert scraped[("condor_feed_instruments", "live")] >= 10
        assert scraped[("condor_feed_model_delta_difference_max", "SPX")] >= 0
        priced = [a for a in alerts(out) if a["rule"] == "ShortLegModelPriced"]
        assert {a["labels"]["leg"] for a in priced} == {"C7000"}  # the quoted ones never did
        # The connection drops: reconnect, resubscribe; the stale-feed alert fires and resolves.
        before = len(gw.requests("reqMktData"))
        gw.drop_clients()
        wait_until(lambda: "firing" in states(out, "FeedStale"), 15, "FeedStale")
        wait_until(lambda: len(daemon.logged("ib_connected")) >= 2, 30, "a reconnect")
        everything = {"SPX", "VIX", "AD-NYSE", *(f"VX {e}" for e in book.vx), *book.condor}
        everything |= set(book.hedge)

        def renewed(since: int) -> bool:
            return {r.key for r in gw.requests("reqMktData")[since:]} >= everything

        wait_until(lambda: renewed(before), 10, "every subscription renewed")
        market(gw, book, 6450.0)
        wait_until(lambda: "resolved" in states(out, "FeedStale"), 10, "FeedStale to resolve")
        # 1101 (connectivity restored, data lost): everything is subscribed again.
        count = len(gw.requests("reqMktData"))
        gw.send_error(1101, "Connectivity between IB and TWS has been restored - data lost.")
        wait_until(lambda: renewed(count), 10, "every subscription renewed after 1101")
        market(gw, book, 6440.0)
        time.sleep(1.0)
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.lines[-30:])
    # The recording replays to the same alerts, feed-health ones aside (a replay has no link).
    (recording,) = sorted((tmp_path / "recordings").iterdir())
    live = [a for a in alerts(out) if a["labels"].get("category") != "feed"]
    replayed = [
        a for a in replay_alerts(tmp_path, recording, book) if a["labels"].get("category") != "feed"
    ]
    key = [(a["rule"], a["state"], a["time"], a["labels"]) for a in live]
    assert key
    assert [(a["rule"], a["state"], a["time"], a["labels"]) for a in replayed] == key
    assert [a["value"] for a in replayed] == [a["value"] for a in live]


DELAYED_RULES = """
groups:
  - name: delayed
    rules:
      - alert: ShortLegDelayed
        for_each: short_leg
        expr: leg.data_delayed
        severity: info
        labels: {category: feed}
        value: leg.strike
        unit: index points
        summary: "{strategy.name} short {leg.right} {leg.strike:.0f} quoted delayed"
      - alert: ShortLegHeld
        for_each: short_leg
        expr: leg.quantity < 0
        severity: info
        value: leg.quantity
        unit: contracts
        summary: "{strategy.name} short {leg.right} {leg.strike:.0f}"
      - alert: OldLegQuote
        # Held a second: the age is inf for the moments before every leg's first quote.
        expr: feed.oldest_leg_quote_age_seconds > 600
        for: 1s
        severity: info
        value: feed.oldest_leg_quote_age_seconds
        unit: seconds
        summary: "a leg quote is {value:,.0f} s old"
"""


def test_a_leg_on_delayed_data_is_marked_and_its_alerts_say_so(
    tmp_path: Path, gateway_and_book
) -> None:
    """With delayed data asked for, IB serves one short leg delayed (10167, type 3) and the
    rest live: only that leg is marked, priced from its quotes, 15 minutes old, and the
    messages of alerts about it say "delayed data (15 min)"."""
    gw, book = gateway_and_book
    delayed = f"SPXW {book.spxw} C7000"  # a short leg
    gw.set_delayed(delayed)
    config = write_config(
        tmp_path, gw.port, book, rules_text=DELAYED_RULES, feed='market_data_type = "delayed"\n'
    )
    daemon = Daemon(config)
    out = tmp_path / "alerts.jsonl"
    try:
        wait_until(lambda: daemon.logged("live_start"), 30, "the live run to start")
        market(gw, book, 6800.0)
        wait_until(lambda: "firing" in states(out, "ShortLegDelayed"), 15, "the delayed leg")
        wait_until(lambda: len(states(out, "ShortLegHeld")) == 2, 10, "both short legs")
        wait_until(lambda: "firing" in states(out, "OldLegQuote"), 10, "the old-quote alert")
        url = daemon.logged("metrics_serving")[0]["url"]
        scraped = scrape(url)
        delayed_legs = by_label(url, "condor_strategy_delayed_legs", "strategy")
        with urllib.request.urlopen(url.replace("/metrics", "/state"), timeout=5) as response:  # noqa: S310 - loopback http
            state = json.loads(response.read())
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.lines[-30:])
    assert [r["instrument"] for r in daemon.logged("ib_delayed_data")] == [delayed]
    assert not daemon.logged("ib_not_entitled")
    condor = f"IC-SPXW-{book.spxw}"
    marker = "[delayed data (15 min)]"
    (fired,) = [a for a in alerts(out) if a["rule"] == "ShortLegDelayed"]
    assert fired["labels"]["leg"] == "C7000"
    assert fired["message"] == f"{condor} short call 7000 quoted delayed {marker}"
    held = {a["labels"]["leg"]: a["message"] for a in alerts(out) if a["rule"] == "ShortLegHeld"}
    assert held == {
        "C7000": f"{condor} short call 7000 {marker}",
        "P6250": f"{condor} short put 6250",
    }
    old = [a for a in alerts(out) if a["rule"] == "OldLegQuote"]
    assert old
    assert old[0]["value"] >= 900.0
    assert old[0]["message"].endswith(marker)  # a book alert, and a leg of the book is delayed
    legs = {leg["contract"]: leg for leg in state["legs"]}
    assert legs[delayed]["data_delayed"] is True
    assert legs[delayed]["model_priced"] is False  # priced from its delayed quotes
    assert {c for c, leg in legs.items() if leg["data_delayed"]} == {delayed}
    assert state["feed_delayed_instruments"] == 1
    assert scraped[("condor_feed_instruments", "delayed")] == 1
    assert scraped[("condor_feed_instruments", "denied")] == 0
    assert delayed_legs == {condor: 1.0, "VIX-LAYER": 0.0}
    # Entry prices from IB's average costs over the multiplier, and the P&L against them.
    assert legs[f"SPXW {book.spxw} P6250"]["entry_price"] == pytest.approx(17.50)
    assert legs[f"VX {book.vx[1]}"]["entry_price"] == pytest.approx(18.60)
    pnl = state["strategies"][condor]["pnl"]
    assert pnl["credit_usd"] == pytest.approx(5_300.0)
    assert pnl["max_loss_usd"] == pytest.approx((50 - 5.30) * 100 * 10)
    marks = {leg["contract"]: leg for leg in state["legs"]}
    assert pnl["pnl_usd"] == pytest.approx(
        sum(marks[k]["risk"]["pnl_usd"] for k in book.condor), rel=1e-9
    )


def test_client_id_in_use_and_a_gateway_restart(tmp_path: Path, gateway_and_book) -> None:
    """326 moves to the next client id; a gateway down at start and restarted later (the
    nightly reset) is waited for, and the run goes on once it is back."""
    gw, book = gateway_and_book
    gw.reject_client_id(7)
    gw.stop()
    recorded = tmp_path / "recorded"
    daemon = Daemon(write_config(tmp_path, gw.port, book), record_to=recorded)
    try:
        wait_until(lambda: daemon.logged("ib_connect_failed"), 20, "a refused connection")
        assert not daemon.logged("live_start")
        gw.start()
        wait_until(lambda: daemon.logged("live_start"), 40, "the live run to start")
        assert daemon.logged("ib_client_id_in_use")[0]["next_client_id"] == 8
        assert {r.client_id for r in gw.requests("reqMktData")} == {8}
        gw.stop()  # the nightly reset
        time.sleep(1.5)
        gw.start()
        wait_until(lambda: len(daemon.logged("ib_connected")) >= 2, 40, "a reconnect")
        market(gw, book, 6450.0)
        wait_until(
            lambda: "firing" in states(tmp_path / "alerts.jsonl", "SpxBelow6500"), 15, "alert"
        )
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.lines[-30:])


ACCOUNT = {
    "NetLiquidation": 1_000_000.0,
    "ExcessLiquidity": 450_000.0,
    "Cushion": 0.45,
    "MaintMarginReq": 550_000.0,
    "InitMarginReq": 690_000.0,
    "BuyingPower": 1_800_000.0,
}


def test_margin_and_liquidity_from_ib_account_values(tmp_path: Path) -> None:
    """The emulator serves the account's values to reqAccountUpdates (asked for at connect,
    one account) and sends changes as IB does; /state, the metrics and the default pack's
    CushionLow follow them, with their age."""
    book = Book()
    pack = (Path(__file__).resolve().parents[2] / "rules" / "second-engine.yaml").read_text()
    with IBGateway(book.contracts(), book.positions(), account_values=ACCOUNT) as gw:
        daemon = Daemon(write_config(tmp_path, gw.port, book, rules_text=pack))
        out = tmp_path / "alerts.jsonl"
        try:
            wait_until(lambda: daemon.logged("live_start"), 30, "the live run to start")
            url = daemon.logged("metrics_serving")[0]["url"].replace("/metrics", "/state")

            def account() -> dict[str, Any]:
                """/state's account values ({} while /state has no snapshot yet: 503)."""
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http
                        return json.loads(response.read())["account"]  # type: ignore[no-any-return]
                except urllib.error.HTTPError:
                    return {}

            market(gw, book, 6800.0)
            wait_until(lambda: account().get("net_liquidation_usd") == 1e6, 15, "account values")
            first = account()
            assert first["excess_liquidity_usd"] == 450_000.0
            assert first["cushion_pct"] == pytest.approx(45.0)
            assert first["maint_margin_usd"] == 550_000.0
            assert first["init_margin_usd"] == 690_000.0
            assert first["buying_power_usd"] == 1_800_000.0
            assert first["reason"] == ""
            assert 0.0 <= first["age_seconds"] < 15.0
            assert "firing" not in states(out, "CushionLow")
            # A selloff eats the cushion: IB sends the new values.
            assert gw.set_account_value("ExcessLiquidity", 150_000.0) == 1
            assert gw.set_account_value("Cushion", 0.15) == 1
            market(gw, book, 6790.0)
            wait_until(lambda: "firing" in states(out, "CushionLow"), 15, "CushionLow")
            scraped = scrape(daemon.logged("metrics_serving")[0]["url"])
        finally:
            code = daemon.stop()
    assert code == 0, "".join(daemon.lines[-30:])
    (fired,) = [a for a in alerts(out) if a["rule"] == "CushionLow"]
    assert fired["value"] == pytest.approx(15.0)
    assert "excess liquidity 150,000 $ of 1,000,000 $ net liquidation" in fired["message"]
    assert scraped[("condor_account_cushion_percent", "")] == pytest.approx(15.0)
