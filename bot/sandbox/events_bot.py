"""Classic chat-bot events (§2.5–§2.8) as the portal posts them to a bot's handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.sandbox.events_wire import (
    APP_CLIENT_ID,
    DOMAIN,
    MEMBER_ID,
    Variant,
    auth_block,
    author_auth,
    bot_item,
    event_body,
    now_or,
    uid,
    user_card,
)
from bot.sandbox.state import User


def bot_message(
    *,
    bot_id: int,
    bot_code: str,
    text: str,
    author: User | Mapping[str, Any],
    token: str,
    message_id: int,
    chat_id: int | None = None,
    chat_title: str = "",
    bot_name: str = "Rules Bot",
    private_chat_id: int | None = None,
    variant: Variant = "webhook",
    client_id: str = APP_CLIENT_ID,
    member_id: str = MEMBER_ID,
    domain: str = DOMAIN,
    ts: int | None = None,
    handler_id: int = 403,
    language: str = "en",
) -> bytes:
    """ONIMBOTMESSAGEADD: a private dialog (no `chat_id`) or a group chat mentioning the bot."""
    sent, author_id = now_or(ts), uid(author)
    params: dict[str, Any] = {"MESSAGE": text}
    if chat_id is None:
        params |= {
            "MESSAGE_TYPE": "P",
            "CHAT_TYPE": "P",
            "FROM_USER_ID": author_id,
            "AUTHOR_ID": author_id,
            "DIALOG_ID": str(author_id),
            "TO_CHAT_ID": private_chat_id or author_id + bot_id,
            "TO_USER_ID": bot_id,
        }
    else:
        # In group chats the mention is stripped from MESSAGE and kept in MESSAGE_ORIGINAL.
        params |= {
            "MESSAGE_ORIGINAL": f"[USER={bot_id}]{bot_name}[/USER]{text}",
            "MESSAGE_TYPE": "C",
            "CHAT_TYPE": "C",
            "FROM_USER_ID": author_id,
            "AUTHOR_ID": author_id,
            "DIALOG_ID": f"chat{chat_id}",
            "TO_CHAT_ID": chat_id,
            "CHAT_ID": chat_id,
            "CHAT_TITLE": chat_title,
            "CHAT_ENTITY_TYPE": "",
            "TO_USER_ID": bot_id,
            "MENTIONED_LIST": {str(bot_id): bot_id},
        }
    params |= {"SYSTEM": "N", "MESSAGE_ID": message_id, "LANGUAGE": language}
    bot = bot_item(
        bot_id,
        bot_code,
        variant=variant,
        token=token,
        client_id=client_id,
        member_id=member_id,
        domain=domain,
        ts=sent,
    )
    data = {"BOT": {str(bot_id): bot}, "PARAMS": params, "USER": user_card(author, flags=True)}
    auth = author_auth(
        token, author_id, variant=variant, member_id=member_id, domain=domain, ts=sent, refresh=True
    )
    return event_body("ONIMBOTMESSAGEADD", data, auth, ts=sent, handler_id=handler_id)


def bot_command(
    *,
    bot_id: int,
    bot_code: str,
    command: str,
    command_id: int,
    author: User | Mapping[str, Any],
    token: str,
    message_id: int,
    command_params: str = "",
    chat_id: int | None = None,
    chat_title: str = "",
    private_chat_id: int | None = None,
    context: str = "TEXTAREA",
    variant: Variant = "webhook",
    client_id: str = APP_CLIENT_ID,
    member_id: str = MEMBER_ID,
    domain: str = DOMAIN,
    ts: int | None = None,
    handler_id: int = 1045,
    language: str = "en",
) -> bytes:
    """ONIMCOMMANDADD: `data[COMMAND][<COMMAND_ID>]` plus PARAMS and the author."""
    sent, author_id = now_or(ts), uid(author)
    item = bot_item(
        bot_id,
        bot_code,
        variant=variant,
        token=token,
        client_id=client_id,
        member_id=member_id,
        domain=domain,
        ts=sent,
    )
    item |= {
        "COMMAND": command,
        "COMMAND_ID": command_id,
        "COMMAND_PARAMS": command_params,
        "COMMAND_CONTEXT": context,
        "MESSAGE_ID": message_id,
    }
    params: dict[str, Any] = {"MESSAGE": f"/{command} {command_params}".strip()}
    kind = "P" if chat_id is None else "C"
    params |= {
        "MESSAGE_TYPE": kind,
        "CHAT_TYPE": kind,
        "FROM_USER_ID": author_id,
        "AUTHOR_ID": author_id,
    }
    if chat_id is None:
        params |= {
            "DIALOG_ID": str(author_id),
            "TO_CHAT_ID": private_chat_id or author_id + bot_id,
            "TO_USER_ID": bot_id,
        }
    else:
        params |= {
            "DIALOG_ID": f"chat{chat_id}",
            "TO_CHAT_ID": chat_id,
            "CHAT_ID": chat_id,
            "CHAT_TITLE": chat_title,
            "BOT_IN_CHAT": {str(bot_id): bot_id},
        }
    params |= {"SYSTEM": "N", "MESSAGE_ID": message_id, "LANGUAGE": language}
    data = {
        "COMMAND": {str(command_id): item},
        "PARAMS": params,
        "USER": user_card(author, flags=False),
    }
    auth = author_auth(
        token, author_id, variant=variant, member_id=member_id, domain=domain, ts=sent, refresh=True
    )
    return event_body("ONIMCOMMANDADD", data, auth, ts=sent, handler_id=handler_id)


def bot_join_chat(
    *,
    bot_id: int,
    bot_code: str,
    user: User | Mapping[str, Any],
    token: str,
    chat_id: int | None = None,
    chat_author_id: int | None = None,
    access_history: bool = True,
    variant: Variant = "webhook",
    client_id: str = APP_CLIENT_ID,
    member_id: str = MEMBER_ID,
    domain: str = DOMAIN,
    ts: int | None = None,
    handler_id: int = 459,
    language: str = "en",
) -> bytes:
    """ONIMBOTJOINCHAT: the bot was added to a chat, or a user opened a dialog with it."""
    sent, user_id = now_or(ts), uid(user)
    if chat_id is None:
        params: dict[str, Any] = {
            "CHAT_TYPE": "P",
            "MESSAGE_TYPE": "P",
            "BOT_ID": bot_id,
            "USER_ID": user_id,
            "TO_USER_ID": bot_id,
            "FROM_USER_ID": user_id,
            "DIALOG_ID": str(user_id),
        }
    else:
        params = {
            "CHAT_TYPE": "C",
            "MESSAGE_TYPE": "C",
            "BOT_ID": bot_id,
            "USER_ID": user_id,
            "CHAT_ID": chat_id,
            "CHAT_AUTHOR_ID": chat_author_id or user_id,
            "CHAT_ENTITY_TYPE": "",
            "ACCESS_HISTORY": access_history,
            "DIALOG_ID": f"chat{chat_id}",
        }
    params["LANGUAGE"] = language
    bot = bot_item(
        bot_id,
        bot_code,
        variant=variant,
        token=token,
        client_id=client_id,
        member_id=member_id,
        domain=domain,
        ts=sent,
    )
    data = {"BOT": {str(bot_id): bot}, "PARAMS": params, "USER": user_card(user, flags=False)}
    # The top-level auth of JOINCHAT carries no refresh token (§2.7).
    auth = author_auth(
        token, user_id, variant=variant, member_id=member_id, domain=domain, ts=sent, refresh=False
    )
    return event_body("ONIMBOTJOINCHAT", data, auth, ts=sent, handler_id=handler_id)


def bot_delete(
    *,
    bot_id: int,
    bot_code: str,
    token: str,
    user_id: int | None = None,
    variant: Variant = "webhook",
    member_id: str = MEMBER_ID,
    domain: str = DOMAIN,
    ts: int | None = None,
    handler_id: int = 439,
) -> bytes:
    """ONIMBOTDELETE: flat `data[BOT_ID]`/`data[BOT_CODE]`, no BOT map (§2.8)."""
    sent = now_or(ts)
    auth = auth_block(
        token, member_id=member_id, domain=domain, variant=variant, ts=sent, user_id=user_id
    )
    data = {"BOT_ID": bot_id, "BOT_CODE": bot_code}
    return event_body("ONIMBOTDELETE", data, auth, ts=sent, handler_id=handler_id)
