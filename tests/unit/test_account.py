"""The account's margin and liquidity from IB's account values: units, currencies, age, and
why they are unknown."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from monitor.domain.account import AccountValues, AccountView

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def test_values_in_dollars_and_percent_with_their_age() -> None:
    received = AccountValues()
    sent = {
        ("NetLiquidation", "1000000.00", "USD"),
        ("NetLiquidation", "930000.00", "EUR"),  # another currency's row: not used
        ("ExcessLiquidity", "452000.50", "USD"),
        ("Cushion", "0.452", ""),  # a fraction: 45.2 %
        ("MaintMarginReq", "548000", "USD"),
        ("InitMarginReq", "685000", "BASE"),  # no USD row: the base currency's
        ("BuyingPower", "1808002", "USD"),
        ("NetLiquidation-S", "999999", "USD"),  # a segment's row: not kept
        ("AccountType", "INDIVIDUAL", ""),  # not a number, not kept
    }
    for tag, value, currency in sorted(sent):
        received.update(tag, value, currency, "DU1234567", NOW)
    assert not received.update("Cushion", "n/a", "", "DU1234567", NOW)
    view = AccountView.of(received, NOW + timedelta(seconds=90), live=True)
    assert view.net_liquidation_usd == 1_000_000.0
    assert view.excess_liquidity_usd == 452_000.5
    assert math.isclose(view.cushion_pct, 45.2)
    assert view.maint_margin_usd == 548_000.0
    assert view.init_margin_usd == 685_000.0
    assert view.buying_power_usd == 1_808_002.0
    assert view.age_seconds == 90.0
    assert view.account == "DU1234567"
    assert view.reason == ""


def test_unknown_values_say_why() -> None:
    replay = AccountView.of(None, NOW, live=False)
    assert math.isnan(replay.net_liquidation_usd)
    assert "replay" in replay.reason
    waiting = AccountView.of(AccountValues(), NOW, live=True)
    assert math.isnan(waiting.cushion_pct)
    assert math.isnan(waiting.age_seconds)
    assert "no account values from IB yet" in waiting.reason
    partial = AccountValues()
    partial.update("NetLiquidation", "1000000", "USD", "DU1", NOW)
    view = AccountView.of(partial, NOW, live=True)
    assert view.net_liquidation_usd == 1_000_000.0
    assert math.isnan(view.cushion_pct)  # IB has not sent it
