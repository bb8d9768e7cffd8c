"""Metrics served over HTTP read the latest snapshot at scrape time, with units in the names."""

from __future__ import annotations

import urllib.request

import pytest
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
    condor = snapshot.book.strategies[0]
    key = ("condor_strategy_vega_dollars_per_vol_point", (("strategy", "IC-APR17"),))
    assert samples[key] == condor.risk.vega_usd_per_vol_point
    assert samples[("condor_snapshots_total", ())] == 200
    assert samples[("condor_events_total", (("kind", "quote"),))] == pipeline.stats.events["quote"]
    assert samples[("condor_index_value", (("index", "SPX"),))] == snapshot.spx
    assert samples[("condor_vix_future_price", (("tenor", "VX1"),))] == snapshot.term.vx1
    assert ("condor_alerts_firing", (("rule", "VixTermStructureInverted"),)) in samples
    assert samples[("condor_hedge_ratio_percent", ())] == snapshot.hedge.ratio_pct
    assert 15.0 < snapshot.hedge.ratio_pct < 25.0  # the example layer is sized in the band
    key = ("condor_hedge_to_add", (("instrument", "vx2_future"),))
    assert samples[key] == snapshot.hedge.vx2_futures_to_add


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


def test_feed_model_greeks_are_compared_with_ours(tmp_path, write_session: WriteSession) -> None:
    from conftest import t

    from monitor.metrics import feed_model_differences

    portfolio = tmp_path / "p.toml"
    portfolio.write_text(
        '[[strategies]]\nname = "SE"\nkind = "second_engine"\n'
        'legs = [{ contract = "VIX 20260318 C22", quantity = 10 }]\n'
    )
    model = {"iv": 0.80, "delta": 0.30, "vega": 0.02, "underlying": 18.0}
    lines = [
        {"t": t(0), "type": "index", "id": "SPX", "value": 6800.0},
        {"t": t(0), "type": "index", "id": "VIX", "value": 17.0},
        {"t": t(0), "type": "quote", "id": "VX 20260318", "bid": 17.95, "ask": 18.05},
        {
            "t": t(0),
            "type": "quote",
            "id": "VIX 20260318 C22",
            "bid": 0.9,
            "ask": 1.0,
            "model": model,
        },
    ]
    pipeline = run_pipeline(write_session(lines), portfolio, [])
    snapshot = pipeline.latest
    assert snapshot is not None
    (leg,) = snapshot.book.legs
    assert 0.3 < leg.value.iv < 2.0  # solved from the 0.95 mid
    iv_diff, delta_diff = feed_model_differences(snapshot, pipeline.market.feed_greeks)["VIX"]
    assert iv_diff == pytest.approx(abs(leg.value.iv - 0.80) * 100.0)
    assert delta_diff == pytest.approx(abs(leg.value.delta - 0.30))
    assert iv_diff > 0.0


def test_ib_sentinels_never_reach_the_numbers() -> None:
    from ib_async.objects import OptionComputation

    from monitor.feeds.ib_ticks import feed_greeks

    # As ib_async hands them over: iv and delta already None, vega and theta still -2.
    raw = OptionComputation(0, None, None, None, None, -2.0, -2.0, -2.0, -1.0)
    greeks = feed_greeks(raw)
    assert greeks is not None
    assert (greeks.iv, greeks.delta, greeks.gamma, greeks.vega, greeks.theta) == (None,) * 5
    assert greeks.underlying is None
    fine = feed_greeks(OptionComputation(0, 0.21, -1.0, 3.2, None, 0.001, 5.1, -1.3, 6800.0))
    assert fine is not None
    assert (fine.iv, fine.delta, fine.gamma, fine.vega, fine.theta, fine.underlying) == (
        0.21,
        -1.0,  # a deep put's delta of -1 is a number, not a sentinel
        0.001,
        5.1,
        -1.3,
        6800.0,
    )
