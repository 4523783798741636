"""Everything the fake portal knows, as plain dataclasses a test can build and inspect.

The state is deliberately dumb: rules about who may do what live in the method modules,
so a test can put the portal into any shape (even one the real portal would refuse).
"""

from __future__ import annotations

import hmac
import random
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from bot.sandbox.state_v2 import BotV2, V2State

Role = Literal["member", "manager", "owner"]
ROLE_RANK: Final[dict[str, int]] = {"none": 0, "member": 1, "manager": 2, "owner": 3}
ALL_SCOPES: Final = frozenset({"user", "department", "im", "imbot"})
# Bots share the user id space on a real portal; a far-away range keeps generated companies clear.
FIRST_BOT_ID: Final = 1_000_001


@dataclass(slots=True)
class User:
    id: int
    name: str
    last_name: str = ""
    active: bool = True
    departments: list[int] = field(default_factory=list)
    email: str = ""
    user_type: str = "employee"
    timestamp_x: str = "2026-01-15T09:00:00+00:00"
    date_register: str = "2026-01-15T09:00:00+00:00"
    last_login: str = "2026-01-15T09:00:00+00:00"  # "" until the first login (a fresh invite)


@dataclass(slots=True)
class Department:
    id: int
    name: str
    parent: int | None = None
    sort: int = 500


@dataclass(slots=True)
class Chat:
    id: int
    title: str
    type: str = "C"  # "C" closed group, "O" open, "general" the company-wide chat
    owner: int = 0
    members: set[int] = field(default_factory=set)
    managers: set[int] = field(default_factory=set)
    manage_users_add: Role = "member"
    manage_users_delete: Role = "manager"
    extend_forbidden: bool = False
    history_hidden: dict[int, bool] = field(default_factory=dict)

    def role_of(self, user_id: int) -> str:
        """The caller's role as `im.dialog.get` reports it; non-members have none."""
        if user_id not in self.members:
            return "none"
        if user_id == self.owner:
            return "owner"
        return "manager" if user_id in self.managers else "member"

    def may(self, user_id: int, needed: Role) -> bool:
        return ROLE_RANK[self.role_of(user_id)] >= ROLE_RANK[needed]


@dataclass(slots=True)
class Bot:
    id: int
    code: str
    client_id: str
    type: str = "B"
    properties: dict[str, Any] = field(default_factory=dict)
    handlers: dict[str, str] = field(default_factory=dict)  # event name → URL as registered
    v2: BotV2 | None = None  # set for Chatbots 2.0 bots (`imbot.v2.Bot.register`)


@dataclass(slots=True)
class Command:
    id: int
    bot_id: int
    command: str
    lang: list[dict[str, Any]]
    handler: str
    common: bool = False
    hidden: bool = False
    extranet_support: bool = False


@dataclass(slots=True)
class Message:
    """One bot post: `imbot.message.add`, `imbot.command.answer` or their v2 counterparts."""

    id: int
    method: str
    bot_id: int
    dialog_id: str | None
    message: str
    client_id: str | None
    command_id: int | None = None
    message_id: int | None = None  # the inbound message a command answer replies to
    keyboard: Any = None
    attach: Any = None
    at: float = 0.0
    template_id: str | None = None  # v2 `fields.templateId`
    system: bool = False
    url_preview: bool = True


@dataclass(slots=True)
class Webhook:
    user_id: int
    code: str = field(repr=False)  # a secret: never in a repr, log line or error body
    scopes: set[str] = field(default_factory=lambda: set(ALL_SCOPES))
    revoked: bool = False

    def matches(self, user_id: int, code: str) -> bool:
        return self.user_id == user_id and hmac.compare_digest(self.code, code)


@dataclass(slots=True)
class Call:
    method: str
    params: dict[str, Any]
    status: int
    error: str | None
    at: float
    batch: bool = False  # a sub-command of a `batch` request
    key: str | None = None  # its key inside the batch


@dataclass(slots=True)
class Fault:
    method: str  # "*" matches any method
    code: str
    status: int
    times: int
    description: str = ""
    html: bool = False


@dataclass(slots=True)
class FailureRate:
    method: str
    rate: float
    code: str
    status: int
    rng: random.Random


@dataclass(slots=True)
class Counters:
    http_requests: int = 0  # physical REST requests, a batch is one; rejected ones included
    rejected_rate_limit: int = 0
    max_bucket_level: float = 0.0
    held_now: int = 0  # requests currently parked by `hold()`


@dataclass(slots=True)
class PortalState:
    users: dict[int, User] = field(default_factory=dict)
    departments: dict[int, Department] = field(default_factory=dict)
    chats: dict[int, Chat] = field(default_factory=dict)
    bots: dict[int, Bot] = field(default_factory=dict)
    commands: dict[int, Command] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    webhooks: list[Webhook] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    faults: list[Fault] = field(default_factory=list)
    failure_rates: dict[str, FailureRate] = field(default_factory=dict)
    held: bool = False
    down: bool = False
    language: str = "en"  # the portal language: `data.language` of bot events
    v2: V2State = field(default_factory=V2State)
    next_bot_id: int = FIRST_BOT_ID
    next_command_id: int = 1
    next_message_id: int = 1

    def add_user(self, user: User) -> User:
        self.users[user.id] = user
        return user

    def add_department(self, department: Department) -> Department:
        self.departments[department.id] = department
        return department

    def add_chat(self, chat: Chat) -> Chat:
        if chat.owner:
            chat.members.add(chat.owner)
        self.chats[chat.id] = chat
        return chat

    def find_webhook(self, user_id: int, code: str) -> Webhook | None:
        return next((w for w in self.webhooks if w.matches(user_id, code)), None)

    def is_active_member_candidate(self, user_id: int) -> bool:
        """Active users and bots can be put into chats; everyone else is dropped silently."""
        user = self.users.get(user_id)
        return (user is not None and user.active) or user_id in self.bots

    def take_message_id(self) -> int:
        self.next_message_id += 1
        return self.next_message_id - 1
