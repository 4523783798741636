"""The Bitrix24 REST client: throttle, call, type the error. Nothing else.

Retries belong to the worker, which knows the job and its attempts; the client only makes
sure a call is allowed to go out (bucket, operating guard), sends it and turns any failure
into a `PortalError`. Transport errors are reported by class name only: httpx messages
contain the request URL, and the URL contains the webhook secret.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import httpx

from bot.errors import PortalError, PortalRateLimited
from bot.formparse import build_query
from bot.rest.bucket import LeakyBucket, OperatingGuard
from bot.rest.errors import error_from_response, make_error
from bot.rest.webhook import WebhookUrl

log = logging.getLogger("autojoin.rest")

MAX_BATCH: Final = 50
_METHOD: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")


@dataclass(frozen=True, slots=True)
class Reply:
    """One successful call: `result`, list paging (`total`, `next`) and the `time` block."""

    result: Any
    total: int | None = None
    next: int | None = None
    time: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchReply:
    """A batch answers 200 even when sub-calls fail: their typed errors are in `errors`."""

    result: dict[str, Any]
    errors: dict[str, PortalError]
    total: dict[str, int]
    next: dict[str, int]
    time: Mapping[str, Any] = field(default_factory=dict)


def chat_user_add_params(chat_id: int, users: Iterable[int], hide_history: bool) -> dict[str, Any]:
    """`im.chat.user.add` parameters; HIDE_HISTORY is always explicit (omitted means
    "portal setting" and the string 'false' means hide, reference §3.1)."""
    return {
        "CHAT_ID": int(chat_id),
        "USERS": [int(user) for user in users],
        "HIDE_HISTORY": "Y" if hide_history else "N",
    }


class CallObserver(Protocol):
    """Told about every HTTP request (metrics); must not raise or block."""

    def observe(self, method: str, code: str | None) -> None: ...

    def waited(self, seconds: float) -> None: ...


class PortalClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        webhook: WebhookUrl,
        *,
        bucket: LeakyBucket,
        operating: OperatingGuard | None = None,
        timeout: float = 10.0,
        observer: CallObserver | None = None,
    ) -> None:
        self.http = http
        self.webhook = webhook
        self.bucket = bucket
        self.operating = operating
        self.timeout = timeout
        self.observer = observer

    def __repr__(self) -> str:
        return f"PortalClient({self.webhook!r})"

    async def until_room(self) -> float:
        """Seconds until a request would pass the bucket at once (nothing is reserved)."""
        return await self.bucket.until_room()

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Reply:
        """One REST call; raises the `PortalError` subclass the error table names."""
        _check_method(method)
        data = await self._send(method, dict(params or {}), (method,))
        return Reply(
            data.get("result"), _int(data.get("total")), _int(data.get("next")), _time(data)
        )

    async def batch(
        self, commands: Mapping[str, tuple[str, Mapping[str, Any]]], *, halt: bool = False
    ) -> BatchReply:
        """Up to 50 calls in one request (one bucket unit); callers chunk larger sets."""
        if len(commands) > MAX_BATCH:
            raise ValueError(f"a batch takes at most {MAX_BATCH} commands, got {len(commands)}")
        if not commands:
            return BatchReply({}, {}, {}, {})
        cmd: dict[str, str] = {}
        for key, (method, params) in commands.items():
            _check_method(method)
            query = build_query(params)
            cmd[key] = f"{method}?{query}" if query else method
        methods = tuple(dict.fromkeys(method for method, _ in commands.values()))
        data = await self._send("batch", {"halt": 1 if halt else 0, "cmd": cmd}, methods)
        body = data.get("result")
        if not isinstance(body, Mapping):
            raise make_error("batch", "ERROR_UNEXPECTED_ANSWER", "batch result is not an object")
        errors: dict[str, PortalError] = {}
        for key, entry in _section(body.get("result_error")).items():
            method = commands[key][0] if key in commands else "batch"
            payload = entry if isinstance(entry, Mapping) else {"error": entry}
            errors[key] = await self._noted(
                error_from_response(method, 200, payload, redact=self._redact)
            )
        if self.operating is not None:
            for key, time in _section(body.get("result_time")).items():
                if key in commands:
                    self.operating.record(commands[key][0], time)
        return BatchReply(
            _section(body.get("result")),
            errors,
            _ints(body.get("result_total")),
            _ints(body.get("result_next")),
            _time(data),
        )

    async def call_list(
        self, method: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> list[Any]:
        """Every row of a list method, following `next` (Bitrix pages are 50 rows)."""
        rows: list[Any] = []
        start = 0
        while True:
            reply = await self.call(method, {**(params or {}), "start": start})
            page = reply.result
            if isinstance(page, Mapping):
                page = list(page.values())  # PHP arrays with sparse keys arrive as objects
            elif page is None:
                page = []
            elif not isinstance(page, list):
                raise make_error(method, "ERROR_UNEXPECTED_ANSWER", "list result is not a list")
            rows.extend(page)
            if limit is not None and len(rows) >= limit:
                return rows[:limit]
            if reply.next is None or reply.next <= start:
                return rows
            start = reply.next

    # -- plumbing --------------------------------------------------------------
    async def _send(
        self, method: str, body: Mapping[str, Any], methods: tuple[str, ...]
    ) -> Mapping[str, Any]:
        await self._hold(methods)
        waited = await self.bucket.acquire()
        observe = self.observer.observe if self.observer is not None else None
        if self.observer is not None and waited > 0:
            self.observer.waited(waited)
        try:
            response = await self.http.post(
                self.webhook.url_for(method), json=body, timeout=self.timeout
            )
        except httpx.TimeoutException as exc:
            if observe:
                observe(method, "TIMEOUT")
            raise make_error(method, "TIMEOUT", self._failed(exc)) from None
        except (httpx.HTTPError, OSError) as exc:
            if observe:
                observe(method, "NETWORK_ERROR")
            raise make_error(method, "NETWORK_ERROR", self._failed(exc)) from None
        data = _json(response.content)
        if not response.is_success or data is None or data.get("error") or "result" not in data:
            content = data if data is not None else response.content
            error = error_from_response(method, response.status_code, content, redact=self._redact)
            log.debug("%s failed: %s (HTTP %s)", method, error.code, response.status_code)
            if observe:
                observe(method, error.code)
            raise await self._noted(error)
        if observe:
            observe(method, None)
        if self.operating is not None:
            self.operating.record(method, _time(data))
        return data

    async def _hold(self, methods: tuple[str, ...]) -> None:
        """Honour the operating guard: wait a little, or refuse without calling."""
        guard = self.operating
        if guard is None:
            return
        wait, method = max((guard.delay(m), m) for m in methods)
        if wait > guard.max_delay:
            raise make_error(
                method,
                "OPERATION_TIME_LIMIT",
                "held back locally until the method's time budget resets",
                reset_at=guard.clock() + wait,
            )
        if wait > 0:
            await self.bucket.sleep(wait)

    async def _noted(self, exc: PortalError) -> PortalError:
        """Let the throttles learn from an error before it is raised or returned."""
        code = exc.code.upper()
        if code in {"QUERY_LIMIT_EXCEEDED", "HTTP_429"}:  # 429: the imbot.v2 docs' variant
            await self.bucket.saturate()
            log.warning("portal request limit hit: new calls wait until the bucket drains")
        elif code == "OPERATION_TIME_LIMIT" and self.operating is not None:
            reset_at = exc.reset_at if isinstance(exc, PortalRateLimited) else None
            until = self.operating.block(exc.method, reset_at)
            if isinstance(exc, PortalRateLimited) and exc.reset_at is None:
                exc.reset_at = until  # tells the worker when a retry can succeed
        return exc

    def _failed(self, exc: BaseException) -> str:
        """The error's class and the portal's host: which machine did not answer, no secret."""
        port = f":{self.webhook.port}" if self.webhook.port else ""
        return f"{type(exc).__name__} talking to {self.webhook.host}{port}"

    def _redact(self, text: str) -> str:
        return self.webhook.redact(text)


def _check_method(method: str) -> None:
    if not isinstance(method, str) or not _METHOD.fullmatch(method):
        raise ValueError(f"not a REST method name: {method!r}")


def _json(content: bytes) -> Mapping[str, Any] | None:
    try:
        data = json.loads(content) if content else None
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _time(data: Mapping[str, Any]) -> Mapping[str, Any]:
    time = data.get("time")
    return time if isinstance(time, Mapping) else {}


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def _section(value: object) -> dict[str, Any]:
    """A batch section keyed by command; PHP sends empty ones as `[]` and 0..n keys as lists."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


def _ints(value: object) -> dict[str, int]:
    pairs = ((key, _int(item)) for key, item in _section(value).items())
    return {key: number for key, number in pairs if number is not None}
