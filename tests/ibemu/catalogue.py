"""The emulator's contract catalogue: what it answers to contract-details and market-data requests.

A ``ContractSpec`` is one tradable contract with its IB terms and a ``key`` the test uses to drive
it (ticks, denials, positions). Keys default to the monitor's instrument ids: ``SPX``, ``VIX``,
``AD-NYSE``, ``VX 20260318``, ``SPXW 20260320 P6200``, ``VIX 20260318 C22``.

Dates follow IB's convention (TWS API 9.72 release notes: "For TWS messages being sent to the
API client, the value is always Last Trading Day"): ``last_trade_date`` is the last trading day,
sent in ``lastTradeDateOrContractMonth`` of positions and contract details, and the expiration
(settlement) date is sent only in the contract details' ``realExpirationDate``. The two differ
for AM-settled options: an SPX monthly expires on the third Friday and last trades on Thursday;
a VIX option expires on the Wednesday of its future's settlement and last trades on Tuesday.
The constructors take the expiration date (the monitor's contract ids are dated by it) and derive
the last trading day (the previous weekday for AM-settled options; pass ``last_trade_date`` for
a holiday week).

Matching follows what IB does with a partly specified contract: a non-zero conId selects that
contract alone; otherwise every field the request fills in must agree (symbol, secType, date,
strike, right, multiplier, exchange among the valid exchanges, currency, local symbol, trading
class), and a request naming neither conId, symbol nor local symbol matches nothing. A date of
six digits is the contract month (the month of expiration); of eight digits, the last trading
day, as IB takes it. ``Catalogue(accept_expiration_dates=True)`` also takes the expiration date
there, as a lenient server would.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

FIRST_CON_ID = 700_001


def _strike_text(strike: float) -> str:
    return str(int(strike)) if float(strike).is_integer() else f"{strike:g}"


def occ_local_symbol(trading_class: str, expiry: str, right: str, strike: float) -> str:
    """OCC-style option symbol as IB shows it: root padded to 6, YYMMDD, right, strike x 1000."""
    return f"{trading_class:<6}{expiry[2:8]}{right}{round(strike * 1000):08d}"


_FUTURE_MONTH_CODES = "FGHJKMNQUVXZ"
AM_SETTLED_OPTION_CLASSES = ("SPX", "VIX")


def previous_weekday(yyyymmdd: str) -> str:
    """The weekday before ``yyyymmdd`` (holidays are not known here)."""
    day = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])) - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return f"{day:%Y%m%d}"


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """One contract the emulated gateway knows, in IB's terms."""

    key: str
    symbol: str
    sec_type: str
    exchange: str
    currency: str = "USD"
    last_trade_date: str = ""  # YYYYMMDD, the last trading day
    real_expiration: str = ""  # YYYYMMDD, the expiration (settlement) date
    last_trade_time: str = ""  # HH:MM:SS on the last trading day, in ``time_zone``
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    trading_class: str = ""
    local_symbol: str = ""
    primary_exchange: str = ""
    valid_exchanges: tuple[str, ...] = ()
    long_name: str = ""
    min_tick: float = 0.01
    time_zone: str = "US/Central"
    under_symbol: str = ""
    under_sec_type: str = ""
    con_id: int = 0

    def exchanges(self) -> tuple[str, ...]:
        """Exchanges a request may name for this contract (its own one always included)."""
        return self.valid_exchanges or (self.exchange,)

    @property
    def contract_month(self) -> str:
        """YYYYMM of the expiration (IB's contractMonth)."""
        return (self.real_expiration or self.last_trade_date)[:6]

    @property
    def last_times(self) -> str:
        """The contract details' date field as IB fills it: the last trading day, then the
        last trading time and its zone when known (ib_async splits them apart)."""
        if not self.last_trade_time:
            return self.last_trade_date
        return f"{self.last_trade_date} {self.last_trade_time} {self.time_zone}"


def index(
    symbol: str, exchange: str, long_name: str = "", *, key: str = "", con_id: int = 0
) -> ContractSpec:
    """An index (secType IND), e.g. ``index("SPX", "CBOE")``, keyed by its symbol."""
    return ContractSpec(
        key=key or symbol,
        symbol=symbol,
        sec_type="IND",
        exchange=exchange,
        local_symbol=symbol,
        long_name=long_name or symbol,
        time_zone="US/Eastern" if exchange == "NYSE" else "US/Central",
        con_id=con_id,
    )


