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
import os
import sqlite3
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from monitor.domain.alerts import AlertTransition, Matcher, SavedAlert, Silence
from monitor.domain.health import StorageHealth
from monitor.domain.routing import Route
from monitor.errors import MonitorError
from monitor.sinks.base import transition_record
from monitor.sinks.outbox import (
    OUTBOX_SCHEMA,
    TRANSITION_INSERT,
    Held,
    Outbox,
    Storage,
    Written,
)

log = structlog.get_logger(__name__)

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
CREATE TABLE IF NOT EXISTS heartbeat (  -- one row: when a daemon last wrote, for the probe
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    wall   REAL NOT NULL,              -- Unix seconds
    run_id TEXT NOT NULL
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


SCHEMA_VERSION = 4
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
    4: (),  # the heartbeat table, created by the schema script
}


def _migrate(db: sqlite3.Connection) -> None:
    """Brings an older journal up to SCHEMA_VERSION, keeping every row."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if version == SCHEMA_VERSION and {"alert_transitions", "outbox"} <= tables:
        return  # nothing to write: a journal on a full disk still opens
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


def _write_state(db: sqlite3.Connection, alerts: Sequence[SavedAlert]) -> bool:
    db.execute("DELETE FROM alert_state")
    db.executemany(
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
    return True


PRIVATE_FILE = 0o600  # the journal holds positions and alert texts: the owner's alone
SQLITE_BUSY_SECONDS = 2.0  # a writer (a `silence add` from the command line) holds it so long


class JournalError(MonitorError):
    """The journal cannot be opened: the message names the file and the reason."""


def _probe(directory: Path) -> None:
    """Raises OSError when ``directory`` cannot take a new file."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".write-probe-", dir=directory)
    os.close(fd)
    Path(name).unlink()


def _connect(path: Path, *, exclusive: bool) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=SQLITE_BUSY_SECONDS)
    try:
        if exclusive:
            # The WAL index then lives in this process's memory, not in the -shm file that a
            # full disk cannot extend; other processes cannot open the journal meanwhile.
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a transition acknowledged to the pipeline survives a power cut, not only a
        # killed process; the outbox is only as good as this write.
        db.execute("PRAGMA synchronous=FULL")
        _migrate(db)
        db.execute("SELECT count(*) FROM alert_state").fetchone()
    except sqlite3.Error:
        db.close()
        raise
    return db


def _open(path: Path) -> sqlite3.Connection:
    """The journal's connection; the file (and SQLite's -wal and -shm beside it, which take
    its mode) created 0600 whatever the umask. A journal that opens but whose shared-memory
    index cannot be made (a full disk) is opened for this process alone, so the daemon
    still starts and alerts (JournalUnavailable says the rest). Raises JournalError with
    one line when the directory or the file cannot be used at all."""
    try:
        _probe(path.parent)
    except OSError as exc:
        raise JournalError(
            f"the state directory {path.parent} cannot be written "
            f"({exc.strerror or exc}); the journal {path.name} lives there"
        ) from None
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE))
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if (
                file.exists()
                and not file.is_symlink()  # its target is not ours to change
                and stat.S_IMODE(file.stat().st_mode) != PRIVATE_FILE
            ):
                file.chmod(PRIVATE_FILE)
    except OSError as exc:
        raise JournalError(f"cannot open the journal {path} ({exc.strerror or exc})") from None
    try:
        return _connect(path, exclusive=False)
    except sqlite3.Error as exc:
        shared_error = str(exc)
    try:
        db = _connect(path, exclusive=True)
    except sqlite3.Error:
        raise JournalError(f"cannot open the journal {path} ({shared_error})") from None
    log.warning(
        "journal_opened_exclusive",
        path=str(path),
        error=shared_error,
        note="the journal is this daemon's alone until it restarts: the silence command "
        "cannot reach it meanwhile",
    )
    return db


