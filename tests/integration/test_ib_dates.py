"""IB's dates as IB sends them: the bundled book held in an account, served by the emulator the
way IB dates contracts (last trading day in positions and lastTradeDateOrContractMonth, the
expiration only in the contract details' realExpirationDate), run live in-process on a clock
set to the bundled day.

The account holds the bundled portfolio (an SPX AM monthly condor and the VIX layer of VX2
and a VIX call spread) and more that the file does not list: SPXW 0DTE, a weekly and a
PM-settled third-Friday SPXW, and a second VIX call spread. Each is imported under its
expiration date, priced from its quotes, and settles when its class does.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness.ports import free_port
from ibemu.catalogue import index, option, vix_future
from ibemu.gateway import IBGateway
from test_ib_idle import SetClock, eventually, get, in_thread

from monitor import bundled
from monitor.app import load_common
from monitor.calendars import vix_future_expiries
from monitor.config import load_config
from monitor.domain.instruments import NEW_YORK, parse_instrument_id
from monitor.live import run_live
from monitor.pricing import black76
from monitor.pricing.expiry import settlement, year_fraction

NOW = datetime(2026, 3, 3, 10, 30, tzinfo=NEW_YORK)  # the bundled session's day
CLIENT_ID = 9
SPX = 6800.0
RATE = 0.04
# VX1 .. VX4 of the day (May's settles on Tuesday 19 May: 19 June, the Friday it counts
# from, is a holiday), in contango.
CURVE = vix_future_expiries(NOW.date(), 4)
VX = {f"{d:%Y%m%d}": 19.0 + 0.6 * n for n, d in enumerate(CURVE)}

# The bundled portfolio's legs, as the account holds them.
BUNDLED = {
    "SPX 20260417 P6375": 50,
    "SPX 20260417 P6425": -50,
    "SPX 20260417 C7150": -50,
    "SPX 20260417 C7200": 50,
    "VX 20260415": 2,
    "VIX 20260318 C22": 40,
    "VIX 20260318 C27": -40,
}


# Held too, not in the file: found by grouping, dated by expiration.
def condor(cls_expiry: str, strikes: tuple[int, int, int, int], size: int) -> dict[str, int]:
    rights = ("P", "P", "C", "C")
    signs = (1, -1, -1, 1)
    return {
        f"{cls_expiry} {r}{k}": s * size for r, k, s in zip(rights, strikes, signs, strict=True)
    }


MORE = {
    **condor("SPXW 20260303", (6760, 6780, 6820, 6840), 5),  # 0DTE, PM today
    **condor("SPXW 20260306", (6550, 6600, 7000, 7050), 3),  # a weekly
    **condor("SPXW 20260320", (6400, 6450, 7100, 7150), 2),  # PM on the third Friday
    "VIX 20260415 C25": 10,  # a second call spread: joins the file's layer
    "VIX 20260415 C32": -10,
}
HELD = BUNDLED | MORE

RULES = """
groups:
  - name: dates
    rules:
      - alert: ShortLegSettles
        for_each: short_leg
        expr: leg.days_to_expiry > 0
        severity: info
        value: leg.days_to_expiry
        unit: calendar days
        summary: "{leg.contract} settles in {value:.4f} days"
      - alert: StrategyModelPriced
        for_each: strategy
        expr: strategy.model_priced_legs > 0
        severity: warning
        value: strategy.model_priced_legs
        unit: legs
        summary: "{strategy.name}: {value:.0f} legs without a usable quote"
