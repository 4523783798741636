"""The stateful fake Bitrix24 portal: the one object tests and `autojoin demo` talk to.

    portal = FakePortal()                      # the sample company, webhook user 1
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=portal.app),
                             base_url=portal.webhook_url())
    ...
    assert 8 in portal.chat_members(101)

Everything goes over HTTP (`portal.app`), so the service's real REST client runs unchanged.
The methods below are for setting the stage and asserting; the same controls exist over
HTTP under `/_admin/` for tests in another process.

The portal speaks the classic API (`user.get`, `department.get`, `im.chat.user.*`,
`im.dialog.get`, `imbot.*` with CLIENT_ID, `batch`) and Chatbots 2.0 (`imbot.v2.Bot.*`,
`Command.*`, `Chat.Message.send`, `Event.get`, `Revision.get` with botToken ownership; see
`methods_v2`). Things that happen at run time go through `portal.stage`:

    bot_id = ...                                   # registered with imbot.v2.Bot.register
    portal.stage.message(bot_id, 4, "join marketing")          # 1:1; chat_id= for a group
    portal.stage.command(bot_id, 4, "join", "marketing")       # ONIMBOTV2COMMANDADD
    portal.stage.join(bot_id, 2, chat_id=101)                  # ONIMBOTV2JOINCHAT
    portal.stage.hire(name="Nina", departments=[8])            # a new user (+ ONUSERADD)
    portal.stage.rewind(bot_id)                                # serve acked events again

A fetch-mode bot's events wait in its queue for `imbot.v2.Event.get`; a webhook-mode bot's
(and outgoing-webhook ONUSERADD) are POSTed on `await portal.deliver()`, through
`portal.outbound` (an httpx transport; None is the network). The admin API delivers before
it answers, and a REST call that owes a POST sends it right after its answer.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from bot.sandbox.admin import snapshot
from bot.sandbox.app import create_app
from bot.sandbox.company import sample_company
from bot.sandbox.dispatch import DEFAULT_STATUS, Dispatcher
from bot.sandbox.limits import LeakyBucket, OperatingLimit
from bot.sandbox.outbound import deliver
from bot.sandbox.server import serve_in_thread
from bot.sandbox.stage import Stage
from bot.sandbox.state import (
    Call,
    Chat,
    Counters,
    Department,
    FailureRate,
    Fault,
    Message,
    PortalState,
    User,
    Webhook,
)
from bot.sandbox.state_v2 import Delivery

__all__ = [
    "Call",
    "Chat",
    "Department",
    "FakePortal",
    "Message",
    "PortalState",
    "User",
    "Webhook",
]


class FakePortal:
    def __init__(
        self,
        state: PortalState | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rate: float = 2.0,
        burst: int = 50,
        time_scale: float = 1.0,
        operating_limit: float = 480.0,
        outbound: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.state = sample_company() if state is None else state
        self.clock = clock
        self.bucket = LeakyBucket(burst=burst, rate=rate, time_scale=time_scale)
        self.operating = OperatingLimit(limit=operating_limit, time_scale=time_scale)
        # Requests run on the app's event loop, tests poke state from their own thread.
        self.lock = threading.RLock()
        self.dispatcher = Dispatcher(self.state, self.bucket, self.operating, clock)
        # Where the portal's own POSTs go (webhook-mode bots, outgoing webhooks); None is
        # the network. Settable later: the receiving app is often built after the portal.
        self.outbound = outbound
        self.stage = Stage(self)
        self.app = create_app(self)

    def __repr__(self) -> str:
        return (
            f"<FakePortal users={len(self.state.users)} chats={len(self.state.chats)}"
            f" requests={self.state.counters.http_requests}>"
        )

    # -- reading -------------------------------------------------------------------------

    def webhook_url(self, base: str = "http://portal.test") -> str:
        """The incoming-webhook base URL; it contains the secret code, so don't log it."""
        if not self.state.webhooks:
            raise LookupError("the portal has no webhook")
        hook = self.state.webhooks[0]
        return f"{base.rstrip('/')}/rest/{hook.user_id}/{hook.code}/"

    def chat_members(self, chat_id: int) -> set[int]:
        with self.lock:
            return set(self.state.chats[chat_id].members)

    def history_hidden(self, chat_id: int, user_id: int) -> bool | None:
        """How a member was added: True hidden, False shown, None if the fake did not add them."""
        with self.lock:
            return self.state.chats[chat_id].history_hidden.get(user_id)

    def calls_to(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.state.calls if c.method == method]

    @property
    def messages(self) -> list[Message]:
        with self.lock:
            return list(self.state.messages)

    @property
    def http_requests(self) -> int:
        return self.state.counters.http_requests

    @property
    def counters(self) -> Counters:
        return self.state.counters

    async def deliver(self) -> list[Delivery]:
        """Send every POST the portal owes (see `bot.sandbox.outbound`)."""
        return await deliver(self.state, self.lock, self.clock, self.outbound)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return snapshot(self.state)

    # -- setting the stage ---------------------------------------------------------------

    def upsert_user(self, id: int | None = None, **fields: Any) -> User:
        """Add a user, or change the given fields of an existing one (e.g. a transfer)."""
        with self.lock:
            users = self.state.users
            if id is not None and id in users:
                user = users[id]
                for name, value in fields.items():
                    if not hasattr(user, name) or name == "id":
                        raise TypeError(f"unknown user field {name!r}")
                    setattr(user, name, list(value) if name == "departments" else value)
                return user
            new_id = id if id is not None else max(users, default=0) + 1
            return self.state.add_user(User(new_id, **fields))

    def fail_next(
        self,
        method: str,
        code: str,
        status: int | None = None,
        times: int = 1,
        description: str = "",
        html: bool = False,
    ) -> None:
        """Queue a fault for the next `times` calls of `method` ("*" = any method)."""
        if times < 1:
            raise ValueError("times must be >= 1")
        chosen = DEFAULT_STATUS.get(code, 400) if status is None else status
        with self.lock:
            self.state.faults.append(Fault(method, code, chosen, times, description, html))

    def set_failure_rate(
        self,
        method: str,
        rate: float,
        code: str = "INTERNAL_SERVER_ERROR",
        status: int = 500,
        seed: int = 0,
    ) -> None:
        """Fail a seeded-random fraction of calls; rate 0 switches it off."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within 0..1")
        with self.lock:
            if rate == 0:
                self.state.failure_rates.pop(method, None)
            else:
                entry = FailureRate(method, rate, code, status, random.Random(seed))
                self.state.failure_rates[method] = entry

    def hold(self) -> None:
        """Park every REST request unanswered until `release()`."""
        self.state.held = True

    def release(self) -> None:
        self.state.held = False

    def set_down(self, down: bool = True) -> None:
        """While down, every REST request gets a 503 HTML page."""
        self.state.down = down

    def revoke_webhook(self) -> None:
        with self.lock:
            for hook in self.state.webhooks:
                hook.revoked = True

    def restore_webhook(self) -> None:
        with self.lock:
            for hook in self.state.webhooks:
                hook.revoked = False

    def set_scopes(self, *scopes: str) -> None:
        with self.lock:
            for hook in self.state.webhooks:
                hook.scopes = set(scopes)

    def set_operating_cost(self, method: str, seconds: float) -> None:
        """Seconds each call of `method` adds to its operating budget (0 = off)."""
        with self.lock:
            self.operating.set_cost(method, seconds)

    def reset_counters(self) -> None:
        """Zero the counters and forget the call log (state and limits stay)."""
        with self.lock:
            held_now = self.state.counters.held_now
            self.state.counters = Counters(held_now=held_now)
            self.state.calls.clear()

    def reset_limits(self) -> None:
        with self.lock:
            self.bucket.reset()
            self.operating.reset()

    @contextmanager
    def serve_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve the app under uvicorn on a free port; yield the base URL (no `/rest/...`)."""
        with serve_in_thread(self.app, host, port) as base:
            try:
                yield base
            finally:
                self.release()  # parked requests would otherwise stall the shutdown
