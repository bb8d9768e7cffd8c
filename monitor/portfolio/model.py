"""Portfolio file (TOML): positions grouped into strategies, validated as the trader wrote them.

What cannot be right is refused (ConfigError naming the file and field): a wrong strategy shape,
an unknown contract, a quantity of zero or beyond ``MAX_LEG_QUANTITY`` contracts. What may be
right but is likely stale is a warning (``portfolio_warnings``): a leg already expired on the
session's date, which pricing values as expired (an option at its intrinsic value, with no
gamma, vega or theta) until the leg is removed from the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.domain.instruments import NEW_YORK, Instrument, Kind, Right, parse_instrument_id
from monitor.pricing.expiry import settlement
from monitor.tomlfile import load_toml

MAX_LEG_QUANTITY = 10_000  # contracts per leg, long or short: more is a typo, not a position
SESSION_OPEN = time(9, 30)  # New York; a leg settled by then is expired for the whole session

log = structlog.get_logger(__name__)


class StrategyKind(StrEnum):
    IRON_CONDOR = "iron_condor"
    SECOND_ENGINE = "second_engine"
    OTHER = "other"  # positions of an imported book that form neither


class LegSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    contract: str
    quantity: int = Field(description="contracts; positive long, negative short")
    entry_price: Annotated[
        float | None,
        Field(
            ge=0,
            allow_inf_nan=False,
            strict=True,  # a number, not a string that looks like one
            description=(
                "the average price the position was opened at, per unit as quoted (option "
                "premium or future price, not times the multiplier); for P&L against it"
            ),
        ),
    ] = None

    @field_validator("contract")
    @classmethod
    def _known_contract(cls, value: str) -> str:
        inst = parse_instrument_id(value)  # raises ValueError naming the id
        if inst.expiry is not None:
            settlement(inst)  # an expiry on a holiday is refused, naming the prior trading day
        return value

    @field_validator("quantity")
    @classmethod
    def _non_zero_and_bounded(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must not be zero (remove the leg instead)")
        if abs(value) > MAX_LEG_QUANTITY:
            digits = len(str(abs(value)))
            shown = f"{value:,}" if digits <= 15 else f"a {digits}-digit number"
            raise ValueError(
                f"must be at most {MAX_LEG_QUANTITY:,} contracts long or short, not {shown}"
            )
        return value

    @property
    def instrument(self) -> Instrument:
        return parse_instrument_id(self.contract)


def _check_iron_condor(legs: list[LegSpec]) -> None:
    instruments = [leg.instrument for leg in legs]
    if len(legs) != 4 or any(i.kind is not Kind.OPTION for i in instruments):
        raise ValueError("an iron condor has exactly four option legs")
    if len({(i.root, i.expiry) for i in instruments}) != 1:
        raise ValueError("an iron condor's four legs share one class and expiry")
    puts = sorted(
        (i.strike or 0.0, leg.quantity)
        for i, leg in zip(instruments, legs, strict=True)
        if i.right is Right.PUT
    )
    calls = sorted(
        (i.strike or 0.0, leg.quantity)
        for i, leg in zip(instruments, legs, strict=True)
        if i.right is Right.CALL
    )
    if len(puts) != 2 or len(calls) != 2:
        raise ValueError("an iron condor has two puts and two calls")
    (long_put, lp_qty), (short_put, sp_qty) = puts
    (short_call, sc_qty), (long_call, lc_qty) = calls
    if not (long_put < short_put < short_call < long_call):
        raise ValueError(
            "strikes must order long put < short put < short call < long call "
            f"(got {long_put:g} / {short_put:g} / {short_call:g} / {long_call:g})"
        )
    if not (lp_qty > 0 > sp_qty and lc_qty > 0 > sc_qty):
        raise ValueError("the inner strikes are short (negative quantity), the wings long")
    if len({abs(q) for q in (lp_qty, sp_qty, sc_qty, lc_qty)}) != 1:
        raise ValueError("all four legs of an iron condor have the same size")


def _check_second_engine(legs: list[LegSpec]) -> None:
    for index, leg in enumerate(legs):
        inst = leg.instrument
        if inst.root not in {"VX", "VIX"} or inst.kind is Kind.INDEX:
            raise ValueError(
                f"legs[{index}] {leg.contract!r}: the second-engine layer holds VIX futures "
                "and VIX options only"
            )


class StrategySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=64)]
    kind: StrategyKind
    legs: Annotated[list[LegSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.kind is StrategyKind.IRON_CONDOR:
            _check_iron_condor(self.legs)
        elif self.kind is StrategyKind.SECOND_ENGINE:
            _check_second_engine(self.legs)
        return self


class PortfolioSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategies: Annotated[list[StrategySpec], Field(min_length=1)]
    account_size_usd: Annotated[float | None, Field(gt=0, description="for limits in %")] = None

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [s.name for s in self.strategies]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"strategy names must be unique: {duplicates}")
        contracts = [leg.contract for s in self.strategies for leg in s.legs]
        repeated = sorted({c for c in contracts if contracts.count(c) > 1})
        if repeated:
            raise ValueError(f"a contract may appear in one leg only: {repeated}")
        return self


@dataclass(frozen=True, slots=True)
class Leg:
    strategy: str
    instrument: Instrument
    quantity: int
    # The average opening price per unit as quoted (premium points, a future's price): from
    # the portfolio file, else IB's average cost over the multiplier; NaN when not known.
    entry_price: float = math.nan

    @property
    def is_short(self) -> bool:
        return self.quantity < 0


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    kind: StrategyKind
    legs: tuple[Leg, ...]


@dataclass(frozen=True, slots=True)
class Portfolio:
    source: Path
    strategies: tuple[Strategy, ...]
    account_size_usd: float | None = None

    @property
    def legs(self) -> tuple[Leg, ...]:
        return tuple(leg for s in self.strategies for leg in s.legs)


def _entry(price: float | None) -> float:
    return math.nan if price is None else float(price)


def load_portfolio(path: Path) -> Portfolio:
    spec = load_toml(path, PortfolioSpec, context={})
    strategies = tuple(
        Strategy(
            s.name,
            s.kind,
            tuple(
                Leg(s.name, leg.instrument, leg.quantity, _entry(leg.entry_price)) for leg in s.legs
            ),
        )
        for s in spec.strategies
    )
    return Portfolio(path, strategies, spec.account_size_usd)


@dataclass(frozen=True, slots=True)
class PortfolioWarning:
    """A leg that loads but is likely a mistake, named as a ConfigError would name it."""

    field: str  # strategies[0].legs[1].contract
    strategy: str
    contract: str
    message: str

    def __str__(self) -> str:
        return f"field {self.field}: {self.message}"


def portfolio_warnings(portfolio: Portfolio, session_date: date) -> tuple[PortfolioWarning, ...]:
    """The legs already expired on ``session_date``: settled before that day's 09:30 ET open
    (the day before or earlier, or an AM-settled leg on the day itself)."""
    opening = datetime.combine(session_date, SESSION_OPEN, NEW_YORK)
    warnings = []
    for s_index, strategy in enumerate(portfolio.strategies):
        for l_index, leg in enumerate(strategy.legs):
            inst = leg.instrument
            if inst.expiry is None or settlement(inst) > opening:
                continue
            settled = settlement(inst).astimezone(NEW_YORK)
            warnings.append(
                PortfolioWarning(
                    field=f"strategies[{s_index}].legs[{l_index}].contract",
                    strategy=strategy.name,
                    contract=inst.id,
                    message=(
                        f"{inst.id!r} of strategy {strategy.name!r} expired "
                        f"{settled:%Y-%m-%d %H:%M} ET, before the session of "
                        f"{session_date.isoformat()}; it is valued as settled (an option at "
                        "its intrinsic value, no gamma, vega or theta) until it is removed"
                    ),
                )
            )
    return tuple(warnings)


def log_portfolio_warnings(
    portfolio: Portfolio, session_date: date
) -> tuple[PortfolioWarning, ...]:
    """``portfolio_warnings``, each logged once (event ``portfolio_leg_expired``); for the
    caller that loads the portfolio for a run."""
    warnings = portfolio_warnings(portfolio, session_date)
    for warning in warnings:
        log.warning(
            "portfolio_leg_expired",
            file=str(portfolio.source),
            field=warning.field,
            strategy=warning.strategy,
            contract=warning.contract,
            session_date=session_date.isoformat(),
            message=warning.message,
        )
    return warnings
