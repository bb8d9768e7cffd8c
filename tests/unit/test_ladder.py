"""The strike ladder: the strikes it picks and its share of the lines (monitor/feeds/ladder.py)."""

from __future__ import annotations

from datetime import date

from monitor.domain.instruments import parse_instrument_id
from monitor.feeds.ladder import book_chains, fit_to_lines, ladder_for, needs_recentre

SPXW = ("SPXW", date(2026, 3, 20))
VIX = ("VIX", date(2026, 3, 18))
LISTED = [float(k) for k in range(6000, 7305, 5)]


def test_pairs_at_the_money_and_wings_out_past_the_book() -> None:
    ladder = ladder_for(SPXW, [6200, 6250, 7000, 7050], LISTED, 6802.0, pairs=3, wings=5)
    ids = [i.id for i in ladder.rungs]
    assert ids[:6] == [
        "SPXW 20260320 C6800",
        "SPXW 20260320 P6800",
        "SPXW 20260320 C6805",
        "SPXW 20260320 P6805",
        "SPXW 20260320 C6795",
        "SPXW 20260320 P6795",
    ]
    puts = [i.strike for i in ladder.rungs[6:] if i.right and i.right.value == "P"]
    calls = [i.strike for i in ladder.rungs[6:] if i.right and i.right.value == "C"]
    assert len(puts) == len(calls) == 5
    assert puts == sorted(puts, reverse=True)
    assert puts[-1] == 6200
    assert calls == sorted(calls)
    assert calls[-1] == 7050
    assert all(k in LISTED for k in puts + calls)
    assert ladder.step == 5.0


def test_a_side_the_book_does_not_reach_takes_the_next_listed_strikes() -> None:
    listed = [float(k) for k in range(10, 31)] + [32.5, 35.0, 40.0]
    ladder = ladder_for(VIX, [22, 27], listed, 18.9, pairs=3, wings=4)
    puts = [i.strike for i in ladder.rungs if i.right and i.right.value == "P"][3:]
    assert puts == [17.0, 16.0, 15.0, 14.0]
    assert all(i.underlying == "VX 20260318" for i in ladder.rungs)


def test_the_ladders_share_the_lines_nearest_the_money_first() -> None:
    near = ladder_for(SPXW, [6600, 7000], LISTED, 6800.0, pairs=3, wings=5)
    vix = ladder_for(VIX, [22, 27], [float(k) for k in range(10, 40)], 19.0, pairs=3, wings=5)
    already = {"SPXW 20260320 P6800"}  # a leg at a ladder strike takes no second line
    fitted = fit_to_lines([near, vix], 5, already)
    assert [i.id for i in fitted.taken] == [
        "SPXW 20260320 C6800",
        "VIX 20260318 C19",
        "SPXW 20260320 C6795",  # a tie at the centre: the lower strike first
        "VIX 20260318 P19",
        "SPXW 20260320 P6795",
    ]
    assert fitted.left_out["SPXW 20260320"][0] == "SPXW 20260320 C6805"
    assert len(fitted.left_out["VIX 20260318"]) == len(vix.rungs) - 2
    everything = fit_to_lines([near, vix], 1000, already)
    assert not everything.left_out
    assert len(everything.taken) == len(near.rungs) + len(vix.rungs) - 1


def test_re_centred_past_the_configured_steps_only() -> None:
    ladder = ladder_for(SPXW, [6600, 7000], LISTED, 6800.0, pairs=3, wings=5)
    assert not needs_recentre(ladder, 6815.0, 3.0)
    assert needs_recentre(ladder, 6816.0, 3.0)
    assert needs_recentre(ladder, 6784.0, 3.0)
    assert not needs_recentre(ladder, None, 3.0)


def test_book_chains_are_the_option_expiries_held() -> None:
    legs = [
        parse_instrument_id(i)
        for i in ("SPXW 20260320 P6600", "SPXW 20260320 C7000", "VX 20260318", "VIX 20260318 C22")
    ]
    assert book_chains(legs) == {SPXW: [6600.0, 7000.0], VIX: [22.0]}
