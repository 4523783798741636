"""Small fakes shared by tests: a clock that only moves when told to, a heartbeat that beats
when told to, and a transport that "kills the process" in the middle of a call."""

from __future__ import annotations

from collections.abc import Callable, Collection

import anyio
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


class FakeBeat:
    """A heartbeat's sleep that ends only on `tick()`: the test decides when a beat happens."""

    def __init__(self) -> None:
        self.intervals: list[float] = []
        self._asleep = anyio.Event()
        self._go = anyio.Event()

    async def sleep(self, seconds: float) -> None:
        self.intervals.append(seconds)
        self._asleep.set()
        await self._go.wait()
        self._go = anyio.Event()

    async def tick(self) -> None:
        """Wake the sleeper and return once it sleeps again, i.e. once its beat's work is done."""
        await self._asleep.wait()
        self._asleep = anyio.Event()
        self._go.set()
        await self._asleep.wait()


class FakeCrashTransport(httpx.AsyncBaseTransport):
    """Passes requests to `inner`; once armed, lets `survive` calls of `methods` through and
    "kills the process" at the next one: `crash()` runs (it cancels the caller's scope) and
    the request never leaves, as if the process died while sending it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, methods: Collection[str]) -> None:
        self.inner = inner
        self.methods = frozenset(methods)
        self.crash: Callable[[], None] | None = None
        self.survive = 0
        self.crashed = False

    def arm(self, crash: Callable[[], None], survive: int) -> None:
        self.crash, self.survive, self.crashed = crash, survive, False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.crash is not None and request.url.path.rsplit("/", 1)[-1] in self.methods:
            if self.survive == 0:
                crash, self.crash, self.crashed = self.crash, None, True
                crash()
                await anyio.sleep_forever()
            self.survive -= 1
        return await self.inner.handle_async_request(request)
