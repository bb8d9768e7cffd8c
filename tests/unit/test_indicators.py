"""Bars from ticks, EMA/MACD/RSI against published tables and loops written here, crossovers."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from monitor.domain.instruments import NEW_YORK
from monitor.signals.bars import Bar, BarBuilder
from monitor.signals.indicators import Ema, IndicatorSet, Macd, MacdValue, Rsi

# --- published references -------------------------------------------------------------------

# StockCharts ChartSchool, "Moving Averages - Simple and Exponential", worked example
# spreadsheet cs-movavg.xls (https://chartschool.stockcharts.com/table-of-contents/
# technical-indicators-and-overlays/technical-overlays/moving-averages-simple-and-exponential):
# 30 closes and the 10-day EMA seeded with the 10-day SMA, printed to 2 decimals in the table.
MOVAVG_CLOSES = [
    22.2734, 22.194, 22.0847, 22.1741, 22.184, 22.1344, 22.2337, 22.4323, 22.2436, 22.2933,
    22.1542, 22.3926, 22.3816, 22.6109, 23.3558, 24.0519, 23.753, 23.8324, 23.9516, 23.6338,
    23.8225, 23.8722, 23.6537, 23.187, 23.0976, 23.326, 22.6805, 23.0976, 22.4025, 22.1725,
]  # fmt: skip
MOVAVG_EMA10 = [
    22.22, 22.21, 22.24, 22.27, 22.33, 22.52, 22.80, 22.97, 23.13, 23.28, 23.34,
    23.43, 23.51, 23.54, 23.47, 23.40, 23.39, 23.26, 23.23, 23.08, 22.92,
]  # fmt: skip

# StockCharts ChartSchool, "Relative Strength Index (RSI)", worked example spreadsheet
# cs-rsi.xls (https://chartschool.stockcharts.com/table-of-contents/technical-indicators-and-
# overlays/technical-indicators/relative-strength-index-rsi): 33 QQQQ closes and the 14-day
# RSI column, printed to 4 decimals; the first RSI is on the 15th close.
RSI_CLOSES = [
    44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826,
    45.8931, 46.0328, 45.614, 46.282, 46.282, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439,
    46.2122, 46.2521, 45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672,
    43.4205, 42.6628, 43.1314,
]  # fmt: skip
RSI_14 = [
    70.5328, 66.3186, 66.5498, 69.4063, 66.3552, 57.9749, 62.9296, 63.2571, 56.0593, 62.3771,
    54.7076, 50.4228, 39.9898, 41.4605, 41.8689, 45.4632, 37.304, 33.0795, 37.773,
]  # fmt: skip


def test_ema_matches_the_chartschool_table() -> None:
    ema = Ema(10)
    values = [ema.update(close) for close in MOVAVG_CLOSES]
    assert values[:9] == [None] * 9
    # Printed to 2 decimals: half a unit of the last place.
    assert values[9:] == pytest.approx(MOVAVG_EMA10, abs=0.005 + 1e-9)


def test_rsi_matches_the_chartschool_table() -> None:
    rsi = Rsi(14)
    values = [rsi.update(close) for close in RSI_CLOSES]
    assert values[:14] == [None] * 14
    # Printed to 4 decimals (half a unit: 5e-5); 1e-4 leaves room for the float noise.
    assert values[14:] == pytest.approx(RSI_14, abs=1e-4)


# --- the same definitions written out as plain loops over a whole list ----------------------


def _ema_loop(xs: list[float], n: int) -> list[float | None]:
    alpha = 2 / (n + 1)
    out: list[float | None] = [None] * len(xs)
    if len(xs) < n:
        return out
    value = sum(xs[:n]) / n
    out[n - 1] = value
    for i in range(n, len(xs)):
        value = alpha * xs[i] + (1 - alpha) * value
        out[i] = value
    return out


def _macd_loop(
    closes: list[float], fast: int, slow: int, signal: int
) -> list[tuple[float, float, float] | None]:
    fast_ema = _ema_loop(closes, fast)
    slow_ema = _ema_loop(closes, slow)
    lines = [
        f - s for f, s in zip(fast_ema, slow_ema, strict=True) if f is not None and s is not None
    ]
    signals = _ema_loop(lines, signal)
    out: list[tuple[float, float, float] | None] = [None] * (len(closes) - len(lines))
    for line, sig in zip(lines, signals, strict=True):
        out.append(None if sig is None else (line, sig, line - sig))
    return out


def _rsi_loop(closes: list[float], n: int) -> list[float | None]:
    out: list[float | None] = [None] * len(closes)
    changes = [b - a for a, b in itertools.pairwise(closes)]
    gains = [max(c, 0.0) for c in changes]
    losses = [max(-c, 0.0) for c in changes]
    if len(changes) < n:
        return out
    avg_gain = sum(gains[:n]) / n
    avg_loss = sum(losses[:n]) / n
    for i in range(n, len(changes) + 1):
        if i > n:
            avg_gain = (avg_gain * (n - 1) + gains[i - 1]) / n
            avg_loss = (avg_loss * (n - 1) + losses[i - 1]) / n
        out[i] = 100.0 if avg_loss == 0 else 100 - 100 / (1 + avg_gain / avg_loss)
    return out


def _walk(n: int, seed: int, start: float = 18.0) -> list[float]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    closes = [start]
    for _ in range(n - 1):
        closes.append(round(closes[-1] + rng.gauss(0.0, 0.25), 2))
    return closes


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 16)])
def test_macd_matches_a_plain_loop(fast: int, slow: int, signal: int) -> None:
    closes = _walk(300, seed=fast * 100 + slow)
    expected = _macd_loop(closes, fast, slow, signal)
    macd = Macd(fast, slow, signal)
    got = [macd.update(close) for close in closes]
    first = slow + signal - 2  # index of the first value: close number slow + signal - 1
    assert got[:first] == [None] * first
    assert expected[:first] == [None] * first
    for value, reference in zip(got[first:], expected[first:], strict=True):
        assert value is not None
        assert reference is not None
        assert (value.macd, value.signal, value.histogram) == pytest.approx(
            reference, rel=1e-12, abs=1e-12
        )


@pytest.mark.parametrize("period", [14, 2, 30])
def test_rsi_matches_a_plain_loop(period: int) -> None:
    closes = _walk(400, seed=period)
    expected = _rsi_loop(closes, period)
    rsi = Rsi(period)
    got = [rsi.update(close) for close in closes]
    assert got[:period] == [None] * period
    assert expected[:period] == [None] * period
    assert got[period:] == pytest.approx(expected[period:], rel=1e-12, abs=1e-9)


def test_macd_small_periods_by_hand() -> None:
    # fast 2, slow 3, signal 2 on 1, 2, 4, 8, 16 in exact fractions:
    # EMA2 (alpha 2/3, seed (1+2)/2): 3/2, 19/6, 115/18, 691/54
    # EMA3 (alpha 1/2, seed (1+2+4)/3): 7/3, 31/6, 127/12
    # line: 5/6, 11/9, 239/108; signal seeded (5/6 + 11/9)/2 = 37/36, then 589/324.
    macd = Macd(2, 3, 2)
    assert macd.warm_up_closes == 4
    got = [macd.update(x) for x in (1.0, 2.0, 4.0, 8.0, 16.0)]
    assert got[:3] == [None, None, None]
    fourth, fifth = got[3], got[4]
    assert fourth is not None
    assert fifth is not None
    assert fourth.macd == pytest.approx(float(Fraction(11, 9)))
    assert fourth.signal == pytest.approx(float(Fraction(37, 36)))
    assert fourth.histogram == pytest.approx(float(Fraction(11, 9) - Fraction(37, 36)))
    assert fifth.macd == pytest.approx(float(Fraction(239, 108)))
    assert fifth.signal == pytest.approx(float(Fraction(589, 324)))
    assert fourth.cross == fifth.cross == 0


# --- crossovers -----------------------------------------------------------------------------


def test_falling_then_rising_gives_one_cross_up_on_the_first_rising_bar() -> None:
    # fast 2, slow 3, signal 2 on 20, 19, 17, 14, 10, 5 (falling faster), then 8, 12, 17.
    # EMA2: -, 39/2, 107/6, 275/18, 635/54, 1175/162, 3767/486, ...
    # EMA3: -, -, 56/3, 49/3, 79/6, 109/12, 205/24, ...
    # line: -5/6, -19/18, -38/27, -593/324, -1537/1944
    # signal: seeded (-5/6 - 19/18)/2 = -17/18 on the 4th close; -203/162; -398/243; -1043/972
    # histogram: -1/9, -25/162, -187/972, then +61/216 on the 7th close (8, the first rise).
    closes = [20.0, 19.0, 17.0, 14.0, 10.0, 5.0, 8.0, 12.0, 17.0]
    macd = Macd(2, 3, 2)
    got = [macd.update(x) for x in closes]
    histograms = [v.histogram if v else None for v in got]
    assert histograms[3:7] == pytest.approx(
        [float(Fraction(-1, 9)), float(Fraction(-25, 162)), float(Fraction(-187, 972)),
         float(Fraction(61, 216))]
    )  # fmt: skip
    assert [v.cross if v else None for v in got] == [None, None, None, 0, 0, 0, 1, 0, 0]


def test_default_macd_on_a_v_shape_crosses_up_once_where_the_loop_says() -> None:
    # 80 closes falling ever faster (a straight line would leave the histogram at exactly 0
    # in exact arithmetic, i.e. at the mercy of rounding), then 60 rising.
    closes = [100.0 - 0.01 * i * i for i in range(80)]
    closes += [closes[-1] + 0.3 * i for i in range(1, 61)]
    expected = _macd_loop(closes, 12, 26, 9)
    signs = [(e[2] > 0) - (e[2] < 0) for e in expected if e is not None]
    assert 0 not in signs  # so a sign change between neighbours is a cross
    first = len(closes) - len(signs)
    expected_up = [first + i for i in range(1, len(signs)) if signs[i - 1] < signs[i]]
    assert len(expected_up) == 1
    assert expected_up[0] > 80  # after the bottom
    macd = Macd()
    crosses = [(v.cross if (v := macd.update(c)) else 0) for c in closes]
    assert [i for i, c in enumerate(crosses) if c] == expected_up
    assert crosses[expected_up[0]] == 1


def test_touching_the_signal_line_is_not_a_cross() -> None:
    # fast 1 (the close itself), slow 3 and signal 3 (alpha 1/2): every number is exact.
    # closes 10 x5, 6, 7, 6, 6; EMA3: 10 .. 10, 8, 7.5, 6.75, 6.375
    # line (close - EMA3): 0, 0, 0, -2, -0.5, -0.75, -0.375
    # signal (seed 0 on the 5th close): 0, -1, -0.75, -0.75, -0.5625
    # histogram: 0, -1, 0.25 (cross up), 0 (touch), 0.1875 (same side: no new cross).
    macd = Macd(1, 3, 3)
    got = [macd.update(x) for x in (10.0, 10.0, 10.0, 10.0, 10.0, 6.0, 7.0, 6.0, 6.0)]
    values = [v for v in got if v is not None]
    assert [v.histogram for v in values] == [0.0, -1.0, 0.25, 0.0, 0.1875]
    assert [v.cross for v in values] == [0, 0, 1, 0, 0]


def test_macd_crosses_down_after_a_rise_then_fall() -> None:
    macd = Macd(2, 3, 2)
    crosses = [
        v.cross if (v := macd.update(x)) else None
        for x in (5.0, 6.0, 8.0, 11.0, 15.0, 20.0, 17.0, 13.0)
    ]
    # The mirror image of the falling case (every close negated around 25): a cross down on 17.
    assert crosses == [None, None, None, 0, 0, 0, -1, 0]


# --- RSI edges ------------------------------------------------------------------------------


def test_rsi_is_100_without_losses_and_waits_for_period_plus_one_closes() -> None:
    rsi = Rsi(3)
    assert [rsi.update(x) for x in (1.0, 2.0, 3.0)] == [None, None, None]
    assert rsi.update(4.0) == 100.0
    falling = Rsi(3)
    assert [falling.update(x) for x in (4.0, 3.0, 2.0, 1.0)][-1] == 0.0


def test_rsi_of_a_series_that_does_not_move_is_neutral_not_a_spike() -> None:
    """A flat series (0/0) and a stale feed repeating its last price read 50, so VixRsiHigh
    (>= 75) does not page on them and a firing one clears (< 65); movement brings the
    formula back."""
    flat = Rsi(3)
    assert [flat.update(5.0) for _ in range(5)][-2:] == [50.0, 50.0]
    stale = Rsi(3)
    values = [stale.update(x) for x in (1.0, 2.0, 3.0, 4.0, 4.0, 4.0, 4.0)]
    assert values[4:6] == [100.0, 100.0]  # one, two still closes of three: the rise counts
    assert values[6] == 50.0  # three still closes in a row: no movement over the period
    # Moving again, Wilder's averages as they went on underneath: gain 1, then x (2/3) three
    # times (8/27), then (8/27 x 2 + 0.5)/3 with no loss (100), then a 0.5 fall.
    assert stale.update(4.5) == 100.0
    gain = (8 / 27 * 2 + 0.5) / 3 * 2 / 3
    loss = 0.5 / 3
    assert stale.update(4.0) == pytest.approx(100.0 * gain / (gain + loss))


def test_invalid_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="shorter"):
        Macd(26, 12, 9)
    with pytest.raises(ValueError, match="at least 1"):
        Rsi(0)
    with pytest.raises(ValueError, match="finite"):
        Rsi().update(math.nan)
    with pytest.raises(ValueError, match="finite"):
        Macd().update(math.inf)
    with pytest.raises(ValueError, match="divide a day"):
        BarBuilder(7)
    with pytest.raises(ValueError, match="aware"):
        BarBuilder(5).update(datetime(2026, 3, 3, 9, 30), 100.0)  # noqa: DTZ001 - naive on purpose


# --- bars -----------------------------------------------------------------------------------


def _ny(hour: int, minute: int, second: int = 0, day: int = 3, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=NEW_YORK)


def test_five_minute_bar_from_three_ticks() -> None:
    builder = BarBuilder(5)
    # Ticks in UTC: 2026-03-03 is EST, 09:30 New York = 14:30Z.
    assert builder.update(datetime(2026, 3, 3, 14, 30, 10, tzinfo=UTC), 6810.5) == []
    assert builder.update(datetime(2026, 3, 3, 14, 34, 59, tzinfo=UTC), 6808.25) == []
    done = builder.update(datetime(2026, 3, 3, 14, 35, 0, tzinfo=UTC), 6812.0)
    assert done == [Bar(_ny(9, 30), 6810.5, 6810.5, 6808.25, 6808.25)]
    assert done[0].start.utcoffset() == timedelta(hours=-5)
    assert list(builder.history) == done
    assert builder.current == Bar(_ny(9, 35), 6812.0, 6812.0, 6812.0, 6812.0)


def test_bar_high_low_and_summer_time() -> None:
    builder = BarBuilder(5)
    # 2026-07-07 is EDT: 09:30 New York = 13:30Z.
    for minute, second, price in ((30, 1, 20.0), (31, 0, 21.5), (32, 30, 19.25), (34, 59, 20.5)):
        assert builder.update(datetime(2026, 7, 7, 13, minute, second, tzinfo=UTC), price) == []
    done = builder.update(datetime(2026, 7, 7, 13, 35, 0, tzinfo=UTC), 20.75)
    assert done == [Bar(_ny(9, 30, day=7, month=7), 20.0, 21.5, 19.25, 20.5)]


def test_grid_is_anchored_on_the_open_for_hourly_and_minute_bars() -> None:
    hourly = BarBuilder(60)
    assert hourly.bar_start(_ny(10, 29, 59)) == _ny(9, 30)
    assert hourly.bar_start(_ny(10, 30)) == _ny(10, 30)
    assert hourly.bar_start(_ny(9, 29, 59)) == _ny(8, 30)  # before the open: same grid
    assert hourly.bar_start(_ny(0, 10)) == _ny(23, 30, day=2)
    assert BarBuilder(1).bar_start(_ny(15, 59, 59)) == _ny(15, 59)
    assert BarBuilder(15).bar_start(_ny(9, 44, 59)) == _ny(9, 30)


def test_gap_closes_the_open_bar_and_invents_no_bars() -> None:
    builder = BarBuilder(5)
    builder.update(_ny(9, 31), 100.0)
    builder.update(_ny(9, 33), 101.0)
    done = builder.update(_ny(9, 52), 99.0)  # nothing from 09:35 to 09:50
    assert done == [Bar(_ny(9, 30), 100.0, 101.0, 100.0, 101.0)]
    assert builder.current == Bar(_ny(9, 50), 99.0, 99.0, 99.0, 99.0)
    done = builder.update(_ny(9, 55), 98.0)
    assert [b.start for b in builder.history] == [_ny(9, 30), _ny(9, 50)]
    assert done == [Bar(_ny(9, 50), 99.0, 99.0, 99.0, 99.0)]


def test_non_finite_and_late_ticks_are_ignored() -> None:
    builder = BarBuilder(5)
    assert builder.update(_ny(9, 30, 5), math.nan) == []
    assert not builder.ticks_seen  # a NaN opens no bar
    builder.update(_ny(9, 31), 100.0)
    for bad in (math.nan, math.inf, -math.inf):
        assert builder.update(_ny(9, 32), bad) == []
    assert builder.update(_ny(9, 30, 30), 50.0) == []  # older than the last tick
    assert builder.update(_ny(9, 35, 1), math.nan) == []  # would have closed the bar
    assert builder.current == Bar(_ny(9, 30), 100.0, 100.0, 100.0, 100.0)
    done = builder.update(_ny(9, 35, 2), 102.0)
    assert done == [Bar(_ny(9, 30), 100.0, 100.0, 100.0, 100.0)]


def test_flush_closes_the_last_bar_at_its_end_only() -> None:
    builder = BarBuilder(5)
    builder.update(_ny(15, 57), 100.0)
    assert builder.flush(_ny(15, 59, 59)) == []
    assert builder.flush(_ny(16, 0)) == [Bar(_ny(15, 55), 100.0, 100.0, 100.0, 100.0)]
    assert builder.current is None
    assert builder.flush(_ny(16, 5)) == []
    assert builder.update(_ny(15, 59, 59), 101.0) == []  # a late print in the closed bar
    assert builder.current is None


def test_history_is_bounded() -> None:
    builder = BarBuilder(1, max_history=3)
    for minute in range(10):
        builder.update(_ny(10, minute), float(minute))
    assert [b.close for b in builder.history] == [6.0, 7.0, 8.0]
    assert builder.history.maxlen == 3
    assert BarBuilder(5).history.maxlen == 500


def test_seed_checks_the_grid_and_order() -> None:
    builder = BarBuilder(5)
    with pytest.raises(ValueError, match="grid"):
        builder.seed([Bar(_ny(9, 31), 1.0, 1.0, 1.0, 1.0)])
    with pytest.raises(ValueError, match="after"):
        builder.seed([Bar(_ny(9, 35), 1.0, 1.0, 1.0, 1.0), Bar(_ny(9, 30), 1.0, 1.0, 1.0, 1.0)])
    assert not builder.history  # nothing added from a rejected batch
    builder.update(_ny(9, 31), 1.0)
    with pytest.raises(RuntimeError):
        builder.seed([Bar(_ny(9, 20), 1.0, 1.0, 1.0, 1.0)])


# --- the set: ticks to bars to indicators ---------------------------------------------------


def _ticks(bars: int, seed: int) -> list[tuple[datetime, float]]:
    """Several ticks per 5-minute bar from 09:30 New York, a random walk in price."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    price = 6800.0
    out: list[tuple[datetime, float]] = []
    open_ = _ny(9, 30)
    for k in range(bars):
        start = open_ + timedelta(minutes=5 * k)
        seconds = sorted(rng.sample(range(300), rng.randint(1, 6)))
        for s in seconds:
            price = round(price + rng.gauss(0.0, 1.5), 2)
            out.append((start + timedelta(seconds=s), price))
    return out


