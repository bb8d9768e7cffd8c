"""Shared test helpers: small replay files built from plain dicts."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from monitor.config import PricingConfig
from monitor.domain.instruments import parse_instrument_id
from monitor.feeds.replay import FORMAT_NAME, FORMAT_VERSION, ReplayReader, instrument_terms
from monitor.pipeline import Pipeline
from monitor.portfolio.model import load_portfolio
from monitor.rules.loader import load_rules

REPO = Path(__file__).resolve().parent.parent
# Daemons started by the tests log to stderr, where the tests read them; under systemd
# (JOURNAL_STREAM set, e.g. a CI runner that is a service) they would log to stdout.
os.environ.pop("JOURNAL_STREAM", None)
SMALL_IDS = (
    "SPX",
    "VIX",
    "AD-NYSE",
    "VX 20260318",
    "VX 20260415",
    "SPX 20260417 P6425",
    "SPX 20260417 C6800",
    "SPX 20260417 P6800",
    "VIX 20260318 C22",
)


def header(ids: Iterable[str] = SMALL_IDS, **overrides: Any) -> dict[str, Any]:
    head: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "session_date": "2026-03-03",
        "source": "test",
        "instruments": [instrument_terms(parse_instrument_id(i)) for i in ids],
    }
    head.update(overrides)
    return head


def t(seconds: int) -> str:
    """A timestamp on the session day, ``seconds`` after 09:30 ET."""
    minutes, sec = divmod(seconds, 60)
    hours, minutes = divmod(30 + minutes, 60)
    return f"2026-03-03T{9 + hours:02d}:{minutes:02d}:{sec:02d}.000-05:00"


WriteSession = Callable[..., Path]


@pytest.fixture
def write_session(tmp_path: Path) -> WriteSession:
    """Writes a header (dict) and event lines (dicts or raw strings) to a .jsonl file."""

    def write(
        lines: Iterable[dict[str, Any] | str],
        head: dict[str, Any] | None = None,
        name: str = "session.jsonl",
    ) -> Path:
        path = tmp_path / name
        with path.open("w", encoding="utf-8") as out:
            out.write(json.dumps(head if head is not None else header()) + "\n")
            for line in lines:
                out.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
        return path

    return write


def run_pipeline(
    session: Path,
    portfolio: Path,
    rules: list[Path],
    *,
    batches: int | None = None,
    pricing: PricingConfig | None = None,
) -> Pipeline:
    """Feeds the first ``batches`` batches of ``session`` (all when None) through a pipeline."""
    reader = ReplayReader(session)
    pipeline = Pipeline(
        universe=reader.header.instruments,
        portfolio=load_portfolio(portfolio),
        rules=load_rules(rules) if rules else [],
        pricing=pricing or PricingConfig(),
        bad_lines=reader.stats.bad_by_reason,
    )
    for batch in islice(reader.batches(), batches):
        pipeline.step(batch)
    return pipeline


def replay_alerts(session: Path, journal: Path, out: Path, *extra: str) -> list[dict[str, Any]]:
    """Runs `condor-monitor replay` on the bundled book and rules; the alert records."""
    from monitor import bundled
    from monitor.cli import EXIT_OK, main

    args = [
        "replay",
        str(session),
        "--portfolio",
        str(bundled.PORTFOLIO),
        "--rules",
        str(REPO / "rules"),
        "--journal",
        str(journal),
        "--alerts-out",
        str(out),
        "--quiet",
    ]
    assert main([*args, *extra]) == EXIT_OK
    return [json.loads(line) for line in out.read_text().splitlines()]
