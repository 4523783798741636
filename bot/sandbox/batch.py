"""`batch` (§7.3) without the I/O: reading `cmd`, parsing sub-queries, back-references, output.

The dispatcher runs each sub-command; this module knows the PHP shapes around them: sub-queries
are `parse_str` input, and every empty output section is a JSON `[]`, not `{}`.
"""

from __future__ import annotations

import re
from typing import Any, Final

from bot.errors import MalformedEvent
from bot.formparse import FormLimits, parse_form
from bot.sandbox.methods import Params, Reply, RestError, error_body, php_array

GENEROUS_LIMITS: Final = FormLimits(
    max_fields=200_000, max_depth=64, max_key_length=8_192, max_value_length=16 * 1024 * 1024
)
MAX_BATCH: Final = 50
NOT_IN_BATCH: Final = frozenset({"batch", "download", "upload"})
SECTIONS: Final = ("result", "result_error", "result_total", "result_next", "result_time")
_BACKREF: Final = re.compile(r"\$result\[([^\]]+)\]((?:\[[^\]]*\])*)")


def commands(params: Params) -> list[tuple[str, str]]:
    """`cmd` as (key, query) pairs; a list gets keys 0..n-1, non-strings are skipped [src]."""
    raw = params.get("CMD")
    pairs = list(raw.items()) if isinstance(raw, dict) else list(enumerate(raw or []))
    return [(str(k), q) for k, q in pairs if isinstance(q, str)]


def parse_sub(query: str, position: int) -> tuple[str, Params, RestError | None]:
    """Method, params and the reason it must not run (if any) of the `position`-th command."""
    name, _, raw_query = query.partition("?")
    method = name.strip().lower().removesuffix(".json")
    try:
        params = parse_form(raw_query.encode(), GENEROUS_LIMITS) if raw_query else {}
    except MalformedEvent as exc:
        return method, {}, RestError("ERROR_ARGUMENT", exc.message)
    if position > MAX_BATCH:
        return method, params, RestError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
    if method in NOT_IN_BATCH:
        problem = RestError(
            "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405
        )
        return method, params, problem
    return method, params, None


class BatchResult:
    def __init__(self) -> None:
        self.sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}

    @property
    def done(self) -> dict[str, Any]:
        return self.sections["result"]

    def ok(self, key: str, reply: Reply, time: dict[str, Any]) -> None:
        self.sections["result"][key] = reply.result
        if reply.total is not None:
            self.sections["result_total"][key] = reply.total
        if reply.next is not None:
            self.sections["result_next"][key] = reply.next
        self.sections["result_time"][key] = time

    def fail(self, key: str, error: RestError) -> None:
        self.sections["result_error"][key] = error_body(error)

    def json(self) -> dict[str, Any]:
        return {name: php_array(self.sections[name]) for name in SECTIONS}


def _lookup(done: dict[str, Any], key: str, path: str) -> Any:
    value: Any = done.get(key)
    for segment in re.findall(r"\[([^\]]*)\]", path):
        if isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        elif isinstance(value, dict) and segment in value:
            value = value[segment]
        else:
            return None
    return value


def _php_string(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else ""
    return "" if value is None else str(value)


def resolve(node: Any, done: dict[str, Any]) -> Any:
    """Back-references: `$result[key][0][ID]` becomes an earlier command's value."""
    if isinstance(node, dict):
        return {k: resolve(v, done) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, done) for v in node]
    if not isinstance(node, str) or "$result[" not in node:
        return node
    whole = _BACKREF.fullmatch(node)
    if whole and (key := whole.group(1)) in done:
        found = _lookup(done, key, whole.group(2))
        return found if isinstance(found, dict | list) else _php_string(found)
    return _BACKREF.sub(
        lambda m: (
            _php_string(_lookup(done, m.group(1), m.group(2))) if m.group(1) in done else m.group(0)
        ),
        node,
    )
