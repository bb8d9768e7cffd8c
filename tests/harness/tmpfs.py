"""A small, real filesystem that fills up: a tmpfs mounted for one test.

``Tmpfs`` mounts a tmpfs of a given size on a fresh directory (root only: the test is
skipped with the reason otherwise, or where the kernel refuses the mount), can fill it to
the last byte (``fill``), free it again (``free``), and remount it read-only
(``read_only``). It is unmounted (lazily, so a daemon still holding a file cannot keep
it) when the test ends.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

FILLER = ".filler"
CHUNK = 64 * 1024


class Tmpfs:
    def __init__(self, size_bytes: int) -> None:
        self.size_bytes = size_bytes
        self.path = Path(tempfile.mkdtemp(prefix="condor-tmpfs-"))
        self.mounted = False
        self.skip_reason: str | None = None

    def mount(self) -> Tmpfs:
        """Mounts it, or skips the test with the reason."""
        reason = self._mount()
        if reason is not None:
            pytest.skip(reason)
        return self

    def try_mount(self) -> bool:
        """Mounts it; False (and why, in ``skip_reason``) where it cannot be mounted."""
        self.skip_reason = self._mount()
        return self.skip_reason is None

    def _mount(self) -> str | None:
        if os.geteuid() != 0:
            return "mounting a tmpfs needs root (CI runs as root)"
        mount = shutil.which("mount")
        if mount is None:
            return "no mount command on this machine"
        done = subprocess.run(
            [mount, "-t", "tmpfs", "-o", f"size={self.size_bytes},mode=0755", "tmpfs", self.path],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return f"the kernel refused a tmpfs mount here: {done.stderr.strip()}"
        self.mounted = True
        return None

    @property
    def filler(self) -> Path:
        return self.path / FILLER

    def fill(self) -> int:
        """Writes zeros until the filesystem is full; the bytes written."""
        written = 0
        block = b"\0" * CHUNK
        with self.filler.open("ab", buffering=0) as out:
            size = len(block)
            while size:
                try:
                    written += out.write(block[:size]) or 0
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    size //= 2  # the last blocks, down to the byte
        return written

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)
            self.mounted = False
        with contextlib.suppress(OSError):
            self.path.rmdir()


@contextlib.contextmanager
def tmpfs(size_bytes: int) -> Iterator[Tmpfs]:
    fs = Tmpfs(size_bytes)
    try:
        yield fs.mount()
    finally:
        fs.close()


@pytest.fixture(name="small_tmpfs")
def small_tmpfs_fixture() -> Iterator[Tmpfs]:
    """A 4 MiB tmpfs: room for a journal, and quickly filled."""
    with tmpfs(4 * 1024 * 1024) as fs:
        yield fs
