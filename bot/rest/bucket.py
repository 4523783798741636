"""Client-side throttles for the two Bitrix24 limits (reference §7.1 and §7.2).

`LeakyBucket` mirrors the portal's request counter (burst 50, drain 2/s; Enterprise 250/5)
so autojoin waits instead of being refused with QUERY_LIMIT_EXCEEDED. The portal counts
per portal and source IP, so several autojoin processes must share one level: it lives
behind the tiny `BucketState` protocol (`StoreBucketState` keeps it in the store).
`OperatingGuard` tracks each method's execution budget (`time.operating`) and holds back
only the method that is running out.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.rest.errors import number

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
BucketLevel = tuple[float, float]
"""(level, at): the counter value and the clock time it was computed for."""
BUCKET_KEY = "rate.bucket"


class BucketState(Protocol):
    """Storage for one bucket's level, possibly shared by several processes.

    `update(fn)` must be atomic across everyone sharing the state: read the stored pair
    (None if nothing is stored yet), store `fn(pair)`, return what was stored. A database
    backend runs it in one transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL
    `SELECT ... FOR UPDATE`); `fn` is pure and quick, so it may be re-run after a conflict.
    Both methods are coroutines: a shared level lives in the database, and a locked database
    must never stall the event loop (and with it the events endpoint).
    """

    async def load(self) -> BucketLevel | None: ...

    async def update(self, fn: Callable[[BucketLevel | None], BucketLevel]) -> BucketLevel: ...


class MemoryBucketState:
    """The level for one process (or one test)."""

    def __init__(self, initial: BucketLevel | None = None) -> None:
        self._value = initial

    async def load(self) -> BucketLevel | None:
        return self._value

    async def update(self, fn: Callable[[BucketLevel | None], BucketLevel]) -> BucketLevel:
        self._value = fn(self._value)
        return self._value


class StateStore(Protocol):
    """The two store methods a shared bucket needs (`AsyncStore` has them)."""

    async def get_state(self, key: str) -> str | None: ...

    async def update_state(
        self, key: str, fn: Callable[[str | None], str | None], now: float
    ) -> str | None: ...


class StoreBucketState:
    """The level in one store key, shared by every autojoin process.

    Bitrix24 counts requests per portal and source IP, so two workers with private buckets
    would together run at twice the allowed rate. An unreadable value counts as unknown,
    which the bucket treats as full.
    """

    def __init__(self, store: StateStore, clock: Clock, key: str = BUCKET_KEY) -> None:
        self.store = store
        self.clock = clock
        self.key = key

    @staticmethod
    def _decode(raw: str | None) -> BucketLevel | None:
        if raw is None:
            return None
        try:
            level, at = json.loads(raw)
            return float(level), float(at)
        except (ValueError, TypeError):
            return None

    async def load(self) -> BucketLevel | None:
        return self._decode(await self.store.get_state(self.key))

    async def update(self, fn: Callable[[BucketLevel | None], BucketLevel]) -> BucketLevel:
        result: list[BucketLevel] = []

        def apply(raw: str | None) -> str:
            level = fn(self._decode(raw))
            result[:] = [level]
            return json.dumps([round(level[0], 6), level[1]])

        await self.store.update_state(self.key, apply, self.clock())
        return result[-1]


class LeakyBucket:
    """Every request adds 1; the level drains at `rate` per second; requests wait to fit.

    A request is recorded when it reserves its slot, even if it then sleeps: the level
    may run ahead of the limit by the queued requests, and each caller waits exactly until
    its own request fits. `limit = capacity - headroom` keeps autojoin below the portal's
    threshold. Unknown state (nothing stored yet) counts as full at `limit`: a fresh process
    cannot know what others just did. A reservation whose caller is cancelled while waiting
    stays spent: that errs on the slow side.
    """

    def __init__(
        self,
        capacity: float = 50,
        rate: float = 2.0,
        *,
        clock: Clock,
        sleep: Sleep,
        state: BucketState | None = None,
        headroom: float = 2.0,
        start_full: bool = False,
    ) -> None:
        if capacity < 1 or rate <= 0 or headroom < 0:
            raise ValueError("capacity must be >= 1, rate > 0 and headroom >= 0")
        self.capacity = float(capacity)
        self.rate = float(rate)
        self.limit = max(1.0, self.capacity - headroom)
        self.clock = clock
        self.sleep = sleep
        self.state: BucketState = state if state is not None else MemoryBucketState()
        self._born = clock()  # nothing stored yet means: full at `limit` when we were built
        # A fresh process cannot know what others did while it was down: its first
        # reservation counts from full (`assume_full`), whatever a shared state says.
        self._start_full = start_full

    def _drained(self, stored: BucketLevel | None, now: float) -> BucketLevel:
        level, at = (self.limit, self._born) if stored is None else stored
        return max(0.0, level - max(0.0, now - at) * self.rate), max(now, at)

    async def level(self) -> float:
        """The current level, queued reservations included (read-only)."""
        return self._drained(await self.state.load(), self.clock())[0]

    async def until_room(self) -> float:
        """Seconds until one more request would go out at once; nothing is reserved. A
        caller that can choose *what* to send when its turn comes (the worker's claim) waits
        here instead of in a reservation: its request then carries everything that became
        due meanwhile, and it holds no work while it waits."""
        now = self.clock()
        level = max(self._drained(await self.state.load(), now)[0], self._floor(now))
        return max(0.0, (level + 1.0 - self.limit) / self.rate)

    def _floor(self, now: float) -> float:
        """Until its first reservation, a process counts the bucket as full when it was built."""
        return self._drained(None, now)[0] if self._start_full else 0.0

    async def reserve(self) -> float:
        """Record one request now; return how long its caller must wait before sending it."""
        now = self.clock()
        floor = self._floor(now)

        def take(stored: BucketLevel | None) -> BucketLevel:
            level, at = self._drained(stored, now)
            return max(level, floor) + 1.0, at

        level, _ = await self.state.update(take)
        self._start_full = False
        return max(0.0, (level - self.limit) / self.rate)

    async def acquire(self) -> float:
        """Wait until one more request fits, then return how long that took."""
        wait = await self.reserve()
        if wait > 0:
            await self.sleep(wait)
        return wait

    async def _raise_to(self, floor: float) -> None:
        now = self.clock()

        def fill(stored: BucketLevel | None) -> BucketLevel:
            level, at = self._drained(stored, now)
            return max(level, floor), at

        await self.state.update(fill)

    async def assume_full(self) -> None:
        """A fresh process cannot know what happened while it was down: start from full."""
        await self._raise_to(self.limit)

    async def saturate(self) -> None:
        """The portal said QUERY_LIMIT_EXCEEDED: its counter is at least `capacity`."""
        await self._raise_to(self.capacity)


@dataclass(slots=True)
class _Usage:
    operating: float = 0.0
    reset_at: float | None = None
    blocked_until: float = 0.0


class OperatingGuard:
    """Per-method execution budget, fed by every response's `time` (reference §7.2).

    Below `slow_from × limit` nothing happens. Above it each call of that method is delayed
    in proportion, up to `max_delay`; at or over the limit the method waits for
    `operating_reset_at`. After OPERATION_TIME_LIMIT the method is blocked until the reset
    (or one one-minute basket when the portal gave no time). Other methods are unaffected.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        limit: float = 480.0,
        slow_from: float = 0.8,
        max_delay: float = 10.0,
        basket: float = 60.0,
    ) -> None:
        if limit <= 0 or not 0 <= slow_from < 1 or max_delay < 0 or basket <= 0:
            raise ValueError("limit and basket must be positive, 0 <= slow_from < 1")
        self.clock = clock
        self.limit = limit
        self.slow_from = slow_from
        self.max_delay = max_delay
        self.basket = basket
        self._methods: dict[str, _Usage] = {}

    def record(self, method: str, time: Mapping[str, Any] | None) -> None:
        """Remember the latest `operating` figures a response reported for `method`."""
        if not isinstance(time, Mapping):
            return
        operating = number(time.get("operating"))
        if operating is None:
            return
        usage = self._methods.setdefault(method.lower(), _Usage())
        usage.operating = operating
        usage.reset_at = number(time.get("operating_reset_at"))

    def block(self, method: str, reset_at: float | None = None) -> float:
        """OPERATION_TIME_LIMIT for `method`: refuse it until the returned time."""
        now = self.clock()
        usage = self._methods.setdefault(method.lower(), _Usage())
        if reset_at is None or reset_at <= now:
            known = usage.reset_at
            reset_at = known if known is not None and known > now else now + self.basket
        usage.blocked_until = max(usage.blocked_until, reset_at)
        return usage.blocked_until

    def blocked_until(self, method: str) -> float | None:
        usage = self._methods.get(method.lower())
        if usage is None or usage.blocked_until <= self.clock():
            return None
        return usage.blocked_until

    def delay(self, method: str) -> float:
        """Seconds to wait before calling `method` (0 almost always)."""
        usage = self._methods.get(method.lower())
        if usage is None:
            return 0.0
        now = self.clock()
        if usage.blocked_until > now:
            return usage.blocked_until - now
        if usage.reset_at is not None and usage.reset_at <= now:
            return 0.0  # a basket dropped out since: the figure is stale, the next reply renews it
        start = self.slow_from * self.limit
        if usage.operating < start:
            return 0.0
        if usage.operating >= self.limit:
            return usage.reset_at - now if usage.reset_at is not None else self.basket
        return self.max_delay * (usage.operating - start) / (self.limit - start)
