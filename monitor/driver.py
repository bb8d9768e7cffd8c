"""The driver of a run: the pipeline's synchronous step, then its alert transitions to the
sinks. Replay, backtest and live all step the pipeline through here (a backtest with no
sinks), so the order of evaluations and the delivery of their transitions are the same.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

import structlog

from monitor.domain.alerts import AlertTransition
from monitor.domain.quotes import EventBatch
from monitor.pipeline import Pipeline
from monitor.sinks.base import Sink

log = structlog.get_logger(__name__)


def session_order(
    batches: Iterable[EventBatch], pipeline: Pipeline
) -> Iterator[datetime | EventBatch]:
    """A recorded session in the order a run meets it: before each batch, the timer
    evaluations due in the gap since the last snapshot (a moment), then the batch."""
    for batch in batches:
        yield from pipeline.timer_moments(batch.time)
        yield batch


class Driver:
    """Steps ``pipeline`` and hands each evaluation's transitions to ``sinks``."""

    def __init__(self, pipeline: Pipeline, sinks: Sequence[Sink]) -> None:
        self.pipeline = pipeline
        self.sinks = list(sinks)

    async def batch(self, batch: EventBatch) -> list[AlertTransition]:
        """One batch through the pipeline, its transitions delivered; tick-to-alert latency
        is measured to the end of the delivery."""
        started = time.perf_counter()
        transitions = self.pipeline.step(batch)
        await self.deliver(transitions)
        if not self.pipeline.failures.in_row:  # a valued batch, not a failed one
            self.pipeline.latency.observe("alert", time.perf_counter() - started)
        return transitions

    async def at(self, now: datetime) -> list[AlertTransition]:
        """An evaluation at ``now`` without new market data, its transitions delivered."""
        transitions = self.pipeline.evaluate_at(now)
        await self.deliver(transitions)
        return transitions

    async def step(self, item: datetime | EventBatch) -> list[AlertTransition]:
        """One item of ``session_order``."""
        return await (self.at(item) if isinstance(item, datetime) else self.batch(item))

    async def deliver(self, transitions: Sequence[AlertTransition]) -> None:
        """Each sink on its own: one that fails (a full disk, a closed file) never keeps a
        transition from the others. The journal holds what it cannot write itself, and keeps
        the alert state after the transitions."""
        if not transitions:
            return
        for sink in self.sinks:
            try:
                await sink.emit(list(transitions))
            except Exception:  # reported, the other sinks go on
                log.exception("sink_failed", sink=sink.name, transitions=len(transitions))
        journal = self.pipeline.journal
        if journal is not None:
            journal.save_state(self.pipeline.alert_state_to_save())
