"""systemd's service notifications (Type=notify) through sdnotify, the only importer.

READY=1 once the monitor watches the book (its first complete snapshot; in a live run also
once connected while the market is closed, when no tick may come for days, and after a first
failed connection attempt: up, retrying and alerting, with the reason), WATCHDOG=1 every
half watchdog period while the pipeline makes progress (a batch processed or a timer
evaluation within the period), STOPPING=1 at shutdown, STATUS= lines for `systemctl status`.
Outside systemd (no NOTIFY_SOCKET) every call does nothing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import sdnotify
import structlog

log = structlog.get_logger(__name__)


class Notifier:
    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._systemd = sdnotify.SystemdNotifier() if self.enabled else None
        self.ready_sent = False

    def _send(self, message: str) -> None:
        if self._systemd is not None:
            self._systemd.notify(message)

    def ready(self, status: str) -> None:
        if not self.ready_sent:
            self.ready_sent = True
            self._send(f"READY=1\nSTATUS={status}")
            log.info("systemd_ready", status=status, notify=self.enabled)

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1\nSTATUS=stopping: flushing the outbox")

    @staticmethod
    def watchdog_seconds() -> float | None:
        """The watchdog period systemd set for this process, or None."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return int(usec) / 1e6
        except ValueError:
            return None


def progressing(last_progress: float | None, period: float, now: float) -> bool:
    """Whether the pipeline evaluated within the last watchdog period."""
    return last_progress is not None and now - last_progress < period


async def supervise(
    notifier: Notifier,
    *,
    is_ready: Callable[[], str | None],
    last_progress: Callable[[], float | None],
    poll_seconds: float = 0.5,
) -> None:
    """Sends READY once ``is_ready`` gives a status text, then watchdog pings gated on
    progress. Runs until cancelled."""
    period = notifier.watchdog_seconds()
    last_ping = 0.0
    while True:
        if not notifier.ready_sent:
            status = is_ready()
            if status is not None:
                notifier.ready(status)
        elif period is not None:
            now = time.time()
            if now - last_ping >= period / 2 and progressing(last_progress(), period, now):
                notifier.watchdog()
                last_ping = now
        await asyncio.sleep(poll_seconds)