def _bar_closes_loop(ticks: list[tuple[datetime, float]]) -> list[float]:
    """Close of each 5-minute bar: the last price before the next 5-minute boundary."""
    closes: dict[datetime, float] = {}
    for moment, price in ticks:
        minute = moment.minute - moment.minute % 5
        closes[moment.replace(minute=minute, second=0)] = price
    return [closes[k] for k in sorted(closes)]


def test_indicator_set_feeds_completed_bars() -> None:
    ticks = _ticks(80, seed=1)
    indicators = IndicatorSet(5, name="SPX")
    completed: list[Bar] = []
    for moment, price in ticks:
        completed += indicators.update(moment, price)
    closes = _bar_closes_loop(ticks)
    assert [b.close for b in completed] == closes[:-1]  # the last bar is still open
    macd = _macd_loop(closes[:-1], 12, 26, 9)[-1]
    rsi = _rsi_loop(closes[:-1], 14)[-1]
    assert indicators.last_macd is not None
    assert macd is not None
    assert rsi is not None
    last = indicators.last_macd
    assert (last.macd, last.signal, last.histogram) == pytest.approx(macd, rel=1e-12)
    assert indicators.last_rsi == pytest.approx(rsi, rel=1e-12)
    assert indicators.flush(_ny(9, 30) + timedelta(minutes=5 * 80)) != []
    assert indicators.last_rsi == pytest.approx(_rsi_loop(closes, 14)[-1], rel=1e-12)


