"""The portal's department tree, fetched with `department.get` and cached with a TTL.

An ID the cache does not know forces a refresh (a department created since the last
fetch), but at most once per `unknown_refresh` seconds so a bogus ID cannot cause a storm;
until then the job waits (a retry at the refresh time) instead of matching too little.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from bot.departments import DepartmentTree
from bot.errors import PortalRateLimited

if TYPE_CHECKING:
    from bot.rest import PortalClient

log = logging.getLogger("autojoin.directory")


class DepartmentDirectory:
    def __init__(
        self,
        client: PortalClient,
        *,
        clock: Callable[[], float],
        ttl: float = 600.0,
        unknown_refresh: float = 30.0,
    ) -> None:
        self._client = client
        self._clock = clock
        self._ttl = ttl
        self._unknown_refresh = unknown_refresh
        self._tree: DepartmentTree | None = None
        self._fetched_at = float("-inf")
        self.fetches = 0

    async def tree(self, require: Iterable[int] = ()) -> DepartmentTree:
        now = self._clock()
        tree = self._tree
        stale = tree is None or now - self._fetched_at > self._ttl
        missing = tree is not None and any(not tree.contains(d) for d in require)
        if stale:
            return await self.refresh()
        assert tree is not None
        if missing:
            retry_at = self._fetched_at + self._unknown_refresh
            if now < retry_at:
                raise PortalRateLimited(
                    "department.get",
                    "DEPARTMENT_UNKNOWN",
                    "a department newer than the cached tree; refreshing soon",
                    reset_at=retry_at,
                )
            return await self.refresh()
        return tree

    async def refresh(self) -> DepartmentTree:
        rows = await self._client.call_list("department.get", {})
        self._tree = DepartmentTree.from_rows(rows)
        self._fetched_at = self._clock()
        self.fetches += 1
        log.debug("department tree refreshed: %d departments", len(self._tree.ids))
        return self._tree
