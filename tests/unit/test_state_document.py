"""The state document (MQTT's retained `state`, later `/state`): every signal is in it."""

from __future__ import annotations

import json
import math

from conftest import REPO, run_pipeline

from monitor import bundled
from monitor.state import state_document


def test_the_state_document_carries_term_structure_hedge_signals_and_events() -> None:
    pipeline = run_pipeline(bundled.SESSION, bundled.PORTFOLIO, [REPO / "rules"])
    snapshot = pipeline.latest
    assert snapshot is not None
    doc = json.loads(json.dumps(state_document(snapshot, pipeline.engine.firing(), "test")))
    term = doc["term_structure"]
    assert term["inverted"] is True  # the afternoon of the vol-spike day
    assert term["vx1_minus_vx2_points"] == round(snapshot.term.vx1_minus_vx2, 6) > 0
    assert doc["hedge"]["ratio_pct"] == round(snapshot.hedge.ratio_pct, 6)
    assert doc["hedge"]["spread"]["break_even"] > doc["hedge"]["spread"]["long_strike"]
    signals = doc["signals"]
    assert signals["bar_minutes"] == 5
    assert set(signals["indicators"]) == {"spx", "vix", "vx1", "vx2"}
    assert 0 <= signals["indicators"]["vix"]["rsi"] <= 100
    assert signals["breadth"]["lookback_minutes"] == 30
    quality = signals["hedge_quality"]
    assert quality["bars"] == 24
    assert -1 <= quality["correlation"] <= 1
    assert quality["condor_theta_usd_per_day"] > 0
    assert doc["next_event"]["next_kind"] in {"fomc", "cpi", "ppi"}
    # Unknown numbers are null, never NaN (which JSON has no word for).
    assert "NaN" not in json.dumps(doc)
    assert not any(isinstance(v, float) and math.isnan(v) for v in term.values())
    assert {f["rule"] for f in doc["firing"]} >= {"VixTermStructureInverted"}
