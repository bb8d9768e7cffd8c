"""The strike ladder live: a book of one SPXW condor held at IB (the emulator, the real ib_async
client over TCP, run in-process on a clock set in the session). Around the condor's expiry
the feed subscribes call+put pairs nearest SPX and OTM wings out past the condor's strikes,
on the strikes IB lists (reqSecDefOptParams), within the line budget; the pipeline's
valuation measures the forward from those pairs; the recording declares them; a move of SPX
re-centres the ladder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from harness.ports import free_port
from ibemu.catalogue import ContractSpec, index, option, vix_future
from ibemu.gateway import IBGateway
from structlog.testing import capture_logs
from test_ib_idle import SetClock, eventually, get, in_thread

from monitor.app import load_common
from monitor.calendars import vix_future_expiries
from monitor.config import load_config
from monitor.domain.instruments import NEW_YORK, parse_instrument_id
from monitor.feeds.replay import parse_header
from monitor.live import run_live
from monitor.pricing import black76
from monitor.pricing.expiry import year_fraction

NOW = datetime(2026, 3, 3, 10, 30, tzinfo=NEW_YORK)  # a Tuesday in the session
CLIENT_ID = 11
SPX = 6800.0
FORWARD = 6790.0  # the chain's forward: SPX less the dividends to expiry (not carried at r)
RATE = 0.04
EXPIRY = "20260320"
CURVE = [f"{d:%Y%m%d}" for d in vix_future_expiries(NOW.date(), 4)]
CONDOR = {
    f"SPXW {EXPIRY} P6600": 5,
    f"SPXW {EXPIRY} P6650": -5,
    f"SPXW {EXPIRY} C6950": -5,
    f"SPXW {EXPIRY} C7000": 5,
}
BASE = {"SPX", "VIX", "AD-NYSE"} | {f"VX {e}" for e in CURVE}
LISTED = range(6500, 7110, 10)  # the expiry's listed strikes, 10 points apart

RULES = """
groups:
  - name: ladder
    rules:
      - alert: ShortLegForward
        for_each: short_leg
        expr: leg.underlying < 6800
        severity: info
        value: leg.underlying
        unit: index points
        summary: "{leg.contract} forward {value:.2f}"
"""


def contracts(extra: Iterable[ContractSpec] = ()) -> list[ContractSpec]:
    out = [index("SPX", "CBOE"), index("VIX", "CBOE"), index("AD-NYSE", "NYSE")]
    out += [vix_future(e) for e in CURVE]
    out += [option("SPXW", EXPIRY, right, k) for k in LISTED for right in ("C", "P")]
    return [*out, *extra]


def quote(key: str, spx: float) -> tuple[float, float]:
    """A two-sided quote near Black-76 at 20 % vol on the chain's forward (SPX less 10)."""
    inst = parse_instrument_id(key)
    years = year_fraction(inst, NOW)
    forward = spx - (SPX - FORWARD)
    value = float(black76.price(forward, inst.strike, years, RATE, 0.2, inst.is_call))
    return round(value - 0.05, 2), round(value + 0.05, 2)


def market(gw: IBGateway, spx: float = SPX) -> None:
    """SPX, VIX, the curve, and every option line the client holds, call and put together."""
    gw.tick("SPX", last=spx)
    gw.tick("VIX", last=17.0)
    gw.tick("AD-NYSE", last=120.0)
    for n, e in enumerate(CURVE):
        gw.tick(f"VX {e}", bid=18.0 + 0.5 * n, ask=18.1 + 0.5 * n, bid_size=20, ask_size=20)
    for key in sorted(gw.subscribed_keys(CLIENT_ID)):
        if key.startswith("SPXW"):
            bid, ask = quote(key, spx)
            gw.tick(key, bid=bid, ask=ask, bid_size=10, ask_size=10)


