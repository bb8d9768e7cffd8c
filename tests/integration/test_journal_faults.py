"""The journal failing never silences an alert: a real full filesystem (a small tmpfs), a
read-only state directory, a second daemon on the same state directory, file modes."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from harness.mosquitto import Mosquitto, Subscriber, mosquitto_fixture  # noqa: F401
from harness.tmpfs import Tmpfs, small_tmpfs_fixture, tmpfs  # noqa: F401 - the fixture
from test_delivery_end_to_end import (
    alerts,
    daemons_fixture,  # noqa: F401 - the fixture
    finish,
    journal_records,
    start_daemon,
    wait_until,
    write_config,
)

from monitor import bundled
from monitor.cli import EXIT_BAD_INPUT
from monitor.delivery.worker import ChannelWorker
from monitor.domain.alerts import AlertState, AlertTransition, Severity
from monitor.domain.instruments import NEW_YORK
from monitor.domain.routing import Route
from monitor.errors import MonitorError
from monitor.instance_lock import InstanceLock, InstanceLockedError, pid_file
from monitor.sinks.journal import Journal
from monitor.sinks.outbox import RECOVER_CHUNK, RECOVER_EVERY_SECONDS, OutboxMessage

START = datetime(2026, 3, 3, 12, 0, tzinfo=NEW_YORK)


def transition(minute: int, state: AlertState = AlertState.FIRING) -> AlertTransition:
    return AlertTransition(
        time=START + timedelta(minutes=minute),
        rule=f"Rule{minute}",
        severity=Severity.CRITICAL,
        state=state,
        labels=(("strategy", "IC"),),
        value=0.31,
        unit="delta per contract",
        message=f"alert {minute}",
        action=None,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Taken:
    """A transport that keeps what it is given."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, messages: Sequence[OutboxMessage], group_id: str) -> None:
        self.sent.extend(m.record["message"] for m in messages)


