"""What the fake keeps for Chatbots 2.0 and for events it pushes out: plain dataclasses.

A v2 bot is an ordinary `Bot` (same id space, same chat membership) with a `BotV2` attached;
its fetch-mode events wait in an `EventQueue`, and everything the portal POSTs to someone
(webhook-mode bot events, outgoing-webhook `ONUSERADD`) passes through `V2State.outbox`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

# Private dialogs get chat ids of their own on a real portal; a far range keeps them clear of
# the group chats of the sample and generated companies.
FIRST_PRIVATE_CHAT_ID: Final = 900_001


@dataclass(slots=True)
class BotV2:
    token: str = field(repr=False)  # the botToken: a secret, never in a repr or admin view
    event_mode: str = "fetch"
    webhook_url: str = ""
    is_hidden: bool = False
    is_reactions_enabled: bool = True
    is_support_openline: bool = False
    background_id: str | None = None
    language: str = "en"
    users_seen: set[int] = field(default_factory=set)  # countUser


@dataclass(slots=True)
class QueuedEvent:
    event_id: int
    type: str
    date: str
    data: dict[str, Any]

    def item(self) -> dict[str, Any]:
        """One `events[]` entry of `imbot.v2.Event.get`."""
        return {"eventId": self.event_id, "type": self.type, "date": self.date, "data": self.data}


@dataclass(slots=True)
class EventQueue:
    """A fetch-mode bot's events: `pending` until an `offset` acknowledges them."""

    pending: list[QueuedEvent] = field(default_factory=list)
    acknowledged: list[QueuedEvent] = field(default_factory=list)


@dataclass(slots=True)
class Invocation:
    """A slash command typed on the portal: what `Command.answer` may answer."""

    message_id: int
    command_id: int
    bot_id: int
    dialog_id: str


@dataclass(slots=True)
class Subscription:
    """An outgoing webhook (portal settings → "Outbound webhook") for one classic event."""

    event: str
    url: str
    token: str = field(repr=False)  # its application_token


@dataclass(slots=True)
class Outgoing:
    """A POST the portal owes someone; the body may carry a token, so it has no repr."""

    url: str
    event: str
    body: bytes = field(repr=False)
    bot_id: int | None = None


@dataclass(slots=True)
class Delivery:
    url: str
    event: str
    status: int | None  # None: no HTTP answer at all (refused, timed out)
    error: str | None
    at: float
    bot_id: int | None = None


@dataclass(slots=True)
class V2State:
    queues: dict[int, EventQueue] = field(default_factory=dict)
    invocations: dict[int, Invocation] = field(default_factory=dict)  # by message id
    private_chats: dict[tuple[int, int], int] = field(default_factory=dict)  # (bot, user)
    subscriptions: list[Subscription] = field(default_factory=list)
    outbox: list[Outgoing] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    next_event_id: int = 1
    next_private_chat_id: int = FIRST_PRIVATE_CHAT_ID

    def queue(self, bot_id: int) -> EventQueue:
        return self.queues.setdefault(bot_id, EventQueue())

    def take_event_id(self) -> int:
        self.next_event_id += 1
        return self.next_event_id - 1

    def private_chat_id(self, bot_id: int, user_id: int) -> int:
        key = (bot_id, user_id)
        if key not in self.private_chats:
            self.private_chats[key] = self.next_private_chat_id
            self.next_private_chat_id += 1
        return self.private_chats[key]
