"""The standard workload: a generated full trading day, 40 instruments quoted 4 times a second.

The book is two SPX iron condors on the April expiry and a second-engine layer (VX2 futures
and a front-month VIX call spread). The file quotes every instrument at every step: the three
indexes, the VIX futures curve, the legs, the put-call parity strikes that give the forward
and a few more VIX calls: 40 instruments x 4 per second x 6.5 hours = 3.74 million events.

It is written once per layout, streamed to a gzip file (fast compression: the reader's cost
is part of the measurement, the generator's is not), under benchmarks/.cache/, and reused.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from monitor.feeds.generator import Layout, session_lines
from monitor.portfolio.model import Portfolio, load_portfolio

CACHE = Path(__file__).resolve().parent / ".cache"
SEED = 20260303
FORMAT_REVISION = 1  # bump when the generator's output for a layout changes
STANDARD_HOURS = 6.5
QUICK_HOURS = 1.0
QUOTES_PER_SECOND = 4
# Eight hours of monitoring: the day, then as much again as it takes to reach eight hours.
RSS_RUN_HOURS = 8.0

IC1 = ("SPX 20260417 P6375", "SPX 20260417 P6425", "SPX 20260417 C7150", "SPX 20260417 C7200")
IC2 = ("SPX 20260417 P6275", "SPX 20260417 P6325", "SPX 20260417 C7250", "SPX 20260417 C7300")
HEDGE = ("VX 20260415", "VIX 20260318 C22", "VIX 20260318 C27")
PARITY = tuple(
    f"SPX 20260417 {right}{strike}" for strike in range(6600, 6901, 50) for right in ("C", "P")
)
INSTRUMENT_IDS: tuple[str, ...] = (
    "SPX",
    "VIX",
    "AD-NYSE",
    "VX 20260318",
    "VX 20260415",
    "VX 20260519",
    "VX 20260617",
    *IC1,
    *IC2,
    *PARITY,
    "SPX 20260417 P6450",
    "SPX 20260417 P6500",
    "SPX 20260417 P6550",
    "SPX 20260417 C7100",
    "SPX 20260417 C7125",
    "SPX 20260417 C7175",
    "VIX 20260318 C18",
    "VIX 20260318 C20",
    "VIX 20260318 C22",
    "VIX 20260318 C25",
    "VIX 20260318 C27",
)

PORTFOLIO_TOML = """\
# The benchmark book: two 50-lot iron condors and a second-engine layer.
account_size_usd = 1_000_000

[[strategies]]
name = "IC-APR17-A"
kind = "iron_condor"
legs = [
  { contract = "SPX 20260417 P6375", quantity = 50 },
  { contract = "SPX 20260417 P6425", quantity = -50 },
  { contract = "SPX 20260417 C7150", quantity = -50 },
  { contract = "SPX 20260417 C7200", quantity = 50 },
]

[[strategies]]
name = "IC-APR17-B"
kind = "iron_condor"
legs = [
  { contract = "SPX 20260417 P6275", quantity = 30 },
  { contract = "SPX 20260417 P6325", quantity = -30 },
  { contract = "SPX 20260417 C7250", quantity = -30 },
  { contract = "SPX 20260417 C7300", quantity = 30 },
]

[[strategies]]
name = "SECOND-ENGINE"
kind = "second_engine"
legs = [
  { contract = "VX 20260415", quantity = 3 },
  { contract = "VIX 20260318 C22", quantity = 60 },
  { contract = "VIX 20260318 C27", quantity = -60 },
]
"""


@dataclass(frozen=True, slots=True)
class Workload:
    """A generated day on disk and what it holds."""

    session: Path
    portfolio: Path
    hours: float
    instruments: int
    layout: Layout

    @property
    def expected_events(self) -> int:
        steps = int(self.hours * 3600 * QUOTES_PER_SECOND) + 1
        return steps * self.instruments


def layout(hours: float) -> Layout:
    return Layout(
        step_seconds=1.0 / QUOTES_PER_SECOND,
        jitter_ms=0,
        update_probability=1.0,
        vix_every=1,
        breadth_every=1,
        hours=hours,
        instrument_ids=INSTRUMENT_IDS,
    )


def cache_dir() -> Path:
    """benchmarks/.cache, or $CONDOR_BENCH_CACHE when set (a larger or faster disk)."""
    return Path(os.environ.get("CONDOR_BENCH_CACHE", str(CACHE)))


def _key(day: Layout) -> str:
    text = repr((FORMAT_REVISION, SEED, sorted(asdict(day).items())))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ensure(*, quick: bool = False) -> Workload:
    """The standard day (or the one-hour quick day), generated on first use."""
    hours = QUICK_HOURS if quick else STANDARD_HOURS
    day = layout(hours)
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    session = directory / f"standard-day-{hours:g}h-{_key(day)}.jsonl.gz"
    portfolio = directory / "standard-book.toml"
    if not portfolio.exists() or portfolio.read_text() != PORTFOLIO_TOML:
        portfolio.write_text(PORTFOLIO_TOML)
    if not session.exists():
        partial = session.with_suffix(".partial")
        source = f"benchmarks/workload.py: standard day, seed {SEED}, {hours:g} h"
        with (
            partial.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) as out,
        ):
            pending: list[bytes] = []
            for line in session_lines(SEED, layout=day, source=source):
                pending.append(line)
                if len(pending) >= 4096:
                    out.write(b"".join(pending))
                    pending.clear()
            out.write(b"".join(pending))
        partial.replace(session)
    return Workload(session, portfolio, hours, len(INSTRUMENT_IDS), day)


def book(workload: Workload) -> Portfolio:
    return load_portfolio(workload.portfolio)


if __name__ == "__main__":
    import sys

    made = ensure(quick="--quick" in sys.argv)
    print(made.session, f"{made.session.stat().st_size / 1e6:.1f} MB")
