"""The outbox: one row per (alert transition, channel), written in the journal's transaction.

Channels deliver their rows in order (by row id) and record each delivery, so a message is
sent at least once and in order per channel, and what a killed daemon had not sent goes out
after a restart. Times here are wall-clock Unix seconds: delivery happens in real time even
when the alerts come from a replay.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    row: int
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


class Outbox:
    """Queries over the outbox table of a journal's connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def enqueue(self, transition_row: int, channel: str, message_id: str, now: float) -> None:
        """Adds a row; a message already queued for the channel is not queued twice."""
        self._db.execute(
            "INSERT OR IGNORE INTO outbox (transition_id, channel, message_id, created) "
            "VALUES (?,?,?,?)",
            (transition_row, channel, message_id, now),
        )

    def head(self, channel: str, limit: int = 1) -> list[OutboxMessage]:
        """The oldest undelivered messages of ``channel``, in order."""
        rows = self._db.execute(
            "SELECT o.id, o.channel, o.message_id, t.record, o.created, o.attempts, "
            "o.next_attempt, o.batch FROM outbox o JOIN alert_transitions t "
            "ON t.id = o.transition_id WHERE o.channel = ? AND o.delivered IS NULL "
            "ORDER BY o.id LIMIT ?",
            (channel, limit),
        ).fetchall()
        return [
            OutboxMessage(row, ch, mid, json.loads(record), created, attempts, due, batch)
            for row, ch, mid, record, created, attempts, due, batch in rows
        ]

    def claim(self, rows: list[int], batch: str) -> None:
        """Fixes a group on its first attempt, so each retry sends the same message."""
        with self._db:
            self._db.executemany(
                "UPDATE outbox SET batch = ? WHERE id = ?", [(batch, r) for r in rows]
            )

    def delivered(self, rows: list[int], now: float) -> None:
        with self._db:
            self._db.executemany(
                "UPDATE outbox SET delivered = ?, attempts = attempts + 1, last_error = NULL "
                "WHERE id = ?",
                [(now, r) for r in rows],
            )

    def failed(self, rows: list[int], error: str, next_attempt: float) -> None:
        with self._db:
            self._db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ? "
                "WHERE id = ?",
                [(error[:500], next_attempt, r) for r in rows],
            )

    def retry_now(self, channel: str) -> None:
        """Makes the channel's waiting messages due at once (its link is back)."""
        with self._db:
            self._db.execute(
                "UPDATE outbox SET next_attempt = 0 WHERE channel = ? AND delivered IS NULL",
                (channel,),
            )

    def backlog(self, channel: str) -> Backlog:
        count, oldest = self._db.execute(
            "SELECT count(*), min(created) FROM outbox WHERE channel = ? AND delivered IS NULL",
            (channel,),
        ).fetchone()
        return Backlog(int(count), oldest)

    def prune(self, delivered_before: float) -> int:
        """Deletes rows delivered before the given time; the journal's transitions stay."""
        with self._db:
            cursor = self._db.execute(
                "DELETE FROM outbox WHERE delivered IS NOT NULL AND delivered < ?",
                (delivered_before,),
            )
        return cursor.rowcount

    def channels(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT channel FROM outbox ORDER BY 1")]
