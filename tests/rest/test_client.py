"""PortalClient against the stateful fake portal, spoken to over HTTP (ASGITransport)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from bot.errors import (
    PortalError,
    PortalJobError,
    PortalRateLimited,
    PortalRetryable,
    PortalWideError,
)
from bot.rest import (
    LeakyBucket,
    OperatingGuard,
    PortalClient,
    WebhookUrl,
    chat_user_add_params,
    hint_for,
)
from bot.sandbox import FakePortal
from bot.sandbox.company import WEBHOOK_CODE
from tests.fakes import FakeClock

ORIGIN = "https://portal.test"


@dataclass
class Rig:
    clock: FakeClock
    portal: FakePortal
    client: PortalClient

    @property
    def bucket(self) -> LeakyBucket:
        return self.client.bucket


def assert_no_secret(exc: BaseException) -> None:
    text = f"{exc} {exc!r} {exc.args!r} {vars(exc)!r}"
    assert WEBHOOK_CODE not in text
    assert exc.__cause__ is None
    assert exc.__suppress_context__ or exc.__context__ is None


def make_client(
    clock: FakeClock, transport: httpx.AsyncBaseTransport | None, webhook: WebhookUrl
) -> PortalClient:
    http = httpx.AsyncClient(transport=transport)
    bucket = LeakyBucket(50, 2.0, clock=clock, sleep=clock.sleep)
    return PortalClient(http, webhook, bucket=bucket, operating=OperatingGuard(clock=clock))


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = FakeClock()
    portal = FakePortal(clock=clock, rate=2.0, burst=50)
    webhook = WebhookUrl.parse(portal.webhook_url(ORIGIN))
    client = make_client(clock, httpx.ASGITransport(app=portal.app), webhook)
    async with client.http:
        yield Rig(clock, portal, client)


@pytest.fixture
def sandbox_webhook() -> WebhookUrl:
    return WebhookUrl.parse(f"{ORIGIN}/rest/1/{WEBHOOK_CODE}/")


async def fails(call: Callable[[], object]) -> PortalError:
    with pytest.raises(PortalError) as info:
        await call()  # type: ignore[misc]
    assert_no_secret(info.value)
    return info.value


# -- call ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_call_returns_the_envelope(rig: Rig) -> None:
    reply = await rig.client.call("user.get", {"ID": 2})
    assert [row["ID"] for row in reply.result] == ["2"]
    assert reply.total == 1
    assert reply.next is None
    assert {"start", "finish", "operating", "operating_reset_at"} <= set(reply.time)
    assert len(rig.portal.calls_to("user.get")) == 1


@pytest.mark.anyio
async def test_add_to_a_joined_chat_succeeds_with_explicit_hide_history(rig: Rig) -> None:
    reply = await rig.client.call("im.chat.user.add", chat_user_add_params(101, [8], True))
    assert reply.result is True
    assert 8 in rig.portal.chat_members(101)
    assert rig.portal.history_hidden(101, 8) is True
    assert rig.portal.calls_to("im.chat.user.add")[0].params["HIDE_HISTORY"] == "Y"


def test_chat_user_add_params_always_sends_hide_history() -> None:
    assert chat_user_add_params(5, (1, 2), False) == {
        "CHAT_ID": 5,
        "USERS": [1, 2],
        "HIDE_HISTORY": "N",
    }
    assert chat_user_add_params(5, [], True)["HIDE_HISTORY"] == "Y"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("chat_id", "code"),
    [(107, "ACCESS_DENIED_EXTEND"), (1, "ACCESS_ERROR"), (0, "CHAT_ID_EMPTY")],
)
async def test_chat_refusals_are_per_job_errors_with_hints(
    rig: Rig, chat_id: int, code: str
) -> None:
    params = chat_user_add_params(chat_id, [12], False)
    exc = await fails(lambda: rig.client.call("im.chat.user.add", params))
    assert type(exc) is PortalJobError
    assert exc.code == code
    assert exc.hint == hint_for(code)
    assert exc.method == "im.chat.user.add"
    if chat_id:
        assert 12 not in rig.portal.chat_members(chat_id)


@pytest.mark.anyio
async def test_query_limit_exceeded_saturates_the_bucket(rig: Rig) -> None:
    rig.clock.advance(100)
    assert await rig.bucket.level() == 0
    rig.portal.fail_next("user.get", "QUERY_LIMIT_EXCEEDED")
    exc = await fails(lambda: rig.client.call("user.get", {"ID": 1}))
    assert isinstance(exc, PortalRateLimited)
    assert exc.status == 503
    assert await rig.bucket.level() == 50
    before = rig.clock()
    await rig.client.call("user.get", {"ID": 1})
    assert rig.clock() - before == pytest.approx(1.5)


@pytest.mark.anyio
async def test_html_502_is_retryable(rig: Rig) -> None:
    rig.portal.fail_next("user.get", "BAD_GATEWAY", status=502, html=True)
    exc = await fails(lambda: rig.client.call("user.get"))
    assert type(exc) is PortalRetryable
    assert exc.code == "HTTP_502"
    assert "HTML" in exc.description


@pytest.mark.anyio
async def test_portal_down_is_retryable(rig: Rig) -> None:
    rig.portal.set_down()
    exc = await fails(lambda: rig.client.call("user.get"))
    assert type(exc) is PortalRetryable
    assert exc.code == "HTTP_503"


@pytest.mark.anyio
async def test_revoked_webhook_and_missing_scope_are_portal_wide(rig: Rig) -> None:
    rig.portal.set_scopes("user")
    scope = await fails(lambda: rig.client.call("im.chat.user.list", {"CHAT_ID": 101}))
    assert type(scope) is PortalWideError
    assert scope.code == "insufficient_scope"
    rig.portal.revoke_webhook()
    auth = await fails(lambda: rig.client.call("user.get"))
    assert type(auth) is PortalWideError
    assert auth.code == "INVALID_CREDENTIALS"
    assert "B24_WEBHOOK_URL" in auth.hint


@pytest.mark.anyio
async def test_portal_supplied_text_is_redacted(rig: Rig) -> None:
    rig.portal.fail_next("user.get", "ERROR_CORE", description=f"bad URL /rest/1/{WEBHOOK_CODE}/")
    exc = await fails(lambda: rig.client.call("user.get"))
    assert exc.description == "bad URL /rest/1/***/"


@pytest.mark.anyio
async def test_the_client_stays_under_the_portal_rate_limit(rig: Rig) -> None:
    for _ in range(150):
        await rig.client.call("user.get", {"ID": 1})
    assert rig.portal.counters.rejected_rate_limit == 0
    assert rig.portal.counters.max_bucket_level <= 48


@pytest.mark.anyio
async def test_bad_method_names_never_reach_the_wire(rig: Rig) -> None:
    for method in ("", "../user.get", "user.get?x=1", "user get", "user.get/"):
        with pytest.raises(ValueError, match="method name"):
            await rig.client.call(method)
    assert rig.portal.http_requests == 0


def test_repr_masks_the_code(sandbox_webhook: WebhookUrl) -> None:
    clock = FakeClock()
    client = make_client(clock, None, sandbox_webhook)
    assert WEBHOOK_CODE not in repr(client)
    assert "***" in repr(client)


# -- operating limit ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_operating_limit_slows_then_blocks_only_that_method(rig: Rig) -> None:
    rig.portal.set_operating_cost("user.get", 100.0)
    for _ in range(4):
        await rig.client.call("user.get", {"ID": 1})
    guard = rig.client.operating
    assert guard is not None
    assert guard.delay("user.get") > 0  # 400 of 480 s used: above the 80 % mark
    rig.clock.sleeps.clear()
    await rig.client.call("user.get", {"ID": 1})  # slowed down, then runs: 500 s used
    assert rig.clock.sleeps
    assert rig.clock.sleeps[0] > 0
    calls = len(rig.portal.calls_to("user.get"))
    exc = await fails(lambda: rig.client.call("user.get", {"ID": 1}))
    assert isinstance(exc, PortalRateLimited)
    assert exc.code == "OPERATION_TIME_LIMIT"
    assert exc.reset_at is not None
    assert exc.reset_at > rig.clock()
    assert len(rig.portal.calls_to("user.get")) == calls  # refused locally, not sent
    assert guard.delay("department.get") == 0
    assert (await rig.client.call("department.get")).result


@pytest.mark.anyio
async def test_operation_time_limit_from_the_portal_blocks_the_method(rig: Rig) -> None:
    await rig.client.call("user.get", {"ID": 1})
    rig.portal.fail_next("user.get", "OPERATION_TIME_LIMIT")
    exc = await fails(lambda: rig.client.call("user.get", {"ID": 1}))
    assert isinstance(exc, PortalRateLimited)
    assert exc.status == 429
    guard = rig.client.operating
    assert guard is not None
    assert guard.blocked_until("user.get") == exc.reset_at
    assert exc.reset_at is not None
    assert exc.reset_at > rig.clock()
    assert guard.blocked_until("im.chat.user.list") is None
    await rig.client.call("im.chat.user.list", {"CHAT_ID": 101})


# -- batch ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_batch_with_mixed_results(rig: Rig) -> None:
    reply = await rig.client.batch(
        {
            "before": ("im.chat.user.list", {"CHAT_ID": 101}),
            "add": ("im.chat.user.add", chat_user_add_params(101, [8, 9], False)),
            "denied": ("im.chat.user.add", chat_user_add_params(107, [8], False)),
            "general": ("im.chat.user.add", chat_user_add_params(1, [12], False)),
            "after": ("im.chat.user.list", {"CHAT_ID": 101}),
            "users": ("user.get", {"FILTER": {"ID": [2, 3]}}),
        }
    )
    assert set(reply.result) == {"before", "add", "after", "users"}
    assert 8 not in reply.result["before"]
    assert {8, 9} <= set(reply.result["after"])
    assert reply.result["add"] is True
    assert set(reply.errors) == {"denied", "general"}
    assert type(reply.errors["denied"]) is PortalJobError
    assert reply.errors["denied"].code == "ACCESS_DENIED_EXTEND"
    assert reply.errors["denied"].method == "im.chat.user.add"
    assert "manage_users_add" in reply.errors["denied"].hint
    assert reply.errors["general"].code == "ACCESS_ERROR"
    assert reply.total == {"users": 2}
    assert reply.next == {}
    assert "start" in reply.time
    assert rig.portal.calls_to("batch")[0].params["halt"] == 0
    assert {8, 9} <= rig.portal.chat_members(101)
    for error in reply.errors.values():
        assert_no_secret(error)


@pytest.mark.anyio
async def test_batch_empty_sections_become_empty_dicts(rig: Rig) -> None:
    reply = await rig.client.batch({"a": ("im.chat.user.list", {"CHAT_ID": 101})})
    assert reply.errors == {}
    assert reply.total == {}
    assert reply.next == {}
    failed = await rig.client.batch(
        {"a": ("im.chat.user.add", chat_user_add_params(107, [8], False))}
    )
    assert failed.result == {}
    assert set(failed.errors) == {"a"}


@pytest.mark.anyio
async def test_batch_halt_stops_at_the_first_failure(rig: Rig) -> None:
    reply = await rig.client.batch(
        {
            "bad": ("im.chat.user.add", chat_user_add_params(0, [8], False)),
            "later": ("im.chat.user.list", {"CHAT_ID": 101}),
        },
        halt=True,
    )
    assert set(reply.errors) == {"bad"}
    assert reply.result == {}


@pytest.mark.anyio
async def test_batch_of_more_than_50_is_refused_before_sending(rig: Rig) -> None:
    commands = {f"k{i}": ("user.get", {"ID": i}) for i in range(51)}
    with pytest.raises(ValueError, match="at most 50"):
        await rig.client.batch(commands)
    assert rig.portal.http_requests == 0
    reply = await rig.client.batch(dict(list(commands.items())[:50]))
    assert len(reply.result) == 50
    assert rig.portal.http_requests == 1


@pytest.mark.anyio
async def test_empty_batch_sends_nothing(rig: Rig) -> None:
    reply = await rig.client.batch({})
    assert (reply.result, reply.errors) == ({}, {})
    assert rig.portal.http_requests == 0


@pytest.mark.anyio
async def test_whole_batch_errors_raise_like_call(rig: Rig) -> None:
    rig.portal.fail_next("batch", "QUERY_LIMIT_EXCEEDED")
    exc = await fails(lambda: rig.client.batch({"a": ("user.get", {"ID": 1})}))
    assert isinstance(exc, PortalRateLimited)
    assert exc.method == "batch"
    assert await rig.bucket.level() >= 50


@pytest.mark.anyio
async def test_batch_records_sub_method_operating_time(rig: Rig) -> None:
    rig.portal.set_operating_cost("user.get", 450.0)
    await rig.client.batch({"a": ("user.get", {"ID": 1})})
    guard = rig.client.operating
    assert guard is not None
    assert guard.delay("user.get") > 0
    assert guard.delay("batch") == 0


# -- paging -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_call_list_follows_next(rig: Rig) -> None:
    for uid in range(100, 220):
        rig.portal.upsert_user(uid, name=f"User {uid}")
    total = len(rig.portal.state.users)
    rows = await rig.client.call_list("user.get", {"ACTIVE": True})
    active = [u for u in rig.portal.state.users.values() if u.active]
    assert [int(r["ID"]) for r in rows] == sorted(u.id for u in active)
    assert len(rig.portal.calls_to("user.get")) == -(-len(active) // 50)
    limited = await rig.client.call_list("user.get", {}, limit=60)
    assert len(limited) == 60
    assert len(rig.portal.calls_to("user.get")) == -(-len(active) // 50) + 2
    assert total > 100


@pytest.mark.anyio
async def test_call_list_of_a_short_list_is_one_call(rig: Rig) -> None:
    rows = await rig.client.call_list("department.get")
    assert len(rows) == 9
    assert len(rig.portal.calls_to("department.get")) == 1


# -- transport and odd answers (httpx transports as the seam) ---------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.anyio
async def test_connection_refused_is_retryable_without_the_secret() -> None:
    clock = FakeClock()
    webhook = WebhookUrl.parse(f"http://127.0.0.1:{closed_port()}/rest/1/{WEBHOOK_CODE}/")
    client = make_client(clock, None, webhook)
    async with client.http:
        exc = await fails(lambda: client.call("user.get"))
    assert type(exc) is PortalRetryable
    assert exc.code == "NETWORK_ERROR"
    assert exc.description == f"ConnectError talking to 127.0.0.1:{webhook.port}"


class RaisingTransport(httpx.AsyncBaseTransport):
    """Raises the given httpx error, whose message (like httpx's own) contains the URL."""

    def __init__(self, kind: type[httpx.TransportError]) -> None:
        self.kind = kind

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise self.kind(f"failed talking to {request.url}", request=request)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (httpx.ReadTimeout, "TIMEOUT"),
        (httpx.ConnectTimeout, "TIMEOUT"),
        (httpx.RemoteProtocolError, "NETWORK_ERROR"),
        (httpx.ConnectError, "NETWORK_ERROR"),
    ],
)
async def test_transport_errors_are_retryable_without_the_secret(
    sandbox_webhook: WebhookUrl, kind: type[httpx.TransportError], code: str
) -> None:
    client = make_client(FakeClock(), RaisingTransport(kind), sandbox_webhook)
    async with client.http:
        exc = await fails(lambda: client.call("user.get"))
    assert type(exc) is PortalRetryable
    assert exc.code == code
    assert exc.description.startswith(f"{kind.__name__} talking to {sandbox_webhook.host}")


