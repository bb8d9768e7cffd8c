"""The outbox: one row per (alert transition, channel), written in the journal's transaction.

Channels deliver their rows in order (by row id) and record each delivery, so a message is
sent at least once and in order per channel, and what a killed daemon had not sent goes out
after a restart. Times here are wall-clock Unix seconds: delivery happens in real time even
when the alerts come from a replay.

When the journal cannot be written (a full disk, a read-only or locked file), nothing is
lost and nothing waits: transitions and their rows are held in memory (``Held``), the
deliveries of stored rows are kept as patches, and every channel goes on reading its rows
in the same order, stored ones first. ``Storage.recover`` writes all of it in one
transaction once the file takes writes again. At most ``HOLD_LIMIT`` transitions are held;
past it the oldest one already delivered everywhere is let go first (counted as dropped).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)
T = TypeVar("T")

HOLD_LIMIT = 10_000  # transitions held in memory while the journal cannot be written
RECOVER_EVERY_SECONDS = 5.0  # how often a write is tried again, wall clock
RECOVER_CHUNK = 500  # held transitions written per recovery transaction
RECOVERING_BUSY_SECONDS = 0.05  # how long a try waits on another writer's lock meanwhile
FREE_SPACE_EVERY_SECONDS = 1.0  # how often the state directory's free space is read

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    transition_id INTEGER NOT NULL,  -- alert_transitions.id
    channel       TEXT NOT NULL,
    message_id    TEXT NOT NULL,     -- stable: receivers drop duplicates by it
    created       REAL NOT NULL,     -- Unix seconds, wall clock
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  REAL NOT NULL DEFAULT 0,
    batch         TEXT,              -- the group it was first sent in, kept for retries
    delivered     REAL,              -- Unix seconds; NULL while undelivered
    last_error    TEXT,
    UNIQUE (channel, message_id)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (channel, delivered, id);
"""