def stored(path: Path) -> list[tuple[str, int, int]]:
    """(message, delivered, attempts) of the journal's transitions, in order."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT t.message, o.delivered IS NOT NULL, o.attempts FROM alert_transitions t "
            "JOIN outbox o ON o.transition_id = t.id ORDER BY t.id"
        ).fetchall()
    return [(m, int(d), int(a)) for m, d, a in rows]


def test_a_full_disk_holds_alerts_in_memory_delivers_them_and_writes_them_when_freed(
    small_tmpfs: Tmpfs,
) -> None:
    clock = Clock()
    path = small_tmpfs.path / "journal.sqlite"
    journal = Journal(path, routes=(Route("chat"),), wall_clock=clock)
    transport = Taken()
    worker = ChannelWorker("chat", journal.outbox, transport, wall_clock=clock)

    async def scenario() -> None:
        await journal.emit([transition(0)])
        await worker.step()
        small_tmpfs.fill()
        await journal.emit([transition(1), transition(2)])
        health = journal.health()
        assert not health.available
        assert health.held_transitions == 2
        assert health.free_bytes == 0.0
        assert "full" in health.error
        assert await worker.step() == 0.0
        assert await worker.step() == 0.0
        await journal.emit([transition(3, AlertState.RESOLVED)])
        assert transport.sent == ["alert 0", "alert 1", "alert 2"]  # from memory, in order
        clock.now += RECOVER_EVERY_SECONDS
        assert not journal.health().available  # still full: tried again, still held
        small_tmpfs.free()
        clock.now += RECOVER_EVERY_SECONDS
        health = journal.health()
        assert health.available
        assert health.held_transitions == 0
        # Everything in the journal, in order, with what was delivered marked so.
        assert stored(path) == [
            ("alert 0", 1, 1),
            ("alert 1", 1, 1),
            ("alert 2", 1, 1),
            ("alert 3", 0, 0),
        ]
        await worker.step()
        assert transport.sent[-1] == "alert 3"
        assert stored(path)[-1] == ("alert 3", 1, 1)
        await journal.close()

    asyncio.run(scenario())


def test_a_journal_on_a_full_disk_still_opens_and_its_alert_state_is_written_later(
    small_tmpfs: Tmpfs,
) -> None:
    """A restart on a full disk: the daemon must start (a refusal would be a crash loop
    under Restart=on-failure)."""
    clock = Clock()
    path = small_tmpfs.path / "journal.sqlite"
    asyncio.run(Journal(path, wall_clock=clock).close())
    small_tmpfs.fill()
    journal = Journal(path, wall_clock=clock)
    assert not journal.health().available
    journal.save_state([])
    small_tmpfs.free()
    clock.now += RECOVER_EVERY_SECONDS
    assert journal.health().available
    asyncio.run(journal.close())


def cut_day(path: Path, until: str) -> Path:
    with gzip.open(bundled.SESSION, "rt", encoding="utf-8") as lines:
        out = [next(lines)]
        for line in lines:
            clock = datetime.fromisoformat(json.loads(line)["t"]).strftime("%H:%M:%S")
            if clock >= until:
                break
            out.append(line)
    path.write_text("".join(out), encoding="utf-8")
    return path


def on_journal(config: Path, journal: Path) -> Path:
    text = config.read_text().replace('path = "journal.sqlite"', f'path = "{journal}"')
    config.write_text(text)
    return config


def test_a_daemon_on_a_full_disk_sends_every_alert_to_mqtt_and_says_the_journal_is_down(
    tmp_path: Path, mosquitto: Mosquitto, daemons: list[subprocess.Popen[str]]
) -> None:
    session = cut_day(tmp_path / "morning.jsonl", "12:30:00")
    reference = tmp_path / "reference"
    reference.mkdir()
    daemons.append(start_daemon(write_config(reference, speed=0.0, session=session)))
    finish(daemons[-1])
    expected = [
        (r["rule"], r["state"], r["time"]) for r in journal_records(reference / "journal.sqlite")
    ]
    assert ("ShortStrikeDeltaWarning", "firing") in [(r, s) for r, s, _ in expected]
    with tmpfs(4 * 1024 * 1024) as fs:
        journal = fs.path / "journal.sqlite"
        asyncio.run(Journal(journal).close())  # the journal of an earlier run
        fs.fill()
        run = tmp_path / "full"
        run.mkdir()
        config = on_journal(
            write_config(run, speed=0.0, broker=mosquitto, session=session), journal
        )
        subscriber = Subscriber.for_broker(mosquitto, "condor/it/#").start()
        try:
            daemons.append(start_daemon(config))
            err = finish(daemons[-1])
            wait_until(
                lambda: any(a["rule"] == "JournalUnavailable" for a in alerts(subscriber)),
                10,
                "JournalUnavailable on MQTT",
            )
            received = alerts(subscriber)
        finally:
            subscriber.stop()
    assert "journal_unavailable" in err
    got = [(a["rule"], a["state"], a["time"]) for a in received]
    assert [g for g in got if not g[0].startswith("Journal")] == expected
    assert ("JournalUnavailable", "firing") in [(r, s) for r, s, _ in got]
    assert ("JournalSpaceLow", "firing") in [(r, s) for r, s, _ in got]


def run_cli(config: Path, *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=config.parent,
        timeout=timeout,
        check=False,
    )


def test_a_read_only_state_directory_refuses_the_start_in_one_line(
    tmp_path: Path, small_tmpfs: Tmpfs
) -> None:
    state = small_tmpfs.path / "state"
    state.mkdir()
    small_tmpfs.read_only()
    config = on_journal(write_config(tmp_path, speed=0.0), state / "journal.sqlite")
    done = run_cli(config)
    assert done.returncode == EXIT_BAD_INPUT
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(state) in lines[0]
    assert "Read-only file system" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_second_daemon_on_the_same_journal_refuses_naming_the_first(
    tmp_path: Path, daemons: list[subprocess.Popen[str]]
) -> None:
    config = write_config(tmp_path, speed=1.0)  # real time: runs until stopped
    daemons.append(start_daemon(config))
    first = daemons[-1]
    lock = pid_file(tmp_path / "journal.sqlite")
    wait_until(lambda: lock.exists() and lock.read_text().strip() == str(first.pid), 30, "lock")
    done = run_cli(config)
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert f"PID {first.pid}" in done.stderr
    assert first.poll() is None  # the first one goes on
    first.terminate()
    first.wait(timeout=60)
    assert first.returncode == 0
    assert lock.read_text() == ""  # let go: the next start takes it


def test_journal_and_lock_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        journal = Journal(tmp_path / "state" / "journal.sqlite", routes=(Route("chat"),))
        asyncio.run(journal.emit([transition(0)]))
        lock = InstanceLock(tmp_path / "state" / "journal.sqlite")
        lock.acquire()
        files = sorted((tmp_path / "state").iterdir())
        names = {f.name for f in files}
        assert names >= {"journal.sqlite", "journal.sqlite-wal", "journal.sqlite.lock"}
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        lock.release()
        asyncio.run(journal.close())
    finally:
        os.umask(previous)


def test_an_existing_world_readable_journal_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    asyncio.run(Journal(path).close())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_locked_journal_holds_transitions_until_the_other_writer_lets_go(
    tmp_path: Path,
) -> None:
    clock = Clock()
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, routes=(Route("chat"),), wall_clock=clock)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    asyncio.run(journal.emit([transition(0)]))
    assert not journal.health().available
    assert [m.record["message"] for m in journal.outbox.head("chat", 5)] == ["alert 0"]
    other.execute("COMMIT")
    other.close()
    clock.now += RECOVER_EVERY_SECONDS
    assert journal.health().available
    assert stored(path) == [("alert 0", 0, 0)]
    asyncio.run(journal.close())


class Gated(Taken):
    """A transport whose sends wait until ``gate`` is set (a slow chat service)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def send(self, messages: Sequence[OutboxMessage], group_id: str) -> None:
        await self.gate.wait()
        await super().send(messages, group_id)