def test_last_cross_and_bars_since_cross() -> None:
    indicators = IndicatorSet(1, fast=2, slow=3, signal=2)
    closes = [20.0, 19.0, 17.0, 14.0, 10.0, 5.0, 8.0, 12.0, 17.0]  # cross up on the 7th bar
    seen: list[tuple[int, int | None]] = []
    for i, close in enumerate(closes):
        indicators.update(_ny(10, i), close)
        indicators.update(_ny(10, i, 30), close)
        seen.append((indicators.last_cross, indicators.bars_since_cross))
    # Bar i completes at the tick of minute i + 1.
    assert seen == [
        (0, None), (0, None), (0, None), (0, None), (0, None), (0, None), (0, None),
        (1, 0), (0, 1),
    ]  # fmt: skip
    assert isinstance(indicators.last_macd, MacdValue)


@pytest.mark.parametrize("split", [10, 40, 79])
def test_warm_up_then_ticks_equals_all_ticks(split: int) -> None:
    ticks = _ticks(120, seed=split)
    full = IndicatorSet(5)
    for moment, price in ticks:
        full.update(moment, price)

    # Bars recorded earlier: the first `split` bars of the same ticks, built separately.
    recorder = BarBuilder(5)
    for moment, price in ticks:
        recorder.update(moment, price)
    recorded = list(recorder.history)[:split]
    resume = recorded[-1].start + timedelta(minutes=5)

    resumed = IndicatorSet(5)
    resumed.warm_up(recorded)
    # The daemon starts a little before `resume`: prints in the last recorded bar are ignored.
    for moment, price in ticks:
        if moment >= resume - timedelta(minutes=2):
            resumed.update(moment, price)

    assert list(resumed.bars.history) == list(full.bars.history)
    assert resumed.bars.current == full.bars.current
    assert resumed.last_macd == full.last_macd
    assert resumed.last_rsi == full.last_rsi
    assert resumed.last_cross == full.last_cross
    assert resumed.bars_since_cross == full.bars_since_cross
    assert full.last_macd is not None
    assert full.last_rsi is not None
