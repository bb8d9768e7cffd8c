"""Hot reload: a valid new rule set replaces the old one; an invalid one is refused, the old
one kept. By file change in-process, and by SIGHUP to a running replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, WriteSession, t

from monitor.rules import reload
from monitor.rules.engine import RuleEngine
from monitor.rules.loader import load_rule_set
from monitor.rules.reload import RuleReloader

RULE = """
groups:
  - name: g
    rules:
      - alert: {name}
        expr: {expr}
        severity: info
        value: spx
        unit: index points
        summary: "SPX {{spx:,.2f}}"
"""


def write_rules(directory: Path, name: str, expr: str) -> None:
    path = directory / "pack.yaml"
    path.write_text(RULE.format(name=name, expr=expr))
    # A new modification time even on coarse file systems: the reloader compares them.
    stamp = time.time() + 1 + len(list(directory.iterdir()))
    os.utime(path, (stamp, stamp))


def test_valid_set_replaces_invalid_set_is_refused(tmp_path: Path) -> None:
    write_rules(tmp_path, "Old", "spx > 0")
    engine = RuleEngine(load_rule_set([tmp_path]).rules)
    reloader = RuleReloader([tmp_path], engine)
    write_rules(tmp_path, "New", "spx > 1")
    assert reloader.reload() is True
    assert [r.name for r in engine.rules] == ["New"]
    write_rules(tmp_path, "Broken", "spx >")
    assert reloader.reload() is False
    assert [r.name for r in engine.rules] == ["New"]  # the old set stays in force
    assert reloader.last_error is not None
    assert "pack.yaml" in reloader.last_error
    assert "syntax error" in reloader.last_error
    assert (reloader.reloads, reloader.failures) == (1, 1)


@pytest.mark.parametrize(
    ("expr", "length"),
    [("not " * 50_000 + "x", 200_001), ("-" * 100_000 + "1", 100_001), ("(" * 100_000, 100_000)],
    ids=["not", "signs", "brackets"],
)
def test_attack_sized_expression_is_refused_and_the_old_set_kept(
    tmp_path: Path, expr: str, length: int
) -> None:
    write_rules(tmp_path, "Old", "spx > 0")
    engine = RuleEngine(load_rule_set([tmp_path]).rules)
    reloader = RuleReloader([tmp_path], engine)
    write_rules(tmp_path, "Huge", json.dumps(expr))
    reloader.request()  # the SIGHUP path
    assert reloader.maybe_reload() is False
    assert [r.name for r in engine.rules] == ["Old"]
    assert reloader.last_error == (
        f"{tmp_path / 'pack.yaml'}:5: rule 'Huge': field expr: the expression is too long: "
        f"{length:,} characters, at most 2,000 (at column 1)"
    )
    assert (reloader.reloads, reloader.failures) == (0, 1)


@pytest.mark.parametrize("error", [MemoryError, RecursionError, KeyError])
def test_no_failure_of_the_loader_escapes_the_reloader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    write_rules(tmp_path, "Old", "spx > 0")
    engine = RuleEngine(load_rule_set([tmp_path]).rules)
    reloader = RuleReloader([tmp_path], engine)

    def failing(paths: list[Path]) -> None:
        raise error("while loading")

    monkeypatch.setattr(reload, "load_rule_set", failing)
    assert reloader.reload() is False
    assert [r.name for r in engine.rules] == ["Old"]
    assert reloader.last_error is not None
    assert reloader.last_error.startswith(f"{error.__name__}: ")
    monkeypatch.undo()
    write_rules(tmp_path, "New", "spx > 1")
    assert reloader.reload() is True  # and the next good file is taken
    assert [r.name for r in engine.rules] == ["New"]


def test_request_forces_a_reload_and_unchanged_files_do_not(tmp_path: Path) -> None:
    write_rules(tmp_path, "Old", "spx > 0")
    engine = RuleEngine(load_rule_set([tmp_path]).rules)
    reloader = RuleReloader([tmp_path], engine)
    assert reloader.maybe_reload() is None  # nothing asked, nothing changed
    reloader.request()
    assert reloader.maybe_reload() is True


def test_sighup_reloads_a_running_replay(tmp_path: Path, write_session: WriteSession) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    write_rules(rules, "Never", "spx < 0")
    lines = [{"t": t(0), "type": "index", "id": "VIX", "value": 16.0}]
    lines += [{"t": t(s), "type": "index", "id": "SPX", "value": 6800.0} for s in range(1, 120)]
    session = write_session(lines)
    out = tmp_path / "alerts.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "--log-level",
            "info",
            "replay",
            str(session),
            "--portfolio",
            str(REPO / "tests" / "data" / "one-future.toml"),
            "--rules",
            str(rules),
            "--alerts-out",
            str(out),
            "--journal",
            str(tmp_path / "j.sqlite"),
            "--quiet",
            "--speed",
            "10",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # wait until the replay runs
            if "replay_start" in line:
                break
        (rules / "pack.yaml").write_text(RULE.format(name="Always", expr="spx > 0"))
        process.send_signal(signal.SIGHUP)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    fired = [json.loads(line)["rule"] for line in out.read_text().splitlines()]
    assert fired[:1] == ["Always"]
