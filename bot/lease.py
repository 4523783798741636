"""A lease in the store: which process runs a loop that must run once (a poller).

Taken and renewed with one atomic `update_state`; it expires on its own when its holder
dies, so a survivor takes over after at most `seconds`.
"""

from __future__ import annotations

import json
from typing import Any

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
