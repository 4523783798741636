"""Inbound event bodies exactly as the portal posts them (§1.1, §2), for tests and the demo.

Bodies go through `bot.formparse.build_query`, so they carry PHP's wire habits: bracket keys
percent-encoded, every scalar a string, `true` as `1`, empty arrays left out. This module is
the one to import; the builders live in `events_wire` (shared parts) and `events_bot`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.sandbox.events_bot import bot_command, bot_delete, bot_join_chat, bot_message
from bot.sandbox.events_reference import REFERENCE_BODIES, REFERENCE_PAIRS
from bot.sandbox.events_wire import (
    APP_CLIENT_ID,
    APP_TOKEN,
    DOMAIN,
    MEMBER_ID,
    SERVER_ENDPOINT,
    Variant,
    auth_block,
    event_body,
    fake_token,
    now_or,
)
from bot.sandbox.state import User

__all__ = [
    "APP_CLIENT_ID",
    "APP_TOKEN",
    "DOMAIN",
    "MEMBER_ID",
    "REFERENCE_BODIES",
    "REFERENCE_PAIRS",
    "SERVER_ENDPOINT",
    "Variant",
    "app_install",
    "app_uninstall",
    "auth_block",
    "bot_command",
    "bot_delete",
    "bot_join_chat",
    "bot_message",
    "event_body",
    "fake_token",
    "user_add",
]


def _user_data(user: User) -> dict[str, Any]:
    return {
        "ID": user.id,
        "ACTIVE": user.active,
        "NAME": user.name,
        "LAST_NAME": user.last_name,
        "EMAIL": user.email,
        "DATE_REGISTER": user.timestamp_x,
        "TIMESTAMP_X": user.timestamp_x,
        "UF_DEPARTMENT": list(user.departments),
    }


def user_add(
    user: User | Mapping[str, Any],
    *,
    token: str,
    member_id: str = MEMBER_ID,
    domain: str = DOMAIN,
    ts: int | None = None,
    handler_id: int = 31,
    variant: Variant = "webhook",
    access_token: str | None = None,
) -> bytes:
    """ONUSERADD: `data` is the user record itself (no FIELDS wrapper)."""
    data = _user_data(user) if isinstance(user, User) else dict(user)
    sent = now_or(ts)
    auth = auth_block(
        token,
        member_id=member_id,
        domain=domain,
        variant=variant,
        ts=sent,
        user_id=int(data["ID"]),
        access_token=access_token,
    )
    return event_body("ONUSERADD", data, auth, ts=sent, handler_id=handler_id)


def app_install(
    *,
    token: str,
    user_id: int = 1,
    version: int = 1,
    language: str = "en",
    access_token: str | None = None,
    refresh_token: str | None = None,
    member_id: str = MEMBER_ID,
    domain: str = DOMAIN,
    ts: int | None = None,
    handler_id: int = 1,
) -> bytes:
    """ONAPPINSTALL: the first (and only unverifiable) delivery of the application token."""
    sent = now_or(ts)
    data = {"VERSION": version, "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": language}
    auth = auth_block(
        token,
        member_id=member_id,
        domain=domain,
        variant="app",
        ts=sent,
        user_id=user_id,
        access_token=access_token,
        refresh_token=refresh_token or fake_token("refresh", member_id, user_id, sent),
    )
    return event_body("ONAPPINSTALL", data, auth, ts=sent, handler_id=handler_id)


def app_uninstall(
    *,
    token: str,
    clean: bool = True,
    language: str = "en",
    member_id: str = MEMBER_ID,
    domain: str = DOMAIN,
    ts: int | None = None,
    handler_id: int = 2,
) -> bytes:
    """ONAPPUNINSTALL: no tokens at all; the stored application_token is the only check."""
    sent = now_or(ts)
    auth = {
        "domain": domain,
        "server_endpoint": SERVER_ENDPOINT,
        "client_endpoint": f"https://{domain}/rest/",
        "member_id": member_id,
        "application_token": token,
    }
    data = {"LANGUAGE_ID": language, "CLEAN": clean}
    return event_body("ONAPPUNINSTALL", data, auth, ts=sent, handler_id=handler_id)
