"""The portal's outgoing POSTs: webhook-mode bot events and outgoing-webhook classic events.

Everything the portal owes someone waits in `state.v2.outbox` (filled under the portal lock by
the code that caused it) and goes out here, one POST each, in order, outside the lock. Like
the real portal it sends once and never retries; each attempt is logged as a `Delivery`
(URL, event, HTTP status or the exception's class name, never a body: bodies carry tokens).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

import httpx

from bot.sandbox.events import user_add
from bot.sandbox.state import PortalState, User
from bot.sandbox.state_v2 import Delivery, Outgoing

TIMEOUT_SECONDS: Final = 10.0
HEADERS: Final = {
    "content-type": "application/x-www-form-urlencoded",
    "user-agent": "Bitrix24 Webhook Engine",
}


def queue_user_add(state: PortalState, user: User, ts: int) -> int:
    """ONUSERADD to every outgoing webhook subscribed to it; how many were queued."""
    subscribed = [s for s in state.v2.subscriptions if s.event == "ONUSERADD"]
    for sub in subscribed:
        body = user_add(user, token=sub.token, ts=ts)
        state.v2.outbox.append(Outgoing(sub.url, "ONUSERADD", body))
    return len(subscribed)


async def deliver(
    state: PortalState,
    lock: threading.RLock,
    clock: Callable[[], float],
    transport: httpx.AsyncBaseTransport | None,
) -> list[Delivery]:
    """POST everything in the outbox; the deliveries made, in order."""
    with lock:
        pending = list(state.v2.outbox)
        state.v2.outbox.clear()
    if not pending:
        return []
    done: list[Delivery] = []
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT_SECONDS) as client:
        for item in pending:
            status: int | None = None
            try:
                response = await client.post(item.url, content=item.body, headers=HEADERS)
            except httpx.HTTPError as exc:
                error: str | None = type(exc).__name__
            else:
                status = response.status_code
                error = None if response.is_success else f"HTTP {status}"
            done.append(Delivery(item.url, item.event, status, error, clock(), item.bot_id))
    with lock:
        state.v2.deliveries.extend(done)
    return done
