"""Registering the classic chat bot (`imbot.register`), through the inbound webhook.

A webhook has no application, so the bot is registered with a CLIENT_ID of our choosing
(`B24_BOT_CLIENT_ID`) that every later `imbot.*` call repeats, and that Bitrix24 sends back
as the events' `auth[application_token]` (reference §1.5, §5.2). Re-running is safe: the
bot is found by CODE (`imbot.bot.list`) and updated, commands known from the store are
updated and only missing ones registered. The ids go to the store for `autojoin jobs` and
for `ONIMBOTDELETE`, which forgets them. Chatbots 2.0 is `bot.chatbot.registration`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.chatbot.registration import COMMANDS, Registration, StateStore
from bot.chatbot.runtime import BOT_COMMANDS_KEY, BOT_ID_KEY
from bot.errors import PortalJobError, SettingsError
from bot.rest import PortalClient, Reply
from bot.settings import Settings

_GONE: Final = frozenset({"COMMAND_ID_ERROR", "APP_ID_ERROR"})


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
    def from_settings(cls, settings: Settings, *, webhook: bool = False) -> BotSetup:
        """Everything registration needs, every missing setting named in one error."""
        problems: list[SettingsError] = []
        if webhook:
            try:
                settings.require(webhook=True, database=True)
            except SettingsError as exc:
                problems.append(exc)
        if settings.bot_client_id is None:
            problems.append(
                SettingsError(
                    "B24_BOT_CLIENT_ID",
                    "not set: pick a long random string (or set B24_BOT_TOKEN for a Chatbots "
                    "2.0 bot)",
                )
            )
        if not settings.public_url.startswith(("https://", "http://")):
            problems.append(
                SettingsError("AUTOJOIN_PUBLIC_URL", "not set: the https:// address of autojoin")
            )
        if problems:
            raise SettingsError.combine(problems)
        assert settings.bot_client_id is not None
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
