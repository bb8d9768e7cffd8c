"""What an Interactive Brokers error or notice code means for the monitor.

Codes from IB's TWS API message-code table. The classes decide the response:
- data-farm OK notices are logged at info, nothing else;
- a broken farm (2103, 2105, 2157) starts a watch for a dead feed; its OK notice (2104,
  2106, 2158) ends it and the subscriptions are renewed;
- entitlement and competing-session errors mark the instrument (a rule variable); it is asked
  again once with delayed data, and its leg is model-priced until quotes come;
- 10167 says IB shows delayed data for a subscription without a live entitlement: nothing is
  refused, the instrument is marked delayed. 10091 stays an entitlement error although its
  text says delayed data is available: part of the data is refused, and whether what flows is
  delayed is what IB's market data type for the line says;
- 1100 means disconnected from IB's servers; 1101 restored with data lost (resubscribe
  everything); 1102 restored with data kept (check that data flows);
- 326 means the client id is taken: the next connection uses another.
"""

from __future__ import annotations

from enum import StrEnum


class IbErrorClass(StrEnum):
    FARM_OK = "farm_ok"
    FARM_BROKEN = "farm_broken"
    ENTITLEMENT = "entitlement"
    DELAYED_SHOWN = "delayed_shown"
    CONNECTIVITY_LOST = "connectivity_lost"
    RESTORED_DATA_LOST = "restored_data_lost"
    RESTORED_DATA_KEPT = "restored_data_kept"
    CLIENT_ID_IN_USE = "client_id_in_use"
    NO_SECURITY = "no_security_definition"
    OTHER = "other"


FARM_OK = {2104: "market data farm", 2106: "historical data farm", 2158: "sec-def farm"}
FARM_BROKEN = {2103: "market data farm", 2105: "historical data farm", 2157: "sec-def farm"}
# The OK notice that ends each broken-farm notice.
FARM_RECOVERY = {2103: 2104, 2105: 2106, 2157: 2158}
ENTITLEMENT = {
    354: "not subscribed to the market data",
    10089: "market data needs additional API subscriptions",
    10090: "part of the market data is not subscribed",
    10091: "market data needs additional API subscriptions (delayed shown)",
    10168: "delayed market data is not enabled",
    10197: "no market data during a competing live session",
}
DELAYED_SHOWN = {10167: "not subscribed: delayed market data displayed"}

_CLASSES: dict[int, IbErrorClass] = {
    **dict.fromkeys(FARM_OK, IbErrorClass.FARM_OK),
    **dict.fromkeys(FARM_BROKEN, IbErrorClass.FARM_BROKEN),
    **dict.fromkeys(ENTITLEMENT, IbErrorClass.ENTITLEMENT),
    **dict.fromkeys(DELAYED_SHOWN, IbErrorClass.DELAYED_SHOWN),
    1100: IbErrorClass.CONNECTIVITY_LOST,
    1101: IbErrorClass.RESTORED_DATA_LOST,
    1102: IbErrorClass.RESTORED_DATA_KEPT,
    326: IbErrorClass.CLIENT_ID_IN_USE,
    200: IbErrorClass.NO_SECURITY,
}


def classify(code: int) -> IbErrorClass:
    return _CLASSES.get(code, IbErrorClass.OTHER)
