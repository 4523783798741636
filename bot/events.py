"""Inbound Bitrix24 events: parse, authenticate, and read fields with types.

Sans-I/O: bytes in, `Event` out, so the whole trust boundary is testable without a server.
Checks run in the order the service promises: parse, token, portal, shape.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.errors import BadToken, ForeignPortal, MalformedEvent, StaleEvent
from bot.formparse import DEFAULT_LIMITS, FormLimits, parse_form

_EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class Event:
    """A verified event. `auth` is deliberately not kept: it holds tokens."""

    name: str
    data: Mapping[str, Any]
    member_id: str
    domain: str
    ts: int | None = None
    handler_id: str | None = None
    raw_size: int = field(default=0, compare=False)

    def __repr__(self) -> str:
        portal = self.member_id or self.domain
        return f"Event({self.name}, portal={portal!r}, keys={sorted(self.data)})"

    @property
    def portal(self) -> str:
        return self.member_id or self.domain

    def _lookup(self, path: Sequence[str]) -> Any:
        node: Any = self.data
        for part in path:
            if isinstance(node, Mapping):
                node = node.get(part)
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node

    def get_str(self, *path: str, default: str | None = None) -> str | None:
        value = self._lookup(path)
        if value is None:
            return default
        if not isinstance(value, str):
            raise MalformedEvent(f"data[{']['.join(path)}] must be a plain value")
        return value

    def require_str(self, *path: str) -> str:
        value = self.get_str(*path)
        if value is None or value == "":
            raise MalformedEvent(f"data[{']['.join(path)}] is missing")
        return value

    def get_int(self, *path: str) -> int | None:
        value = self.get_str(*path)
        if value is None or value == "":
            return None
        return _to_int(value, path)

    def require_int(self, *path: str) -> int:
        value = self.get_int(*path)
        if value is None:
            raise MalformedEvent(f"data[{']['.join(path)}] is missing")
        return value

    def get_ints(self, *path: str) -> list[int]:
        """A PHP list arrives as a list, an ID-keyed map, or (one item) a scalar."""
        value = self._lookup(path)
        if value is None or value == "":
            return []
        items: Iterable[Any]
        if isinstance(value, list):
            items = value
        elif isinstance(value, Mapping):
            items = value.values()
        else:
            items = [value]
        out: list[int] = []
        for item in items:
            if not isinstance(item, str):
                raise MalformedEvent(f"data[{']['.join(path)}] must be a list of IDs")
            if item != "":
                out.append(_to_int(item, path))
        return out

    def get_map(self, *path: str) -> Mapping[str, Any]:
        value = self._lookup(path)
        if value is None:
            return {}
        if isinstance(value, list):
            return {str(i): v for i, v in enumerate(value)}
        if not isinstance(value, Mapping):
            raise MalformedEvent(f"data[{']['.join(path)}] must be a map")
        return value

    def get_flag(self, *path: str) -> bool | None:
        """Bitrix24 spells booleans Y/N, 1/0 or true/false depending on the code path."""
        value = self.get_str(*path)
        if value is None or value == "":
            return None
        lowered = value.lower()
        if lowered in {"y", "1", "true"}:
            return True
        if lowered in {"n", "0", "false"}:
            return False
        raise MalformedEvent(f"data[{']['.join(path)}] must be Y/N, got {value!r}")


def _to_int(value: str, path: Sequence[str]) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise MalformedEvent(f"data[{']['.join(path)}] must be a positive integer")
    number = int(value)
    if number <= 0:
        raise MalformedEvent(f"data[{']['.join(path)}] must be a positive integer")
    return number


@dataclass(frozen=True, slots=True)
class Verifier:
    """What an event must prove: a known token and, when configured, the right portal."""

    tokens: tuple[str, ...]
    member_id: str = ""
    domain: str = ""
    max_age: float = 0.0

    def __repr__(self) -> str:
        return f"Verifier(tokens=<{len(self.tokens)}>, member_id={self.member_id!r})"


def parse_event(
    body: bytes,
    verifier: Verifier,
    *,
    now: float | None = None,
    limits: FormLimits = DEFAULT_LIMITS,
) -> Event:
    """Parse and authenticate one event body; raise an `EventError` subclass on refusal."""
    _refuse_non_form(body)
    tree = parse_form(body, limits)
    auth = tree.get("auth")
    if not isinstance(auth, Mapping):
        auth = {}
    token = auth.get("application_token")
    if not isinstance(token, str) or not token:
        raise BadToken("auth[application_token] is missing")
    if not _token_matches(token, verifier.tokens):
        raise BadToken("auth[application_token] is not one of ours")
    member_id = _plain(auth.get("member_id"))
    domain = _plain(auth.get("domain")).lower()
    if verifier.member_id and not hmac.compare_digest(member_id, verifier.member_id):
        raise ForeignPortal("auth[member_id] belongs to another portal")
    if verifier.domain and domain != verifier.domain:
        raise ForeignPortal("auth[domain] belongs to another portal")
    name = tree.get("event")
    if not isinstance(name, str) or not name:
        raise MalformedEvent("the 'event' field is missing")
    if not _EVENT_NAME.match(name):
        raise MalformedEvent("the 'event' field is not an event name")
    data = tree.get("data", {})
    if isinstance(data, list):
        data = {str(i): v for i, v in enumerate(data)}
    if not isinstance(data, Mapping):
        raise MalformedEvent("the 'data' field must be a map")
    _scrub(data)
    ts = _timestamp(tree.get("ts"))
    if verifier.max_age and now is not None:
        if ts is None:
            raise StaleEvent("the 'ts' field is required when a freshness window is set")
        if abs(now - ts) > verifier.max_age:
            raise StaleEvent("the event is outside the freshness window")
    handler = tree.get("event_handler_id")
    return Event(
        name=name.upper(),
        data=data,
        member_id=member_id,
        domain=domain,
        ts=ts,
        handler_id=handler if isinstance(handler, str) else None,
        raw_size=len(body),
    )


def pulled_event(
    name: object, data: object, *, member_id: str, domain: str, ts: int | None = None
) -> Event:
    """An event autojoin fetched itself (bot `Event.get`, the hire poll): nothing to
    authenticate, but the very `Event` a pushed body becomes, so the same handlers and the
    same once-only keys apply. JSON values are cast as a form body carries them: numbers to
    strings, booleans to "1"/"0", null to ""."""
    if not isinstance(name, str) or not _EVENT_NAME.match(name):
        raise MalformedEvent("the event type is not an event name")
    if not isinstance(data, Mapping):
        raise MalformedEvent("the event data must be a map")
    tree = _as_form(data)
    _scrub(tree)
    return Event(name=name.upper(), data=tree, member_id=member_id, domain=domain, ts=ts)


def _as_form(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _as_form(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_as_form(v) for v in node]
    if isinstance(node, bool):
        return "1" if node else "0"
    if node is None:
        return ""
    return node if isinstance(node, str) else str(node)


def _refuse_non_form(body: bytes) -> None:
    """What a PHP parser would swallow but no portal sends: JSON, and NUL characters (which
    PostgreSQL text columns cannot store). `%00` is the only escape that decodes to NUL."""
    if body.lstrip()[:1] == b"{":
        raise MalformedEvent("the body is JSON; Bitrix24 events are form-encoded")
    if b"\x00" in body or b"%00" in body:
        raise MalformedEvent("the body contains a NUL character")


_SECRET_KEYS = frozenset(
    {"access_token", "refresh_token", "application_token", "auth", "client_secret"}
)


def _scrub(data: Mapping[str, Any]) -> None:
    """Drop the tokens bot events carry in `data`, so nothing downstream can store or print them."""
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in [k for k in node if k.lower() in _SECRET_KEYS]:
                del node[key]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _token_matches(token: str, accepted: Iterable[str]) -> bool:
    """Compare against every accepted token without an early exit."""
    given = token.encode("utf-8")
    matched = False
    for candidate in accepted:
        matched |= hmac.compare_digest(given, candidate.encode("utf-8"))
    return matched


def _plain(value: object) -> str:
    return value if isinstance(value, str) else ""


def _timestamp(value: object) -> int | None:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        if value is None:
            return None
        raise MalformedEvent("the 'ts' field must be a unix timestamp")
    if len(value) > 12:
        raise MalformedEvent("the 'ts' field must be a unix timestamp")
    return int(value)
