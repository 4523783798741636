"""Registering the Chatbots 2.0 bot (`imbot.v2.Bot.*`, `imbot.v2.Command.*`).

A webhook has no application: the bot belongs to the `botToken` we invent (B24_BOT_TOKEN),
sent inside `fields` to `Bot.register` and top-level on every other call (reference §1).
Re-running is safe and quiet: the bot is found by its code (`Bot.get`) and only what differs
is changed (`Bot.update`, `Command.update`); nothing here ever calls the classic
`imbot.register`. The ids go to the same state keys as the classic bot's, so `/healthz`,
`ONIMBOTV2DELETE` and the fetch poller find them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from bot.chatbot.runtime import BOT_COMMANDS_KEY, BOT_ID_KEY
from bot.errors import PortalJobError, SettingsError
from bot.rest import PortalClient, Reply
from bot.settings import Settings

# command → {language: (title, parameter hint)}; `why` is answered by `bot.chatbot.why`, privately.
COMMANDS: Final[Mapping[str, Mapping[str, tuple[str, str]]]] = {
    "join": {
        "en": ("Join a chat", "a keyword, e.g. marketing"),
        "ru": ("Вступить в чат", "ключевое слово, например маркетинг"),
    },
    "help": {"en": ("How to use the bot", ""), "ru": ("Как пользоваться ботом", "")},
    "why": {
        "en": ("Which chats the rules give me, and why", ""),
        "ru": ("Какие чаты мне положены и почему", ""),
    },
}
WORK_POSITION: Final = "Adds you to chats by keyword"
WEBHOOK_URL_KEY: Final = "bot.webhook_url"  # what the portal was last told (it never says)
_GONE: Final = frozenset({"BOT_NOT_FOUND"})


class StateStore(Protocol):
    async def get_state(self, key: str) -> str | None: ...

    async def set_state(self, key: str, value: str | None, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Registration:
    bot_id: int
    created: bool
    commands: dict[str, int]
    new_commands: tuple[str, ...]
    changed: tuple[str, ...] = ()  # bot fields and commands updated on a re-run


@dataclass(frozen=True, slots=True)
class V2Setup:
    """What a v2 registration needs; the token is a secret and stays out of the repr."""

    code: str
    name: str
    token: str
    event_mode: str
    webhook_url: str  # "" in fetch mode

    def __repr__(self) -> str:
        return f"V2Setup(code={self.code!r}, event_mode={self.event_mode!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> V2Setup:
        if settings.bot_token is None:
            raise SettingsError("B24_BOT_TOKEN", "not set: pick a random string of 1-40 characters")
        url = ""
        if settings.bot_event_mode == "webhook":
            if not settings.public_url.startswith(("https://", "http://")):
                raise SettingsError(
                    "AUTOJOIN_PUBLIC_URL", "not set: webhook mode needs autojoin's https:// address"
                )
            url = settings.public_url + settings.events_path
        return cls(
            settings.bot_code,
            settings.bot_name,
            settings.bot_token.reveal(),
            settings.bot_event_mode,
            url,
        )

    def mode_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"eventMode": self.event_mode}
        if self.webhook_url:
            fields["webhookUrl"] = self.webhook_url
        return fields


def _titles(spec: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    hints = {lang: hint for lang, (_, hint) in spec.items() if hint}
    fields: dict[str, Any] = {"title": {lang: title for lang, (title, _) in spec.items()}}
    if hints:
        fields["params"] = hints
    return fields


def code_taken(code: str) -> SettingsError:
    return SettingsError(
        "AUTOJOIN_BOT_CODE",
        f"{code!r} belongs to a bot with another token (or a classic bot): set B24_BOT_TOKEN "
        "to that bot's token, or choose another AUTOJOIN_BOT_CODE",
    )


async def _call(
    client: PortalClient, setup: V2Setup, method: str, params: Mapping[str, Any]
) -> Mapping[str, Any]:
    """Every v2 call but `Bot.register` proves ownership with a top-level botToken."""
    try:
        reply: Reply = await client.call(method, {**params, "botToken": setup.token})
    except PortalJobError as exc:
        if exc.code == "BOT_CODE_ALREADY_TAKEN":
            raise code_taken(setup.code) from None
        raise
    return reply.result if isinstance(reply.result, Mapping) else {}


async def find_bot(client: PortalClient, setup: V2Setup) -> Mapping[str, Any] | None:
    """Our bot as `Bot.get` shows it to its owner (`{bot, users}`), or None."""
    try:
        found = await _call(client, setup, "imbot.v2.Bot.get", {"code": setup.code})
    except PortalJobError as exc:
        if exc.code in _GONE:
            return None
        raise
    bot = found.get("bot")
    if not isinstance(bot, Mapping) or "eventMode" not in bot:
        raise code_taken(setup.code)  # shown briefly: the bot is not ours
    return found


async def register_v2(
    client: PortalClient, store: StateStore, setup: V2Setup, now: float
) -> Registration:
    found = await find_bot(client, setup)
    changed: list[str] = []
    if found is None:
        fields = {
            "code": setup.code,
            "botToken": setup.token,  # inside `fields` for register only (contradiction 3)
            "type": "bot",
            "properties": {"name": setup.name, "workPosition": WORK_POSITION},
            **setup.mode_fields(),
        }
        try:
            reply = await client.call("imbot.v2.Bot.register", {"fields": fields})
        except PortalJobError as exc:
            if exc.code == "BOT_CODE_ALREADY_TAKEN":
                raise code_taken(setup.code) from None
            raise
        result = reply.result if isinstance(reply.result, Mapping) else {}
        bot_id = int(result["bot"]["id"])
    else:
        bot_id = int(found["bot"]["id"])
        update = await _bot_changes(found, setup, store)
        if update:
            await _call(client, setup, "imbot.v2.Bot.update", {"botId": bot_id, "fields": update})
            changed.extend(sorted(update))
    await store.set_state(WEBHOOK_URL_KEY, setup.webhook_url or None, now)
    commands, new, updated = await _commands(client, setup, bot_id)
    await store.set_state(BOT_ID_KEY, str(bot_id), now)
    await store.set_state(BOT_COMMANDS_KEY, json.dumps(commands, sort_keys=True), now)
    return Registration(bot_id, found is None, commands, new, (*changed, *updated))


async def _bot_changes(
    found: Mapping[str, Any], setup: V2Setup, store: StateStore
) -> dict[str, Any]:
    bot = found["bot"]
    users = found.get("users") or [{}]
    changes: dict[str, Any] = {}
    shown = str(users[0].get("name") or "") if isinstance(users[0], Mapping) else ""
    if shown != setup.name:
        changes["properties"] = {"name": setup.name, "workPosition": WORK_POSITION}
    told = await store.get_state(WEBHOOK_URL_KEY) or ""
    if bot.get("eventMode") != setup.event_mode or told != setup.webhook_url:
        changes.update(setup.mode_fields())
    return changes


async def _commands(
    client: PortalClient, setup: V2Setup, bot_id: int
) -> tuple[dict[str, int], tuple[str, ...], tuple[str, ...]]:
    """(ids by name, newly registered, updated): register what is missing, update what
    differs, remove what this version no longer has."""
    listed = await _call(client, setup, "imbot.v2.Command.list", {"botId": bot_id})
    existing = {
        str(c.get("command", "")).lstrip("/"): c
        for c in listed.get("commands") or []
        if isinstance(c, Mapping)
    }
    ids: dict[str, int] = {}
    new: list[str] = []
    updated: list[str] = []
    for name, spec in COMMANDS.items():
        have = existing.pop(name, None)
        if have is None:
            fields = {"command": name, **_titles(spec)}
            made = await _call(
                client, setup, "imbot.v2.Command.register", {"botId": bot_id, "fields": fields}
            )
            ids[name] = int(made["command"]["id"])
            new.append(name)
            continue
        ids[name] = int(have["id"])
        titles = {title for title, _ in spec.values()}
        hints = {hint for _, hint in spec.values()}
        if have.get("title") not in titles or (have.get("params") or "") not in hints:
            params = {"botId": bot_id, "commandId": ids[name], "fields": _titles(spec)}
            await _call(client, setup, "imbot.v2.Command.update", params)
            updated.append(f"/{name}")
    for stale in existing.values():
        params = {"botId": bot_id, "commandId": int(stale["id"])}
        await _call(client, setup, "imbot.v2.Command.unregister", params)
    return ids, tuple(new), tuple(updated)


async def unregister_v2(
    client: PortalClient, store: StateStore, setup: V2Setup, now: float
) -> int | None:
    """Remove the bot (commands and subscriptions go with it) and forget the stored ids."""
    found = await find_bot(client, setup)
    bot_id = None if found is None else int(found["bot"]["id"])
    if bot_id is not None:
        await _call(client, setup, "imbot.v2.Bot.unregister", {"botId": bot_id})
    for key in (BOT_ID_KEY, BOT_COMMANDS_KEY, WEBHOOK_URL_KEY):
        await store.set_state(key, None, now)
    return bot_id
