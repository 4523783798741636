"""The wire basics every event builder shares: portal identity, `auth[...]`, the envelope.

Two `auth` variants exist: "app" (an OAuth application, with the user's tokens) and "webhook"
(an outgoing webhook or a webhook-registered bot: only domain, endpoints, member_id and
application_token).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any, Final, Literal

from bot.formparse import build_query
from bot.sandbox.state import User

Variant = Literal["webhook", "app"]
MEMBER_ID: Final = "a223c6b3710f85df22e9377d6c4f7553"
DOMAIN: Final = "example.bitrix24.com"
APP_TOKEN: Final = "51856fefc120afa4b628cc82d3935cce"  # the reference's application_token
APP_CLIENT_ID: Final = "local.65f0c1a2b3c4d5.12345678"
SERVER_ENDPOINT: Final = "https://oauth.bitrix.info/rest/"
SCOPE: Final = "user,im,imbot,department"


def fake_token(*parts: object, length: int = 54) -> str:
    """A stable hex token of the portal's length, so equal inputs build equal bodies."""
    seed = "|".join(str(p) for p in parts).encode()
    return hashlib.sha256(seed).hexdigest()[:length].ljust(length, "0")


def now_or(ts: int | None) -> int:
    # Events carry the send time; a freshness check downstream needs "now" by default.
    return int(time.time()) if ts is None else ts


def event_body(
    name: str, data: Mapping[str, Any], auth: Mapping[str, Any], *, ts: int, handler_id: int
) -> bytes:
    fields = {"event": name, "event_handler_id": handler_id, "data": data, "ts": ts, "auth": auth}
    return build_query(fields).encode()


def auth_block(
    token: str,
    *,
    member_id: str = MEMBER_ID,
    domain: str = DOMAIN,
    variant: Variant = "webhook",
    user_id: int | None = None,
    ts: int = 0,
    access_token: str | None = None,
    refresh_token: str | None = None,
    scope: str = SCOPE,
) -> dict[str, Any]:
    """`auth[...]`; `refresh_token` is included only when given (app variant)."""
    endpoint = f"https://{domain}/rest/"
    if variant == "webhook":
        return {
            "domain": domain,
            "client_endpoint": endpoint,
            "server_endpoint": SERVER_ENDPOINT,
            "member_id": member_id,
            "application_token": token,
        }
    block: dict[str, Any] = {
        "access_token": access_token or fake_token("access", member_id, user_id, ts),
        "expires": ts + 3600,
        "expires_in": 3600,
        "scope": scope,
        "domain": domain,
        "server_endpoint": SERVER_ENDPOINT,
        "status": "L",
        "client_endpoint": endpoint,
        "member_id": member_id,
        "user_id": user_id,
        "refresh_token": refresh_token,
        "application_token": token,
    }
    return block


def user_card(
    user: User | Mapping[str, Any], *, flags: bool, position: bool = True
) -> dict[str, Any]:
    """`data[USER]` of bot events; mappings are sent as given."""
    if not isinstance(user, User):
        return dict(user)
    card: dict[str, Any] = {
        "ID": user.id,
        "NAME": f"{user.name} {user.last_name}".strip(),
        "FIRST_NAME": user.name,
        "LAST_NAME": user.last_name,
    }
    if position:
        card["WORK_POSITION"] = ""
    card["GENDER"] = ""
    if flags:
        card |= {"IS_BOT": "N", "IS_CONNECTOR": "N", "IS_NETWORK": "N"}
        card["IS_EXTRANET"] = "Y" if user.user_type == "extranet" else "N"
    return card


def bot_item(
    bot_id: int,
    bot_code: str,
    *,
    variant: Variant,
    token: str,
    client_id: str,
    member_id: str,
    domain: str,
    ts: int,
) -> dict[str, Any]:
    """A `data[BOT][<id>]` entry: webhook bots get only their id and code (§2.5)."""
    if variant == "webhook":
        return {"BOT_ID": bot_id, "BOT_CODE": bot_code}
    oauth = auth_block(
        token,
        member_id=member_id,
        domain=domain,
        variant="app",
        user_id=bot_id,
        ts=ts,
        refresh_token=fake_token("refresh", member_id, bot_id, ts),
        scope="imbot",
    )
    # The bot item orders user_id after refresh_token and adds the app's client_id.
    ordered = {k: v for k, v in oauth.items() if k not in ("user_id", "application_token")}
    ordered |= {"user_id": bot_id, "client_id": client_id, "application_token": token}
    return {**ordered, "AUTH": dict(ordered), "BOT_ID": bot_id, "BOT_CODE": bot_code}


def author_auth(
    token: str,
    author_id: int,
    *,
    variant: Variant,
    member_id: str,
    domain: str,
    ts: int,
    refresh: bool,
) -> dict[str, Any]:
    refresh_token = fake_token("refresh", member_id, author_id, ts) if refresh else None
    return auth_block(
        token,
        member_id=member_id,
        domain=domain,
        variant=variant,
        ts=ts,
        user_id=author_id,
        refresh_token=refresh_token,
        scope="imbot",
    )


def uid(user: User | Mapping[str, Any]) -> int:
    return user.id if isinstance(user, User) else int(user["ID"])
