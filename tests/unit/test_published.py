"""Metrics and /state read one immutable record the pipeline publishes after each evaluation:
a scrape taken while a batch is half applied (counters moved, the book not yet valued) shows
the last evaluation whole, never a mix of the two."""

from __future__ import annotations

import dataclasses
import math

import pytest
from conftest import REPO, run_pipeline

from monitor import bundled
from monitor.market.state import QuoteStatus
from monitor.metrics import SnapshotCollector


def samples(
    collector: SnapshotCollector,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float | str]:
    """Every sample of a scrape; NaN as text, so that two scrapes compare equal."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): "NaN" if math.isnan(s.value) else s.value
        for family in collector.collect()
        for s in family.samples
    }


def test_a_scrape_during_a_batch_shows_the_last_evaluation_whole() -> None:
    pipeline = run_pipeline(bundled.SESSION, bundled.PORTFOLIO, [REPO / "rules"], batches=50)
    collector = SnapshotCollector(pipeline)
    before = samples(collector)
    assert before[("condor_snapshots_total", ())] == 50
    # A batch in progress on the pipeline's thread: its events counted, a quote rejected, a
    # tick refused, a failure counted, before any evaluation publishes them.
    pipeline.stats.events["quote"] += 1_000
    pipeline.stats.snapshots += 1
    pipeline.market.rejected[QuoteStatus.CROSSED] += 5
    pipeline.market.ticks.rejected["bad_test_reason"] += 1
    pipeline.failures.total += 3
    pipeline.latency.observe("snapshot", 0.5)
    assert samples(collector) == before
    # The next evaluation publishes all of it at once.
    pipeline.publish()
    after = samples(collector)
    assert after[("condor_snapshots_total", ())] == 51
    assert after[("condor_events_total", (("kind", "quote"),))] == (
        before[("condor_events_total", (("kind", "quote"),))] + 1_000
    )
    assert after[("condor_batches_failed_total", ())] == 3


def test_the_published_record_cannot_be_changed_by_a_reader() -> None:
    pipeline = run_pipeline(bundled.SESSION, bundled.PORTFOLIO, [], batches=5)
    view = pipeline.published
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.snapshots = 0  # type: ignore[misc]
    assert pipeline.latest is not None
    assert view.latest is pipeline.latest
    assert view.evaluated_at == pipeline.latest.time
