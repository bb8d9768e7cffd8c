"""SQLite journal (WAL): every alert transition, the state of firing alerts, silences, and
the outbox of messages still to deliver.

One file serves four readers: the record of what happened (``alert_transitions``, each with
the JSON record every channel sends), a restarted daemon that must not page again
(``alert_state``), the silences an operator sets from the command line or over MQTT
(``silences``), which the rule engine reads, and the delivery workers (``outbox``). A
transition and its outbox rows are written in one transaction, before any channel is tried.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from monitor.delivery.outbox import OUTBOX_SCHEMA, Outbox
from monitor.delivery.routing import Route
from monitor.domain.alerts import AlertTransition, Matcher, Silence
from monitor.rules.engine import SavedAlert
from monitor.sinks.base import transition_record

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_transitions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id        TEXT NOT NULL,
    time          TEXT NOT NULL,   -- ISO 8601, New York time with offset
    rule          TEXT NOT NULL,
    severity      TEXT NOT NULL,
    state         TEXT NOT NULL,   -- firing | resolved
    labels        TEXT NOT NULL,   -- JSON object
    value         REAL,
    unit          TEXT NOT NULL,
    message       TEXT NOT NULL,
    action        TEXT,
    active_since  TEXT,
    notify        INTEGER NOT NULL DEFAULT 1,  -- 0: recorded, not sent
    suppressed_by TEXT,
    repeat        INTEGER NOT NULL DEFAULT 0,
    message_id    TEXT,            -- stable id of the message every channel sends
    alert_id      TEXT,            -- the alert (rule and labels) it belongs to
    record        TEXT             -- that message: the transition as JSON
);
CREATE INDEX IF NOT EXISTS alert_transitions_rule ON alert_transitions (rule, time);
CREATE TABLE IF NOT EXISTS alert_state (
    rule          TEXT NOT NULL,
    labels        TEXT NOT NULL,   -- JSON list of [name, value] pairs
    since         TEXT NOT NULL,   -- ISO 8601 with offset
    notified      INTEGER NOT NULL,
    last_notified TEXT,
    acknowledged  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule, labels)
);
CREATE TABLE IF NOT EXISTS silences (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    matchers  TEXT NOT NULL,       -- JSON object: label -> value; "alertname" is the rule
    starts    TEXT NOT NULL,       -- ISO 8601 with offset
    ends      TEXT NOT NULL,
    comment   TEXT NOT NULL DEFAULT '',
    created   TEXT NOT NULL
);
"""


SCHEMA_VERSION = 3
# Columns added since version 1 (journals written by 0.1 before silences existed); the
# outbox table itself is created by the schema script.
MIGRATIONS: dict[int, tuple[tuple[str, str], ...]] = {  # version: (table, column definition)
    2: (
        ("alert_transitions", "notify INTEGER NOT NULL DEFAULT 1"),
        ("alert_transitions", "suppressed_by TEXT"),
        ("alert_transitions", "repeat INTEGER NOT NULL DEFAULT 0"),
    ),
    3: (
        ("alert_transitions", "message_id TEXT"),
        ("alert_transitions", "alert_id TEXT"),
        ("alert_transitions", "record TEXT"),
        ("alert_state", "acknowledged INTEGER NOT NULL DEFAULT 0"),
    ),
}


