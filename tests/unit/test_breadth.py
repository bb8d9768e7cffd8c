"""Breadth divergence worked by hand, and the tracker pairing SPX and A/D bars."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from monitor.config import SignalsConfig
from monitor.domain.instruments import NEW_YORK
from monitor.signals.breadth import BreadthTracker, divergence

S = SignalsConfig(
    bar_minutes=5,
    breadth_lookback_bars=4,
    breadth_ad_threshold_issues=200.0,
    breadth_near_extreme_pct=0.1,
)


def test_bearish_divergence_by_hand() -> None:
    # SPX 6800 -> 6834: +0.5 %, the last close is the window's high; A/D 400 -> 150: -250.
    spx = [6800.0, 6810.0, 6805.0, 6825.0, 6834.0]
    ad = [400.0, 380.0, 300.0, 210.0, 150.0]
    change, ad_change, signal = divergence(spx, ad, S)
    assert change == pytest.approx(0.5)
    assert ad_change == -250.0
    assert signal == -1.0


def test_near_the_high_counts_and_older_closes_are_ignored() -> None:
    # The high 6840 is 0.088 % above the last close 6834: within 0.1 %. The leading 9000 and
    # 0 are outside the lookback (5 closes for 4 bars).
    spx = [9000.0, 6800.0, 6810.0, 6840.0, 6825.0, 6834.0]
    ad = [0.0, 400.0, 380.0, 300.0, 210.0, 199.0]
    assert divergence(spx, ad, S)[2] == -1.0
    # 0.2 % below the high: not at a high any more.
    spx[-1] = 6840.0 * 0.998
    assert divergence(spx, ad, S)[2] == 0.0


def test_threshold_and_direction() -> None:
    spx = [6800.0, 6810.0, 6805.0, 6825.0, 6834.0]
    assert divergence(spx, [400.0, 380.0, 300.0, 210.0, 201.0], S)[2] == 0.0  # -199 issues
    assert divergence(spx, [400.0, 380.0, 300.0, 210.0, 200.0], S)[2] == -1.0  # -200: enough
    assert divergence(spx, [100.0, 380.0, 300.0, 210.0, 900.0], S)[2] == 0.0  # breadth agrees
    # Bullish: SPX falls 0.5 % to the window's low while A/D rises 250.
    down = [6834.0, 6825.0, 6830.0, 6815.0, 6834.0 * 0.995]
    assert divergence(down, [-400.0, -380.0, -300.0, -210.0, -150.0], S)[2] == 1.0


def test_a_flat_index_is_not_making_highs() -> None:
    # SPX within 0.1 % of its high but down 0.08 % over the window: below min_spx_move_pct.
    spx = [6800.0, 6796.0, 6790.0, 6794.0, 6794.56]
    change, _, signal = divergence(spx, [400.0, 380.0, 300.0, 210.0, 150.0], S)
    assert change == pytest.approx(-0.08)
    assert signal == 0.0


def test_warming_up_and_bad_settings() -> None:
    assert all(math.isnan(x) for x in divergence([1.0, 2.0], [1.0, 2.0], S))
    with pytest.raises(ValueError, match="pair up"):
        divergence([1.0, 2.0], [1.0], S)
    with pytest.raises(ValueError, match="lookback_bars"):
        SignalsConfig(breadth_lookback_bars=1)
    with pytest.raises(ValueError, match="ad_threshold_issues"):
        SignalsConfig(breadth_ad_threshold_issues=0.0)


def test_tracker_pairs_bars_and_reports_the_lookback() -> None:
    tracker = BreadthTracker(S)
    start = datetime(2026, 3, 3, 9, 30, tzinfo=NEW_YORK)
    spx = [6800.0, 6810.0, 6805.0, 6825.0, 6834.0, 6834.0]
    ad = [400.0, 380.0, 300.0, 210.0, 150.0, 150.0]
    for i, (s, a) in enumerate(zip(spx, ad, strict=True)):
        # Two ticks per bar; the bar's close is the second.
        moment = start + timedelta(minutes=5 * i)
        tracker.update(moment + timedelta(seconds=10), s - 50.0, a + 99.0)
        tracker.update(moment + timedelta(minutes=4), s, a)
        if i < 5:
            assert math.isnan(tracker.view().divergence)  # 5 bars complete only at bar 6
    view = tracker.view()
    assert view.divergence == -1.0
    assert view.ad_change == -250.0
    assert view.ad_line == 150.0
    assert view.lookback_minutes == 20.0


def test_tracker_drops_a_bar_one_series_missed() -> None:
    tracker = BreadthTracker(S)
    start = datetime(2026, 3, 3, 9, 30, tzinfo=NEW_YORK)
    for i in range(6):
        moment = start + timedelta(minutes=5 * i, seconds=30)
        # No A/D value in the third bar: that bar is not paired.
        tracker.update(moment, 6800.0 + i, math.nan if i == 2 else 100.0 - 60.0 * i)
    assert math.isnan(tracker.view().divergence)  # four pairs: 0, 1, 3, 4
