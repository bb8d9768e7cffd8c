"""An emulated IB Gateway (TWS socket API server) for end-to-end tests of IB clients."""

from ibemu.catalogue import (
    Catalogue,
    ContractQuery,
    ContractSpec,
    default_contracts,
    index,
    option,
    vix_future,
)
from ibemu.gateway import DEFAULT_ACCOUNT, IBGateway, PositionSpec, RecordedRequest
from ibemu.history import HistoryBar
from ibemu.protocol import GREEK_SENTINEL, PRICE_SENTINEL, SERVER_VERSION, TickType

__all__ = [
    "DEFAULT_ACCOUNT",
    "GREEK_SENTINEL",
    "PRICE_SENTINEL",
    "SERVER_VERSION",
    "Catalogue",
    "ContractQuery",
    "ContractSpec",
    "HistoryBar",
    "IBGateway",
    "PositionSpec",
    "RecordedRequest",
    "TickType",
    "default_contracts",
    "index",
    "option",
    "vix_future",
]