def vix_future(expiry: str, *, key: str = "", con_id: int = 0) -> ContractSpec:
    """A VIX future (FUT VIX, class VX, CFE, x1000) expiring on ``expiry`` (YYYYMMDD). It last
    trades on its settlement day, until 08:00 Chicago time (CFE)."""
    month_code = _FUTURE_MONTH_CODES[int(expiry[4:6]) - 1]
    return ContractSpec(
        key=key or f"VX {expiry}",
        symbol="VIX",
        sec_type="FUT",
        exchange="CFE",
        last_trade_date=expiry,
        real_expiration=expiry,
        last_trade_time="08:00:00",
        multiplier="1000",
        trading_class="VX",
        local_symbol=f"VX{month_code}{expiry[3]}",
        long_name="CBOE Volatility Index",
        min_tick=0.05,
        under_symbol="VIX",
        under_sec_type="IND",
        con_id=con_id,
    )


def option(
    trading_class: str,
    expiry: str,
    right: str,
    strike: float,
    *,
    key: str = "",
    con_id: int = 0,
    last_trade_date: str = "",
) -> ContractSpec:
    """An index option: ``trading_class`` SPX or SPXW (symbol SPX) or VIX (symbol VIX), on CBOE,
    x100, also reachable through SMART, expiring on ``expiry`` and keyed like
    ``SPXW 20260320 P6200``. SPX (AM) and VIX options last trade on the weekday before their
    expiration (``last_trade_date`` for a holiday week); SPXW (PM) on their expiration day."""
    symbol = "VIX" if trading_class == "VIX" else "SPX"
    right = right[:1].upper()
    am = trading_class in AM_SETTLED_OPTION_CLASSES
    last_trade = last_trade_date or (previous_weekday(expiry) if am else expiry)
    return ContractSpec(
        key=key or f"{trading_class} {expiry} {right}{_strike_text(strike)}",
        symbol=symbol,
        sec_type="OPT",
        exchange="CBOE",
        last_trade_date=last_trade,
        real_expiration=expiry,
        last_trade_time="15:00:00" if trading_class == "SPXW" else "15:15:00",
        strike=float(strike),
        right=right,
        multiplier="100",
        trading_class=trading_class,
        local_symbol=occ_local_symbol(trading_class, expiry, right, strike),
        valid_exchanges=("SMART", "CBOE"),
        long_name="CBOE Volatility Index" if symbol == "VIX" else "S&P 500 Stock Index",
        min_tick=0.05,
        under_symbol=symbol,
        under_sec_type="IND",
        con_id=con_id,
    )


def default_contracts() -> list[ContractSpec]:
    """SPX, VIX, AD-NYSE; three VIX futures; a few SPX, SPXW and VIX options."""
    return [
        index("SPX", "CBOE", "S&P 500 Stock Index"),
        index("VIX", "CBOE", "CBOE Volatility Index"),
        index("AD-NYSE", "NYSE", "NYSE Advance Decline Index"),
        vix_future("20260318"),
        vix_future("20260415"),
        vix_future("20260520"),
        option("SPX", "20260417", "P", 6425),
        option("SPX", "20260417", "P", 6800),
        option("SPX", "20260417", "C", 6800),
        option("SPXW", "20260320", "P", 6200),
        option("SPXW", "20260320", "P", 6250),
        option("SPXW", "20260320", "C", 7000),
        option("SPXW", "20260320", "C", 7050),
        option("VIX", "20260318", "C", 22),
        option("VIX", "20260318", "C", 30),
    ]


