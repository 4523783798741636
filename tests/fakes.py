"""Small fakes shared by tests: a clock that only moves when told to."""

from __future__ import annotations

import anyio.lowlevel
import httpx


class FakeClock:
    """Unix-seconds clock; `sleep` advances it instead of waiting and records each delay."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.time = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    def __call__(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self.time += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
        await anyio.lowlevel.checkpoint()

    @property
    def slept(self) -> float:
        return sum(self.sleeps)


class FakeRecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to `inner` and remembers every URL, to prove where credentials went."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.urls: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return await self.inner.handle_async_request(request)
