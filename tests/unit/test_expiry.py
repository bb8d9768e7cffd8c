"""Settlement moments from the exchange calendars, and the year-fraction convention."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from monitor.domain.instruments import NEW_YORK, parse_instrument_id
from monitor.errors import ConfigError
from monitor.portfolio.model import load_portfolio
from monitor.pricing.expiry import SECONDS_PER_YEAR, ExpiryError, settlement, year_fraction


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("contract", "moment"),
    [
        ("SPXW 20260302 C7000", "2026-03-02T16:00"),  # PM: the index close
        ("SPXW 20261127 C7000", "2026-11-27T13:00"),  # day after Thanksgiving: early close
        ("SPXW 20261224 P6000", "2026-12-24T13:00"),  # Christmas Eve: early close
        ("SPX 20260417 P6425", "2026-04-17T09:30"),  # AM: the opening quotation
        ("VIX 20260318 C22", "2026-03-18T09:30"),  # VIX: the opening VRO
        ("VX 20260318", "2026-03-18T09:30"),
    ],
)
def test_settlement_moment(contract: str, moment: str) -> None:
    assert settlement(parse_instrument_id(contract)) == at(moment)


def test_expiry_on_a_holiday_is_refused_naming_the_prior_day() -> None:
    with pytest.raises(
        ExpiryError,
        match=r"2026-04-03 is not a CBOE_Index_Options trading day.*"
        r"prior trading day \(2026-04-02\)",
    ):
        settlement(parse_instrument_id("SPXW 20260403 C7000"))  # Good Friday 2026


def test_expiry_on_a_weekend_is_refused() -> None:
    with pytest.raises(ExpiryError, match="2026-03-07"):
        settlement(parse_instrument_id("VX 20260307"))


def test_year_fraction_is_calendar_seconds_over_365_days() -> None:
    spx = parse_instrument_id("SPX 20260417 P6425")
    now = at("2026-03-03T09:30")
    # 45 calendar days; the clocks go forward on 2026-03-08, so one hour less.
    assert year_fraction(spx, now) == (45 * 86_400 - 3_600) / SECONDS_PER_YEAR
    spxw = parse_instrument_id("SPXW 20260302 C7000")
    assert year_fraction(spxw, at("2026-03-02T15:59")) == pytest.approx(
        60 / SECONDS_PER_YEAR, rel=1e-12, abs=0
    )
    assert year_fraction(spxw, at("2026-03-02T16:00") + timedelta(minutes=1)) < 0


def test_portfolio_with_a_holiday_expiry_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[[strategies]]\nname = "SE"\nkind = "second_engine"\n'
        'legs = [{ contract = "VX 20260404", quantity = 1 }]\n'
    )
    with pytest.raises(ConfigError, match=r"strategies\[0\]\.legs\[0\]\.contract.*2026-04-04"):
        load_portfolio(path)


def test_vix_future_expiries_follow_the_cfe_rule_for_2026() -> None:
    from monitor.calendars import vix_future_expiries, vix_future_expiry

    # CFE's published 2026 final settlement dates; May 19 is a Tuesday because the June
    # SPX expiration Friday (June 19) is the Juneteenth holiday.
    published = ["01-21", "02-18", "03-18", "04-15", "05-19", "06-17"]
    published += ["07-22", "08-19", "09-16", "10-21", "11-18", "12-16"]
    assert [vix_future_expiry(2026, m).strftime("%m-%d") for m in range(1, 13)] == published
    assert [d.isoformat() for d in vix_future_expiries(date(2026, 3, 18), 3)] == [
        "2026-03-18",
        "2026-04-15",
        "2026-05-19",
    ]
    assert vix_future_expiries(date(2026, 12, 17), 1)[0].isoformat() == "2027-01-20"


def test_vix_future_expiries_for_2027_follow_the_cfe_rule() -> None:
    from monitor.calendars import vix_future_expiry

    # Worked by hand from the rule: the Wednesday 30 days before the next month's third
    # Friday. June 18, 2027 is the Juneteenth holiday (observed), so the June SPX expiration
    # is Thursday June 17 and the May VIX future settles Tuesday May 18.
    expected = ["01-20", "02-17", "03-17", "04-21", "05-18", "06-16"]
    expected += ["07-21", "08-18", "09-15", "10-20", "11-17", "12-22"]
    assert [vix_future_expiry(2027, m).strftime("%m-%d") for m in range(1, 13)] == expected
