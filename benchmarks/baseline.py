"""The naive peer: the standard day through a scalar, per-leg pricing loop, as simple bots do.

Same file, same book. Every line is decoded with ``json.loads`` (no validation); every tick
that touches a leg (its own quote, or a new value of its underlying: SPX for SPX options, the
same-expiry VIX future for VIX options) re-prices that leg on its own: the implied vol from the
mid with py_vollib's Black solver, then delta, gamma, vega and theta one call each. After each
tick the book's greeks are summed again and three threshold checks are made (short-strike
delta, book vega, book delta). The forward is spot carried at the rate (no put-call parity),
there is no scenario grid, no signals, no alert states and no journal: it does less than the
pipeline, which is the point of the comparison.

Run on its own (``python -m benchmarks.baseline [--quick]``) it prints one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime

from vollib.black.greeks import analytical
from vollib.black.implied_volatility import implied_volatility

from benchmarks import workload
from monitor.domain.instruments import NEW_YORK
from monitor.portfolio.model import Portfolio

RATE = 0.04
SHORT_DELTA_ALARM = 0.25
VEGA_LIMIT_USD = -10_000.0
DELTA_LIMIT_USD = 50_000.0
SECONDS_PER_YEAR = 365.0 * 86_400.0


@dataclass(slots=True)
class NaiveLeg:
    id: str
    underlying: str | None
    flag: str  # "c" / "p" for options, "" for futures
    strike: float
    expiry: datetime
    quantity: int
    multiplier: float
    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0


def legs_of(portfolio: Portfolio) -> list[NaiveLeg]:
    out = []
    for leg in portfolio.legs:
        inst = leg.instrument
        assert inst.expiry is not None
        # AM settlement: the morning of the expiry day.
        expiry = datetime(
            inst.expiry.year, inst.expiry.month, inst.expiry.day, 9, 30, tzinfo=NEW_YORK
        )
        out.append(
            NaiveLeg(
                inst.id,
                inst.underlying,
                ("c" if inst.is_call else "p") if inst.strike is not None else "",
                inst.strike or 0.0,
                expiry,
                leg.quantity,
                inst.multiplier,
                delta=1.0 if inst.strike is None else 0.0,
            )
        )
    return out


def _price(leg: NaiveLeg, mid: float, underlying: float, now: datetime) -> None:
    years = (leg.expiry - now).total_seconds() / SECONDS_PER_YEAR
    forward = underlying * math.exp(RATE * years) if leg.underlying == "SPX" else underlying
    try:
        vol = implied_volatility(mid, forward, leg.strike, RATE, years, leg.flag)
    except Exception:  # noqa: BLE001 - py_vollib raises at its price bounds; keep the last greeks
        return
    if not math.isfinite(vol) or vol <= 0.0:
        return
    leg.delta = analytical.delta(leg.flag, forward, leg.strike, years, RATE, vol)
    leg.gamma = analytical.gamma(leg.flag, forward, leg.strike, years, RATE, vol)
    leg.vega = analytical.vega(leg.flag, forward, leg.strike, years, RATE, vol)
    leg.theta = analytical.theta(leg.flag, forward, leg.strike, years, RATE, vol)


def replay(day: workload.Workload, portfolio: Portfolio) -> dict[str, float]:
    legs = legs_of(portfolio)
    by_id = {leg.id: leg for leg in legs}
    on_underlying: dict[str, list[NaiveLeg]] = {}
    for leg in legs:
        if leg.underlying:
            on_underlying.setdefault(leg.underlying, []).append(leg)
    mids: dict[str, float] = {}
    spot: dict[str, float] = {}
    events = repriced = alarms = 0
    first: datetime | None = None
    now = datetime.min.replace(tzinfo=NEW_YORK)
    started = time.perf_counter()
    with gzip.open(day.session, "rb") as stream:
        stream.readline()  # the header
        for raw in stream:
            event = json.loads(raw)
            events += 1
            now = datetime.fromisoformat(event["t"])
            if first is None:
                first = now
            inst_id = event["id"]
            touched: list[NaiveLeg] = []
            if event["type"] == "index":
                spot[inst_id] = event["value"]
            else:
                bid, ask = event.get("bid"), event.get("ask")
                if bid and ask and bid <= ask:
                    mids[inst_id] = 0.5 * (bid + ask)
                    spot[inst_id] = mids[inst_id]
                    if inst_id in by_id:
                        touched.append(by_id[inst_id])
            touched.extend(on_underlying.get(inst_id, ()))
            for leg in touched:
                if not leg.flag:
                    continue
                mid, under = mids.get(leg.id), spot.get(leg.underlying or "")
                if mid is None or under is None:
                    continue
                _price(leg, mid, under, now)
                repriced += 1
            if touched:
                delta = sum(lg.delta * lg.quantity * lg.multiplier for lg in legs)
                vega = sum(lg.vega * lg.quantity * lg.multiplier for lg in legs if lg.flag)
                short = max(abs(lg.delta) for lg in legs if lg.quantity < 0 and lg.flag)
                alarms += (
                    (short >= SHORT_DELTA_ALARM)
                    + (vega <= VEGA_LIMIT_USD)
                    + (abs(delta) >= DELTA_LIMIT_USD)
                )
    seconds = time.perf_counter() - started
    assert first is not None
    session_seconds = (now - first).total_seconds()
    return {
        "baseline_seconds": seconds,
        "baseline_events_per_s": events / seconds,
        "baseline_x_realtime": session_seconds / seconds,
        "baseline_leg_repricings": float(repriced),
        "baseline_us_per_repricing": seconds / max(repriced, 1) * 1e6,
    }


def run(*, quick: bool = False) -> dict[str, float]:
    day = workload.ensure(quick=quick)
    return replay(day, workload.book(day))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a one-hour day instead of 6.5 h")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick), sort_keys=True))


if __name__ == "__main__":
    main()
