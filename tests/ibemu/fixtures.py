"""Pytest fixture for the emulated IB Gateway: import ``ib_gateway_fixture`` into a test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ibemu.gateway import IBGateway


@pytest.fixture(name="ib_gateway")
def ib_gateway_fixture() -> Iterator[IBGateway]:
    """A gateway with the default catalogue serving from a background thread on a free loopback
    port (``ib_gateway.host``, ``ib_gateway.port``); closed after the test."""
    with IBGateway() as gateway:
        yield gateway