TRANSITION_INSERT = (
    "INSERT INTO alert_transitions (run_id, time, rule, severity, state, "
    "labels, value, unit, message, action, active_since, notify, "
    "suppressed_by, repeat, message_id, alert_id, record) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    row: int  # negative while held in memory
    channel: str
    message_id: str
    record: dict[str, Any]  # the transition as recorded in the journal
    created: float
    attempts: int
    next_attempt: float
    batch: str | None


@dataclass(frozen=True, slots=True)
class Backlog:
    messages: int
    oldest_created: float | None  # Unix seconds


# What a recovery step returns: what to do once its transaction committed, and whether it
# still holds more for another transaction.
Written = tuple[Callable[[], None], bool]


class Storage:
    """The journal's connection and whether it takes writes. Every write goes through
    ``write``, which never raises a database error: it reports it and returns None."""

    def __init__(
        self,
        db: sqlite3.Connection,
        path: Path,
        wall_clock: Callable[[], float],
        *,
        busy_seconds: float = 2.0,
    ) -> None:
        self.db = db
        self.path = path
        self.directory = path.parent
        self.clock = wall_clock
        self.busy_seconds = busy_seconds
        self.available = True
        self.replaced = False  # the file at ``path`` is no longer the one this daemon writes
        self.error = ""
        self.since: float | None = None
        self._last_try = -math.inf
        self._last_probe = -math.inf
        self._free = math.nan
        self._free_read = -math.inf
        self._recoverers: list[Callable[[sqlite3.Connection], Written]] = []
        self._identity = _identity(path)

    def write(self, what: str, action: Callable[[sqlite3.Connection], T]) -> T | None:
        """Runs ``action`` in one transaction; None when the journal cannot be written."""
        if not self.available:
            return None
        try:
            with self.db:
                return action(self.db)
        except sqlite3.Error as exc:
            self.failed(what, str(exc))
            return None

    def failed(self, what: str, error: str) -> None:
        now = self.clock()
        self.error = f"{what}: {error}"
        self._last_try = now
        if self.available:
            self.available = False
            self.since = now
            # While it refuses writes, a try waits on another writer's lock only briefly:
            # the event loop (and every channel) waits with it.
            self._busy(RECOVERING_BUSY_SECONDS)
            log.error(
                "journal_unavailable",
                path=str(self.path),
                error=self.error,
                note="alerts go on to every channel; held in memory until the journal "
                "takes writes again",
            )

    def _busy(self, seconds: float) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    def on_recover(self, writer: Callable[[sqlite3.Connection], Written]) -> None:
        """``writer`` puts (some of) what it held into the journal inside a recovery
        transaction; see ``Written``."""
        self._recoverers.append(writer)

    def recover(self, *, force: bool = False) -> bool:
        """Tries to write what was held, at most every RECOVER_EVERY_SECONDS, in
        transactions of at most RECOVER_CHUNK transitions (a disk with room for the next
        alert but not for the whole backlog at once still takes it); True when the journal
        takes writes (again). A journal file removed or replaced under the daemon is never
        written again: only a restart opens the new one."""
        if self.available:
            return True
        now = self.clock()
        if self.replaced or (not force and now - self._last_try < RECOVER_EVERY_SECONDS):
            return False
        self._last_try = now
        more = True
        while more:
            try:
                with self.db:
                    steps = [writer(self.db) for writer in self._recoverers]
            except sqlite3.Error as exc:
                self.error = f"recovery: {exc}"
                return False
            more = False
            for committed, pending in steps:
                committed()
                more = more or pending
        self._busy(self.busy_seconds)
        log.warning(
            "journal_recovered",
            path=str(self.path),
            unavailable_seconds=round(now - (self.since or now), 3),
        )
        self.available, self.since, self.error = True, None, ""
        return True

    def probe(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """A small write every RECOVER_EVERY_SECONDS while the journal is available, so a
        disk that fills, a file made read-only, or one removed or replaced under the daemon
        (whose writes would go to a file nobody can open) is noticed before the next alert."""
        now = self.clock()
        if not self.available or now - self._last_probe < RECOVER_EVERY_SECONDS:
            return
        self._last_probe = now
        if _identity(self.path) != self._identity:
            self.replaced = True
            self.failed(
                "probe",
                f"{self.path} was removed or replaced while open: restart the daemon to "
                "journal again (alerts go on meanwhile)",
            )
            return
        self.write("probe", write)

    def free_bytes(self) -> float:
        now = self.clock()
        if now - self._free_read >= FREE_SPACE_EVERY_SECONDS:
            self._free_read = now
            try:
                st = os.statvfs(self.directory)
                self._free = float(st.f_bavail * st.f_frsize)
            except OSError:
                self._free = math.nan
        return self._free


@dataclass(slots=True)
class _Row:
    """An outbox row held in memory."""

    id: int
    channel: str
    message_id: str
    created: float
    attempts: int = 0
    next_attempt: float = 0.0
    batch: str | None = None
    delivered: float | None = None
    last_error: str | None = None


@dataclass(slots=True)
class Held:
    """A transition the journal could not write, with its outbox rows."""

    values: tuple[object, ...]  # the alert_transitions row, as TRANSITION_INSERT takes it
    record: dict[str, Any]
    rows: list[_Row] = field(default_factory=list)


@dataclass(slots=True)
class _Patch:
    """A change to a stored row made while the journal could not be written."""

    channel: str
    attempts: int = 0  # to add
    next_attempt: float | None = None
    batch: str | None = None
    delivered: float | None = None
    last_error: str | None = None
    error_set: bool = False


class Outbox:
    """Queries over the outbox table of a journal's connection, and its memory layer."""

    def __init__(self, storage: Storage, *, hold_limit: int = HOLD_LIMIT) -> None:
        self._storage = storage
        self._db = storage.db
        self.hold_limit = hold_limit
        self.held: list[Held] = []
        self.dropped = 0
        self._patches: dict[int, _Patch] = {}
        self._memory: dict[int, tuple[_Row, Held]] = {}  # row id (negative) -> row
        self._renamed: dict[int, int] = {}  # memory row id -> its stored id after recovery
        self._next_id = -1
        storage.on_recover(self._write_held)

    # -- writes -----------------------------------------------------------------------

    def enqueue(self, transition_row: int, channel: str, message_id: str, now: float) -> None:
        """Adds a row (inside the journal's transaction); a message already queued for the
        channel is not queued twice."""
        self._db.execute(
            "INSERT OR IGNORE INTO outbox (transition_id, channel, message_id, created) "
            "VALUES (?,?,?,?)",
            (transition_row, channel, message_id, now),
        )

    def hold(self, held: Held, channels: Iterable[str], message_id: str, now: float) -> None:
        """Keeps a transition the journal could not write, with a row per channel."""
        for channel in channels:
            if any(r.channel == channel for r in held.rows):
                continue
            row = _Row(self._next_id, channel, message_id, now)
            self._next_id -= 1
            held.rows.append(row)
            self._memory[row.id] = (row, held)
        self.held.append(held)
        while len(self.held) > self.hold_limit:
            self._let_go()

    def _let_go(self) -> None:
        done = next((h for h in self.held if all(r.delivered for r in h.rows)), None)
        victim = done if done is not None else self.held[0]
        self.held.remove(victim)
        for row in victim.rows:
            self._memory.pop(row.id, None)
        self.dropped += 1
        log.error(
            "journal_hold_full",
            limit=self.hold_limit,
            rule=victim.record.get("rule"),
            delivered=done is not None,
            note="the oldest held transition is not kept for the journal",
        )

    def claim(self, rows: list[int], batch: str) -> None:
        """Fixes a group on its first attempt, so each retry sends the same message."""

        def change(row: _Row | _Patch) -> None:
            row.batch = batch

        self._update(
            rows, "claim", change, "UPDATE outbox SET batch = ? WHERE id = ?", lambda r: (batch, r)
        )

    def delivered(self, rows: list[int], now: float) -> None:
        def change(row: _Row | _Patch) -> None:
            row.delivered = now
            row.attempts += 1
            row.last_error = None
            if isinstance(row, _Patch):
                row.error_set = True

        self._update(
            rows,
            "delivered",
            change,
            "UPDATE outbox SET delivered = ?, attempts = attempts + 1, last_error = NULL "
            "WHERE id = ?",
            lambda r: (now, r),
        )

    def failed(self, rows: list[int], error: str, next_attempt: float) -> None:
        def change(row: _Row | _Patch) -> None:
            row.attempts += 1
            row.last_error = error[:500]
            row.next_attempt = next_attempt
            if isinstance(row, _Patch):
                row.error_set = True

        self._update(
            rows,
            "failed",
            change,
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ? "
            "WHERE id = ?",
            lambda r: (error[:500], next_attempt, r),
        )

    def _update(
        self,
        rows: list[int],
        what: str,
        change: Callable[[_Row | _Patch], None],
        sql: str,
        params: Callable[[int], tuple[object, ...]],
    ) -> None:
        rows = [self._renamed.get(r, r) for r in rows]
        stored = [r for r in rows if r > 0]
        for r in rows:
            if r < 0 and r in self._memory:
                change(self._memory[r][0])
        if not stored:
            return
        if self._storage.available and not self._patches:
            done = self._storage.write(
                f"outbox {what}", lambda db: db.executemany(sql, [params(r) for r in stored])
            )
            if done is not None:
                return
        for r in stored:
            patch = self._patches.get(r)
            if patch is None:
                channel = self._db.execute("SELECT channel FROM outbox WHERE id = ?", (r,))
                found = channel.fetchone()
                patch = self._patches[r] = _Patch(str(found[0]) if found else "")
            change(patch)

    def retry_now(self, channel: str) -> None:
        """Makes the channel's waiting messages due at once (its link is back)."""
        for row, _held in self._memory.values():
            if row.channel == channel:
                row.next_attempt = 0.0
        done = self._storage.write(
            "outbox retry",
            lambda db: db.execute(
                "UPDATE outbox SET next_attempt = 0 WHERE channel = ? AND delivered IS NULL",
                (channel,),
            ),
        )
        if done is None:
            for patch in self._patches.values():
                if patch.channel == channel:
                    patch.next_attempt = 0.0
            for message in self._stored_head(channel, limit=self.hold_limit) or []:
                self._patches.setdefault(message.row, _Patch(channel)).next_attempt = 0.0

    def prune(self, delivered_before: float) -> int:
        """Deletes rows delivered before the given time; the journal's transitions stay."""
        cursor = self._storage.write(
            "outbox prune",
            lambda db: db.execute(
                "DELETE FROM outbox WHERE delivered IS NOT NULL AND delivered < ?",
                (delivered_before,),
            ),
        )
        return cursor.rowcount if cursor is not None else 0

    def _write_held(self, db: sqlite3.Connection) -> Written:
        """Inside a recovery transaction: the oldest RECOVER_CHUNK held transitions with
        their rows, and the patches of stored rows (the first time)."""
        chunk = self.held[:RECOVER_CHUNK]
        patches = dict(self._patches)
        renamed: dict[int, int] = {}
        for held in chunk:
            cursor = db.execute(TRANSITION_INSERT, held.values)
            transition = int(cursor.lastrowid or 0)
            for row in held.rows:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO outbox (transition_id, channel, message_id, created, "
                    "attempts, next_attempt, batch, delivered, last_error) "
                    "VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        transition,
                        row.channel,
                        row.message_id,
                        row.created,
                        row.attempts,
                        row.next_attempt,
                        row.batch,
                        row.delivered,
                        row.last_error,
                    ),
                )
                if cursor.rowcount == 1:
                    renamed[row.id] = int(cursor.lastrowid or 0)
        for row_id, patch in patches.items():
            db.execute(
                "UPDATE outbox SET attempts = attempts + ?, "
                "next_attempt = coalesce(?, next_attempt), batch = coalesce(?, batch), "
                "delivered = coalesce(?, delivered), "
                "last_error = CASE WHEN ? THEN ? ELSE last_error END WHERE id = ?",
                (
                    patch.attempts,
                    patch.next_attempt,
                    patch.batch,
                    patch.delivered,
                    patch.error_set,
                    patch.last_error,
                    row_id,
                ),
            )

        def committed() -> None:
            # Not before: a failed commit rolls back, and the next recovery writes all of it
            # again from the same memory. A send in flight may still report a held row by
            # its old id: the renames are kept (the latest 2 x HOLD_LIMIT of them).
            self._renamed.update(renamed)
            while len(self._renamed) > 2 * self.hold_limit:
                del self._renamed[next(iter(self._renamed))]
            del self.held[: len(chunk)]
            for held in chunk:
                for row in held.rows:
                    self._memory.pop(row.id, None)
            for row_id in patches:
                self._patches.pop(row_id, None)

        return committed, len(self.held) > len(chunk)

    # -- reads ------------------------------------------------------------------------

    def head(self, channel: str, limit: int = 1) -> list[OutboxMessage]:
        """The oldest undelivered messages of ``channel``, in order: stored ones first."""
        out = self._stored_head(channel, limit)
        if out is None:
            return []
        if len(out) < limit:
            for row, held in self._memory.values():
                if row.channel == channel and row.delivered is None:
                    out.append(
                        OutboxMessage(
                            row.id,
                            channel,
                            row.message_id,
                            held.record,
                            row.created,
                            row.attempts,
                            row.next_attempt,
                            row.batch,
                        )
                    )
                    if len(out) == limit:
                        break
        return out

    def _stored_head(self, channel: str, limit: int) -> list[OutboxMessage] | None:
        skipped = sum(
            1 for p in self._patches.values() if p.channel == channel and p.delivered is not None
        )
        try:
            rows = self._db.execute(
                "SELECT o.id, o.channel, o.message_id, t.record, o.created, o.attempts, "
                "o.next_attempt, o.batch FROM outbox o JOIN alert_transitions t "
                "ON t.id = o.transition_id WHERE o.channel = ? AND o.delivered IS NULL "
                "ORDER BY o.id LIMIT ?",
                (channel, limit + skipped),
            ).fetchall()
        except sqlite3.Error as exc:
            # Nothing this time, not the held rows either: they must not overtake stored ones.
            log.warning("outbox_read_failed", channel=channel, error=str(exc))
            return None
        out: list[OutboxMessage] = []
        for row, ch, mid, record, created, stored_attempts, stored_due, stored_batch in rows:
            attempts, due, batch = stored_attempts, stored_due, stored_batch
            patch = self._patches.get(row)
            if patch is not None:
                if patch.delivered is not None:
                    continue
                attempts += patch.attempts
                due = patch.next_attempt if patch.next_attempt is not None else due
                batch = patch.batch or batch
            message = json.loads(record)
            out.append(OutboxMessage(row, ch, mid, message, created, attempts, due, batch))
        return out[:limit]

    def backlog(self, channel: str) -> Backlog:
        try:
            count, oldest = self._db.execute(
                "SELECT count(*), min(created) FROM outbox WHERE channel = ? AND delivered IS NULL",
                (channel,),
            ).fetchone()
        except sqlite3.Error:
            count, oldest = 0, None
        count -= sum(
            1 for p in self._patches.values() if p.channel == channel and p.delivered is not None
        )
        memory = [
            r.created
            for r, _ in self._memory.values()
            if r.channel == channel and r.delivered is None
        ]
        if count <= 0:
            count, oldest = 0, None
        created = [c for c in (oldest, *memory) if c is not None]
        return Backlog(int(count) + len(memory), min(created) if created else None)

    def channels(self) -> list[str]:
        stored = [r[0] for r in self._db.execute("SELECT DISTINCT channel FROM outbox")]
        return sorted({*stored, *(r.channel for r, _ in self._memory.values())})


def _identity(path: Path) -> tuple[int, int] | None:
    """The file at ``path`` (device, inode); None when there is none."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