def write_config(tmp_path: Path, port: int, metrics_port: int, feed: str = "") -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "ladder.yaml").write_text(RULES)
    legs = ", ".join(f'{{ contract = "{k}", quantity = {q} }}' for k, q in CONDOR.items())
    (tmp_path / "book.toml").write_text(
        "account_size_usd = 1_000_000\n"
        f'[[strategies]]\nname = "IC-MAR20"\nkind = "iron_condor"\nlegs = [{legs}]\n'
    )
    path = tmp_path / "live.toml"
    path.write_text(
        'instance = "ladder"\nportfolio = "book.toml"\nrules = ["rules"]\n'
        'alerts_out = "alerts.jsonl"\n'
        f'[feed]\nkind = "ib"\nport = {port}\nclient_id = {CLIENT_ID}\n'
        'record_dir = "recordings"\n'
        "evaluation_interval_seconds = 0.2\nconnect_timeout_seconds = 5\n"
        f"{feed}"
        f"[pricing]\nrate = {RATE}\n"
        '[signals]\nib_history = false\n[journal]\npath = "journal.sqlite"\n'
        f"[metrics]\nport = {metrics_port}\n[console]\nenabled = false\n"
    )
    return path


def alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def spxw(*strikes: str) -> set[str]:
    return {f"SPXW {EXPIRY} {s}" for s in strikes}


