"""`make bench`: a readable table, then one JSON object as the last line of stdout.

The JSON is also written to benchmarks/results/latest.json. Every peer is measured in the
same run as our code, as medians of repeats, so ratios hold on a shared, noisy machine.
The standard-day replay, its naive baseline and the live tick-to-alert path each run in a
child process (their peak memory is their own); ``--quick`` (or CONDOR_BENCH_QUICK=1) runs
them on a one-hour day and fewer samples. Keys and methods: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import pricing, rules, workload

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "iv_speedup_vs_py_vollib_n500": (">=", 50.0),
    "greeks_speedup_vs_quantlib_n500": (">=", 20.0),
    "scenario_grid_40legs_ms": ("<=", 2.0),
    "smile_fit_us_per_expiry": ("<=", 50.0),
    "replay_x_realtime": (">=", 500.0),
    "p99_tick_to_alert_ms": ("<=", 5.0),
    "rss_growth_pct": ("<=", 5.0),
}
CHILD_TIMEOUT_SECONDS = 900


def child(module: str, *, quick: bool) -> dict[str, object]:
    """Runs ``python -m benchmarks.<module>`` and reads the JSON object on its last line."""
    args = [sys.executable, "-m", f"benchmarks.{module}", *(["--quick"] if quick else [])]
    done = subprocess.run(
        args,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_SECONDS,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"benchmarks.{module} failed ({done.returncode}): {' | '.join(tail)}")
    result: dict[str, object] = json.loads(lines[-1])
    return result


def standard_day(*, quick: bool) -> dict[str, object]:
    started = time.perf_counter()
    workload.ensure(quick=quick)  # generated once, before anything is timed
    results: dict[str, object] = {"workload_prepare_seconds": time.perf_counter() - started}
    results.update(child("replay", quick=quick))
    results.update(child("baseline", quick=quick))
    ours = float(results["replay_events_per_s"])  # type: ignore[arg-type]
    naive = float(results["baseline_events_per_s"])  # type: ignore[arg-type]
    results["replay_speedup_vs_naive"] = ours / naive
    try:
        results.update(child("tick_to_alert", quick=quick))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:  # a broker that would not start
        results.update(
            p50_tick_to_alert_ms=None, p99_tick_to_alert_ms=None, tick_to_alert_skipped=str(exc)
        )
    results["bench_quick"] = quick
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("CONDOR_BENCH_QUICK", "") not in ("", "0"),
        help="a one-hour standard day and fewer live samples (also CONDOR_BENCH_QUICK=1)",
    )
    args = parser.parse_args()
    results: dict[str, object] = dict(pricing.run())
    results.update(rules.run())
    results.update(standard_day(quick=args.quick))
    met: dict[str, bool | None] = {}
    for key, (op, bound) in TARGETS.items():
        raw = results.get(key)
        if raw is None:
            met[key] = None
            print(f"{key:40s} {'n/a':>12s}  target {op} {bound:g}  not measured")
            continue
        value = float(raw)  # type: ignore[arg-type]
        met[key] = value >= bound if op == ">=" else value <= bound
        print(f"{key:40s} {value:12.3f}  target {op} {bound:g}  {'met' if met[key] else 'MISSED'}")
    results["targets_met"] = met
    results["python"] = platform.python_version()
    results["machine"] = platform.machine()
    out = Path(__file__).resolve().parent / "results" / "latest.json"
    out.parent.mkdir(exist_ok=True)
    line = json.dumps(results, sort_keys=True)
    out.write_text(line + "\n")
    print(line)


main()
