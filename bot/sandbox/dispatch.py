"""One REST request from arrival to answer, in the order the cloud portal checks things.

down → rate bucket → webhook auth → injected fault → method exists → scope → operating
limit → the method itself. `batch` runs each sub-command through the same per-call steps
(minus the bucket and auth, which the outer request already passed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final

from bot.sandbox import batch
from bot.sandbox import methods_bot as bots
from bot.sandbox import methods_bot_v2 as bots_v2
from bot.sandbox import methods_command_v2 as commands_v2
from bot.sandbox import methods_im as im
from bot.sandbox import methods_message_v2 as messages_v2
from bot.sandbox import methods_users as users
from bot.sandbox.batch import BatchResult
from bot.sandbox.limits import LeakyBucket, OperatingLimit
from bot.sandbox.methods import Context, Method, Params, Reply, RestError, error_body, php_bool
from bot.sandbox.methods import upper_keys as _upper
from bot.sandbox.methods_v2 import redacted
from bot.sandbox.state import Call, Fault, PortalState, Webhook

_USER: Final = frozenset({"user", "user_basic", "user_brief"})
_IM: Final = frozenset({"im"})
_IMBOT: Final = frozenset({"imbot"})
METHODS: Final[dict[str, tuple[Method, frozenset[str]]]] = {
    "user.get": (users.user_get, _USER),
    "department.get": (users.department_get, frozenset({"department"})),
    "im.chat.user.add": (im.chat_user_add, _IM),
    "im.chat.user.delete": (im.chat_user_delete, _IM),
    "im.chat.user.list": (im.chat_user_list, _IM),
    "im.dialog.get": (im.dialog_get, _IM),
    "imbot.register": (bots.register, _IMBOT),
    "imbot.unregister": (bots.unregister, _IMBOT),
    "imbot.update": (bots.update, _IMBOT),
    "imbot.bot.list": (bots.bot_list, _IMBOT),
    "imbot.command.register": (bots.command_register, _IMBOT),
    "imbot.command.update": (bots.command_update, _IMBOT),
    "imbot.command.unregister": (bots.command_unregister, _IMBOT),
    "imbot.command.answer": (bots.command_answer, _IMBOT),
    "imbot.message.add": (bots.message_add, _IMBOT),
    # Chatbots 2.0: names are case-insensitive like every method, parameters are not.
    "imbot.v2.bot.register": (bots_v2.register, _IMBOT),
    "imbot.v2.bot.update": (bots_v2.update, _IMBOT),
    "imbot.v2.bot.get": (bots_v2.get, _IMBOT),
    "imbot.v2.bot.list": (bots_v2.bot_list, _IMBOT),
    "imbot.v2.bot.unregister": (bots_v2.unregister, _IMBOT),
    "imbot.v2.revision.get": (bots_v2.revision, _IMBOT),
    "imbot.v2.command.register": (commands_v2.register, _IMBOT),
    "imbot.v2.command.list": (commands_v2.command_list, _IMBOT),
    "imbot.v2.command.update": (commands_v2.update, _IMBOT),
    "imbot.v2.command.unregister": (commands_v2.unregister, _IMBOT),
    "imbot.v2.command.answer": (commands_v2.answer, _IMBOT),
    "imbot.v2.chat.message.send": (messages_v2.message_send, _IMBOT),
    "imbot.v2.event.get": (messages_v2.event_get, _IMBOT),
}
_CASE_SENSITIVE_PREFIX: Final = "imbot.v2."
DEFAULT_STATUS: Final = {
    "QUERY_LIMIT_EXCEEDED": 503,
    "OPERATION_TIME_LIMIT": 429,
    "INTERNAL_SERVER_ERROR": 500,
    "ERROR_UNEXPECTED_ANSWER": 500,
    "OVERLOAD_LIMIT": 503,
    "NO_AUTH_FOUND": 401,
    "INVALID_CREDENTIALS": 401,
    "insufficient_scope": 401,
    "expired_token": 401,
    "invalid_token": 401,
    "ACCESS_DENIED": 403,
    "ACCESS_ERROR": 403,
    "WRONG_AUTH_TYPE": 403,
    "PORTAL_DELETED": 403,
    "ERROR_METHOD_NOT_FOUND": 404,
}


@dataclass(frozen=True, slots=True)
class Answer:
    """What the HTTP layer sends back: a JSON body, or an HTML page."""

    status: int
    body: dict[str, Any] | None = None
    html: str | None = None


class HtmlFault(Exception):
    """A fault that turns the whole HTTP answer into an HTML page, even from inside a batch."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.description = description


@dataclass(frozen=True, slots=True)
class Outcome:
    reply: Reply | None
    error: RestError | None
    time: dict[str, Any]


def html_page(status: int, code: str, description: str = "") -> str:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    text = description or phrase
    return (
        f"<!DOCTYPE html><html><head><title>{status} {phrase}</title></head>"
        f"<body><h1>{status} {phrase}</h1><p>{code}: {text}</p></body></html>"
    )


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="seconds")


