"""What a burst of ticks from the IB API emulator has left in ib_async's tickers."""

from __future__ import annotations

from ibemu.gateway import IBGateway

from monitor.feeds.ib import IbFeed


def heard_everything(
    feed: IbFeed, gw: IBGateway, newest: dict[str, tuple[float, float] | float]
) -> bool:
    """Whether ib_async's tickers hold the newest value of every instrument: the burst is in.
    ``newest`` maps an instrument to its newest index value or (bid, ask)."""
    tickers = {t.contract.conId: t for t in feed.ib.tickers() if t.contract}
    for key, value in newest.items():
        ticker = tickers.get(gw.contract(key).con_id)
        if ticker is None:
            return False
        seen = ticker.last if isinstance(value, float) else (ticker.bid, ticker.ask)
        if seen != value:
            return False
    return True