@contextlib.contextmanager
def every_level() -> Iterator[None]:
    """Info events reach ``capture_logs`` whatever level an earlier run configured."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        yield
    finally:
        structlog.configure(**saved)


def live(
    tmp_path: Path,
    scenario: Callable[[IBGateway, str, list[dict[str, Any]]], Awaitable[None]],
    *,
    feed: str = "",
    extra: Iterable[ContractSpec] = (),
) -> tuple[IBGateway, list[dict[str, Any]]]:
    """Runs the daemon on the condor's account while ``scenario(gateway, base_url, logged)``
    plays; returns the gateway (its request log) and what was logged."""
    clock = SetClock(NOW.astimezone(UTC))
    metrics_port = free_port()
    base = f"http://127.0.0.1:{metrics_port}"
    held = [(k, float(q), 1.0) for k, q in CONDOR.items()]
    with every_level(), capture_logs() as logged, IBGateway(contracts(extra), held) as gw:
        gw.tick("SPX", last=SPX)  # known when the ladder is built
        config_path = write_config(tmp_path, gw.port, metrics_port, feed)
        config = load_config(config_path)
        portfolio, rules = load_common(config, config_path)

        async def main() -> None:
            run = asyncio.create_task(
                run_live(config, portfolio, rules, config_path=config_path, clock=clock)
            )
            try:
                await eventually(
                    lambda: run.done() or gw.subscribed_keys(CLIENT_ID) >= set(CONDOR) | BASE,
                    "the book subscribed",
                )
                await scenario(gw, base, logged)
                assert not run.done()
            finally:
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)

        asyncio.run(main())
    return gw, logged


def events(logged: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logged if e["event"] == name]


PAIRS = spxw("C6800", "P6800", "C6790", "P6790", "C6810", "P6810")


def rungs(built: dict[str, Any], pairs: int = 3) -> set[str]:
    """The options of a ``smile_ladder`` event's ladder: both rights at the ``pairs`` strikes
    nearest its centre, puts below them and calls above."""
    centre = built["centre"]
    strikes = built["strikes"]
    middle = sorted(strikes, key=lambda k: (abs(k - centre), k))[:pairs]
    out: set[str] = set()
    for k in strikes:
        rights = "CP" if k in middle else ("P" if k < min(middle) else "C")
        out |= spxw(*(f"{r}{k:g}" for r in rights))
    return out


def whole_ladder(gw: IBGateway, logged: list[dict[str, Any]]) -> bool:
    """Whether the gateway has every option of the newest ladder built (the lines of one
    subscription reach it one request after another)."""
    built = events(logged, "smile_ladder")
    return bool(built) and gw.subscribed_keys(CLIENT_ID) >= rungs(built[-1])


def test_a_condor_held_live_gets_a_strike_ladder_and_a_forward_from_parity(
    tmp_path: Path,
) -> None:
    state: dict[str, Any] = {}

    async def scenario(gw: IBGateway, base: str, logged: list[dict[str, Any]]) -> None:
        await eventually(lambda: gw.subscribed_keys(CLIENT_ID) >= PAIRS, "the parity pairs")
        out = tmp_path / "alerts.jsonl"

        async def forward_seen() -> bool:
            await in_thread(lambda: market(gw))
            return len(alerts(out)) == 2

        for _ in range(100):
            if await forward_seen():
                break
            await asyncio.sleep(0.1)
        _status, body = await in_thread(lambda: get(f"{base}/state"))
        state.update(json.loads(body))

    gw, logged = live(tmp_path, scenario)
    subscribed = {r.key for r in gw.requests("reqMktData", client_id=CLIENT_ID)}
    # Three call+put pairs nearest SPX (6800), on the listed strikes.
    assert subscribed >= PAIRS
    ladder = {k for k in subscribed if k and k.startswith("SPXW")} - set(CONDOR)
    strikes = sorted({parse_instrument_id(k).strike or 0.0 for k in ladder})
    # Wings to the condor's long legs: OTM puts down to 6600, OTM calls up to 7000.
    puts = {parse_instrument_id(k).strike for k in ladder if " P" in k} - {6790, 6800, 6810}
    calls = {parse_instrument_id(k).strike for k in ladder if " C" in k} - {6790, 6800, 6810}
    assert len(puts) >= 3
    assert all(k is not None and k < 6790 for k in puts)
    assert len(calls) >= 3
    assert all(k is not None and k > 6810 for k in calls)
    assert min(strikes) <= 6650
    assert max(strikes) >= 6950
    (built,) = events(logged, "smile_ladder")
    assert built["chain"] == f"SPXW {EXPIRY}"
    assert built["centred_on"] == "SPX"
    assert built["centre"] == SPX
    # The strikes came from IB's option chain parameters for SPX.
    (chains,) = gw.requests("reqSecDefOptParams", client_id=CLIENT_ID)
    assert chains.fields[1:4] == ("SPX", "", "IND")
    # Valuation measured the forward from the pairs (6790), not SPX carried at the rate
    # (6812.7): the rule on leg.underlying < 6800 fired for both short legs.
    fired = alerts(tmp_path / "alerts.jsonl")
    assert len(fired) == 2, fired
    for alert in fired:
        assert math.isclose(alert["value"], FORWARD, abs_tol=0.5), alert
    # The ladder's options are quoted, never positions: the legs are the condor's.
    assert sorted(leg["contract"] for leg in state["legs"]) == sorted(CONDOR)
    assert set(state["strategies"]) == {"IC-MAR20"}
    # The recording declares them, so a replay of the day has the same chains.
    (recording,) = sorted((tmp_path / "recordings").glob("*.jsonl"))
    header = parse_header(recording.read_bytes().splitlines()[0], recording)
    assert set(header.instruments) >= PAIRS | ladder | set(CONDOR) | BASE


def test_the_line_budget_keeps_the_book_and_cuts_the_ladder_from_the_wings(
    tmp_path: Path,
) -> None:
    # Three indexes, four VX, four legs: 11 lines; 15 leaves four for the ladder.
    async def scenario(gw: IBGateway, base: str, logged: list[dict[str, Any]]) -> None:
        await eventually(lambda: bool(events(logged, "smile_ladder_budget")), "the cut")
        await asyncio.sleep(0.3)  # any stray request

    gw, logged = live(tmp_path, scenario, feed="max_lines = 15\n")
    requested = {r.key for r in gw.requests("reqMktData", client_id=CLIENT_ID)}
    assert requested == set(CONDOR) | BASE | spxw("C6800", "P6800", "C6790", "P6790")
    (cut,) = events(logged, "smile_ladder_budget")
    assert cut["lines_left"] == 4
    assert cut["subscribed"] == 4
    (left_out,) = cut["left_out"].values()
    assert left_out[:2] == (f"SPXW {EXPIRY} C6810", f"SPXW {EXPIRY} P6810")  # then the wings
    assert len(left_out) >= 8
    assert not events(logged, "ib_line_budget")  # nothing of the book was left out


def test_a_strike_ib_does_not_list_for_the_expiry_is_dropped_with_a_warning(
    tmp_path: Path,
) -> None:
    # IB lists strikes per class, for all its expiries at once: 6805 exists on a weekly only.
    weekly = [option("SPXW", "20260306", right, 6805) for right in ("C", "P")]
    unlisted = spxw("C6805", "P6805")

    async def scenario(gw: IBGateway, base: str, logged: list[dict[str, Any]]) -> None:
        await eventually(
            lambda: gw.subscribed_keys(CLIENT_ID) >= spxw("C6800", "P6800", "C6790", "P6790"),
            "the listed pairs",
        )
        await in_thread(lambda: market(gw))
        await eventually(lambda: get(f"{base}/state")[0] == 200, "a snapshot")

    gw, logged = live(tmp_path, scenario, extra=weekly)
    dropped = events(logged, "ib_ladder_strike_unlisted")
    assert {e["instrument"] for e in dropped} == unlisted
    assert all(e["log_level"] == "warning" for e in dropped)
    assert not events(logged, "ib_unknown_instrument")
    requested = {r.key for r in gw.requests("reqMktData", client_id=CLIENT_ID)}
    assert not requested & {"SPXW 20260306 C6805", "SPXW 20260306 P6805"}
    (recording,) = sorted((tmp_path / "recordings").glob("*.jsonl"))
    header = parse_header(recording.read_bytes().splitlines()[0], recording)
    assert not set(header.instruments) & unlisted


def test_a_move_of_spx_re_centres_the_ladder_touching_only_the_lines_that_change(
    tmp_path: Path,
) -> None:
    before: set[str] = set()
    after: set[str] = set()

    async def scenario(gw: IBGateway, base: str, logged: list[dict[str, Any]]) -> None:
        await eventually(lambda: whole_ladder(gw, logged), "the ladder")
        await in_thread(lambda: market(gw))
        await eventually(lambda: get(f"{base}/state")[0] == 200, "a snapshot")
        before.update(gw.subscribed_keys(CLIENT_ID))
        gw.clear_requests()
        # SPX up 100 points: ten strike steps, more than the three that re-centre.
        await in_thread(lambda: gw.tick("SPX", last=6900.0))
        await eventually(
            lambda: (
                events(logged, "smile_ladder")[-1]["centre"] == 6900.0 and whole_ladder(gw, logged)
            ),
            "the new centre",
        )
        await asyncio.sleep(0.3)  # any stray request
        after.update(gw.subscribed_keys(CLIENT_ID))
        await in_thread(lambda: market(gw, 6900.0))  # the next batch, in a new recording
        await eventually(
            lambda: len(list((tmp_path / "recordings").glob("*.jsonl"))) == 2, "a new file"
        )

    gw, logged = live(tmp_path, scenario)
    added = {r.key for r in gw.requests("reqMktData", client_id=CLIENT_ID)}
    cancelled = {r.key for r in gw.requests("cancelMktData", client_id=CLIENT_ID)}
    assert added == after - before
    assert cancelled == before - after
    assert spxw("C6800", "P6800", "C6790", "P6790") <= cancelled  # the old pairs
    assert spxw("C6900", "P6900", "C6890", "P6890", "C6910", "P6910") <= after  # the new pairs
    assert spxw("C6900", "P6900") <= added
    assert not (added | cancelled) & (set(CONDOR) | BASE)  # the book's lines kept streaming
    (recentring,) = events(logged, "smile_ladder_recentring")
    assert (recentring["centre"], recentring["underlying"]) == (SPX, 6900.0)
    assert events(logged, "smile_ladder_recentred")
    # The recording starts a new file declaring the new strikes, without the old ones.
    first, second = (
        tmp_path / "recordings" / name for name in ("2026-03-03.jsonl", "2026-03-03-2.jsonl")
    )
    headers = [parse_header(p.read_bytes().splitlines()[0], p) for p in (first, second)]
    assert spxw("C6800", "P6800") <= set(headers[0].instruments)
    assert spxw("C6900", "P6900") <= set(headers[1].instruments)
    assert not spxw("C6800", "P6800") & set(headers[1].instruments)


def test_no_ladder_when_turned_off(tmp_path: Path) -> None:
    async def scenario(gw: IBGateway, base: str, logged: list[dict[str, Any]]) -> None:
        await in_thread(lambda: market(gw))
        await eventually(lambda: get(f"{base}/state")[0] == 200, "a snapshot")

    gw, logged = live(tmp_path, scenario, feed="smile_ladder = false\n")
    requested = {r.key for r in gw.requests("reqMktData", client_id=CLIENT_ID)}
    assert requested == set(CONDOR) | BASE
    assert not gw.requests("reqSecDefOptParams")
    assert not events(logged, "smile_ladder")
