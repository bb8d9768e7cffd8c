"""Ticks no market can print, in a real replay: an SPX of 0 or 1e300, a leg bid at 1e-300,
a VIX of 0. The run goes on, each is counted by reason, and the alerts are exactly those
of the same day without them (today a zero SPX ended the run and 1e300 fired a false
BookDeltaAcceleration)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from conftest import REPO

from monitor import bundled
from monitor.cli import EXIT_OK, main

PACK = REPO / "rules" / "second-engine.yaml"
# (inserted after the first event at or after this time, with its timestamp)
BAD: list[tuple[str, dict[str, object]]] = [
    ("10:00:00", {"type": "index", "id": "SPX", "value": 0.0}),
    ("11:00:00", {"type": "index", "id": "SPX", "value": 1e300}),
    ("11:30:00", {"type": "quote", "id": "SPX 20260417 P6425", "bid": 1e-300, "ask": 31.0}),
    ("12:00:00", {"type": "index", "id": "VIX", "value": 0.0}),
    ("12:30:00", {"type": "quote", "id": "VX 20260318", "bid": 1e-300, "ask": 1e300}),
    ("13:00:00", {"type": "index", "id": "SPX", "value": 3000.0}),  # a lone jump
]
REASONS = {"below_floor": 4, "above_cap": 1, "jump": 1}  # a quote: its first bad side


def dirty_day(path: Path, *, until: str | None = None) -> Path:
    """The bundled day with the BAD ticks slipped in (and cut at ``until``, New York)."""
    pending = list(BAD)
    with gzip.open(bundled.SESSION, "rt", encoding="utf-8") as lines:
        out = [next(lines)]
        for line in lines:
            stamp = json.loads(line)["t"]
            clock = datetime.fromisoformat(stamp).strftime("%H:%M:%S")
            if until is not None and clock >= until:
                break
            out.append(line)
            while pending and clock >= pending[0][0]:
                out.append(json.dumps({"t": stamp, **pending.pop(0)[1]}) + "\n")
    path.write_text("".join(out), encoding="utf-8")
    return path


def transitions(session: Path, capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str, str]]:
    args = ["backtest", str(session), "--portfolio", str(bundled.PORTFOLIO), "--rules", str(PACK)]
    assert main([*args, "--json"]) == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    return [(t["rule"], t["state"], t["time"]) for t in result["transitions"]]


def test_impossible_ticks_change_no_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dirty = dirty_day(tmp_path / "dirty.jsonl")
    clean = tmp_path / "clean.jsonl"
    with gzip.open(bundled.SESSION, "rt", encoding="utf-8") as lines:
        clean.write_text(lines.read(), encoding="utf-8")
    expected = transitions(clean, capsys)
    assert any(rule == "ShortStrikeDeltaWarning" for rule, _, _ in expected)
    assert transitions(dirty, capsys) == expected


def test_a_run_on_a_zero_spx_goes_on_and_counts_each_reason(tmp_path: Path) -> None:
    """The daemon itself (`run`, as a process) on the first hours of the dirty day."""
    session = dirty_day(tmp_path / "dirty.jsonl", until="13:05:00")
    config = tmp_path / "condor.toml"
    config.write_text(
        "\n".join(
            [
                'instance = "bad-ticks"',
                f'portfolio = "{bundled.PORTFOLIO}"',
                f'rules = ["{PACK}"]',
                "[feed]",
                f'session = "{session}"',
                "[journal]",
                'path = "state/journal.sqlite"',
                "[metrics]",
                "enabled = false",
                "[console]",
                "enabled = false",
            ]
        )
        + "\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "--log-level", "info", "run", "--config", config],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ZeroDivisionError" not in done.stderr
    rejected = [line for line in done.stderr.splitlines() if "tick_rejected" in line]
    assert len(rejected) == 6, done.stderr[-3000:]  # once per instrument and reason
    assert "rejected ticks" in done.stdout
    for reason, count in REASONS.items():
        assert f"{reason} {count}" in done.stdout, done.stdout
