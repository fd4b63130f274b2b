"""Fixtures of the bank adapter tests (see ``bank_support``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from bank_support import BANK, KEY, MemoryUtility

from powerbus.adapters.bank import KeyRing, MessageCodec, ProtocolServer, collection_dispatcher


@pytest.fixture
def keys() -> KeyRing:
    return KeyRing({BANK: KEY})


@pytest.fixture
def codec(keys: KeyRing) -> MessageCodec:
    return MessageCodec(keys)


@pytest.fixture
def utility() -> MemoryUtility:
    return MemoryUtility()


@pytest.fixture
async def utility_server(
    codec: MessageCodec, utility: MemoryUtility
) -> AsyncIterator[ProtocolServer]:
    """The utility's bank-node side on a free loopback port."""
    server = ProtocolServer(
        codec=codec,
        handler=collection_dispatcher(utility, bank_code=BANK),
        handler_timeout=dt.timedelta(seconds=2),
    )
    async with server:
        yield server