class Journal:
    """The journal file; a sink for transitions, a store for alert state and silences.
    A write that fails (full disk, read-only or locked file) never raises: see
    sinks/outbox.py for how transitions are held and written later."""

    name = "journal"

    def __init__(
        self,
        path: Path,
        *,
        run_id: str = "",
        routes: Sequence[Route] = (),
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.run_id = run_id
        self.routes = tuple(routes)
        self._wall_clock = wall_clock
        self._listeners: list[Callable[[], None]] = []
        self._db = _open(path)
        self.storage = Storage(self._db, path, wall_clock, busy_seconds=SQLITE_BUSY_SECONDS)
        self.outbox = Outbox(self.storage)
        self._pending_state: list[SavedAlert] | None = None  # alert state not yet written
        # A recovery writes the heartbeat too: an empty transaction would prove nothing.
        self.storage.on_recover(self._heartbeat_step)
        self.storage.on_recover(self._write_pending_state)
        self._silences: list[Silence] = []
        self._silences_version: int | None = None

    # -- sink ---------------------------------------------------------------------------

    async def emit(self, transitions: list[AlertTransition]) -> None:
        """Records transitions and their outbox rows in one transaction; when the journal
        cannot be written, holds them in memory (the channels read them all the same)."""
        if not transitions:
            return
        now = self._wall_clock()
        self.storage.recover()  # what was held goes first, once the file takes writes
        rows = [(t, transition_record(t)) for t in transitions]

        def write(db: sqlite3.Connection) -> bool:
            for transition, r in rows:
                cursor = db.execute(TRANSITION_INSERT, self._row(transition, r))
                for route in self.routes:
                    if route.accepts(transition):
                        row = int(cursor.lastrowid or 0)
                        self.outbox.enqueue(row, route.channel, r["id"], now)
            return True

        if self.storage.write("alert transitions", write) is None:
            for transition, r in rows:
                channels = [route.channel for route in self.routes if route.accepts(transition)]
                self.outbox.hold(Held(self._row(transition, r), r), channels, r["id"], now)
        for listener in self._listeners:
            listener()

    def health(self) -> StorageHealth:
        """Whether the journal takes writes, and the state directory's free space; tries
        to write what was held (at most every few seconds)."""
        storage = self.storage
        storage.recover()
        storage.probe(self._heartbeat)
        return StorageHealth(
            available=storage.available,
            free_bytes=storage.free_bytes(),
            held_transitions=len(self.outbox.held),
            dropped_transitions=self.outbox.dropped,
            unavailable_since=storage.since,
            error=storage.error,
        )

    def _heartbeat(self, db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT OR REPLACE INTO heartbeat (id, wall, run_id) VALUES (1, ?, ?)",
            (self._wall_clock(), self.run_id),
        )

    def _heartbeat_step(self, db: sqlite3.Connection) -> Written:
        self._heartbeat(db)
        return (lambda: None), False

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
        """Writes what is held if the file takes it now (else it is lost with the process:
        it has been delivered or logged), then closes."""
        if not self.storage.recover(force=True):
            log.error(
                "journal_not_written",
                path=str(self.path),
                held_transitions=len(self.outbox.held),
                error=self.storage.error,
            )
        self._db.close()

    # -- alert state --------------------------------------------------------------------

    def save_state(self, alerts: Sequence[SavedAlert]) -> None:
        """Replaces the stored firing alerts with ``alerts``, in one transaction (kept in
        memory until then when the journal cannot be written)."""
        saved = list(alerts)
        self._pending_state = saved
        if self.storage.write("alert state", lambda db: _write_state(db, saved)) is not None:
            self._pending_state = None

    def _write_pending_state(self, db: sqlite3.Connection) -> Written:
        pending = self._pending_state
        if pending is not None:
            _write_state(db, pending)

        def committed() -> None:
            if self._pending_state is pending:
                self._pending_state = None

        return committed, False

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
        """Adds a silence. SilenceLimitError when MAX_SILENCES_IN_FORCE are in force or yet
        to start at ``created``; ended silences past their keeping are deleted first."""
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if ends <= starts:
            raise ValueError("a silence must end after it starts")
        with self._db:
            kept = self._prune_silences(created)
            if sum(1 for s in kept if s.ends > created) >= MAX_SILENCES_IN_FORCE:
                raise SilenceLimitError(
                    f"{MAX_SILENCES_IN_FORCE} silences are in force or yet to start, the most "
                    "there may be: expire one first"
                )
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

    def prune_silences(self, now: datetime) -> int:
        """Deletes the silences that ended KEEP_ENDED_SILENCES before ``now`` or longer, and
        the oldest ended ones past MAX_ENDED_SILENCES; how many. ``add_silence`` does it too."""
        with self._db:
            before = len(self.silences())
            after = len(self._prune_silences(now))
        self._silences_version = None
        return before - after

    def _prune_silences(self, now: datetime) -> list[Silence]:
        # Times are compared as datetimes: the stored text carries different UTC offsets
        # (New York in the daemon, whatever the command line was given).
        silences = self.silences()
        ended = sorted((s for s in silences if s.ends <= now), key=lambda s: s.ends, reverse=True)
        horizon = now - KEEP_ENDED_SILENCES
        gone = {s.id for i, s in enumerate(ended) if i >= MAX_ENDED_SILENCES or s.ends < horizon}
        if gone:
            self._db.executemany("DELETE FROM silences WHERE id = ?", [(i,) for i in gone])
        return [s for s in silences if s.id not in gone]

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        """Ends a silence at ``now``; False when it has ended already or does not exist."""
        row = self._db.execute("SELECT ends FROM silences WHERE id = ?", (silence_id,)).fetchone()
        if row is None or datetime.fromisoformat(row[0]) <= now:
            return False
        with self._db:
            self._db.execute(
                "UPDATE silences SET ends = ? WHERE id = ?", (now.isoformat(), silence_id)
            )
        self._silences_version = None
        return True

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


# -- silence limits (the silences section of Journal) -------------------------------------------

MAX_SILENCES_IN_FORCE = 100  # active or yet to start; silences are matched on every transition
KEEP_ENDED_SILENCES = timedelta(days=7)  # ended silences are kept this long for the record
MAX_ENDED_SILENCES = 1000  # and at most this many: the table cannot grow without bound


class SilenceLimitError(ValueError):
    """A silence refused: as many are in force as there may be."""
