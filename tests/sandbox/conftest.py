from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.sandbox import FakePortal
from tests.fakes import FakeClock

ADMIN_BASE = "http://portal.test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_772_432_000.0)


@pytest.fixture
def portal(clock: FakeClock) -> FakePortal:
    return FakePortal(clock=clock)


def client_for(portal: FakePortal, base_url: str | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=portal.app)
    return httpx.AsyncClient(transport=transport, base_url=base_url or portal.webhook_url())


@pytest.fixture
async def rest(portal: FakePortal) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose base URL is the webhook: `await rest.post("user.get", json=...)`."""
    async with client_for(portal) as client:
        yield client


@pytest.fixture
async def admin(portal: FakePortal) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(portal, ADMIN_BASE) as client:
        yield client
