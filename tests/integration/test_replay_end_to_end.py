"""The bundled session replays end to end: alerts are right, timed, journaled and repeatable."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import REPO, replay_alerts

from monitor import bundled, logs
from monitor.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_TRUNCATED, main


def replay(tmp: Path, name: str) -> Path:
    out = tmp / f"{name}.jsonl"
    replay_alerts(bundled.SESSION, tmp / f"{name}.sqlite", out)
    return out


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return replay(tmp_path_factory.mktemp("replay"), "first")


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_same_inputs_give_a_byte_identical_alerts_file(first_run: Path, tmp_path: Path) -> None:
    second = replay(tmp_path, "second")
    assert first_run.read_bytes() == second.read_bytes()
    assert first_run.stat().st_size > 0


def test_vol_spike_fires_delta_and_term_structure_alerts(first_run: Path) -> None:
    alerts = records(first_run)
    firing = {a["rule"]: a for a in alerts if a["state"] == "firing"}
    delta = firing["ShortStrikeDeltaWarning"]
    assert delta["labels"] == {"category": "greeks", "leg": "P6425", "strategy": "IC-APR17"}
    assert delta["value"] >= 0.25
    assert delta["unit"] == "delta per contract"
    assert delta["time"].startswith("2026-03-03T")
    assert "short put 6425" in delta["message"]
    critical = firing["ShortStrikeDeltaCritical"]
    assert critical["value"] >= 0.30
    assert critical["time"] > delta["time"]  # 0.30 is reached after 0.25 on a falling day
    inversion = firing["VixTermStructureInverted"]
    assert inversion["value"] > 0  # VX1 - VX2 in VIX points
    assert "backwardation" in inversion["message"]
    # Every record carries the fields the format promises.
    for record in alerts:
        assert set(record) == {
            "id",
            "alert_id",
            "time",
            "rule",
            "severity",
            "state",
            "labels",
            "value",
            "unit",
            "message",
            "action",
            "active_since",
            "notify",
            "suppressed_by",
            "repeat",
        }
        assert record["state"] in {"firing", "resolved"}


def test_journal_holds_every_transition(first_run: Path) -> None:
    alerts = records(first_run)
    with sqlite3.connect(first_run.with_suffix(".sqlite")) as db:
        rows = db.execute(
            "SELECT time, rule, state, value FROM alert_transitions ORDER BY id"
        ).fetchall()
    assert rows == [(a["time"], a["rule"], a["state"], a["value"]) for a in alerts]


def test_demo_run_prints_alerts_and_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--metrics-port", "0"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "FIRING   warning  ShortStrikeDeltaWarning" in out
    assert "FIRING   critical VixTermStructureInverted" in out
    assert "2026-03-03 1" in out  # session time of the alert lines, in ET
    assert "bad lines skipped  0" in out
    assert "snapshots          4," in out
    assert "per SPX point" in out
    assert "per calendar day" in out
    assert "per SPX vol point" in out
    assert (tmp_path / "state" / "journal.sqlite").is_file()
    assert "metrics were at    http://127.0.0.1:" in out
    assert "http://127.0.0.1:9464/" not in out  # the override took effect


def test_truncated_session_replays_what_it_has_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blob = bundled.SESSION.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(blob[: len(blob) // 3])
    code = main(
        [
            "replay",
            str(cut),
            "--portfolio",
            str(bundled.PORTFOLIO),
            "--rules",
            str(REPO / "rules"),
            "--journal",
            str(tmp_path / "j.sqlite"),
            "--quiet",
        ]
    )
    assert code == EXIT_TRUNCATED
    out = capsys.readouterr().out
    assert "INPUT TRUNCATED" in out
    assert "cut short" in out


def test_portfolio_leg_missing_from_session_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    portfolio = tmp_path / "p.toml"
    portfolio.write_text(
        bundled.PORTFOLIO.read_text().replace("SPX 20260417 P6375", "SPX 20260417 P6300")
    )
    code = main(
        [
            "replay",
            str(bundled.SESSION),
            "--portfolio",
            str(portfolio),
            "--rules",
            str(REPO / "rules"),
            "--journal",
            str(tmp_path / "j.sqlite"),
        ]
    )
    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert str(portfolio) in err
    assert "strategies[0].legs[0].contract" in err
    assert "'SPX 20260417 P6300' is not an instrument of the session" in err


def test_bad_metrics_port_on_the_command_line_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", "--metrics-port", "70000"])
    assert caught.value.code == 2
    assert "--metrics-port: 70000 is outside 0-65535" in capsys.readouterr().err


def test_logs_on_stdout_keep_the_stream_json_lines_alerts_and_summary_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["--log-level", "info", "--log-stream", "stdout", "run", "--metrics-port", "0"])
    finally:
        logs.configure("warning", "stderr")
    assert code == EXIT_OK
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = [json.loads(line) for line in captured.out.splitlines()]  # every line is JSON
    events = [line["event"] for line in lines]
    assert "replay_start" in events
    assert events[-1] == "run_summary"
    assert any("bad lines skipped  0" in text for text in lines[-1]["lines"])
    alerts = [line for line in lines if line["event"] == "alert"]  # once each
    fired = {(a["rule"], a["level"]) for a in alerts if a["state"] == "firing"}
    assert ("ShortStrikeDeltaWarning", "warning") in fired
    assert ("VixTermStructureInverted", "critical") in fired
    assert all(a["alert_time"].startswith("2026-03-03T") for a in alerts)
    assert len({a["id"] for a in alerts}) == len(alerts)
