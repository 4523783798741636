"""The portal's rate budget, shared by every autojoin process through the store.

Bitrix24 counts requests per portal and source IP, so two workers with private buckets
would together run at twice the allowed rate. The level lives in one state key, updated
atomically; a process that finds nothing stored assumes the bucket is full.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from bot.rest.bucket import BucketLevel
from bot.store.base import Store

BUCKET_KEY = "rate.bucket"


class StoreBucketState:
    def __init__(self, store: Store, clock: Callable[[], float], key: str = BUCKET_KEY) -> None:
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
            return None  # unreadable: treated like unknown, i.e. full

    def load(self) -> BucketLevel | None:
        return self._decode(self.store.get_state(self.key))

    def update(self, fn: Callable[[BucketLevel | None], BucketLevel]) -> BucketLevel:
        result: list[BucketLevel] = []

        def apply(raw: str | None) -> str:
            level = fn(self._decode(raw))
            result[:] = [level]
            return json.dumps([round(level[0], 6), level[1]])

        self.store.update_state(self.key, apply, self.clock())
        return result[-1]
