"""New hires without a public URL: `user.get` for employees above the highest ID seen.

Every AUTOJOIN_HIRE_POLL_SECONDS (0: off) one process (a lease in the store) asks for active
employees with `>ID` the cursor, in ID order, 50 a page, `start=-1` (no total count: the
cheap cursor-paging pattern, reference §9). Each one becomes the very `ONUSERADD` event an
outbound webhook would push, under the same once-only key (`<member_id>:user:<id>`), so a
hire that is both polled and pushed is added once. The cursor moves only after the page's
events are committed. On the very first start the cursor is set to the highest user ID on
the portal: people who were there before autojoin are not new hires (backfill is `sync`'s).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import anyio

from bot.errors import EventError, PortalError
from bot.events import pulled_event
from bot.intake import Intake
from bot.lease import run_turns, take_lease
from bot.rest import PortalClient
from bot.settings import Settings
from bot.store.aio import AsyncStore

log = logging.getLogger("autojoin.hires")

CURSOR_KEY: Final = "hires.cursor"
LEASE_KEY: Final = "hires.lease"
PAGE: Final = 50
MAX_BACKOFF: Final = 3600.0
FIELDS: Final = ("ID", "NAME", "LAST_NAME", "ACTIVE", "UF_DEPARTMENT", "USER_TYPE")


@dataclass
class HirePoller:
    client: PortalClient
    store: AsyncStore
    intake: Intake
    settings: Settings
    portal: tuple[str, str]  # (member_id, domain), as on pushed events
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    failures: int = 0

    async def run(self) -> None:
        """Forever: one turn, then wait as long as the turn says."""
        await run_turns(
            self.poll_once,
            self.sleep,
            store=self.store,
            key=LEASE_KEY,
            owner=self.owner,
            clock=self.clock,
            lease=self.settings.lease_seconds,
        )

    async def poll_once(self) -> float:
        """One pass (every page); the seconds until the next."""
        interval = self.settings.hire_poll_seconds
        lease = self.settings.lease_seconds
        if not await take_lease(self.store, LEASE_KEY, self.owner, self.clock(), lease):
            return interval
        try:
            cursor = await self.cursor()
            if cursor is None:
                await self._start_cursor()
            else:
                await self._new_hires(cursor)
        except PortalError as exc:
            self.failures += 1  # one failure: the next turn as usual; then doubling
            delay = min(MAX_BACKOFF, interval * 2.0 ** (self.failures - 1))
            log.warning("hire poll failed (%s); next try in %.0f s", exc.code, delay)
            return delay
        self.failures = 0
        return interval

    async def cursor(self) -> int | None:
        raw = await self.store.get_state(CURSOR_KEY)
        return int(raw) if raw is not None and raw.isdigit() else None

    async def _start_cursor(self) -> None:
        """First start: everyone who exists now is staff, not a hire."""
        reply = await self.client.call(
            "user.get", {"filter": {}, "sort": "ID", "order": "DESC", "start": -1}
        )
        rows = reply.result if isinstance(reply.result, list) else []
        top = max((_id(r) for r in rows[:1] if isinstance(r, Mapping)), default=0)
        await self._save(top)
        log.info("hire poll: first start, users up to ID %d are existing staff", top)

    async def _new_hires(self, cursor: int) -> None:
        while True:
            params = {
                "filter": {">ID": cursor, "USER_TYPE": "employee", "ACTIVE": True},
                "sort": "ID",
                "order": "ASC",
                "select": list(FIELDS),
                "start": -1,
            }
            reply = await self.client.call("user.get", params)
            rows = [r for r in reply.result or [] if isinstance(r, Mapping) and _id(r) > cursor]
            for row in rows:
                await self._take(row)
            if rows:
                cursor = max(_id(r) for r in rows)
                await self._save(cursor)  # after the commits: a crash polls them again
            if len(rows) < PAGE:
                return

    async def _take(self, row: Mapping[str, Any]) -> None:
        member_id, domain = self.portal
        data = {k: row[k] for k in FIELDS if k in row and k != "USER_TYPE"}
        try:
            event = pulled_event("ONUSERADD", data, member_id=member_id, domain=domain)
            await self.intake.take(event, self.store, via=" (hire poll)")
        except EventError as exc:
            self.intake.metrics.reject(exc.reason)
            log.warning("polled user %s skipped (%s): %s", row.get("ID"), exc.reason, exc)

    async def _save(self, cursor: int) -> None:
        def forward(raw: str | None) -> str | None:
            old = int(raw) if raw is not None and raw.isdigit() else 0
            return str(max(old, cursor))

        await self.store.update_state(CURSOR_KEY, forward, self.clock())


def _id(row: Mapping[str, Any]) -> int:
    try:
        return int(row.get("ID") or 0)
    except (TypeError, ValueError):
        return 0
