"""SQLite journal (WAL) of every alert transition, written before it counts as emitted."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from monitor.domain.alerts import AlertTransition
from monitor.sinks.base import transition_record

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_transitions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT NOT NULL,
    time         TEXT NOT NULL,   -- ISO 8601, New York time with offset
    rule         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    state        TEXT NOT NULL,   -- firing | resolved
    labels       TEXT NOT NULL,   -- JSON object
    value        REAL,
    unit         TEXT NOT NULL,
    message      TEXT NOT NULL,
    action       TEXT,
    active_since TEXT
);
CREATE INDEX IF NOT EXISTS alert_transitions_rule ON alert_transitions (rule, time);
"""


class JournalSink:
    name = "journal"

    def __init__(self, path: Path, *, run_id: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.run_id = run_id
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    async def emit(self, transitions: list[AlertTransition]) -> None:
        if not transitions:
            return
        rows = []
        for transition in transitions:
            r = transition_record(transition)
            rows.append(
                (
                    self.run_id,
                    r["time"],
                    r["rule"],
                    r["severity"],
                    r["state"],
                    json.dumps(r["labels"], sort_keys=True),
                    r["value"],
                    r["unit"],
                    r["message"],
                    r["action"],
                    r["active_since"],
                )
            )
        with self._db:
            self._db.executemany(
                "INSERT INTO alert_transitions (run_id, time, rule, severity, state, labels, "
                "value, unit, message, action, active_since) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )

    async def close(self) -> None:
        self._db.close()
