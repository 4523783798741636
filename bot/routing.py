"""Event name → pure handler. Feature modules each own a Router; handlers/__init__ merges them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bot.events import Event
from bot.jobs import NewJob
from bot.rules import RuleSet


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """Everything a handler may read. No client, no store: handlers cannot do I/O."""

    rules: RuleSet
    bot_client_id: str | None = field(default=None, repr=False)  # a secret (B24_BOT_CLIENT_ID)
    max_message_length: int = 2000
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("autojoin.handlers"))


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What one event turns into. `key` is the event's natural key (member_id is added later).

    Two deliveries with the same key are the same event: the second is acknowledged and
    does nothing, even long after the first completed.
    """

    key: str
    jobs: tuple[NewJob, ...] = ()
    note: str = ""


Handler = Callable[["Event", HandlerContext], Dispatch | None]
H = TypeVar("H", bound=Handler)


class Router:
    def __init__(self, *routers: Router) -> None:
        self._handlers: dict[str, Handler] = {}
        for router in routers:
            for name, handler in router._handlers.items():
                self.add(name, handler)

    def add(self, event: str, handler: Handler) -> None:
        name = event.upper()
        if name in self._handlers:
            raise ValueError(f"{name} already has a handler")
        self._handlers[name] = handler

    def register(self, *events: str) -> Callable[[H], H]:
        def decorator(handler: H) -> H:
            for event in events:
                self.add(event, handler)
            return handler

        return decorator

    def handler_for(self, event: str) -> Handler | None:
        return self._handlers.get(event.upper())

    @property
    def events(self) -> frozenset[str]:
        return frozenset(self._handlers)
