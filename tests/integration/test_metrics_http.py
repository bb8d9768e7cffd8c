"""Metrics served over HTTP read the latest snapshot at scrape time, with units in the names."""

from __future__ import annotations

import urllib.request

from conftest import REPO, WriteSession, run_pipeline, t
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from monitor import bundled
from monitor.metrics import SnapshotCollector
from monitor.rules.variables import book_values


def test_scrape_matches_snapshot() -> None:
    pipeline = run_pipeline(bundled.SESSION, bundled.PORTFOLIO, [REPO / "rules"], batches=200)
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(pipeline))
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    snapshot = pipeline.latest
    assert snapshot is not None
    condor = snapshot.strategies[0]
    key = ("condor_strategy_vega_dollars_per_vol_point", (("strategy", "IC-APR17"),))
    assert samples[key] == condor.risk.vega_usd_per_vol_point
    assert samples[("condor_snapshots_total", ())] == 200
    assert samples[("condor_events_total", (("kind", "quote"),))] == pipeline.stats.events["quote"]
    assert samples[("condor_index_value", (("index", "SPX"),))] == snapshot.spx
    assert samples[("condor_vix_future_price", (("tenor", "VX1"),))] == snapshot.term.vx1
    assert ("condor_alerts_firing", (("rule", "VixTermStructureInverted"),)) in samples


def test_skipped_lines_reach_metrics_and_rule_variables(write_session: WriteSession) -> None:
    lines = [
        {"t": t(0), "type": "index", "id": "SPX", "value": 6800.0},
        {"t": t(0), "type": "index", "id": "VIX", "value": 16.0},
        "{not json",
        {"t": t(1), "type": "quote", "id": "SPX 20260417 P9999", "bid": 1.0, "ask": 1.1},
        {"t": t(2), "type": "index", "id": "SPX", "value": 6801.0},
    ]
    pipeline = run_pipeline(write_session(lines), REPO / "tests" / "data" / "one-future.toml", [])
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in SnapshotCollector(pipeline).collect()
        for s in family.samples
    }
    assert samples[("condor_replay_bad_lines_total", (("reason", "malformed JSON"),))] == 1
    assert samples[("condor_replay_bad_lines_total", (("reason", "unknown instrument"),))] == 1
    assert pipeline.latest is not None
    assert book_values(pipeline.latest)["feed.bad_lines"] == 2.0
