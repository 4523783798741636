"""`register-bot` / `unregister-bot`: the classic chat bot, through the inbound webhook.

A webhook has no application, so the bot is registered with a CLIENT_ID of our choosing
(`B24_BOT_CLIENT_ID`) that every later `imbot.*` call repeats, and that Bitrix24 sends back
as the events' `auth[application_token]` (reference §1.5, §5.2). Re-running is safe: the
bot is found by CODE (`imbot.bot.list`) and updated, commands known from the store are
updated and only missing ones registered. The ids go to the store for `autojoin jobs` and
for `ONIMBOTDELETE`, which forgets them.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import anyio
import httpx

from bot.chatbot.registration import (
    COMMANDS,
    Registration,
    StateStore,
    V2Setup,
    register_v2,
    unregister_v2,
)
from bot.chatbot.runtime import BOT_COMMANDS_KEY, BOT_ID_KEY
from bot.errors import PortalJobError, SettingsError
from bot.rest import LeakyBucket, PortalClient, Reply, StoreBucketState
from bot.settings import Settings
from bot.store import AsyncStore, open_store

_GONE: Final = frozenset({"COMMAND_ID_ERROR", "APP_ID_ERROR"})
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BotSetup:
    """What registration needs, read from the settings (CLIENT_ID is a secret)."""

    code: str
    name: str
    client_id: str
    handler: str  # the events URL; Bitrix24 appends ?CLIENT_ID=... itself

    def __repr__(self) -> str:
        return f"BotSetup(code={self.code!r}, handler={self.handler!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> BotSetup:
        if settings.bot_client_id is None:
            raise SettingsError(
                "B24_BOT_CLIENT_ID",
                "not set: pick a long random string (or set B24_BOT_TOKEN for a Chatbots 2.0 bot)",
            )
        if not settings.public_url.startswith(("https://", "http://")):
            raise SettingsError("AUTOJOIN_PUBLIC_URL", "not set: the https:// address of autojoin")
        return cls(
            settings.bot_code,
            settings.bot_name,
            settings.bot_client_id.reveal(),
            settings.public_url + settings.events_path,
        )


def _lang(spec: Mapping[str, tuple[str, str]]) -> list[dict[str, str]]:
    return [{"LANGUAGE_ID": k, "TITLE": t, "PARAMS": p} for k, (t, p) in spec.items()]


async def find_bot(client: PortalClient, setup: BotSetup) -> int | None:
    """The bot with our CODE (CODE is unique on a portal)."""
    listed = (await _call(client, setup, "imbot.bot.list", {})).result
    items: Sequence[Any] = list(listed.values()) if isinstance(listed, Mapping) else listed or []
    for item in items:
        if isinstance(item, Mapping) and str(item.get("CODE")) == setup.code:
            return int(item["ID"])
    return None


async def register_bot(
    client: PortalClient, store: StateStore, setup: BotSetup, now: float
) -> Registration:
    bot_id = await find_bot(client, setup)
    created = bot_id is None
    fields: dict[str, Any] = {
        "EVENT_MESSAGE_ADD": setup.handler,
        "EVENT_WELCOME_MESSAGE": setup.handler,
        "EVENT_BOT_DELETE": setup.handler,
        "PROPERTIES": {"NAME": setup.name, "WORK_POSITION": "Adds you to chats by keyword"},
    }
    if bot_id is None:
        params = {"CODE": setup.code, "TYPE": "B", "OPENLINE": "N", **fields}
        bot_id = int((await _call(client, setup, "imbot.register", params)).result)
    else:
        await _call(client, setup, "imbot.update", {"BOT_ID": bot_id, "FIELDS": fields})
    stored = await _stored_commands(store, bot_id)
    commands: dict[str, int] = {}
    new: list[str] = []
    for name, spec in COMMANDS.items():
        known = stored.pop(name, None)
        if known is not None and await _update_command(client, setup, known, spec):
            commands[name] = known
            continue
        params = {"BOT_ID": bot_id, "COMMAND": name, "EVENT_COMMAND_ADD": setup.handler}
        params |= {"LANG": _lang(spec), "COMMON": "N", "HIDDEN": "N", "EXTRANET_SUPPORT": "N"}
        commands[name] = int((await _call(client, setup, "imbot.command.register", params)).result)
        new.append(name)
    for stale in stored.values():  # commands this version no longer has
        try:
            await _call(client, setup, "imbot.command.unregister", {"COMMAND_ID": stale})
        except PortalJobError as exc:
            if exc.code not in _GONE:
                raise
    await store.set_state(BOT_ID_KEY, str(bot_id), now)
    await store.set_state(BOT_COMMANDS_KEY, json.dumps(commands, sort_keys=True), now)
    return Registration(bot_id, created, commands, tuple(new))


async def _call(
    client: PortalClient, setup: BotSetup, method: str, params: Mapping[str, Any]
) -> Reply:
    """Every bot method needs the CLIENT_ID the bot was registered with."""
    return await client.call(method, {**params, "CLIENT_ID": setup.client_id})


async def _stored_commands(store: StateStore, bot_id: int) -> dict[str, int]:
    """Command ids saved for this very bot; ids of an older bot mean nothing now."""
    if await store.get_state(BOT_ID_KEY) != str(bot_id):
        return {}
    try:
        saved = json.loads(await store.get_state(BOT_COMMANDS_KEY) or "{}")
        return {str(k): int(v) for k, v in dict(saved).items()}
    except (ValueError, TypeError):
        return {}


async def _update_command(
    client: PortalClient, setup: BotSetup, command_id: int, spec: Mapping[str, tuple[str, str]]
) -> bool:
    """False if the command is gone (deleted on the portal): register it again instead."""
    fields = {"EVENT_COMMAND_ADD": setup.handler, "LANG": _lang(spec), "HIDDEN": "N"}
    try:
        await _call(
            client, setup, "imbot.command.update", {"COMMAND_ID": command_id, "FIELDS": fields}
        )
    except PortalJobError as exc:
        if exc.code in _GONE:
            return False
        raise
    return True


async def unregister_bot(
    client: PortalClient, store: StateStore, setup: BotSetup, now: float
) -> int | None:
    """Remove the bot (its commands go with it) and forget the stored ids."""
    bot_id = await find_bot(client, setup)
    if bot_id is not None:
        await _call(client, setup, "imbot.unregister", {"BOT_ID": bot_id})
    await store.set_state(BOT_ID_KEY, None, now)
    await store.set_state(BOT_COMMANDS_KEY, None, now)
    return bot_id


S = TypeVar("S", BotSetup, V2Setup)
Action = Callable[[PortalClient, StateStore, S, float], Awaitable[T]]


def register(sub: Any) -> None:
    add = sub.add_parser("register-bot", help="register (or update) the chat bot and commands")
    add.set_defaults(func=cmd_register)
    remove = sub.add_parser("unregister-bot", help="remove the chat bot from the portal")
    remove.set_defaults(func=cmd_unregister)


def cmd_register(args: argparse.Namespace) -> int:
    settings = Settings.load()
    if settings.bot_token is not None:
        return _register_v2(settings)
    setup = BotSetup.from_settings(settings)
    done = anyio.run(_with_portal, settings, register_bot, setup)
    verb = "registered" if done.created else "updated"
    print(f"{verb} bot {setup.code!r} (id {done.bot_id}); events go to {setup.handler}")
    listed = ", ".join(
        f"/{n} (id {i}{', new' if n in done.new_commands else ''})"
        for n, i in done.commands.items()
    )
    print(f"commands: {listed}")
    if not setup.handler.startswith("https://"):
        print("warning: AUTOJOIN_PUBLIC_URL is not https; Bitrix24 may not deliver events")
    return 0


def _register_v2(settings: Settings) -> int:
    """Chatbots 2.0: B24_BOT_TOKEN is set, so no classic call is ever made."""
    setup = V2Setup.from_settings(settings)
    done = anyio.run(_with_portal, settings, register_v2, setup)
    verb = "registered" if done.created else "updated" if done.changed else "found (unchanged)"
    where = f"events go to {setup.webhook_url}" if setup.webhook_url else "events are fetched"
    print(f"{verb} Chatbots 2.0 bot {setup.code!r} (id {done.bot_id}); {where}")
    listed = ", ".join(
        f"/{n} (id {i}{', new' if n in done.new_commands else ''})"
        for n, i in done.commands.items()
    )
    print(f"commands: {listed}")
    if done.changed:
        print(f"changed: {', '.join(done.changed)}")
    return 0


def cmd_unregister(args: argparse.Namespace) -> int:
    settings = Settings.load()
    if settings.bot_token is not None:
        v2 = V2Setup.from_settings(settings)
        gone = anyio.run(_with_portal, settings, unregister_v2, v2)
        if gone is None:
            print(f"no Chatbots 2.0 bot with code {v2.code!r} on the portal; stored ids cleared")
        else:
            print(f"removed Chatbots 2.0 bot {v2.code!r} (id {gone}) and its commands")
        return 0
    setup = BotSetup.from_settings(settings)
    bot_id = anyio.run(_with_portal, settings, unregister_bot, setup)
    if bot_id is None:
        print(f"no bot with code {setup.code!r} on the portal; stored ids cleared")
    else:
        print(f"removed bot {setup.code!r} (id {bot_id}) and its commands")
    return 0


async def _with_portal(settings: Settings, action: Action[S, T], setup: S) -> T:
    webhook = settings.require_webhook()
    store = AsyncStore(open_store(settings.database_url.reveal()))
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            # The portal's request budget is shared with a running service, via the store.
            shared = StoreBucketState(store, time.time)
            bucket = LeakyBucket(
                settings.burst, settings.rate, clock=time.time, sleep=anyio.sleep, state=shared
            )
            client = PortalClient(http, webhook, bucket=bucket)
            return await action(client, store, setup, time.time())
    finally:
        await store.close()