class Dispatcher:
    def __init__(
        self,
        state: PortalState,
        bucket: LeakyBucket,
        operating: OperatingLimit,
        clock: Callable[[], float],
    ) -> None:
        self.state = state
        self.bucket = bucket
        self.operating = operating
        self.clock = clock

    def request(self, user_id: str, code: str, method: str, params: Params | str) -> Answer:
        """One physical HTTP request; `params` is a parse-error message when the body was bad."""
        now = self.clock()
        shown = params if isinstance(params, dict) else {}
        counters = self.state.counters
        counters.http_requests += 1
        if self.state.down:
            self._log(method, shown, 503, "SERVICE_UNAVAILABLE", now)
            return Answer(503, html=html_page(503, "SERVICE_UNAVAILABLE"))
        if not self.bucket.admit(now):
            counters.rejected_rate_limit += 1
            error = RestError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)
            self._log(method, shown, error.status, error.code, now)
            return Answer(error.status, error_body(error))
        counters.max_bucket_level = max(counters.max_bucket_level, self.bucket.level(now))
        try:
            webhook = self._authenticate(user_id, code)
            if isinstance(params, str):
                raise RestError("ERROR_ARGUMENT", params)
        except RestError as error:
            self._log(method, shown, error.status, error.code, now)
            return Answer(error.status, error_body(error))
        try:
            if method == "batch":
                return self._batch(webhook, shown, now)
            outcome = self._invoke(webhook, method, shown, now)
        except HtmlFault as fault:
            return Answer(fault.status, html=html_page(fault.status, fault.code, fault.description))
        if outcome.error is not None:
            return Answer(outcome.error.status, error_body(outcome.error))
        assert outcome.reply is not None
        return Answer(200, self._envelope(outcome.reply, outcome.time))

    def _authenticate(self, user_id: str, code: str) -> Webhook:
        # The two auth errors of §6.3: a URL that cannot be a webhook at all gets
        # NO_AUTH_FOUND; a well-formed one with a wrong or revoked code gets INVALID_CREDENTIALS.
        # Both are 401, the status the source and b24pysdk use.
        if not user_id.isdigit() or not code:
            raise RestError("NO_AUTH_FOUND", "Wrong authorization data", 401)
        webhook = self.state.find_webhook(int(user_id), code)
        if webhook is None or webhook.revoked:
            raise RestError("INVALID_CREDENTIALS", "Invalid request credentials", 401)
        return webhook

    @staticmethod
    def _envelope(reply: Reply, time: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"result": reply.result}
        if reply.next is not None:
            body["next"] = reply.next
        if reply.total is not None:
            body["total"] = reply.total
        body["time"] = time
        return body

    def time_block(self, method: str, start: float) -> dict[str, Any]:
        finish = self.clock()
        return {
            "start": start,
            "finish": finish,
            "duration": finish - start,
            "processing": finish - start,
            "date_start": _iso(start),
            "date_finish": _iso(finish),
            "operating": self.operating.operating(method, finish),
            "operating_reset_at": self.operating.reset_at(method, finish),
        }

    def _log(
        self,
        method: str,
        params: Params,
        status: int,
        error: str | None,
        at: float,
        key: str | None = None,
    ) -> Call:
        if method.startswith(_CASE_SENSITIVE_PREFIX) or method == "batch":
            params = redacted(params)  # the call log must not hold bot tokens
        call = Call(method, params, status, error, at, batch=key is not None, key=key)
        self.state.calls.append(call)
        return call

    def _inject(self, method: str) -> None:
        fault: Fault | None = next(
            (f for f in self.state.faults if f.method in (method, "*")), None
        )
        if fault is not None:
            fault.times -= 1
            if fault.times <= 0:
                self.state.faults.remove(fault)
            if fault.html:
                raise HtmlFault(fault.status, fault.code, fault.description)
            raise RestError(fault.code, fault.description or "Injected fault", fault.status)
        rate = self.state.failure_rates.get(method) or self.state.failure_rates.get("*")
        if rate is not None and rate.rng.random() < rate.rate:
            raise RestError(rate.code, "Injected random failure", rate.status)

    def _invoke(
        self, webhook: Webhook, method: str, params: Params, now: float, key: str | None = None
    ) -> Outcome:
        try:
            self._inject(method)
            entry = METHODS.get(method)
            if entry is None:
                raise RestError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
            func, scopes = entry
            if not scopes & webhook.scopes:
                raise RestError(
                    "insufficient_scope",
                    "The request requires higher privileges than provided by the webhook token",
                    401,
                )
            if self.operating.blocked(method, now):
                raise RestError(
                    "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429
                )
            try:
                args = params if method.startswith(_CASE_SENSITIVE_PREFIX) else _upper(params)
                reply = func(Context(self.state, webhook.user_id, now), args)
            finally:
                self.operating.charge(method, now)
        except HtmlFault as fault:
            self._log(method, params, fault.status, fault.code, now, key)
            raise
        except RestError as error:
            self._log(method, params, error.status, error.code, now, key)
            return Outcome(None, error, self.time_block(method, now))
        self._log(method, params, 200, None, now, key)
        return Outcome(reply, None, self.time_block(method, now))

    def _batch(self, webhook: Webhook, params: Params, now: float) -> Answer:
        call = self._log("batch", params, 200, None, now)
        try:
            self._inject("batch")
            result = self._run_batch(webhook, _upper(params), now)
        except RestError as error:
            call.status, call.error = error.status, error.code
            return Answer(error.status, error_body(error))
        except HtmlFault as fault:
            call.status, call.error = fault.status, fault.code
            raise
        return Answer(200, {"result": result.json(), "time": self.time_block("batch", now)})

    def _run_batch(self, webhook: Webhook, params: Params, now: float) -> BatchResult:
        halt = php_bool(params.get("HALT", False))
        result = BatchResult()
        for position, (key, query) in enumerate(batch.commands(params), start=1):
            method, sub_params, problem = batch.parse_sub(query, position)
            if problem is None:
                sub_params = batch.resolve(sub_params, result.done)
                outcome = self._invoke(webhook, method, sub_params, now, key)
            else:
                self._log(method, sub_params, problem.status, problem.code, now, key)
                outcome = Outcome(None, problem, {})
            if outcome.error is not None:
                result.fail(key, outcome.error)
                if halt:
                    break
            elif outcome.reply is not None:
                result.ok(key, outcome.reply, outcome.time)
        return result
