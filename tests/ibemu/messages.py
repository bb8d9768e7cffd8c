"""Builders for the messages the emulated gateway sends, as field lists in decoder order.

Each function returns the fields of one message (message id first) for ``protocol.encode``. The
orders are those ib_async's decoder reads at server version 178; a version field follows the
message id where IB still sends one at that version.
"""

from __future__ import annotations

from ibemu.catalogue import ContractSpec
from ibemu.history import HistoryBar
from ibemu.protocol import Field, Outgoing, format_size

ORDER_TYPES = "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,DAY,DEACT,GAT,GTC,GTD,LMT,MKT"


def error(req_id: int, code: int, text: str) -> list[Field]:
    """errMsg: version 2, id, code, text, advanced-order-reject JSON (empty)."""
    return [Outgoing.ERR_MSG, 2, req_id, code, text, ""]


def next_valid_id(order_id: int) -> list[Field]:
    """nextValidId: version 1, the next order id."""
    return [Outgoing.NEXT_VALID_ID, 1, order_id]


def managed_accounts(accounts: list[str]) -> list[Field]:
    """managedAccounts: version 1, comma-separated account list."""
    return [Outgoing.MANAGED_ACCTS, 1, ",".join(accounts)]


def current_time(epoch_seconds: int) -> list[Field]:
    """currentTime: version 1, seconds since the epoch."""
    return [Outgoing.CURRENT_TIME, 1, epoch_seconds]


def contract_details(
    req_id: int, spec: ContractSpec, *, exchange: str, under_con_id: int
) -> list[Field]:
    """contractData without its version field (server >= 164), no sec-id list."""
    return [
        Outgoing.CONTRACT_DATA,
        req_id,
        spec.symbol,
        spec.sec_type,
        spec.last_times,
        spec.strike,
        spec.right,
        exchange or spec.exchange,
        spec.currency,
        spec.local_symbol,
        spec.trading_class or spec.symbol,  # marketName
        spec.trading_class,
        spec.con_id,
        spec.min_tick,
        spec.multiplier,
        ORDER_TYPES,
        ",".join(spec.exchanges()),
        1,  # priceMagnifier
        under_con_id,
        spec.long_name,
        spec.primary_exchange,
        spec.contract_month,  # contractMonth
        "",  # industry
        "",  # category
        "",  # subcategory
        spec.time_zone,
        "",  # tradingHours
        "",  # liquidHours
        "",  # evRule
        "",  # evMultiplier
        0,  # number of sec-id tag/value pairs
        2,  # aggGroup
        spec.under_symbol,
        spec.under_sec_type,
        "",  # marketRuleIds
        spec.real_expiration,  # realExpirationDate
        "",  # stockType
        "1",  # minSize
        "1",  # sizeIncrement
        "1",  # suggestedSizeIncrement
    ]


def contract_details_end(req_id: int) -> list[Field]:
    """contractDataEnd: version 1, request id."""
    return [Outgoing.CONTRACT_DATA_END, 1, req_id]


def market_data_type(req_id: int, data_type: int) -> list[Field]:
    """marketDataType: version 1, request id, 1 live / 2 frozen / 3 delayed / 4 delayed frozen."""
    return [Outgoing.MARKET_DATA_TYPE, 1, req_id, data_type]


def tick_req_params(req_id: int, min_tick: float) -> list[Field]:
    """tickReqParams (no version): request id, min tick, BBO exchange, snapshot permissions."""
    return [Outgoing.TICK_REQ_PARAMS, req_id, min_tick, "", 3]


def tick_price(req_id: int, tick_type: int, price: float, size: float) -> list[Field]:
    """tickPrice: version 6, request id, tick type, price, size, attribute mask (0)."""
    return [Outgoing.TICK_PRICE, 6, req_id, tick_type, price, format_size(size), 0]


def tick_size(req_id: int, tick_type: int, size: float) -> list[Field]:
    """tickSize: version 6, request id, tick type, size."""
    return [Outgoing.TICK_SIZE, 6, req_id, tick_type, format_size(size)]