async def crashing_app(scope: object, receive: object, send: object) -> None:
    raise RuntimeError(f"boom at /rest/1/{WEBHOOK_CODE}/")


@pytest.mark.anyio
async def test_an_app_that_crashes_gives_a_retryable_500(sandbox_webhook: WebhookUrl) -> None:
    transport = httpx.ASGITransport(app=crashing_app, raise_app_exceptions=False)
    client = make_client(FakeClock(), transport, sandbox_webhook)
    async with client.http:
        exc = await fails(lambda: client.call("user.get"))
    assert type(exc) is PortalRetryable
    assert exc.code == "HTTP_500"


def answering(
    status: int, content: bytes, seen: list[httpx.Request] | None = None
) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, content=content)

    return httpx.MockTransport(handle)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content",
    [b"<html>please log in</html>", b"", b"[1, 2]", b'{"time": {}}', b"{" * 50_000],
)
async def test_a_200_without_a_result_is_retryable(
    sandbox_webhook: WebhookUrl, content: bytes
) -> None:
    client = make_client(FakeClock(), answering(200, content), sandbox_webhook)
    async with client.http:
        exc = await fails(lambda: client.call("user.get"))
    assert type(exc) is PortalRetryable
    assert exc.code == "ERROR_UNEXPECTED_ANSWER"


