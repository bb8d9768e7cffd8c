"""A run's background tasks, owned in one place: each named, and one that crashes stops the
run instead of staying silent until shutdown.

Crash-only at the edge: a task's exception is not caught where it happens; its owner logs
it once (with the traceback), asks the run to stop, and the run ends with a non-zero exit
after its normal shutdown (the outbox flushed, the journal closed), so nothing written is
lost and systemd's ``Restart=on-failure`` starts it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog

from monitor.closing import AsyncClosing
from monitor.errors import MonitorError

log = structlog.get_logger(__name__)
T = TypeVar("T")


class BackgroundTaskError(MonitorError):
    """A background task ended with an exception; the run stopped because of it."""

    def __init__(self, name: str, error: BaseException) -> None:
        self.name = name
        self.error = error
        super().__init__(
            f"background task {name!r} failed: {type(error).__name__}: {error}; the run stopped"
        )


class TaskOwner(AsyncClosing):
    """Starts named tasks and watches them: the first that raises is kept as ``failure`` and
    ``on_failure`` is called with it (the run's stop); ``close`` (or leaving its ``async
    with`` block) cancels what still runs."""

    def __init__(self, on_failure: Callable[[BackgroundTaskError], None]) -> None:
        self._on_failure = on_failure
        self._tasks: set[asyncio.Task[Any]] = set()
        self.failure: BackgroundTaskError | None = None

    def start(self, work: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    @property
    def running(self) -> list[str]:
        """The names of the tasks not finished yet."""
        return sorted(t.get_name() for t in self._tasks if not t.done())

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            return
        failed = BackgroundTaskError(task.get_name(), error)
        log.error("background_task_failed", task=task.get_name(), exc_info=error)
        if self.failure is None:
            self.failure = failed
            self._on_failure(failed)

    async def close(self) -> None:
        """Cancels every task still running and waits for them."""
        left = [t for t in self._tasks if not t.done()]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    def raise_failure(self) -> None:
        """Raises the failure that stopped the run, if one did."""
        if self.failure is not None:
            raise self.failure
