"""Bitrix24 `error` strings → the `bot.errors` classes, each with a hint for the admin.

This module is the only reader of Bitrix `error` strings. The decision is made by the
string, never by the HTTP status: statuses differ between the docs, the source and the
SDKs. The status is used only when the body carries no usable `error` (an HTML page from
a proxy, an empty body). `ERROR_TABLE` is the documentation too: one row per code with
its class and what the admin should fix; the README troubleshooting section is built from it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot.errors import (
    PortalError,
    PortalJobError,
    PortalRateLimited,
    PortalRetryable,
    PortalWideError,
)

MAX_BODY: Final = 1_000_000  # larger error bodies are not parsed: no real error is that big
MAX_DESCRIPTION: Final = 300
MAX_CODE: Final = 100


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """One documented code. `when` narrows a row to certain descriptions (empty: always)."""

    code: str
    kind: type[PortalError]
    hint: str
    when: str = ""


def _retry(code: str, hint: str) -> ErrorRow:
    return ErrorRow(code, PortalRetryable, hint)


def _limit(code: str, hint: str) -> ErrorRow:
    return ErrorRow(code, PortalRateLimited, hint)


def _wide(code: str, hint: str) -> ErrorRow:
    return ErrorRow(code, PortalWideError, hint)


def _job(code: str, hint: str) -> ErrorRow:
    return ErrorRow(code, PortalJobError, hint)


_RETRIED = "retried automatically"
_BAD_CODE = "the webhook code is wrong, expired or was regenerated; update B24_WEBHOOK_URL"
_RECREATE = "recreate the inbound webhook and update B24_WEBHOOK_URL"
_BUG = "autojoin sent a malformed request; please report it as a bug"
_BOT_URL = "the bot's event handler URL is missing or invalid; check AUTOJOIN_PUBLIC_URL"
_BOT_OWNER = (
    "the bot is unknown or belongs to another owner; keep B24_BOT_CLIENT_ID (classic) or "
    "B24_BOT_TOKEN (Chatbots 2.0) unchanged, or run `autojoin register-bot`"
)
_MESSAGE = f"the bot message is empty, malformed or over 30 KB; {_BUG}"
_NO_CODE = (
    "the portal refused autojoin without an error code (proxy? firewall?); check B24_WEBHOOK_URL"
)
_EXTEND = (
    "the webhook user is not a member of this chat or lacks the right to add members; add the "
    "webhook user to the chat (role allowed by manage_users_add)"
)
_NO_ADD = (
    "this chat does not accept new members (the company-wide general chat or a chat type that "
    "forbids adding); remove it from rules.yaml"
)
PLAN_WORDS: Final = re.compile(r"commercial|tariff|\bplans?\b|коммерческ|тариф", re.IGNORECASE)
"""Heuristic: an ACCESS_DENIED description matching this means "REST only on commercial plans"."""

ERROR_TABLE: Final[tuple[ErrorRow, ...]] = (
    # transient: the worker retries with backoff
    _retry("INTERNAL_SERVER_ERROR", f"the portal failed internally; {_RETRIED}"),
    _retry("ERROR_UNEXPECTED_ANSWER", f"the portal gave an unreadable answer; {_RETRIED}"),
    _limit("QUERY_LIMIT_EXCEEDED", f"request rate over the portal limit (other apps?); {_RETRIED}"),
    _limit("OPERATION_TIME_LIMIT", f"method over its time budget (480 s/10 min); {_RETRIED}"),
    _retry("TIMEOUT", f"the portal did not answer in time; {_RETRIED}"),
    _retry("NETWORK_ERROR", f"cannot reach the portal (DNS, TLS, connection); {_RETRIED}"),
    _retry("HTTP_5XX", f"the portal or a proxy answered with a server error page; {_RETRIED}"),
    _retry("HTTP_408", f"a proxy timed out waiting for the portal; {_RETRIED}"),
    _limit("HTTP_429", f"the portal or a proxy asked autojoin to slow down; {_RETRIED}"),
    # portal-wide: the whole queue pauses until an admin fixes the connection
    _wide("NO_AUTH_FOUND", _BAD_CODE),
    _wide("INVALID_CREDENTIALS", _BAD_CODE),
    _wide("INVALID_REQUEST", "the portal requires HTTPS; use an https:// B24_WEBHOOK_URL"),
    _wide(
        "insufficient_scope",
        "add the missing scope (im, imbot, user, department) to the inbound webhook",
    ),
    _wide("expired_token", f"the webhook has expired; extend it or {_RECREATE}"),
    _wide("invalid_token", f"the portal does not recognise the credentials; {_RECREATE}"),
    _wide(
        "user_access_error", "the integration is restricted to some users; allow the webhook user"
    ),
    _wide("APPLICATION_NOT_FOUND", f"the webhook or application was removed; {_RECREATE}"),
    _wide("authorization_error", "cannot authorize the webhook user (dismissed? blocked?)"),
    _wide("PAYMENT_REQUIRED", "the portal's or application's paid period has ended; renew it"),
    _wide("PORTAL_DELETED", "the portal was deleted or closed; check the host in B24_WEBHOOK_URL"),
    _wide(
        "OVERLOAD_LIMIT", "Bitrix24 blocked REST calls of this portal for overload; call support"
    ),
    _wide("WRONG_AUTH_TYPE", "this method needs an application; an inbound webhook cannot call it"),
    _wide("METHOD_CONFIRM_WAITING", "a portal admin must confirm this method for the webhook"),
    _wide("METHOD_CONFIRM_DENIED", "a portal admin denied this method; ask them to allow it"),
    ErrorRow(
        "ACCESS_DENIED",
        PortalWideError,
        "the REST API is available only on commercial Bitrix24 plans; upgrade the portal's plan",
        when="the description mentions a commercial plan or tariff (heuristic)",
    ),
    _wide("HTTP_3XX", "redirected: the portal address changed? update the host in B24_WEBHOOK_URL"),
    _wide("HTTP_401", _NO_CODE),
    _wide("HTTP_403", _NO_CODE),
    # per job: this job is dead until an admin fixes rules.yaml, the chat or the rights
    _job("ACCESS_DENIED_EXTEND", _EXTEND),
    _job("ACCESS_ERROR", _NO_ADD),
    _job("CHAT_ID_EMPTY", "the chat ID is missing or not positive; fix it in rules.yaml"),
    _job("DIALOG_ID_EMPTY", "the dialog ID is not of the form chat<id>; fix it in rules.yaml"),
    _job("USER_ID_EMPTY", f"the user ID is missing; {_BUG}"),
    _job("EMPTY_CHAT_ID", "the chat ID is missing or not positive; fix it in rules.yaml"),
    _job("EMPTY_USER_ID", f"the user ID is missing; {_BUG}"),
    _job("ACCESS_DENIED_KICK", "the webhook user may not remove members (manage_users_delete)"),
    _job("USER_NOT_FOUND", "the user is not a member of this chat"),
    _job("WRONG_REQUEST", "no access to the chat or bad parameters; is the webhook user a member?"),
    _job("ACCESS_DENIED", "the webhook user lacks rights for this method or object, or a scope"),
    _job("ERROR_METHOD_NOT_FOUND", "unknown method or module disabled; check the webhook's scopes"),
    _job("ERROR_BATCH_LENGTH_EXCEEDED", f"more than 50 commands in one batch; {_BUG}"),
    _job("ERROR_BATCH_METHOD_NOT_ALLOWED", f"a batch cannot nest batch/upload/download; {_BUG}"),
    _job("ERROR_CORE", "the portal rejected the call; read the error description"),
    _job(
        "ERROR_ARGUMENT",
        "a parameter was rejected (a wrong ID in rules.yaml?); read the description",
    ),
    _job("ERROR_MANIFEST_IS_NOT_AVAILABLE", f"the requested manifest does not exist; {_BUG}"),
    _job("BOT_ID_ERROR", _BOT_OWNER),
    _job("APP_ID_ERROR", _BOT_OWNER),
    _job("BOT_ID_REQUIRED", _BOT_OWNER),
    _job("BOT_NOT_FOUND", _BOT_OWNER),
    _job("BOT_OWNERSHIP_ERROR", _BOT_OWNER),
    _job("BOT_TOKEN_NOT_SPECIFIED", _BOT_OWNER),
    _job("COMMAND_ID_ERROR", _BOT_OWNER),
    _job("CODE_ERROR", "the bot CODE is empty or already used by another bot on this portal"),
    _job("NAME_ERROR", "the bot needs a NAME or LAST_NAME"),
    _job("MAX_COUNT_ERROR", "the application has the maximum number of bots; delete one"),
    _job("COMMAND_ERROR", "the bot command must be latin letters and digits without spaces"),
    _job("LANG_ERROR", f"the bot command has no title for a language; {_BUG}"),
    _job("EVENT_MESSAGE_ADD_ERROR", _BOT_URL),
    _job("EVENT_MESSAGE_UPDATE_ERROR", _BOT_URL),
    _job("EVENT_MESSAGE_DELETE_ERROR", _BOT_URL),
    _job("EVENT_WELCOME_MESSAGE_ERROR", _BOT_URL),
    _job("EVENT_BOT_DELETE_ERROR", _BOT_URL),
    _job("EVENT_COMMAND_ADD_ERROR", _BOT_URL),
    _job("MESSAGE_EMPTY", _MESSAGE),
    _job("MESSAGE_ID_EMPTY", _MESSAGE),
    _job("ATTACH_ERROR", _MESSAGE),
    _job("ATTACH_OVERSIZE", _MESSAGE),
    _job("KEYBOARD_ERROR", _MESSAGE),
    _job("KEYBOARD_OVERSIZE", _MESSAGE),
    _job("MENU_ERROR", _MESSAGE),
    _job("MENU_OVERSIZE", _MESSAGE),
    _job("HTTP_4XX", "refused without an error code; check the host and path in B24_WEBHOOK_URL"),
)

UNKNOWN_HINT: Final = "unknown Bitrix24 error code; read the error description"
_BY_CODE: Final = {row.code.casefold(): row for row in ERROR_TABLE if not row.when}
_PLAN_ROW: Final = next(row for row in ERROR_TABLE if row.when)
_UNKNOWN: Final = ErrorRow("", PortalJobError, UNKNOWN_HINT)
_HTTP: Final = re.compile(r"HTTP_([1-9][0-9]{2})")


def _status_row(status: int) -> ErrorRow | None:
    if 300 <= status < 400:
        return _BY_CODE["http_3xx"]
    if status in {401, 403, 408, 429}:
        return _BY_CODE[f"http_{status}"]
    if 400 <= status < 500:
        return _BY_CODE["http_4xx"]
    if 500 <= status < 600:
        return _BY_CODE["http_5xx"]
    return None


def row_for(code: str, description: str = "") -> ErrorRow:
    """The table row deciding `code` (case-insensitive); unknown codes are per-job errors."""
    key = code.casefold()
    if key == "access_denied" and PLAN_WORDS.search(description):
        return _PLAN_ROW
    row = _BY_CODE.get(key)
    if row is not None:
        return row
    status = _HTTP.fullmatch(code.upper())
    return (_status_row(int(status[1])) if status else None) or _UNKNOWN


def hint_for(code: str, description: str = "") -> str:
    return row_for(code, description).hint


def advice(exc: PortalError) -> str:
    """The hint for a person at a command line: the same words as `/healthz`, except that a
    command does not retry by itself once it has given up, so "retried automatically" goes."""
    hint = exc.hint or hint_for(exc.code, exc.description)
    if isinstance(exc, PortalRetryable):
        hint = hint.removesuffix(f"; {_RETRIED}") + "; try again in a while"
    if exc.code.upper() in {"NETWORK_ERROR", "TIMEOUT"}:
        hint += " (is the host in B24_WEBHOOK_URL right, and reachable from here?)"
    return hint


def make_error(
    method: str,
    code: str,
    description: str = "",
    status: int | None = None,
    reset_at: float | None = None,
) -> PortalError:
    """Build the class the table names for `code`, with its hint set on the instance."""
    row = row_for(code, description)
    exc: PortalError
    if issubclass(row.kind, PortalRateLimited):
        exc = row.kind(method, code, description, status, reset_at=reset_at)
    else:
        exc = row.kind(method, code, description, status)
    object.__setattr__(exc, "hint", row.hint)  # `hint` is a ClassVar default in bot.errors
    return exc


def error_from_response(
    method: str,
    status: int,
    body: bytes | str | object,
    *,
    redact: Callable[[str], str] | None = None,
) -> PortalError:
    """Never raises: any body, however broken, becomes a `PortalError`."""
    data = _mapping(body)
    raw_code = data.get("error") if data is not None else None
    if data is not None and isinstance(raw_code, str) and raw_code.strip():
        code = _clip(raw_code.strip(), MAX_CODE)
        description = _clip(_text(data.get("error_description")), MAX_DESCRIPTION)
        if redact is not None:
            code, description = redact(code), redact(description)
        return make_error(method, code, description, status, _reset_at(data))
    what = _describe(body, data)
    if _status_row(status) is None:
        return make_error(method, "ERROR_UNEXPECTED_ANSWER", f"HTTP {status} with {what}", status)
    return make_error(method, f"HTTP_{status}", f"HTTP {status} with {what}", status)


def _mapping(body: object) -> Mapping[str, Any] | None:
    if isinstance(body, Mapping):
        return body
    if not isinstance(body, bytes | bytearray | str) or not body or len(body) > MAX_BODY:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _describe(body: object, data: Mapping[str, Any] | None) -> str:
    """What the body looked like, without quoting it: pages may echo the secret URL."""
    if data is not None:
        return "JSON without an error code"
    if isinstance(body, bytes | bytearray | str):
        if not body:
            return "an empty body"
        head = body[:512]
        text = (head.decode("latin-1") if isinstance(head, bytes | bytearray) else head).lower()
        return "an HTML page" if "<html" in text or "<!doctype" in text else "a non-JSON body"
    return "a body that is not a JSON object"


def _text(value: object) -> str:
    if isinstance(value, str):
        return " ".join(value.split())
    return ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reset_at(data: Mapping[str, Any]) -> float | None:
    time = data.get("time")
    if not isinstance(time, Mapping):
        return None
    return number(time.get("operating_reset_at"))


def number(value: object) -> float | None:
    """A finite float from a JSON number or numeric string; anything else is None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        result = float(value)
    except (ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None