def test_two_recoveries_during_one_slow_send_deliver_each_message_once(
    small_tmpfs: Tmpfs,
) -> None:
    clock = Clock()
    path = small_tmpfs.path / "journal.sqlite"
    journal = Journal(path, routes=(Route("chat"),), wall_clock=clock)
    transport = Gated()
    worker = ChannelWorker("chat", journal.outbox, transport, wall_clock=clock)

    def recovered() -> bool:
        clock.now += RECOVER_EVERY_SECONDS
        return journal.health().available

    async def scenario() -> None:
        small_tmpfs.fill()
        await journal.emit([transition(0)])
        sending = asyncio.create_task(worker.step())  # takes the held message, then waits
        await asyncio.sleep(0)
        small_tmpfs.free()
        assert recovered()
        small_tmpfs.fill()
        await journal.emit([transition(1)])
        small_tmpfs.free()
        assert recovered()
        transport.gate.set()
        await sending
        while await worker.step() == 0.0:
            pass
        await journal.close()

    asyncio.run(scenario())
    assert transport.sent == ["alert 0", "alert 1"]
    assert stored(path) == [("alert 0", 1, 1), ("alert 1", 1, 1)]


def test_a_long_backlog_is_written_in_chunks_once_the_disk_has_room(small_tmpfs: Tmpfs) -> None:
    clock = Clock()
    path = small_tmpfs.path / "journal.sqlite"
    journal = Journal(path, routes=(Route("chat"),), wall_clock=clock)
    journal._db.execute("PRAGMA synchronous=OFF")  # durability is not under test here
    small_tmpfs.fill()
    count = RECOVER_CHUNK * 2 + 7
    asyncio.run(journal.emit([transition(n) for n in range(count)]))
    assert journal.health().held_transitions == count
    small_tmpfs.free()
    clock.now += RECOVER_EVERY_SECONDS
    assert journal.health().available
    assert [m for m, _, _ in stored(path)] == [f"alert {n}" for n in range(count)]
    asyncio.run(journal.close())


def test_a_journal_removed_under_the_daemon_is_noticed_and_alerts_go_on(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, routes=(Route("chat"),), wall_clock=clock)
    transport = Taken()
    worker = ChannelWorker("chat", journal.outbox, transport, wall_clock=clock)
    assert journal.health().available
    for file in tmp_path.glob("journal.sqlite*"):
        file.unlink()
    clock.now += RECOVER_EVERY_SECONDS
    health = journal.health()
    assert not health.available
    assert "removed or replaced" in health.error
    asyncio.run(journal.emit([transition(0)]))
    asyncio.run(worker.step())
    assert transport.sent == ["alert 0"]
    clock.now += RECOVER_EVERY_SECONDS
    assert not journal.health().available  # never written to a file nobody can open
    asyncio.run(journal.close())


def test_the_lock_holds_when_its_file_is_deleted_and_never_follows_a_link(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    first = InstanceLock(journal)
    first.acquire()
    pid_file(journal).unlink()  # a careless clean-up
    with pytest.raises(InstanceLockedError, match="PID unknown"):
        InstanceLock(journal).acquire()
    beside = InstanceLock(tmp_path / "other.sqlite")  # another journal beside it: its own
    beside.acquire()
    beside.release()
    first.release()
    other = tmp_path / "precious.txt"
    other.write_text("keep me\n")
    pid_file(journal).symlink_to(other)
    with pytest.raises(MonitorError, match="cannot be written"):
        InstanceLock(journal).acquire()
    assert other.read_text() == "keep me\n"
    InstanceLock(journal).release()  # never acquired: nothing to do
