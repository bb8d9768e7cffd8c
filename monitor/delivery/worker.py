"""One delivery worker per channel: sends the outbox in order, retries with backoff.

The head of a channel's outbox is retried until it is delivered; later messages wait behind
it, so a receiver sees each alert's firing before its resolved notice. With a grouping
window, messages queued within the window after the first one go out as one message; the
group is fixed on its first attempt, so a retry sends the same message with the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from monitor.backoff import Backoff
from monitor.sinks.outbox import Outbox, OutboxMessage

log = structlog.get_logger(__name__)

IDLE_POLL_SECONDS = 1.0  # a worker also looks at its outbox this often without a wake-up


class DeliveryError(Exception):
    """A transport could not deliver; the worker retries later."""


class Transport(Protocol):
    """Sends one message, or a group of them as one message; raises DeliveryError."""

    async def send(self, messages: Sequence[OutboxMessage], group_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    group_window_seconds: float = 0.0  # 0: each message on its own
    max_group: int = 20
    min_interval_seconds: float = 0.0  # the service's rate limit: at most one send per this
    backoff: Backoff = Backoff()


@dataclass(slots=True)
class ChannelStats:
    """Counts for metrics: messages (not groups) sent and failed, and retries."""

    sent: int = 0
    failed: int = 0  # failed attempts, per message
    retried: int = 0  # attempts after the first, per message
    last_success: float | None = None  # Unix seconds
    # The outbox as last looked at (at most IDLE_POLL_SECONDS ago): read by the metrics
    # thread, which must not touch the event loop's database connection.
    backlog_messages: int = 0
    oldest_created: float | None = None  # Unix seconds


class ChannelWorker:
    """Delivers ``channel``'s outbox through ``transport`` until stopped."""

    def __init__(
        self,
        channel: str,
        outbox: Outbox,
        transport: Transport,
        policy: ChannelPolicy | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.channel = channel
        self.outbox = outbox
        self.transport = transport
        self.policy = policy or ChannelPolicy()
        self.stats = ChannelStats()
        self._clock = wall_clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._wake = asyncio.Event()
        self._stopped = False
        self._last_send = -float("inf")

    def _look(self) -> None:
        backlog = self.outbox.backlog(self.channel)
        self.stats.backlog_messages, self.stats.oldest_created = (
            backlog.messages,
            backlog.oldest_created,
        )

    def wake(self) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that arrives as the wake-up does, and the worker would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.0)):
                await self._wake.wait()

    def _group(self, head: OutboxMessage, *, flush: bool) -> list[OutboxMessage] | float:
        """The messages to send next, or how long to wait before they are ready."""
        now = self._clock()
        policy = self.policy
        if head.batch is not None:  # a group fixed by an earlier attempt
            return [
                m for m in self.outbox.head(self.channel, policy.max_group) if m.batch == head.batch
            ]
        if policy.group_window_seconds <= 0.0:
            return [head]
        ready_at = head.created + policy.group_window_seconds
        if now < ready_at and not flush:
            return ready_at - now
        group = [m for m in self.outbox.head(self.channel, policy.max_group) if m.batch is None]
        group_id = hashlib.sha256(" ".join(m.message_id for m in group).encode()).hexdigest()
        self.outbox.claim([m.row for m in group], group_id[:32])
        return self.outbox.head(self.channel, len(group))

    async def step(self, *, flush: bool = False) -> float:
        """One delivery attempt; how long to wait before the next one (0: go on at once).
        ``flush`` sends a group at once instead of waiting for its window to close."""
        self._look()
        heads = self.outbox.head(self.channel)
        if not heads:
            return IDLE_POLL_SECONDS
        head = heads[0]
        now = self._clock()
        wait = max(
            head.next_attempt - now, self._last_send + self.policy.min_interval_seconds - now
        )
        if wait > 0.0:
            return wait
        group = self._group(head, flush=flush)
        if isinstance(group, float):
            return group
        rows = [m.row for m in group]
        group_id = group[0].batch or group[0].message_id
        self._last_send = now
        retries = sum(1 for m in group if m.attempts > 0)
        self.stats.retried += retries
        try:
            await self.transport.send(group, group_id)
        except DeliveryError as exc:
            attempt = head.attempts + 1
            delay = self.policy.backoff.delay(attempt, self._rng)
            self.outbox.failed(rows, str(exc), self._clock() + delay)
            self.stats.failed += len(rows)
            log.warning(
                "delivery_failed",
                channel=self.channel,
                messages=len(rows),
                attempt=attempt,
                retry_in_seconds=round(delay, 3),
                error=str(exc),
            )
            return delay
        done = self._clock()
        self.outbox.delivered(rows, done)
        self.stats.sent += len(rows)
        self.stats.last_success = done
        self._look()
        return 0.0

    async def run(self) -> None:
        """Delivers until ``stop``; the shutdown's own flush is ``drain``."""
        while not self._stopped:
            wait = await self.step()
            if wait > 0.0 and not self._stopped:
                await self._sleep(wait)

    def stop(self) -> None:
        """Ends ``run`` after the attempt in progress (a flag, not a cancellation: a cancel
        racing the worker's own sleep timeout can be lost)."""
        self._stopped = True
        self._wake.set()

    async def drain(self, seconds: float) -> bool:
        """Delivers until the outbox is empty or ``seconds`` pass; True if empty.
        For shutdown, after ``run`` ended: groups go out without waiting for their window.
        Bounded by ``seconds`` of the event loop's clock, the attempt in progress included: a
        send still running when the time is up is cancelled (a chat send's thread is then
        abandoned) and its messages stay in the outbox."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(seconds, 0.0)
        try:
            async with asyncio.timeout_at(deadline):
                while self.outbox.backlog(self.channel).messages:
                    if loop.time() >= deadline:
                        return False
                    wait = await self.step(flush=True)
                    if wait > 0.0:
                        await asyncio.sleep(wait)
        except TimeoutError:
            return False
        return True
