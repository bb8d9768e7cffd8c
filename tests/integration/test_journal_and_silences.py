"""The journal across runs: silences set from the CLI, and a restart that does not re-page."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO
from conftest import replay_alerts as replay

from monitor import bundled
from monitor.cli import EXIT_BAD_INPUT, EXIT_OK, main
from monitor.domain.instruments import NEW_YORK
from monitor.sinks.journal import Journal


def test_silence_from_the_cli_holds_back_a_page_but_keeps_the_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "journal.sqlite"
    assert (
        main(
            [
                "silence",
                "add",
                "--journal",
                str(journal),
                "--match",
                "alertname=VixTermStructureInverted",
                "--starts",
                "2026-03-03T09:30:00-05:00",
                "--ends",
                "2026-03-03T16:30:00-05:00",
                "--comment",
                "known regime",
            ]
        )
        == EXIT_OK
    )
    assert "silence 1" in capsys.readouterr().out
    alerts = replay(bundled.SESSION, journal, tmp_path / "a.jsonl")
    inverted = [a for a in alerts if a["rule"] == "VixTermStructureInverted"]
    assert [(a["state"], a["notify"], a["suppressed_by"]) for a in inverted] == [
        ("firing", False, "silence 1")
    ]
    delta = [a for a in alerts if a["rule"] == "ShortStrikeDeltaWarning"]
    assert delta[0]["notify"] is True  # the silence matches one rule only


def test_silence_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "j.sqlite"
    assert (
        main(
            [
                "silence",
                "add",
                "--journal",
                str(journal),
                "--match",
                "strategy=IC",
                "--duration",
                "2h",
            ]
        )
        == EXIT_OK
    )
    assert main(["silence", "list", "--journal", str(journal)]) == EXIT_OK
    assert " active " in capsys.readouterr().out
    assert main(["silence", "expire", "1", "--journal", str(journal)]) == EXIT_OK
    assert main(["silence", "expire", "1", "--journal", str(journal)]) == EXIT_BAD_INPUT
    assert "no such silence in force" in capsys.readouterr().err
    assert (
        main(
            ["silence", "add", "--journal", str(journal), "--match", "strategy", "--duration", "2h"]
        )
        == EXIT_BAD_INPUT
    )
    assert "expected LABEL=VALUE" in capsys.readouterr().err
    assert main(["silence", "add", "--journal", str(journal), "--match", "a=b"]) == EXIT_BAD_INPUT
    assert "exactly one of --duration and --ends" in capsys.readouterr().err


def test_silence_added_by_another_process_is_seen_at_once(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    daemon, operator = Journal(path), Journal(path)
    now = datetime(2026, 3, 3, 12, 0, tzinfo=NEW_YORK)
    assert daemon.active(now) == []
    operator.add_silence({"alertname": "X"}, now, now + timedelta(hours=1), "", now)
    (silence,) = daemon.active(now)
    assert silence.matchers[0].value == "X"
    assert daemon.active(now + timedelta(hours=1)) == []  # ends is exclusive


def split(session: Path, at: str, tmp_path: Path) -> tuple[Path, Path]:
    """The session cut in two at ``at`` (HH:MM ET), each part with the header."""
    lines = gzip.decompress(session.read_bytes()).decode().splitlines(keepends=True)
    header, events = lines[0], lines[1:]
    cut = next(i for i, line in enumerate(events) if json.loads(line)["t"][11:16] >= at)
    first, second = tmp_path / "morning.jsonl", tmp_path / "afternoon.jsonl"
    first.write_text(header + "".join(events[:cut]))
    second.write_text(header + "".join(events[cut:]))
    return first, second


def test_restart_mid_session_does_not_page_again(tmp_path: Path) -> None:
    morning, afternoon = split(bundled.SESSION, "13:00", tmp_path)
    journal = tmp_path / "journal.sqlite"
    before = replay(morning, journal, tmp_path / "before.jsonl")
    assert {a["rule"] for a in before if a["state"] == "firing"} >= {
        "ShortStrikeDeltaWarning",
        "VixTermStructureInverted",
    }
    after = replay(afternoon, journal, tmp_path / "after.jsonl")  # the daemon restarted
    again = [
        a
        for a in after
        if a["state"] == "firing"
        and a["notify"]
        and a["rule"] in {"ShortStrikeDeltaWarning", "VixTermStructureInverted"}
    ]
    assert again == []
    # The same day in one piece pages each of them exactly once.
    whole = replay(bundled.SESSION, tmp_path / "fresh.sqlite", tmp_path / "whole.jsonl")
    firing = [a["rule"] for a in whole if a["state"] == "firing"]
    assert firing.count("ShortStrikeDeltaWarning") == 1


def test_journal_of_an_older_version_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    import sqlite3

    from monitor.sinks.journal import SCHEMA_VERSION

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the version-1 layout, before silences existed
        db.execute(
            "CREATE TABLE alert_transitions (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT "
            "NOT NULL, time TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL, state "
            "TEXT NOT NULL, labels TEXT NOT NULL, value REAL, unit TEXT NOT NULL, message TEXT "
            "NOT NULL, action TEXT, active_since TEXT)"
        )
        db.execute(
            "INSERT INTO alert_transitions (run_id, time, rule, severity, state, labels, value, "
            "unit, message) VALUES ('r', 't', 'Old', 'info', 'firing', '{}', 1.0, 'u', 'm')"
        )
    journal = Journal(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        row = db.execute(
            "SELECT rule, notify, suppressed_by, repeat, message_id FROM alert_transitions"
        )
        assert row.fetchall() == [("Old", 1, None, 0, None)]
        assert db.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
    assert journal.silences() == []
    assert journal.load_state() == []


GAP_RULES = REPO / "rules"


def test_feed_stale_fires_in_a_gap_on_the_session_clock(tmp_path: Path, write_session) -> None:
    from conftest import t

    lines = [{"t": t(0), "type": "index", "id": "VIX", "value": 16.0}]
    lines += [{"t": t(s), "type": "index", "id": "SPX", "value": 6800.0} for s in (1, 5, 10)]
    lines += [{"t": t(s), "type": "index", "id": "SPX", "value": 6801.0} for s in (190, 195)]
    session = write_session(lines)
    out = tmp_path / "alerts.jsonl"
    code = main(
        [
            "replay",
            str(session),
            "--portfolio",
            str(REPO / "tests" / "data" / "one-future.toml"),
            "--rules",
            str(GAP_RULES),
            "--journal",
            str(tmp_path / "j.sqlite"),
            "--alerts-out",
            str(out),
            "--quiet",
        ]
    )
    assert code == EXIT_OK
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    stale = [(a["state"], a["time"][11:19], a["value"]) for a in alerts if a["rule"] == "FeedStale"]
    # Last event at 09:30:10; timer evaluations every 15 s: 75 s old at 09:31:25 (> 60 s).
    # Data resumes at 09:33:10.
    assert stale == [("firing", "09:31:25", 75.0), ("resolved", "09:33:10", 0.0)]
