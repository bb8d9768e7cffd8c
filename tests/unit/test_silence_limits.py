"""Silences in the journal stay bounded: at most 100 in force, ended ones deleted after a week
and past the newest 1,000, times compared as times whatever their UTC offset."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli import EXIT_BAD_INPUT, main
from monitor.domain.instruments import NEW_YORK
from monitor.sinks.journal import (
    KEEP_ENDED_SILENCES,
    MAX_ENDED_SILENCES,
    MAX_SILENCES_IN_FORCE,
    Journal,
    SilenceLimitError,
)

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=NEW_YORK)
HOUR = timedelta(hours=1)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    journal = Journal(tmp_path / "journal.sqlite")
    yield journal
    journal._db.close()


def add(journal: Journal, starts: datetime, ends: datetime, created: datetime = NOW) -> int:
    return journal.add_silence({"alertname": "ShortDelta"}, starts, ends, "", created)


def test_at_most_100_in_force_or_yet_to_start(journal: Journal) -> None:
    add(journal, NOW - 2 * HOUR, NOW - HOUR)  # ended: it does not count
    for i in range(MAX_SILENCES_IN_FORCE // 2):
        add(journal, NOW, NOW + HOUR)
        add(journal, NOW + i * HOUR, NOW + (i + 1) * HOUR)  # some start later: they count
    with pytest.raises(SilenceLimitError, match="100 silences are in force or yet to start"):
        add(journal, NOW, NOW + HOUR)
    assert len(journal.silences()) == MAX_SILENCES_IN_FORCE + 1  # nothing written
    assert journal.expire_silence(2, NOW)
    add(journal, NOW, NOW + HOUR)
    # An hour on, the first 50 and the first of the later ones have ended: room again.
    add(journal, NOW + HOUR, NOW + 2 * HOUR, created=NOW + HOUR)


def test_the_command_line_is_refused_at_the_cap_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    now = datetime.now(UTC)
    for _ in range(MAX_SILENCES_IN_FORCE):
        add(journal, now, now + HOUR, created=now)
    argv = ["silence", "add", "--journal", str(path), "--match", "a=b", "--duration", "1h"]
    assert main(argv) == EXIT_BAD_INPUT
    assert "silence: 100 silences are in force" in capsys.readouterr().err
    journal._db.close()


def test_ended_silences_are_deleted_a_week_after_they_end(journal: Journal) -> None:
    old = add(journal, NOW - 9 * 24 * HOUR, NOW - 8 * 24 * HOUR, created=NOW - 9 * 24 * HOUR)
    recent = add(journal, NOW - 3 * 24 * HOUR, NOW - 2 * 24 * HOUR, created=NOW - 9 * 24 * HOUR)
    active = add(journal, NOW - HOUR, NOW + HOUR, created=NOW - 9 * 24 * HOUR)
    later = add(journal, NOW + 24 * HOUR, NOW + 25 * HOUR, created=NOW - 9 * 24 * HOUR)
    assert len(journal.silences()) == 4
    assert journal.prune_silences(NOW) == 1
    assert [s.id for s in journal.silences()] == [recent, active, later]
    # Adding a silence prunes on the clock of its creation: just over a week after `recent`
    # ended.
    created = NOW - 2 * 24 * HOUR + KEEP_ENDED_SILENCES + timedelta(minutes=1)
    new = add(journal, NOW, NOW + HOUR, created=created)
    assert [s.id for s in journal.silences()] == [active, later, new]
    assert old not in {s.id for s in journal.silences()}


def test_at_most_the_newest_1000_ended_silences_are_kept(journal: Journal) -> None:
    with journal._db:  # quicker than 1,005 adds, each pruning
        journal._db.executemany(
            "INSERT INTO silences (matchers, starts, ends, comment, created) VALUES (?,?,?,?,?)",
            [
                (
                    '{"a": "b"}',
                    (NOW - 2 * HOUR).isoformat(),
                    (NOW - timedelta(minutes=i + 1)).isoformat(),
                    "",
                    NOW.isoformat(),
                )
                for i in range(MAX_ENDED_SILENCES + 5)
            ],
        )
    assert journal.prune_silences(NOW) == 5
    kept = journal.silences()
    assert len(kept) == MAX_ENDED_SILENCES
    assert min(s.ends for s in kept) == NOW - timedelta(minutes=MAX_ENDED_SILENCES)


def test_expire_compares_times_not_their_text(journal: Journal) -> None:
    """The command line says now in UTC; the daemon wrote New York time."""
    sid = add(journal, NOW, NOW + HOUR)  # ends 13:00-05:00, 18:00 UTC
    assert not journal.expire_silence(sid, (NOW + 2 * HOUR).astimezone(UTC))
    assert journal.expire_silence(sid, (NOW + timedelta(minutes=10)).astimezone(UTC))
    (silence,) = journal.silences()
    assert silence.ends == NOW + timedelta(minutes=10)
    assert not journal.expire_silence(sid, NOW + timedelta(minutes=20))
    assert not journal.expire_silence(999, NOW)
