"""The two cloud limits (reference §7.1, §7.2), driven by whatever clock the portal was given.

`time_scale` speeds the portal's notion of time up for benchmarks: a scale of 10 drains the
bucket ten times faster and makes the operating window a tenth as long.
"""

from __future__ import annotations

import math
from typing import Final

BASKETS: Final = 10
# Unix timestamps near 1.7e9 lose ~1e-7 s in float subtraction: elapsed time is rounded to
# microseconds and a millionth of a request is forgiven, so exact test arithmetic holds.
_SLACK: Final = 1e-6
BASKET_SECONDS: Final = 60.0


class LeakyBucket:
    """+1 per HTTP request, drains `rate` per second, refuses when the level would pass `burst`.

    A refused request does not fill the bucket: the portal drops it before doing any work,
    and counting it would let a client that ignores 503s lock itself out forever.
    """

    def __init__(self, *, burst: int = 50, rate: float = 2.0, time_scale: float = 1.0) -> None:
        if burst < 1 or rate <= 0 or time_scale <= 0:
            raise ValueError("burst must be >= 1, rate and time_scale > 0")
        self.burst = burst
        self.rate = rate
        self.time_scale = time_scale
        self._level = 0.0
        self._at: float | None = None

    def level(self, now: float) -> float:
        if self._at is not None and now > self._at:
            drained = round(now - self._at, 6) * self.rate * self.time_scale
            self._level = max(0.0, self._level - drained)
        self._at = now if self._at is None else max(self._at, now)
        return self._level

    def admit(self, now: float) -> bool:
        if self.level(now) + 1 > self.burst + _SLACK:
            return False
        self._level += 1
        return True

    def reset(self) -> None:
        self._level = 0.0
        self._at = None


class OperatingLimit:
    """Per-method execution seconds over ten one-minute baskets; over `limit` blocks the method.

    Real seconds are meaningless in a fake, so each method has a configured cost per call
    (0 by default, which keeps the limit out of the way unless a test asks for it).
    """

    def __init__(self, *, limit: float = 480.0, time_scale: float = 1.0) -> None:
        if limit <= 0 or time_scale <= 0:
            raise ValueError("limit and time_scale must be > 0")
        self.limit = limit
        self.basket_seconds = BASKET_SECONDS / time_scale
        self.costs: dict[str, float] = {}
        self._baskets: dict[str, dict[int, float]] = {}

    def set_cost(self, method: str, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("cost must be >= 0")
        self.costs[method] = seconds

    def _window(self, method: str, now: float) -> dict[int, float]:
        current = math.floor(now / self.basket_seconds)
        baskets = self._baskets.setdefault(method, {})
        for index in [i for i in baskets if i <= current - BASKETS]:
            del baskets[index]
        return baskets

    def operating(self, method: str, now: float) -> float:
        return float(sum(self._window(method, now).values()))

    def reset_at(self, method: str, now: float) -> float:
        """When the oldest basket drops out of the window (or a full window ahead if none)."""
        baskets = self._window(method, now)
        if not baskets:
            return now + BASKETS * self.basket_seconds
        return (min(baskets) + BASKETS) * self.basket_seconds

    def blocked(self, method: str, now: float) -> bool:
        return self.operating(method, now) > self.limit

    def charge(self, method: str, now: float) -> float:
        cost = self.costs.get(method, 0.0)
        if cost > 0:
            index = math.floor(now / self.basket_seconds)
            baskets = self._window(method, now)
            baskets[index] = baskets.get(index, 0.0) + cost
        return cost

    def reset(self) -> None:
        self._baskets.clear()