"""


def contracts() -> list[Any]:
    out = [index("SPX", "CBOE"), index("VIX", "CBOE"), index("AD-NYSE", "NYSE")]
    out += [vix_future(e) for e in VX]
    for key in HELD:
        parts = key.split()
        if len(parts) == 3:
            out.append(option(parts[0], parts[1], parts[2][0], float(parts[2][1:])))
    return out


def quote(key: str) -> tuple[float, float]:
    """A two-sided quote near a Black-76 value: 20 % vol on SPX, 90 % on VIX options."""
    inst = parse_instrument_id(key)
    years = year_fraction(inst, NOW)
    if inst.root == "VIX":
        assert inst.underlying is not None
        forward, vol = VX[inst.underlying.split()[1]], 0.9
    else:
        forward, vol = SPX * math.exp(RATE * years), 0.2
    value = float(black76.price(forward, inst.strike, years, RATE, vol, inst.is_call))
    return round(value * 0.98, 2), round(value * 1.02 + 0.05, 2)


def market(gw: IBGateway) -> None:
    gw.tick("SPX", last=SPX)
    gw.tick("VIX", last=18.0)
    gw.tick("AD-NYSE", last=250.0)
    for expiry, mid in VX.items():
        gw.tick(f"VX {expiry}", bid=mid - 0.05, ask=mid + 0.05, bid_size=30, ask_size=30)
    for key in HELD:
        if not key.startswith("VX "):
            bid, ask = quote(key)
            gw.tick(key, bid=bid, ask=ask, bid_size=10, ask_size=10)


def write_config(tmp_path: Path, port: int, metrics_port: int) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "dates.yaml").write_text(RULES)
    path = tmp_path / "live.toml"
    path.write_text(
        f'instance = "dates"\nportfolio = "{bundled.PORTFOLIO}"\nrules = ["rules"]\n'
        'alerts_out = "alerts.jsonl"\n'
        f'[feed]\nkind = "ib"\nport = {port}\nclient_id = {CLIENT_ID}\n'
        "evaluation_interval_seconds = 0.2\nconnect_timeout_seconds = 5\n"
        f"[pricing]\nrate = {RATE}\n"
        '[signals]\nib_history = false\n[journal]\npath = "journal.sqlite"\n'
        f"[metrics]\nport = {metrics_port}\n[console]\nenabled = false\n"
    )
    return path


def alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("lenient", [False, True], ids=["ib-dates", "either-date"])
def test_the_bundled_book_held_at_ib_is_dated_by_expiration_and_priced_from_quotes(
    tmp_path: Path, lenient: bool
) -> None:
    """``lenient``: a server that also takes expiration dates gives the same book."""
    clock = SetClock(NOW.astimezone(UTC))
    metrics_port = free_port()
    base = f"http://127.0.0.1:{metrics_port}"
    out = tmp_path / "alerts.jsonl"
    held = [(k, float(q), 1.0) for k, q in HELD.items()]
    with IBGateway(contracts(), held, accept_expiration_dates=lenient) as gw:
        # As IB dates them: the AM legs' positions carry the day before expiration.
        assert gw.contract("SPX 20260417 P6425").last_trade_date == "20260416"
        assert gw.contract("VIX 20260318 C22").last_trade_date == "20260317"
        config_path = write_config(tmp_path, gw.port, metrics_port)
        config = load_config(config_path)
        portfolio, rules = load_common(config, config_path)

        async def scenario() -> dict[str, Any]:
            run = asyncio.create_task(
                run_live(config, portfolio, rules, config_path=config_path, clock=clock)
            )
            try:
                await eventually(lambda: "SPX" in gw.subscribed_keys(CLIENT_ID), "subscriptions")
                wanted = set(HELD) | {f"VX {e}" for e in VX} | {"SPX", "VIX", "AD-NYSE"}
                await eventually(
                    lambda: run.done() or gw.subscribed_keys(CLIENT_ID) >= wanted,
                    "every leg subscribed",
                )
                assert not run.done()
                await in_thread(lambda: market(gw))
                await eventually(lambda: get(f"{base}/state")[0] == 200, "the first snapshot")
                await eventually(
                    lambda: len(settling(alerts(out))) == 4,
                    "every condor's short legs evaluated",
                )
                await asyncio.sleep(0.5)  # a few more evaluations
                status, body = await in_thread(lambda: get(f"{base}/state"))
                assert status == 200, body
                return dict(json.loads(body))
            finally:
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)

        state = asyncio.run(scenario())
        requests = gw.requests("reqContractDetails", client_id=CLIENT_ID)
    # One strategy per name: the file's two, the VIX spread the file lacks inside its layer.
    assert sorted(state["strategies"]) == [
        "IC-APR17",
        "IC-SPXW-20260303",
        "IC-SPXW-20260306",
        "IC-SPXW-20260320",
        "SECOND-ENGINE",
    ]
    # The layer priced from its own future's quotes: its greeks and the hedge ratio known.
    layer = state["strategies"]["SECOND-ENGINE"]
    assert layer["vega_usd_per_vol_point"] is not None
    assert layer["theta_usd_per_day"] is not None
    assert state["hedge"]["ratio_pct"] is not None
    assert math.isfinite(state["hedge"]["ratio_pct"])
    assert state["book"]["theta_usd_per_day"] is not None
    # Every leg priced from its quotes once they have come (the first batch may precede some).
    assert [f for f in state["firing"] if f["rule"] == "StrategyModelPriced"] == []
    fired = alerts(out)
    # Each short leg settles when its class does, seen by the rules as time to settlement.
    settles = {
        a["message"].rsplit(" settles", 1)[0]: a["value"]
        for a in fired
        if a["rule"] == "ShortLegSettles"
    }
    assert set(settles) == {k for k, q in HELD.items() if q < 0 and k.startswith("SPX")}
    for contract, value in settles.items():
        moment = settlement(parse_instrument_id(contract))
        assert math.isclose(value, days_until(moment), abs_tol=1e-6), contract
    # The SPX AM monthly settles on Friday 17 April at the opening print (09:30 ET), not on
    # the Thursday IB reports as its last trading day; 0DTE at today's 16:00 close.
    expected = {
        "SPX 20260417 P6425": datetime(2026, 4, 17, 9, 30, tzinfo=NEW_YORK),
        "SPXW 20260303 P6780": datetime(2026, 3, 3, 16, 0, tzinfo=NEW_YORK),
        "SPXW 20260320 C7100": datetime(2026, 3, 20, 16, 0, tzinfo=NEW_YORK),
        "SPXW 20260306 P6600": datetime(2026, 3, 6, 16, 0, tzinfo=NEW_YORK),
    }
    for contract, moment in expected.items():
        assert math.isclose(settles[contract], days_until(moment), abs_tol=1e-6), contract

    # Asked for by expiration month (or by conId), never by a date IB would not know.
    for request in requests:
        assert len(request.fields[5]) in {0, 6}, request


def settling(fired: list[dict[str, Any]]) -> set[str]:
    return {a["labels"]["strategy"] for a in fired if a["rule"] == "ShortLegSettles"}


def days_until(moment: datetime) -> float:
    """Calendar days from NOW (in UTC: a wall-clock difference would drop the DST hour)."""
    return (moment.astimezone(UTC) - NOW.astimezone(UTC)).total_seconds() / 86_400
