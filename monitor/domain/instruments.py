"""Instruments, the contract facts of each class, and the contract-id grammar shared by all inputs.

Contract ids are written the same way in replay files, portfolios and logs:
  index   ``SPX``, ``VIX``, ``AD-NYSE``
  future  ``VX 20260415``              (root, expiry YYYYMMDD)
  option  ``SPX 20260417 P6300``       (trading class, expiry, right, strike)
          ``SPXW 20260410 C7000``, ``VIX 20260318 C22.5``
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")


class Kind(StrEnum):
    INDEX = "index"
    FUTURE = "future"
    OPTION = "option"


class Right(StrEnum):
    CALL = "C"
    PUT = "P"


class Settlement(StrEnum):
    """AM: settles to a special opening quotation; PM: settles to the close."""

    AM = "AM"
    PM = "PM"


@dataclass(frozen=True, slots=True)
class ClassFacts:
    """Contract facts of one trading class (DOMAIN.md's contract table)."""

    kind: Kind
    multiplier: float
    settlement: Settlement | None
    tick: float  # minimum price increment (options: the increment at or above 3.00)
    tick_below_3: float | None = None  # options trade in finer ticks below 3.00
    underlying: str | None = None  # "SPX" for SPX options; VIX options use their future
    allows_negative: bool = False  # breadth indexes can be negative; prices cannot


# Settlement moments (opening quotations for AM, the close for PM) are in pricing/expiry.py.
CLASSES: dict[str, ClassFacts] = {
    "SPX": ClassFacts(Kind.OPTION, 100.0, Settlement.AM, 0.10, 0.05, "SPX"),
    "SPXW": ClassFacts(Kind.OPTION, 100.0, Settlement.PM, 0.10, 0.05, "SPX"),
    "VIX": ClassFacts(Kind.OPTION, 100.0, Settlement.AM, 0.05, 0.01, None),
    "VX": ClassFacts(Kind.FUTURE, 1000.0, Settlement.AM, 0.05),
}
INDEXES: dict[str, ClassFacts] = {
    "SPX": ClassFacts(Kind.INDEX, 1.0, None, 0.01),
    "VIX": ClassFacts(Kind.INDEX, 1.0, None, 0.01),
    # NYSE net advances (advancing minus declining issues): a count, negative on down days.
    "AD-NYSE": ClassFacts(Kind.INDEX, 1.0, None, 1.0, allows_negative=True),
}

_OPTION_ID = re.compile(
    r"^(?P<root>[A-Z]+) (?P<expiry>[0-9]{8}) (?P<right>[CP])(?P<strike>[0-9]+(\.[0-9]+)?)$"
)
_FUTURE_ID = re.compile(r"^(?P<root>[A-Z]+) (?P<expiry>[0-9]{8})$")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable or observable instrument with the terms the pricing needs."""

    id: str
    kind: Kind
    root: str
    multiplier: float
    expiry: date | None = None
    right: Right | None = None
    strike: float | None = None
    settlement: Settlement | None = None
    underlying: str | None = None  # id of the instrument the option is priced on
    allows_negative: bool = False

    @property
    def is_option(self) -> bool:
        return self.kind is Kind.OPTION

    @property
    def is_call(self) -> bool:
        return self.right is Right.CALL

    def tick_for(self, price: float) -> float:
        facts = CLASSES.get(self.root) if self.kind is not Kind.INDEX else INDEXES[self.root]
        if facts is None:  # pragma: no cover - parse_instrument_id only builds known roots
            raise ValueError(f"no contract facts for {self.id}")
        if facts.tick_below_3 is not None and price < 3.0:
            return facts.tick_below_3
        return facts.tick


def _parse_expiry(text: str, contract_id: str) -> date:
    try:
        return datetime.strptime(text, "%Y%m%d").date()  # noqa: DTZ007 - a calendar date
    except ValueError:
        raise ValueError(f"{contract_id!r}: expiry {text!r} is not a date (YYYYMMDD)") from None


def future_id(root: str, expiry: date) -> str:
    return f"{root} {expiry:%Y%m%d}"


def format_strike(strike: float) -> str:
    return f"{strike:g}" if strike != int(strike) else str(int(strike))


def option_id(root: str, expiry: date, right: Right, strike: float) -> str:
    return f"{root} {expiry:%Y%m%d} {right.value}{format_strike(strike)}"


def parse_instrument_id(contract_id: str) -> Instrument:
    """Builds the instrument a contract id names, with the terms its class dictates.

    Raises ValueError with a message naming the id for anything unknown or malformed.
    """
    if contract_id in INDEXES:
        facts = INDEXES[contract_id]
        return Instrument(
            contract_id,
            Kind.INDEX,
            contract_id,
            facts.multiplier,
            allows_negative=facts.allows_negative,
        )
    if m := _OPTION_ID.match(contract_id):
        root = m["root"]
        facts_opt = CLASSES.get(root)
        if facts_opt is None or facts_opt.kind is not Kind.OPTION:
            known = ", ".join(k for k, f in CLASSES.items() if f.kind is Kind.OPTION)
            raise ValueError(f"{contract_id!r}: unknown option class {root!r} (known: {known})")
        expiry = _parse_expiry(m["expiry"], contract_id)
        strike = float(m["strike"])
        if strike <= 0:
            raise ValueError(f"{contract_id!r}: strike must be positive")
        underlying = facts_opt.underlying or future_id("VX", expiry)
        return Instrument(
            contract_id,
            Kind.OPTION,
            root,
            facts_opt.multiplier,
            expiry=expiry,
            right=Right(m["right"]),
            strike=strike,
            settlement=facts_opt.settlement,
            underlying=underlying,
        )
    if m := _FUTURE_ID.match(contract_id):
        root = m["root"]
        facts_fut = CLASSES.get(root)
        if facts_fut is None or facts_fut.kind is not Kind.FUTURE:
            raise ValueError(f"{contract_id!r}: unknown futures root {root!r} (known: VX)")
        return Instrument(
            contract_id,
            Kind.FUTURE,
            root,
            facts_fut.multiplier,
            expiry=_parse_expiry(m["expiry"], contract_id),
            settlement=facts_fut.settlement,
        )
    raise ValueError(
        f"{contract_id!r} is not a contract id: expected an index (SPX, VIX, AD-NYSE), "
        "a future 'VX YYYYMMDD' or an option 'SPX|SPXW|VIX YYYYMMDD C|P<strike>'"
    )
