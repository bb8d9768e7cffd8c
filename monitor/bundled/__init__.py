"""Bundled data: the sample vol-spike session, the example portfolio and the default rules."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
SESSION = HERE / "sessions" / "vol-spike-2026-03-03.jsonl.gz"
PORTFOLIO = HERE / "portfolio.toml"
RULES = HERE / "rules"  # a link to the repository's rules/ directory, packaged with the wheel