def tick_option_computation(
    req_id: int,
    tick_type: int,
    values: tuple[float, float, float, float, float, float, float, float],
    *,
    price_based: bool = False,
) -> list[Field]:
    """tickOptionComputation (no version, server >= 156): request id, tick type, attribute
    (0 return-based, 1 price-based), then implied vol, delta, option price, PV dividend, gamma,
    vega, theta, underlying price."""
    return [Outgoing.TICK_OPTION_COMPUTATION, req_id, tick_type, int(price_based), *values]


def tick_snapshot_end(req_id: int) -> list[Field]:
    """tickSnapshotEnd: version 1, request id."""
    return [Outgoing.TICK_SNAPSHOT_END, 1, req_id]


def position(account: str, spec: ContractSpec, quantity: float, avg_cost: float) -> list[Field]:
    """position: version 3, account, contract (exchange left empty, as IB sends it), quantity,
    average cost."""
    return [
        Outgoing.POSITION_DATA,
        3,
        account,
        spec.con_id,
        spec.symbol,
        spec.sec_type,
        spec.last_trade_date,
        spec.strike,
        spec.right,
        spec.multiplier,
        "",  # exchange
        spec.currency,
        spec.local_symbol,
        spec.trading_class,
        format_size(quantity),
        avg_cost,
    ]


def position_end() -> list[Field]:
    """positionEnd: version 1."""
    return [Outgoing.POSITION_END, 1]


def account_value(tag: str, value: str, currency: str, account: str) -> list[Field]:
    """updateAccountValue: version 2, key, value, currency, account."""
    return [Outgoing.ACCT_VALUE, 2, tag, value, currency, account]


def account_download_end(account: str) -> list[Field]:
    """accountDownloadEnd: version 1, account."""
    return [Outgoing.ACCT_DOWNLOAD_END, 1, account]


def account_update_multi_end(req_id: int) -> list[Field]:
    """accountUpdateMultiEnd: version 1, request id."""
    return [Outgoing.ACCOUNT_UPDATE_MULTI_END, 1, req_id]


def execution_data_end(req_id: int) -> list[Field]:
    """execDetailsEnd: version 1, request id."""
    return [Outgoing.EXECUTION_DATA_END, 1, req_id]


def account_summary_end(req_id: int) -> list[Field]:
    """accountSummaryEnd: version 1, request id."""
    return [Outgoing.ACCOUNT_SUMMARY_END, 1, req_id]


def open_order_end() -> list[Field]:
    """openOrderEnd: version 1."""
    return [Outgoing.OPEN_ORDER_END, 1]


def completed_orders_end() -> list[Field]:
    """completedOrdersEnd (no version)."""
    return [Outgoing.COMPLETED_ORDERS_END]


def historical_data(
    req_id: int, start: str, end: str, bars: list[tuple[str, HistoryBar]]
) -> list[Field]:
    """historicalData (no version since server 124): request id, start and end of the query,
    bar count, then per bar date, open, high, low, close, volume, WAP and trade count.

    It also ends the request: a separate historicalDataEnd (108) exists only from server
    version 196, and ib_async's decoder has no handler for it. Each bar comes with its date text;
    the WAP is sent as the close and the trade count as 0, as the emulator models no trades
    inside a bar.
    """
    fields: list[Field] = [Outgoing.HISTORICAL_DATA, req_id, start, end, len(bars)]
    for date, bar in bars:
        fields += [date, bar.open, bar.high, bar.low, bar.close, format_size(bar.volume)]
        fields += [bar.close, 0]
    return fields


def option_chain(
    req_id: int,
    *,
    exchange: str,
    under_con_id: int,
    trading_class: str,
    multiplier: str,
    expirations: list[str],
    strikes: list[float],
) -> list[Field]:
    """securityDefinitionOptionParameter (no version): one chain of expirations and strikes."""
    return [
        Outgoing.SECURITY_DEFINITION_OPTION_PARAMETER,
        req_id,
        exchange,
        under_con_id,
        trading_class,
        multiplier,
        len(expirations),
        *expirations,
        len(strikes),
        *strikes,
    ]


def option_chain_end(req_id: int) -> list[Field]:
    """securityDefinitionOptionParameterEnd (no version): request id."""
    return [Outgoing.SECURITY_DEFINITION_OPTION_PARAMETER_END, req_id]
