"""Retention: old finished jobs, dedupe keys and audit rows are pruned once a day.

Every process may run the loop; a state key in the store makes one pass per interval
happen once, whichever process gets there first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio

from bot.settings import Settings
from bot.store.aio import AsyncStore

log = logging.getLogger("autojoin.retention")

DAY = 86_400.0
LAST_KEY = "retention.last"


def cutoffs(settings: Settings, now: float) -> dict[str, float]:
    return {
        "done_jobs_before": now - settings.keep_jobs_days * DAY,
        "events_before": now - settings.keep_events_days * DAY,
        "audit_before": now - settings.keep_audit_days * DAY,
    }


async def prune_once(
    store: AsyncStore, settings: Settings, now: float, interval: float = DAY
) -> dict[str, int] | None:
    """Prune if nobody did in the last `interval`; None when it was not this process's turn."""
    claimed: list[bool] = []

    def take_turn(raw: str | None) -> str | None:
        due = raw is None or now - float(raw) >= interval
        claimed[:] = [due]
        return str(now) if due else raw

    await store.update_state(LAST_KEY, take_turn, now)
    if not claimed[0]:
        return None
    limits = cutoffs(settings, now)
    counts = await store.prune(
        now, limits["done_jobs_before"], limits["events_before"], limits["audit_before"]
    )
    log.info("pruned: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return counts


def periodic(
    store: AsyncStore,
    settings: Settings,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def loop() -> None:
        while True:
            await prune_once(store, settings, clock())
            await sleep(3600)

    return loop
