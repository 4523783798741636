"""Things that happen on the portal at run time, and the events they cause (`portal.stage`).

A user writes to a Chatbots 2.0 bot, types `/join`, adds it to a chat; a new hire appears.
Each happening changes the portal state the way the real one would and hands the resulting
events to the bot (its fetch queue, or the outbox for webhook mode). Outbox POSTs go out on
`await portal.deliver()` (the admin API does that before it answers).

Refused as a test-setup mistake (`ValueError`, a 400 over the admin API): a classic bot, an
author who is not in the chat, a command the bot does not have or may not take there.
Silently eventless, as on the platform: a group message that does not mention a `bot`-type bot
(`supervisor`/`personal` bots see every message in their chats), or a chat without the bot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from bot.sandbox import events_v2
from bot.sandbox.outbound import queue_user_add
from bot.sandbox.state import Bot, Chat, Command, User
from bot.sandbox.state_v2 import Invocation, Subscription

if TYPE_CHECKING:
    from bot.sandbox import FakePortal

SEES_EVERYTHING: Final = frozenset({"supervisor", "personal"})
CONTEXTS: Final = frozenset({"textarea", "keyboard", "menu"})


@dataclass(frozen=True, slots=True)
class Happening:
    message_id: int | None = None
    event_ids: list[int] = field(default_factory=list)  # queued (fetch mode) events

    def json(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "event_ids": list(self.event_ids)}


def _ids(*event_ids: int | None) -> list[int]:
    return [e for e in event_ids if e is not None]


class Stage:
    def __init__(self, portal: FakePortal) -> None:
        self.portal = portal
        self.state = portal.state

    def _now(self) -> float:
        return self.portal.clock()

    def _bot(self, bot_id: int) -> Bot:
        bot = self.state.bots.get(bot_id)
        if bot is None or bot.v2 is None:
            raise ValueError(f"no Chatbots 2.0 bot {bot_id}")
        return bot

    def _chat(self, chat_id: int | None, user_id: int) -> Chat | None:
        if user_id not in self.state.users and user_id not in self.state.bots:
            raise ValueError(f"no user {user_id}")
        if chat_id is None:
            return None
        chat = self.state.chats.get(chat_id)
        if chat is None:
            raise ValueError(f"no chat {chat_id}")
        if user_id not in chat.members:
            raise ValueError(f"user {user_id} is not a member of chat {chat_id}")
        return chat

    def message(
        self,
        bot_id: int,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        mention: bool = True,
        language: str | None = None,
    ) -> Happening:
        """A user's message: 1:1 with the bot (no `chat_id`) or in a group chat."""
        with self.portal.lock:
            bot, chat = self._bot(bot_id), self._chat(chat_id, user_id)
            message_id = self.state.take_message_id()
            if chat is not None and (
                bot.id not in chat.members or not (mention or bot.type in SEES_EVERYTHING)
            ):
                return Happening(message_id)
            _, event_id = events_v2.message_add(
                self.state,
                self._now(),
                bot,
                author_id=user_id,
                text=text,
                chat=chat,
                language=language or self.state.language,
                message_id=message_id,
            )
            return Happening(message_id, _ids(event_id))

    def _command(self, bot: Bot, name: str) -> Command:
        wanted = name.strip().removeprefix("/")
        for command in self.state.commands.values():
            if command.bot_id == bot.id and command.command == wanted:
                return command
        raise ValueError(f"bot {bot.id} has no command /{wanted}")

    def command(
        self,
        bot_id: int,
        user_id: int,
        command: str,
        params: str = "",
        *,
        chat_id: int | None = None,
        context: str = "textarea",
        with_message: bool = False,
        language: str | None = None,
    ) -> Happening:
        """`/command params` typed by a user; `with_message` also sends the MESSAGEADD first
        (whether the platform does is UNCONFIRMED, so both are testable)."""
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {sorted(CONTEXTS)}")
        with self.portal.lock:
            bot, chat = self._bot(bot_id), self._chat(chat_id, user_id)
            found = self._command(bot, command)
            if chat is not None and not found.common and bot.id not in chat.members:
                raise ValueError(f"/{found.command} is not common and the bot is not in the chat")
            user = self.state.users.get(user_id)
            if user is not None and user.user_type == "extranet" and not found.extranet_support:
                raise ValueError(f"/{found.command} is not available to extranet users")
            message_id = self.state.take_message_id()
            now, lang = self._now(), language or self.state.language
            first = None
            if with_message:
                _, first = events_v2.message_add(
                    self.state,
                    now,
                    bot,
                    author_id=user_id,
                    text=f"/{found.command} {params}".strip(),
                    chat=chat,
                    language=lang,
                    message_id=message_id,
                )
            dialog_id = f"chat{chat.id}" if chat is not None else str(user_id)
            self.state.v2.invocations[message_id] = Invocation(
                message_id, found.id, bot.id, dialog_id
            )
            event_id = events_v2.command_add(
                self.state,
                now,
                bot,
                author_id=user_id,
                command_id=found.id,
                command=found.command,
                params=params,
                context=context,
                chat=chat,
                language=lang,
                message_id=message_id,
            )
            return Happening(message_id, _ids(first, event_id))

    def join(
        self, bot_id: int, user_id: int, *, chat_id: int | None = None, language: str | None = None
    ) -> Happening:
        """`user_id` adds the bot to a chat, or (no `chat_id`) opens a 1:1 dialog with it.
        Adding a bot that is already in the chat changes nothing and fires nothing."""
        with self.portal.lock:
            bot, chat = self._bot(bot_id), self._chat(chat_id, user_id)
            if chat is not None:
                if bot.id in chat.members:
                    return Happening()
                chat.members.add(bot.id)
            lang = language or self.state.language
            event_id = events_v2.join_chat(
                self.state, self._now(), bot, user_id=user_id, chat=chat, language=lang
            )
            return Happening(None, _ids(event_id))

    def hire(self, *, logged_in: bool = True, **fields: Any) -> User:
        """A new user appears (visible to `user.get` at once). ONUSERADD goes to outgoing
        webhooks at the first login, as on the platform: now, or at `login()` later."""
        with self.portal.lock:
            user_id = fields.pop("id", None)
            if user_id is not None and int(user_id) in self.state.users:
                raise ValueError(f"user {user_id} already exists")
            stamp = events_v2.iso(self._now())
            fields = {"timestamp_x": stamp, "date_register": stamp, "last_login": ""} | fields
            user = self.portal.upsert_user(None if user_id is None else int(user_id), **fields)
            if logged_in:
                self.login(user.id)
            return user

    def login(self, user_id: int) -> User:
        """The user's first login sets LAST_LOGIN and fires ONUSERADD; later ones do nothing."""
        with self.portal.lock:
            user = self.state.users[user_id]
            if not user.last_login:
                now = self._now()
                user.last_login = events_v2.iso(now)
                queue_user_add(self.state, user, int(now))
            return user

    def subscribe(self, event: str, url: str, token: str) -> None:
        """An outgoing webhook for a classic event (only ONUSERADD is ever sent)."""
        with self.portal.lock:
            self.state.v2.subscriptions.append(Subscription(event.upper(), url, token))

    def queue(self, bot_id: int) -> dict[str, Any]:
        with self.portal.lock:
            queue = self.state.v2.queue(bot_id)
            return {
                "bot_id": bot_id,
                "pending": [e.item() for e in queue.pending],
                "acknowledged": [e.event_id for e in queue.acknowledged],
                "next_event_id": self.state.v2.next_event_id,
            }

    def rewind(self, bot_id: int, offset: int | None = None) -> int:
        """Serve acknowledged events with `eventId >= offset` (all when None) again."""
        with self.portal.lock:
            queue = self.state.v2.queue(bot_id)
            floor = 0 if offset is None else offset
            back = [e for e in queue.acknowledged if e.event_id >= floor]
            queue.acknowledged = [e for e in queue.acknowledged if e.event_id < floor]
            queue.pending = sorted(queue.pending + back, key=lambda e: e.event_id)
            return len(back)
