"""A lease in the store: which process runs a loop that must run once (a poller).

Taken with one atomic `update_state` at each turn, and kept alive in between by a heartbeat
every third of its length, in real time, whatever the poll interval: so it can be short (the
worker's `AUTOJOIN_LEASE_SECONDS`, 6 s) and a survivor takes over within seconds of its
holder's death, while a live holder in a long turn or a long wait keeps it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from bot.errors import StoreError
from bot.store.aio import AsyncStore

log = logging.getLogger("autojoin")


def _load(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def take_lease(store: AsyncStore, key: str, owner: str, now: float, seconds: float) -> bool:
    """Hold `key` until now + seconds if it is free, expired or already ours."""

    def claim(raw: str | None) -> str | None:
        held = _load(raw)
        if held and held.get("owner") != owner and float(held.get("until", 0)) > now:
            return raw
        return json.dumps({"owner": owner, "until": now + seconds})

    return _load(await store.update_state(key, claim, now)).get("owner") == owner


async def renew_lease(store: AsyncStore, key: str, owner: str, now: float, seconds: float) -> None:
    """Extend `key` to now + seconds if it is ours; never take it from another holder."""

    def renew(raw: str | None) -> str | None:
        if _load(raw).get("owner") != owner:
            return raw
        return json.dumps({"owner": owner, "until": now + seconds})

    await store.update_state(key, renew, now)


async def drop_lease(store: AsyncStore, key: str, owner: str, now: float) -> None:
    def release(raw: str | None) -> str | None:
        return None if _load(raw).get("owner") == owner else raw

    await store.update_state(key, release, now)


async def run_turns(
    turn: Callable[[], Awaitable[float]],
    sleep: Callable[[float], Awaitable[None]],
    *,
    store: AsyncStore,
    key: str,
    owner: str,
    clock: Callable[[], float],
    lease: float,
) -> None:
    """A poller's loop: a turn, then wait as long as it says; the lease's heartbeat beside
    it; on the way out the lease is dropped, so another process takes over at once."""

    async def heartbeat() -> None:
        while True:
            await anyio.sleep(lease / 3)
            try:
                await renew_lease(store, key, owner, clock(), lease)
            except StoreError as exc:  # the next turn retakes it, or another process does
                log.warning("lease %s not renewed: %s", key, exc)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(heartbeat)
            while True:
                await sleep(await turn())
    finally:
        with anyio.CancelScope(shield=True):
            await drop_lease(store, key, owner, clock())
