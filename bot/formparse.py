"""PHP-style form bodies: parse what Bitrix24 sends, build what Bitrix24 expects.

Bitrix24 posts events as `http_build_query` output: bracket keys, every scalar a string,
empty arrays absent. The parser is iterative (no recursion, so depth cannot blow the
stack) and enforces limits while it works, so a hostile body costs bounded time and memory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from bot.errors import MalformedEvent

Tree = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FormLimits:
    """Defaults are at least 10× the largest real payload (the reference bot events: about 70
    fields, five levels as in `data[BOT][567][AUTH][access_token]`, values under 100 chars)."""

    max_fields: int = 2_000
    max_depth: int = 64
    max_key_length: int = 512
    max_value_length: int = 64 * 1024


DEFAULT_LIMITS = FormLimits()


def parse_form(body: bytes, limits: FormLimits = DEFAULT_LIMITS) -> Tree:
    """Parse an urlencoded body with PHP bracket keys into nested dicts and lists."""
    if not body:
        raise MalformedEvent("empty body")
    root: Tree = {}
    pairs = body.split(b"&")
    if len(pairs) > limits.max_fields:
        raise MalformedEvent(f"too many fields (limit {limits.max_fields})")
    for raw in pairs:
        if not raw:
            continue
        raw_key, _, raw_value = raw.partition(b"=")
        key = _decode(raw_key, "field name")
        if len(key) > limits.max_key_length:
            raise MalformedEvent(f"field name longer than {limits.max_key_length} characters")
        value = _decode(raw_value, f"value of {key!r}")
        if len(value) > limits.max_value_length:
            raise MalformedEvent(f"value of {key!r} longer than {limits.max_value_length}")
        _insert(root, _split_key(key, limits.max_depth), value, key)
    return _listify(root)


_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _decode(raw: bytes, what: str) -> str:
    """Strict where PHP is lenient: a `%` that starts no `%XX` escape is refused, not kept."""
    if _BAD_ESCAPE.search(raw):
        raise MalformedEvent(f"{what} has a '%' that is not a %XX escape")
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedEvent(f"{what} is not valid UTF-8") from None


def _split_key(key: str, max_depth: int) -> list[str]:
    head, bracket, rest = key.partition("[")
    if not head:
        raise MalformedEvent(f"field name {key!r} has no base name")
    segments = [head]
    while bracket:
        inner, closed, rest = rest.partition("]")
        if not closed:
            raise MalformedEvent(f"field name {key!r} has an unclosed bracket")
        segments.append(inner)
        if len(segments) > max_depth:
            raise MalformedEvent(f"field name nested deeper than {max_depth} levels")
        if not rest:
            break
        if not rest.startswith("["):
            raise MalformedEvent(f"field name {key!r} has text after a bracket")
        rest = rest[1:]
    return segments


def _insert(root: Tree, segments: list[str], value: str, key: str) -> None:
    node = root
    for seg in segments[:-1]:
        name = str(len(node)) if seg == "" else seg
        child = node.get(name)
        if child is None:
            child = node[name] = {}
        elif not isinstance(child, dict):
            raise MalformedEvent(f"field {key!r} conflicts with a plain value")
        node = child
    last = segments[-1]
    name = str(len(node)) if last == "" else last
    if name in node:
        kind = "a nested field" if isinstance(node[name], dict) else "an earlier value"
        raise MalformedEvent(f"field {key!r} conflicts with {kind}")
    node[name] = value


def _listify(root: Tree) -> Tree:
    """Turn maps keyed exactly 0..n-1 into lists; ID-keyed maps stay maps."""
    order: list[Tree] = []
    stack: list[Tree] = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(v for v in node.values() if isinstance(v, dict))
    for node in reversed(order):
        for k, v in node.items():
            if isinstance(v, dict) and v and all(str(i) in v for i in range(len(v))):
                node[k] = [v[str(i)] for i in range(len(v))]
    return root


def build_query(params: Mapping[str, Any]) -> str:
    """Encode like PHP's http_build_query: brackets, `true`→1, `None` and empty arrays dropped."""
    parts: list[str] = []
    stack: list[tuple[str, Any]] = [(quote(str(k), safe=""), v) for k, v in params.items()]
    stack.reverse()
    while stack:
        key, value = stack.pop()
        if value is None:
            continue
        if isinstance(value, Mapping | list | tuple):
            items = value.items() if isinstance(value, Mapping) else enumerate(value)
            children = [(f"{key}%5B{quote(str(k), safe='')}%5D", v) for k, v in items]
            stack.extend(reversed(children))
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        parts.append(f"{key}={quote(str(value), safe='')}")
    return "&".join(parts)
