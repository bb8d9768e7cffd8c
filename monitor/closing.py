"""One shape for the run's components that are closed by awaiting them."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncClosing:
    """An async context manager that gives itself on entering and awaits ``close`` on
    leaving, whatever ended the block."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
