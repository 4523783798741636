"""`register-bot` / `unregister-bot`: the command line over `bot.chatbot.registration`.

With B24_BOT_TOKEN set the bot is a Chatbots 2.0 bot (`imbot.v2.*`, never a classic call);
otherwise the classic bot with B24_BOT_CLIENT_ID (`bot.chatbot.registration_classic`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx

from bot.chatbot.registration import StateStore, V2Setup, register_v2, unregister_v2
from bot.chatbot.registration_classic import BotSetup, register_bot, unregister_bot
from bot.rest import LeakyBucket, PortalClient, StoreBucketState
from bot.settings import Settings
from bot.store import AsyncStore, open_store

T = TypeVar("T")

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
    setup = BotSetup.from_settings(settings, webhook=True)
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
    setup = BotSetup.from_settings(settings, webhook=True)
    bot_id = anyio.run(_with_portal, settings, unregister_bot, setup)
    if bot_id is None:
        print(f"no bot with code {setup.code!r} on the portal; stored ids cleared")
    else:
        print(f"removed bot {setup.code!r} (id {bot_id}) and its commands")
    return 0


async def _with_portal(settings: Settings, action: Action[S, T], setup: S) -> T:
    webhook = settings.require_webhook()
    store = AsyncStore(open_store(settings.require_database_url()))
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