@dataclass(frozen=True, slots=True)
class ContractQuery:
    """The contract terms a request carried (the 12 EClient contract fields)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""

    @classmethod
    def from_fields(cls, fields: list[str]) -> ContractQuery:
        """Parses the 12 contract fields (conId first); missing trailing fields are empty."""
        f = [*fields[:12], *[""] * (12 - min(len(fields), 12))]
        return cls(
            con_id=_to_int(f[0]),
            symbol=f[1],
            sec_type=f[2],
            last_trade_date=f[3],
            strike=_to_float(f[4]),
            right=_normalise_right(f[5]),
            multiplier=f[6],
            exchange=f[7],
            primary_exchange=f[8],
            currency=f[9],
            local_symbol=f[10],
            trading_class=f[11],
        )

    def describe(self) -> str:
        """A short human-readable summary for logs."""
        parts = [
            f"conId={self.con_id}" if self.con_id else "",
            self.symbol,
            self.sec_type,
            self.last_trade_date,
            f"{self.right}{self.strike:g}" if self.strike else self.right,
            self.trading_class,
            self.exchange,
        ]
        return " ".join(p for p in parts if p)


def _to_int(text: str) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _to_float(text: str) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0


def _normalise_right(text: str) -> str:
    right = text.strip().upper()
    return {"PUT": "P", "CALL": "C", "?": "", "0": ""}.get(right, right[:1])


def _same_multiplier(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def _same_date(spec: ContractSpec, text: str, *, accept_expiration_dates: bool) -> bool:
    if len(text) == 6:
        return spec.contract_month == text
    if text[:8] == spec.last_trade_date:
        return True
    return accept_expiration_dates and text[:8] == spec.real_expiration


def matches(
    spec: ContractSpec, query: ContractQuery, *, accept_expiration_dates: bool = False
) -> bool:
    """Whether ``spec`` is one of the contracts ``query`` describes."""
    if query.con_id:
        return spec.con_id == query.con_id
    if not (query.symbol or query.local_symbol):
        return False
    checks = (
        not query.symbol or query.symbol.upper() == spec.symbol.upper(),
        not query.sec_type or query.sec_type.upper() == spec.sec_type,
        not query.last_trade_date
        or _same_date(spec, query.last_trade_date, accept_expiration_dates=accept_expiration_dates),
        not query.strike or abs(query.strike - spec.strike) < 1e-9,
        not query.right or query.right == spec.right,
        not query.multiplier or _same_multiplier(query.multiplier, spec.multiplier),
        not query.exchange or query.exchange.upper() in spec.exchanges(),
        not query.currency or query.currency.upper() == spec.currency,
        not query.local_symbol or query.local_symbol.split() == spec.local_symbol.split(),
        not query.trading_class or query.trading_class == spec.trading_class,
    )
    return all(checks)


@dataclass
class Catalogue:
    """The contracts the gateway knows, by key and conId; conIds are assigned on add."""

    _by_key: dict[str, ContractSpec] = field(default_factory=dict)
    accept_expiration_dates: bool = False
    _next_con_id: Iterator[int] = field(default_factory=lambda: itertools.count(FIRST_CON_ID))

    @classmethod
    def of(
        cls, specs: Iterable[ContractSpec], *, accept_expiration_dates: bool = False
    ) -> Catalogue:
        """A catalogue holding ``specs`` (conIds assigned to those without one)."""
        catalogue = cls(accept_expiration_dates=accept_expiration_dates)
        for spec in specs:
            catalogue.add(spec)
        return catalogue

    def add(self, spec: ContractSpec) -> ContractSpec:
        """Adds or replaces the contract under its key; returns it with its conId."""
        if not spec.con_id:
            taken = {s.con_id for s in self._by_key.values()}
            con_id = next(self._next_con_id)
            while con_id in taken:
                con_id = next(self._next_con_id)
            spec = replace(spec, con_id=con_id)
        self._by_key[spec.key] = spec
        return spec

    def get(self, key: str) -> ContractSpec:
        """The contract under ``key``; KeyError names the key if there is none."""
        try:
            return self._by_key[key]
        except KeyError:
            raise KeyError(f"no contract {key!r} in the emulator's catalogue") from None

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[ContractSpec]:
        return iter(list(self._by_key.values()))

    def __len__(self) -> int:
        return len(self._by_key)

    def find(self, query: ContractQuery) -> list[ContractSpec]:
        """Every contract the query describes, in catalogue order."""
        lenient = self.accept_expiration_dates
        return [
            spec
            for spec in self._by_key.values()
            if matches(spec, query, accept_expiration_dates=lenient)
        ]

    def underlying_con_id(self, spec: ContractSpec) -> int:
        """The conId of the contract's underlying index, when the catalogue holds it, else 0."""
        for other in self._by_key.values():
            if (
                spec.under_symbol
                and other.sec_type == spec.under_sec_type
                and other.symbol == spec.under_symbol
            ):
                return other.con_id
        return 0
