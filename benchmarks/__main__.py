"""`make bench`: a readable table, then one JSON object as the last line of stdout.

The JSON is also written to benchmarks/results/latest.json. Every peer is measured in the
same run as our code, as medians of repeats, so ratios hold on a shared, noisy machine.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from benchmarks import pricing, rules

TARGETS = {
    "iv_speedup_vs_py_vollib_n500": (">=", 50.0),
    "greeks_speedup_vs_quantlib_n500": (">=", 20.0),
    "scenario_grid_40legs_ms": ("<=", 2.0),
}


def main() -> None:
    results: dict[str, object] = dict(pricing.run())
    results.update(rules.run())
    met = {}
    for key, (op, bound) in TARGETS.items():
        value = float(results[key])  # type: ignore[arg-type]
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
