"""Wire format of the TWS/IB Gateway socket API, server side, at one server version.

Every message after the greeting is a 4-byte big-endian length followed by that many bytes of
NUL-terminated text fields. A client opens with ``API\\0`` and one framed field ``v<min>..<max>``
(optionally followed by a space and connect options); the server answers with one framed message
of two fields, the server version it speaks and its connection time.

Field orders below are those ib_async 2.x's decoder reads at ``SERVER_VERSION`` (178, the highest
version ib_async advertises): at 178 contract details carry no version field (since 164), errors
carry a trailing advanced-order-reject JSON field (since 166) and option computations carry no
version field but a tick attribute (since 156).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

SERVER_VERSION = 178
"""The one server version the emulator speaks; clients that cannot speak it are refused."""

GREETING = b"API\x00"
_LENGTH = struct.Struct(">I")
MAX_MESSAGE = 1 << 24

Field = str | int | float | bool | None


class ProtocolError(ValueError):
    """A client sent bytes that do not follow the framing or the greeting."""


class Incoming:
    """Message ids a client sends (EClient requests) that the emulator knows by name."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCOUNT_UPDATES = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DETAILS = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_SEC_DEF_OPT_PARAMS = 78
    REQ_COMPLETED_ORDERS = 99


INCOMING_NAMES: dict[int, str] = {
    1: "reqMktData",
    2: "cancelMktData",
    3: "placeOrder",
    4: "cancelOrder",
    5: "reqOpenOrders",
    6: "reqAccountUpdates",
    7: "reqExecutions",
    8: "reqIds",
    9: "reqContractDetails",
    10: "reqMktDepth",
    11: "cancelMktDepth",
    12: "reqNewsBulletins",
    13: "cancelNewsBulletins",
    14: "setServerLogLevel",
    15: "reqAutoOpenOrders",
    16: "reqAllOpenOrders",
    17: "reqManagedAccts",
    18: "requestFA",
    19: "replaceFA",
    20: "reqHistoricalData",
    21: "exerciseOptions",
    22: "reqScannerSubscription",
    23: "cancelScannerSubscription",
    24: "reqScannerParameters",
    25: "cancelHistoricalData",
    49: "reqCurrentTime",
    50: "reqRealTimeBars",
    51: "cancelRealTimeBars",
    52: "reqFundamentalData",
    53: "cancelFundamentalData",
    54: "calculateImpliedVolatility",
    55: "calculateOptionPrice",
    56: "cancelCalculateImpliedVolatility",
    57: "cancelCalculateOptionPrice",
    58: "reqGlobalCancel",
    59: "reqMarketDataType",
    61: "reqPositions",
    62: "reqAccountSummary",
    63: "cancelAccountSummary",
    64: "cancelPositions",
    65: "verifyRequest",
    66: "verifyMessage",
    67: "queryDisplayGroups",
    68: "subscribeToGroupEvents",
    69: "updateDisplayGroup",
    70: "unsubscribeFromGroupEvents",
    71: "startApi",
    72: "verifyAndAuthRequest",
    73: "verifyAndAuthMessage",
    74: "reqPositionsMulti",
    75: "cancelPositionsMulti",
    76: "reqAccountUpdatesMulti",
    77: "cancelAccountUpdatesMulti",
    78: "reqSecDefOptParams",
    79: "reqSoftDollarTiers",
    80: "reqFamilyCodes",
    81: "reqMatchingSymbols",
    82: "reqMktDepthExchanges",
    83: "reqSmartComponents",
    84: "reqNewsArticle",
    85: "reqNewsProviders",
    86: "reqHistoricalNews",
    87: "reqHeadTimeStamp",
    88: "reqHistogramData",
    89: "cancelHistogramData",
    90: "cancelHeadTimeStamp",
    91: "reqMarketRule",
    92: "reqPnL",
    93: "cancelPnL",
    94: "reqPnLSingle",
    95: "cancelPnLSingle",
    96: "reqHistoricalTicks",
    97: "reqTickByTickData",
    98: "cancelTickByTickData",
    99: "reqCompletedOrders",
    100: "reqWshMetaData",
    101: "cancelWshMetaData",
    102: "reqWshEventData",
    103: "cancelWshEventData",
    104: "reqUserInfo",
}


