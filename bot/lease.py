"""A lease in the store: which process runs a loop that must run once (a poller).

Taken and renewed with one atomic `update_state`; it expires on its own when its holder
dies, so a survivor takes over after at most `seconds`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from bot.store.aio import AsyncStore


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
) -> None:
    """A poller's loop: a turn, then wait as long as it says; on the way out the lease is
    dropped, so another process takes over at once instead of after it expires."""
    try:
        while True:
            await sleep(await turn())
    finally:
        with anyio.CancelScope(shield=True):
            await drop_lease(store, key, owner, clock())