@pytest.mark.anyio
async def test_a_bare_429_saturates_the_bucket(sandbox_webhook: WebhookUrl) -> None:
    clock = FakeClock()
    client = make_client(clock, answering(429, b"Too Many Requests"), sandbox_webhook)
    clock.advance(100)
    async with client.http:
        exc = await fails(lambda: client.call("user.get"))
    assert isinstance(exc, PortalRateLimited)
    assert await client.bucket.level() == 50


@pytest.mark.anyio
async def test_redirects_pause_the_portal(sandbox_webhook: WebhookUrl) -> None:
    client = make_client(FakeClock(), answering(302, b""), sandbox_webhook)
    async with client.http:
        exc = await fails(lambda: client.call("user.get"))
    assert type(exc) is PortalWideError
    assert exc.code == "HTTP_302"


@pytest.mark.anyio
async def test_batch_request_shape_and_php_list_sections(sandbox_webhook: WebhookUrl) -> None:
    seen: list[httpx.Request] = []
    answer = {
        "result": {
            "result": [True, [1, 8]],
            "result_error": [],
            "result_total": {"1": "2"},
            "result_next": [],
            "result_time": [],
        },
        "time": {},
    }
    transport = answering(200, json.dumps(answer).encode(), seen)
    client = make_client(FakeClock(), transport, sandbox_webhook)
    async with client.http:
        reply = await client.batch(
            {
                "0": ("im.chat.user.add", chat_user_add_params(101, [8], False)),
                "1": ("im.chat.user.list", {"CHAT_ID": 101}),
                "2": ("user.current", {}),
            }
        )
    assert reply.result == {"0": True, "1": [1, 8]}
    assert reply.total == {"1": 2}
    assert (reply.errors, reply.next) == ({}, {})
    (request,) = seen
    assert request.url.path == f"/rest/1/{WEBHOOK_CODE}/batch"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "halt": 0,
        "cmd": {
            "0": "im.chat.user.add?CHAT_ID=101&USERS%5B0%5D=8&HIDE_HISTORY=N",
            "1": "im.chat.user.list?CHAT_ID=101",
            "2": "user.current",
        },
    }


@pytest.mark.anyio
async def test_a_batch_without_a_result_object_is_retryable(sandbox_webhook: WebhookUrl) -> None:
    transport = answering(200, b'{"result": [], "time": {}}')
    client = make_client(FakeClock(), transport, sandbox_webhook)
    async with client.http:
        exc = await fails(lambda: client.batch({"a": ("user.get", {})}))
    assert type(exc) is PortalRetryable
