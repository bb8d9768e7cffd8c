"""The account's margin and liquidity, as IB reports them, and how old they are.

IB's account updates (``reqAccountUpdates``, which ib_async asks for at connect when one
account is known) send each value when it changes, about every three minutes. Of them the
monitor keeps, in dollars of a USD account:

  NetLiquidation    the account's value if everything were closed at the marks now
  ExcessLiquidity   equity with loan value minus the maintenance margin: what is left before
                    IB liquidates
  Cushion           ExcessLiquidity / NetLiquidation (IB sends a fraction; shown in %)
  MaintMarginReq    maintenance margin required now
  InitMarginReq     initial margin required now
  BuyingPower       what can still be opened

A value is taken in USD (IB also sends a "BASE" row, used where no USD one came); Cushion has
no currency. Every value reads NaN with a reason where there is none: a replay (the session
file carries no account values), a feed not connected yet, several accounts without ``[feed]
account``, a tag IB has not sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

# IB's tag -> (the view's field, the factor from IB's unit to the view's)
ACCOUNT_TAGS: dict[str, tuple[str, float]] = {
    "NetLiquidation": ("net_liquidation_usd", 1.0),
    "ExcessLiquidity": ("excess_liquidity_usd", 1.0),
    "Cushion": ("cushion_pct", 100.0),
    "MaintMarginReq": ("maint_margin_usd", 1.0),
    "InitMarginReq": ("init_margin_usd", 1.0),
    "BuyingPower": ("buying_power_usd", 1.0),
}
_CURRENCIES = ("USD", "BASE", "")  # in order of preference


@dataclass(slots=True)
class AccountValues:
    """What the feed has received: per tag, per currency, the value as IB sent it; and the
    session time of the last change."""

    account: str = ""
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    updated_at: datetime | None = None

    def update(self, tag: str, value: str, currency: str, account: str, now: datetime) -> bool:
        """Takes one updateAccountValue; False for a tag the monitor does not keep or a value
        that is not a number."""
        if tag not in ACCOUNT_TAGS:
            return False
        try:
            number = float(value)
        except ValueError:
            return False
        self.values.setdefault(tag, {})[currency] = number
        self.account = account
        self.updated_at = now
        return True

    def value(self, tag: str) -> float:
        by_currency = self.values.get(tag, {})
        return next((by_currency[c] for c in _CURRENCIES if c in by_currency), math.nan)


@dataclass(frozen=True, slots=True)
class AccountView:
    """The account's margin and liquidity at one snapshot; NaN with ``reason`` when unknown."""

    net_liquidation_usd: float = math.nan
    excess_liquidity_usd: float = math.nan
    cushion_pct: float = math.nan
    maint_margin_usd: float = math.nan
    init_margin_usd: float = math.nan
    buying_power_usd: float = math.nan
    age_seconds: float = math.nan  # since the last value changed
    account: str = ""
    reason: str = ""  # why the values are not known ("" when some are)

    @classmethod
    def unknown(cls, reason: str) -> AccountView:
        return cls(reason=reason)

    @classmethod
    def of(cls, received: AccountValues | None, now: datetime, *, live: bool) -> AccountView:
        if not live:
            return cls.unknown("a replay carries no account values (a live IB feed gives them)")
        if received is None or received.updated_at is None:
            return cls.unknown(
                "no account values from IB yet (one account, or [feed] account, is needed "
                "for IB to send them)"
            )

        def value(tag: str) -> float:
            return received.value(tag) * ACCOUNT_TAGS[tag][1]

        return cls(
            net_liquidation_usd=value("NetLiquidation"),
            excess_liquidity_usd=value("ExcessLiquidity"),
            cushion_pct=value("Cushion"),
            maint_margin_usd=value("MaintMarginReq"),
            init_margin_usd=value("InitMarginReq"),
            buying_power_usd=value("BuyingPower"),
            age_seconds=max((now - received.updated_at).total_seconds(), 0.0),
            account=received.account,
        )
