"""A rule file past the loader's bounds stops `rules check` and a start (`run`, which loads
the rules as `check-config` does) with one line naming the file, the line and the rule, and
the bad-input exit status; no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from monitor.cli import EXIT_BAD_INPUT

CLI = Path(sys.executable).parent / "condor-monitor"  # the installed entry point
EXAMPLE = REPO / "deploy" / "examples" / "condor-monitor.toml"
BUNDLED = REPO / "monitor" / "bundled"


def huge_rules(directory: Path) -> Path:
    rules = directory / "rules"
    rules.mkdir()
    (rules / "huge.yaml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Huge\n"
        f"        expr: {json.dumps('not ' * 50_000 + 'x')}\n        severity: info\n"
        "        value: vix\n        unit: VIX points\n        summary: x\n"
    )
    return rules


def config(directory: Path, rules: Path) -> Path:
    """The example config with absolute paths and ``rules`` as its rule directory."""
    text = (
        EXAMPLE.read_text()
        .replace("../../monitor/bundled/portfolio.toml", str(BUNDLED / "portfolio.toml"))
        .replace('"../../rules"', f'"{rules}"')
        .replace("../../monitor/bundled/sessions", str(BUNDLED / "sessions"))
        .replace("../../state/journal.sqlite", str(directory / "journal.sqlite"))
    )
    path = directory / "condor-monitor.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("command", ["rules check", "run --config"])
def test_start_with_an_attack_sized_rule_is_refused_in_one_line(
    tmp_path: Path, command: str
) -> None:
    rules = huge_rules(tmp_path)
    target = rules if command == "rules check" else config(tmp_path, rules)
    done = subprocess.run(
        [str(CLI), *command.split(), str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stdout == ""
    assert done.stderr == (
        f"condor-monitor: error: {rules / 'huge.yaml'}:4: rule 'Huge': field expr: "
        "the expression is too long: 200,001 characters, at most 2,000 (at column 1)\n"
    )
