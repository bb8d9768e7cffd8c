"""One daemon per journal: an exclusive lock on the journal file itself, and the PID of the
daemon that holds it in ``<journal>.lock`` beside it (``journal.sqlite.lock``).

Two daemons on one journal would deliver each alert twice and fight over one MQTT client id
(the broker drops the older session each time the other connects). The lock is an
``flock`` on the journal (SQLite's own locks are of another kind and do not meet it), so a
careless ``rm`` of the PID file releases nothing; the kernel lets go of it when the process
ends, however it ends, so a killed daemon never leaves a stale lock behind. Daemons with
journals of their own may share a directory. The PID file is only for the message and is
never followed if it is a symbolic link. Commands that only read or add a silence
(``silence list``, ``silence add``) take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from monitor.errors import MonitorError

LOCK_SUFFIX = ".lock"
PRIVATE_FILE = 0o600


class InstanceLockedError(MonitorError):
    """Another daemon holds the journal."""


def pid_file(journal: Path) -> Path:
    """Where the PID of the daemon holding ``journal`` is written."""
    return journal.with_name(journal.name + LOCK_SUFFIX)


class InstanceLock:
    """Held from ``acquire`` to ``release`` (or the end of the process); as a context
    manager, from entering to leaving."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.path = pid_file(journal)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Takes the lock; InstanceLockedError naming the holder's PID when another has it."""
        directory = self.journal.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.journal, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        except OSError as exc:
            raise MonitorError(
                f"the state directory {directory} cannot be written "
                f"({exc.strerror or exc}); the journal {self.journal.name} lives there"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise InstanceLockedError(
                f"another condor-monitor (PID {self._holder()}) is running on the journal "
                f"{self.journal}; stop it, or give this one its own [journal] path"
            ) from None
        self._fd = fd
        try:
            pid = os.open(
                self.path,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                PRIVATE_FILE,
            )
        except OSError as exc:
            self.release()
            raise MonitorError(
                f"the state directory {directory} cannot be written "
                f"({exc.strerror or exc}); the lock file {self.path.name} lives there"
            ) from None
        with contextlib.suppress(OSError):  # a full disk: held all the same, PID unrecorded
            os.write(pid, f"{os.getpid()}\n".encode("ascii"))
        os.close(pid)

    def _holder(self) -> str:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return "unknown"
        try:
            return os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
        finally:
            os.close(fd)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC))
        os.close(self._fd)  # closing the descriptor lets go of the flock
        self._fd = None