def _migrate(db: sqlite3.Connection) -> None:
    """Brings an older journal up to SCHEMA_VERSION, keeping every row."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if version == 0 and "alert_transitions" in tables:
        version = 1  # written before the journal carried a version
    with db:
        if version >= 1:
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for table, column in MIGRATIONS[target]:
                    if table in tables:  # a table the schema script creates has every column
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        db.executescript(SCHEMA + OUTBOX_SCHEMA)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class Journal:
    """The journal file; a sink for transitions, a store for alert state and silences."""

    name = "journal"

    def __init__(
        self,
        path: Path,
        *,
        run_id: str = "",
        routes: Sequence[Route] = (),
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.run_id = run_id
        self.routes = tuple(routes)
        self._wall_clock = wall_clock
        self._listeners: list[Callable[[], None]] = []
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a transition acknowledged to the pipeline survives a power cut, not only a
        # killed process; the outbox is only as good as this write.
        self._db.execute("PRAGMA synchronous=FULL")
        _migrate(self._db)
        self.outbox = Outbox(self._db)
        self._silences: list[Silence] = []
        self._silences_version: int | None = None

    # -- sink ---------------------------------------------------------------------------

    async def emit(self, transitions: list[AlertTransition]) -> None:
        if not transitions:
            return
        now = self._wall_clock()
        with self._db:
            for transition in transitions:
                r = transition_record(transition)
                cursor = self._db.execute(
                    "INSERT INTO alert_transitions (run_id, time, rule, severity, state, "
                    "labels, value, unit, message, action, active_since, notify, "
                    "suppressed_by, repeat, message_id, alert_id, record) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    self._row(transition, r),
                )
                for route in self.routes:
                    if route.accepts(transition):
                        row = int(cursor.lastrowid or 0)
                        self.outbox.enqueue(row, route.channel, r["id"], now)
        for listener in self._listeners:
            listener()

    def on_enqueue(self, listener: Callable[[], None]) -> None:
        """Calls ``listener`` after each write of transitions (wakes delivery workers)."""
        self._listeners.append(listener)

    def _row(self, transition: AlertTransition, r: dict[str, object]) -> tuple[object, ...]:
        return (
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
            int(transition.notify),
            transition.suppressed_by,
            int(transition.repeat),
            transition.message_id,
            transition.alert_id,
            json.dumps(r, sort_keys=True),
        )

    async def close(self) -> None:
        self._db.close()

    # -- alert state --------------------------------------------------------------------

    def save_state(self, alerts: Sequence[SavedAlert]) -> None:
        """Replaces the stored firing alerts with ``alerts``, in one transaction."""
        with self._db:
            self._db.execute("DELETE FROM alert_state")
            self._db.executemany(
                "INSERT INTO alert_state (rule, labels, since, notified, last_notified, "
                "acknowledged) VALUES (?,?,?,?,?,?)",
                [
                    (
                        a.rule,
                        json.dumps([list(p) for p in a.labels]),
                        a.since.isoformat(),
                        int(a.notified),
                        a.last_notified.isoformat() if a.last_notified else None,
                        int(a.acknowledged),
                    )
                    for a in alerts
                ],
            )

    def load_state(self) -> list[SavedAlert]:
        rows = self._db.execute(
            "SELECT rule, labels, since, notified, last_notified, acknowledged FROM alert_state "
            "ORDER BY rule"
        ).fetchall()
        return [
            SavedAlert(
                rule,
                tuple((str(k), str(v)) for k, v in json.loads(labels)),
                datetime.fromisoformat(since),
                bool(notified),
                datetime.fromisoformat(last) if last else None,
                bool(acknowledged),
            )
            for rule, labels, since, notified, last, acknowledged in rows
        ]

    # -- silences -----------------------------------------------------------------------

    def add_silence(
        self,
        matchers: dict[str, str],
        starts: datetime,
        ends: datetime,
        comment: str,
        created: datetime,
    ) -> int:
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if ends <= starts:
            raise ValueError("a silence must end after it starts")
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO silences (matchers, starts, ends, comment, created) "
                "VALUES (?,?,?,?,?)",
                (
                    json.dumps(matchers, sort_keys=True),
                    starts.isoformat(),
                    ends.isoformat(),
                    comment,
                    created.isoformat(),
                ),
            )
        self._silences_version = None  # data_version only sees other connections' writes
        return int(cursor.lastrowid or 0)

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        with self._db:
            cursor = self._db.execute(
                "UPDATE silences SET ends = ? WHERE id = ? AND ends > ?",
                (now.isoformat(), silence_id, now.isoformat()),
            )
        self._silences_version = None
        return cursor.rowcount == 1

    def silences(self) -> list[Silence]:
        rows = self._db.execute(
            "SELECT id, matchers, starts, ends, comment FROM silences ORDER BY id"
        ).fetchall()
        return [
            Silence(
                sid,
                tuple(Matcher(k, v) for k, v in sorted(json.loads(matchers).items())),
                datetime.fromisoformat(starts),
                datetime.fromisoformat(ends),
                comment,
            )
            for sid, matchers, starts, ends, comment in rows
        ]

    def active(self, now: datetime) -> list[Silence]:
        """Silences in force at ``now``; re-read only when another connection wrote."""
        version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
        if version != self._silences_version:
            self._silences = self.silences()
            self._silences_version = version
        return [s for s in self._silences if s.active(now)]
