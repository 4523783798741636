"""Fetch mode: the Chatbots 2.0 bot's events pulled with `imbot.v2.Event.get`, no public URL.

Each fetched item becomes the `Event` a pushed body would (`bot.events.pulled_event`) and goes
through the same intake: the same handlers, the same once-only keys, the same durable commit.
Only then is the new offset stored, and it reaches the portal with the next call, which is
what acknowledges the events (`offset=N` confirms every `eventId < N`, reference §5). So a
crash before the commit gets the events again, a crash after it gets them again too, and the
once-only keys make both harmless. The offset lives in the store, per bot, never moves back,
and an empty answer's `nextOffset: 0` leaves it alone.

One process polls at a time (a lease in the store). Idle, every AUTOJOIN_BOT_POLL_SECONDS;
after events, at the latest after `BUSY_POLL`; while `hasMore`, after `BUSY_POLL` (the
reference's floor). A token or
ownership error pauses polling with the reason on `/healthz` and looks again only every
`PAUSED_POLL`; any other failure backs off exponentially. Every call spends the shared budget.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import anyio

from bot.chatbot.runtime import BOT_ID_KEY
from bot.errors import EventError, PortalError
from bot.events import pulled_event
from bot.intake import Intake
from bot.lease import run_turns, take_lease
from bot.rest import PortalClient
from bot.settings import Settings
from bot.store.aio import AsyncStore

log = logging.getLogger("autojoin.fetch")

OFFSET_KEY: Final = "bot.fetch.offset:{}"  # per bot id
LEASE_KEY: Final = "bot.fetch.lease"
PAUSE_KEY: Final = "bot.fetch.paused"
BUSY_POLL: Final = 2.0  # seconds; "when hasMore is true poll again after >= 2 s"
PAUSED_POLL: Final = 300.0
MAX_BACKOFF: Final = 300.0
LIMIT: Final = 100
PAUSING: Final = frozenset(
    {"BOT_OWNERSHIP_ERROR", "BOT_TOKEN_NOT_SPECIFIED", "BOT_NOT_FOUND", "BOT_ID_REQUIRED"}
)
_WHAT_TO_DO: Final = {
    "BOT_OWNERSHIP_ERROR": "B24_BOT_TOKEN is not this bot's token (rotated?); fix it and restart",
    "BOT_TOKEN_NOT_SPECIFIED": "B24_BOT_TOKEN is missing; set it and restart",
    "BOT_NOT_FOUND": "the bot is not registered on the portal; run `autojoin register-bot`",
    "BOT_ID_REQUIRED": "the bot is not registered; run `autojoin register-bot`",
}


@dataclass
class BotFetcher:
    client: PortalClient
    store: AsyncStore
    intake: Intake
    settings: Settings
    portal: tuple[str, str]  # (member_id, domain): the key scope pushed events get too
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    failures: int = 0
    paused: str | None = None

    @property
    def lease_seconds(self) -> float:
        """A dead holder is replaced within this (a live one's heartbeat keeps it)."""
        return self.settings.lease_seconds

    async def run(self) -> None:
        """Forever: one turn, then wait as long as the turn says."""
        await run_turns(
            self.poll_once,
            self.sleep,
            store=self.store,
            key=LEASE_KEY,
            owner=self.owner,
            clock=self.clock,
            lease=self.lease_seconds,
        )

    async def poll_once(self) -> float:
        """Fetch, commit, store the offset; the seconds until the next turn."""
        idle = self.settings.bot_poll_seconds
        now = self.clock()
        if not await take_lease(self.store, LEASE_KEY, self.owner, now, self.lease_seconds):
            return idle
        try:
            bot_id = await self._bot_id()
            offset = await self.offset(bot_id)
            params: dict[str, Any] = {"botId": bot_id, "limit": LIMIT}
            if offset:
                params["offset"] = offset
            token = self.settings.bot_token
            params["botToken"] = token.reveal() if token is not None else ""
            reply = await self.client.call("imbot.v2.Event.get", params)
        except PortalError as exc:
            return await self._failed(exc)
        await self._resume()
        answer = reply.result if isinstance(reply.result, Mapping) else {}
        items = answer.get("events") or []
        if not isinstance(items, list):
            items = []
        for item in items:
            await self._take(item)
        next_offset = _int(answer.get("nextOffset"))
        if items and next_offset > offset:
            await self._advance(bot_id, next_offset)  # acknowledged by the next call
        if answer.get("hasMore"):
            return BUSY_POLL  # the reference's floor while more are waiting
        return min(idle, BUSY_POLL) if items else idle

    async def offset(self, bot_id: int) -> int:
        return _int(await self.store.get_state(OFFSET_KEY.format(bot_id)))

    async def _bot_id(self) -> int:
        raw = await self.store.get_state(BOT_ID_KEY)
        if raw is None or not raw.isdigit():
            raise PortalError("imbot.v2.Event.get", "BOT_ID_REQUIRED", "no bot id in the store")
        return int(raw)

    async def _take(self, item: Any) -> None:
        """Nobody to answer with a 4xx: a malformed item is logged, counted and passed over
        (the offset moves past it); anything else, a store failure first, ends the turn."""
        member_id, domain = self.portal
        entry: Mapping[str, Any] = item if isinstance(item, Mapping) else {}
        try:
            event = pulled_event(
                entry.get("type"), entry.get("data"), member_id=member_id, domain=domain
            )
            await self.intake.take(event, self.store, via=" (fetched)")
        except EventError as exc:
            self.intake.metrics.reject(exc.reason)
            log.warning("fetched event %s skipped (%s): %s", entry.get("eventId"), exc.reason, exc)

    async def _advance(self, bot_id: int, offset: int) -> None:
        def forward(raw: str | None) -> str | None:
            return str(max(_int(raw), offset))

        await self.store.update_state(OFFSET_KEY.format(bot_id), forward, self.clock())

    async def _failed(self, exc: PortalError) -> float:
        if exc.code in PAUSING:
            reason = _WHAT_TO_DO.get(exc.code, exc.code)
            if self.paused != exc.code:
                log.error("bot fetch paused: %s (%s)", reason, exc.code)
            self.paused = exc.code
            pause = {"code": exc.code, "reason": reason, "since": self.clock()}
            await self.store.set_state(PAUSE_KEY, json.dumps(pause), self.clock())
            # Not registered yet is known locally, costs no call: look again soon.
            return self.settings.bot_poll_seconds if exc.code == "BOT_ID_REQUIRED" else PAUSED_POLL
        self.failures += 1  # one failure: the next turn as usual; then doubling
        delay = min(MAX_BACKOFF, self.settings.bot_poll_seconds * 2.0 ** (self.failures - 1))
        log.warning("bot fetch failed (%s); next try in %.0f s", exc.code, delay)
        return delay

    async def _resume(self) -> None:
        self.failures = 0
        if self.paused is not None or await self.store.get_state(PAUSE_KEY) is not None:
            log.info("bot fetch resumed")
            self.paused = None
            await self.store.set_state(PAUSE_KEY, None, self.clock())


async def fetch_health(store: AsyncStore) -> list[dict[str, object]]:
    """The pause reason, for `/healthz`."""
    raw = await store.get_state(PAUSE_KEY)
    if raw is None:
        return []
    try:
        pause = json.loads(raw)
    except ValueError:
        return []
    return [{"check": "bot_fetch", "code": pause.get("code"), "message": pause.get("reason")}]


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