class Outgoing:
    """Message ids the server sends (EWrapper callbacks) that the emulator produces."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ERR_MSG = 4
    ACCT_VALUE = 6
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    TICK_OPTION_COMPUTATION = 21
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI_END = 74
    SECURITY_DEFINITION_OPTION_PARAMETER = 75
    SECURITY_DEFINITION_OPTION_PARAMETER_END = 76
    TICK_REQ_PARAMS = 81
    COMPLETED_ORDERS_END = 102


class TickType:
    """Tick type ids of the fields the emulator streams (live ids; delayed ids via DELAYED)."""

    BID_SIZE = 0
    BID = 1
    ASK = 2
    ASK_SIZE = 3
    LAST = 4
    LAST_SIZE = 5
    HIGH = 6
    LOW = 7
    VOLUME = 8
    CLOSE = 9
    BID_OPTION = 10
    ASK_OPTION = 11
    LAST_OPTION = 12
    MODEL_OPTION = 13
    OPEN = 14


DELAYED_TICK: dict[int, int] = {
    TickType.BID_SIZE: 69,
    TickType.BID: 66,
    TickType.ASK: 67,
    TickType.ASK_SIZE: 70,
    TickType.LAST: 68,
    TickType.LAST_SIZE: 71,
    TickType.HIGH: 72,
    TickType.LOW: 73,
    TickType.VOLUME: 74,
    TickType.CLOSE: 75,
    TickType.OPEN: 76,
    TickType.BID_OPTION: 80,
    TickType.ASK_OPTION: 81,
    TickType.LAST_OPTION: 82,
    TickType.MODEL_OPTION: 83,
}
"""Live tick type -> the tick type IB uses for the same field in delayed data."""

PRICE_SENTINEL = -1.0
"""Not-computed marker for implied vol, option price, PV dividend, underlying price."""
GREEK_SENTINEL = -2.0
"""Not-computed marker for delta, gamma, vega, theta."""

ERROR_TEXT: dict[int, str] = {
    162: "Historical Market Data Service error message:",
    200: "No security definition has been found for the request",
    321: (
        "Error validating request.-'bN' : cause - The API interface is currently in Read-Only mode."
    ),
    326: "Unable to connect as the client id is already in use. Retry with a unique client id.",
    354: "Requested market data is not subscribed.",
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2106: "HMDS data farm connection is OK:ushmds",
    2110: "Connectivity between Trader Workstation and server is broken. It will be restored "
    "automatically.",
    2157: "Sec-def data farm connection is broken:secdefnj",
    2158: "Sec-def data farm connection is OK:secdefnj",
    10089: (
        "Requested market data requires additional subscription for API. See link in "
        "'Market Data Connections' dialog for more details."
    ),
    10090: (
        "Part of requested market data is not subscribed. Subscription-independent ticks are "
        "still active. Delayed market data is available."
    ),
    10091: (
        "Part of requested market data requires additional subscription for API. See link in "
        "'Market Data Connections' dialog for more details. Delayed market data is available."
    ),
    10167: "Requested market data is not subscribed. Displaying delayed market data.",
    10168: "Requested market data is not subscribed. Delayed market data is not enabled.",
    10197: "No market data during competing live session",
}
"""Default message text per error or notice code (IB's wording, lightly normalised)."""

ENTITLEMENT_CODES = frozenset({354, 10089, 10090, 10091, 10168, 10197})
"""Codes a denied market-data request may be answered with."""
PARTIAL_ENTITLEMENT_CODES = frozenset({10090, 10091})
"""Entitlement codes after which the subscription stays active (part of the data still flows)."""


def error_text(code: int) -> str:
    """IB's message text for ``code``, or a generic one for codes not in the table."""
    return ERROR_TEXT.get(code, f"Emulated error {code}")


def format_field(value: Field) -> str:
    """One field as text: None is empty, booleans are 1/0, numbers use Python's repr."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def format_size(size: float) -> str:
    """A size as IB sends decimal sizes: integral values without a fraction."""
    if float(size).is_integer():
        return str(int(size))
    return str(size)


def encode(fields: Iterable[Field]) -> bytes:
    """One framed message: length prefix, then each field NUL-terminated."""
    payload = "".join(format_field(f) + "\x00" for f in fields).encode()
    return _LENGTH.pack(len(payload)) + payload


@dataclass(frozen=True, slots=True)
class Greeting:
    """The client's opening: the version range it speaks and its connect options."""

    min_version: int
    max_version: int
    options: str


def parse_greeting(payload: bytes) -> Greeting:
    """Parses ``v<min>..<max>[ options]`` (the framed part after ``API\\0``)."""
    text = payload.decode(errors="replace").rstrip("\x00")
    versions, _, options = text.partition(" ")
    if not versions.startswith("v") or ".." not in versions:
        raise ProtocolError(f"unexpected greeting {text!r}")
    low, _, high = versions[1:].partition("..")
    try:
        return Greeting(int(low), int(high), options)
    except ValueError as exc:
        raise ProtocolError(f"unexpected greeting {text!r}") from exc


class FrameBuffer:
    """Accumulates received bytes and yields complete frames' payloads."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> None:
        """Appends received bytes."""
        self._data += data

    def take_prefix(self, prefix: bytes) -> bool | None:
        """Consumes ``prefix`` if the buffer starts with it: True; a mismatch: False; too few
        bytes to tell: None."""
        if len(self._data) < len(prefix):
            return None if prefix.startswith(bytes(self._data)) else False
        if self._data.startswith(prefix):
            del self._data[: len(prefix)]
            return True
        return False

    def frames(self) -> list[bytes]:
        """Every complete frame's payload received so far, in order."""
        out: list[bytes] = []
        while len(self._data) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(self._data)
            if size > MAX_MESSAGE:
                raise ProtocolError(f"frame of {size} bytes")
            end = _LENGTH.size + size
            if len(self._data) < end:
                break
            out.append(bytes(self._data[_LENGTH.size : end]))
            del self._data[:end]
        return out


def split_fields(payload: bytes) -> list[str]:
    """A frame's payload as its text fields (the trailing terminator dropped)."""
    fields = payload.decode(errors="replace").split("\x00")
    if fields and fields[-1] == "":
        fields.pop()
    return fields
