"""`POST /events` and `GET /healthz` over HTTP against the real app: hostile bodies get a 4xx
with a JSON reason (never a 5xx), real Bitrix24 bodies get a 2xx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import anyio
import httpx
import pytest
from starlette.responses import JSONResponse

import handlers
from bot.formparse import DEFAULT_LIMITS, parse_form
from bot.sandbox import FakePortal
from bot.sandbox.events import (
    APP_TOKEN,
    DOMAIN,
    MEMBER_ID,
    REFERENCE_BODIES,
    REFERENCE_PAIRS,
    auth_block,
    event_body,
)
from bot.sandbox.server import serve_in_thread
from bot.wiring import build_services, create_app
from tests.harness import FORM, Harness, make_settings, open_harness

pytestmark = pytest.mark.anyio

MB = 1024 * 1024
Pair = tuple[bytes, bytes]


def _enc(text: str) -> bytes:
    return quote(text, safe="").encode()


def valid_pairs(user_id: str = "245") -> list[Pair]:
    """An ONUSERADD body as the portal sends it, as encoded (key, value) pairs."""
    plain = [
        ("event", "ONUSERADD"),
        ("event_handler_id", "31"),
        ("data[ID]", user_id),
        ("data[ACTIVE]", "1"),
        ("data[NAME]", "Anna"),
        ("data[LAST_NAME]", "Berg"),
        ("data[UF_DEPARTMENT][0]", "7"),
        ("data[UF_DEPARTMENT][1]", "12"),
        ("ts", "1772432045"),
        ("auth[domain]", DOMAIN),
        ("auth[member_id]", MEMBER_ID),
        ("auth[application_token]", APP_TOKEN),
    ]
    return [(_enc(k), _enc(v)) for k, v in plain]


def join(pairs: Sequence[Pair], *extra: bytes) -> bytes:
    return b"&".join([*(k + b"=" + v for k, v in pairs), *extra])


def without(name: str, pairs: Sequence[Pair] | None = None) -> list[Pair]:
    """Drop every pair whose decoded key is `name` or nested under it."""
    pairs = valid_pairs() if pairs is None else pairs
    return [(k, v) for k, v in pairs if unquote(k.decode()) != name and not _under(k, name)]


def _under(key: bytes, name: str) -> bool:
    return unquote(key.decode()).startswith(name + "[")


def replaced(name: str, *new: Pair) -> bytes:
    """The valid body with `name` (and anything under it) swapped for raw encoded pairs."""
    pairs = valid_pairs()
    at = next(i for i, (k, _) in enumerate(pairs) if unquote(k.decode()) in (name, f"{name}[0]"))
    kept = without(name, pairs)
    return join([*kept[:at], *new, *kept[at:]])


@dataclass(frozen=True)
class Bad:
    """A hostile body, the status it must get and the `error` code of the JSON reason."""

    body: bytes
    status: int = 400
    error: str = "malformed"
    content_type: str = FORM


def _nested(depth: int) -> bytes:
    return b"data" + b"%5Bx%5D" * depth + b"=1"


MALFORMED: dict[str, Bad] = {
    "nesting-2000-levels": Bad(join(valid_pairs(), _nested(2000))),
    "nesting-2000-levels-raw-brackets": Bad(join(valid_pairs(), b"data" + b"[x]" * 2000 + b"=1")),
    "100k-fields": Bad(join(valid_pairs(), *(b"f%d=1" % i for i in range(100_000)))),
    "many-ampersands": Bad(join(valid_pairs()) + b"&" * 50_000),
    "only-ampersands": Bad(b"&" * 5_000),
    "empty-body": Bad(b""),
    "invalid-utf8-in-value": Bad(replaced("data[NAME]", (b"data%5BNAME%5D", b"%C3%28"))),
    "invalid-utf8-in-key": Bad(join(valid_pairs(), b"da%FFta%5BX%5D=1")),
    "raw-invalid-utf8-bytes": Bad(replaced("data[NAME]", (b"data%5BNAME%5D", b"\xff\xfe"))),
    "utf8-encoded-surrogate": Bad(replaced("data[NAME]", (b"data%5BNAME%5D", b"%ED%A0%80"))),
    "json-sent-as-form": Bad(
        json.dumps(
            {
                "event": "ONUSERADD",
                "data": {"ID": "245", "UF_DEPARTMENT": ["7"]},
                "auth": {"application_token": APP_TOKEN, "member_id": MEMBER_ID},
            }
        ).encode()
    ),
    "json-object-sent-as-form": Bad(
        json.dumps(
            {"event": "ONUSERADD", "auth": {"application_token": APP_TOKEN}, "ID": "245"}
        ).encode()
    ),
    "plain-value-then-nested": Bad(join(valid_pairs(), b"a=1", b"a%5Bb%5D=2")),
    "nested-then-plain-value": Bad(join(valid_pairs(), b"a%5Bb%5D=2", b"a=1")),
    "repeated-plain-key": Bad(join(valid_pairs(), b"event=ONUSERADD")),
    "missing-event": Bad(join(without("event"))),
    "event-as-a-list": Bad(replaced("event", (b"event%5B%5D", b"ONUSERADD"))),
    "event-name-with-spaces": Bad(replaced("event", (b"event", b"ON+USER+ADD"))),
    "event-name-with-percent-spaces": Bad(replaced("event", (b"event", b"ONUSERADD%20"))),
    "user-id-missing": Bad(join(without("data[ID]"))),
    "user-id-empty": Bad(replaced("data[ID]", (b"data%5BID%5D", b""))),
    "user-id-non-numeric": Bad(replaced("data[ID]", (b"data%5BID%5D", b"abc"))),
    "user-id-negative": Bad(replaced("data[ID]", (b"data%5BID%5D", b"-245"))),
    "user-id-zero": Bad(replaced("data[ID]", (b"data%5BID%5D", b"0"))),
    "user-id-float": Bad(replaced("data[ID]", (b"data%5BID%5D", b"2.5"))),
    "user-id-huge": Bad(replaced("data[ID]", (b"data%5BID%5D", b"9" * 40))),
    "user-id-a-map": Bad(replaced("data[ID]", (b"data%5BID%5D%5Bx%5D", b"245"))),
    "user-id-a-list": Bad(replaced("data[ID]", (b"data%5BID%5D%5B%5D", b"245"))),
    "departments-map-of-maps": Bad(
        replaced(
            "data[UF_DEPARTMENT]",
            (b"data%5BUF_DEPARTMENT%5D%5B7%5D%5Ba%5D", b"1"),
            (b"data%5BUF_DEPARTMENT%5D%5B9%5D%5Bb%5D%5Bc%5D", b"2"),
        )
    ),
    "departments-non-numeric": Bad(
        replaced("data[UF_DEPARTMENT]", (b"data%5BUF_DEPARTMENT%5D%5B0%5D", b"sales"))
    ),
    "active-not-a-flag": Bad(replaced("data[ACTIVE]", (b"data%5BACTIVE%5D", b"maybe"))),
    "name-a-map": Bad(replaced("data[NAME]", (b"data%5BNAME%5D%5Bfirst%5D", b"Anna"))),
    "data-a-scalar": Bad(join(without("data"), b"data=hello")),
    "ts-not-a-number": Bad(replaced("ts", (b"ts", b"yesterday"))),
    "unclosed-bracket": Bad(join(valid_pairs(), b"data%5BX=1")),
    "unclosed-raw-bracket": Bad(join(valid_pairs(), b"data[X=1")),
    "text-after-bracket": Bad(join(valid_pairs(), b"data%5BX%5Dy=1")),
    "no-base-name": Bad(join(valid_pairs(), b"%5Bx%5D=1")),
    "key-too-long": Bad(join(valid_pairs(), b"k" * 5_000 + b"=1")),
    "huge-single-value": Bad(replaced("data[NAME]", (b"data%5BNAME%5D", b"A" * 600_000))),
    "nul-byte-raw-in-key": Bad(join(valid_pairs(), b"da\x00ta%5BX%5D=1")),
    "nul-byte-escaped-in-value": Bad(replaced("data[NAME]", (b"data%5BNAME%5D", b"An%00na"))),
    "nul-byte-in-member-id": Bad(
        replaced("auth[member_id]", (b"auth%5Bmember_id%5D", _enc(MEMBER_ID) + b"%00"))
    ),
    "percent-garbage-in-value": Bad(replaced("data[NAME]", (b"data%5BNAME%5D", b"%zz"))),
    "percent-garbage-in-key": Bad(join(valid_pairs(), b"da%zzta=1")),
    "truncated-percent-escape": Bad(replaced("data[NAME]", (b"data%5BNAME%5D", b"Anna%2"))),
    "missing-token": Bad(join(without("auth[application_token]")), 401, "token"),
    "empty-token": Bad(
        replaced("auth[application_token]", (b"auth%5Bapplication_token%5D", b"")), 401, "token"
    ),
    "wrong-token": Bad(
        replaced("auth[application_token]", (b"auth%5Bapplication_token%5D", b"forged")),
        401,
        "token",
    ),
    "token-a-map": Bad(
        replaced(
            "auth[application_token]",
            (b"auth%5Bapplication_token%5D%5Bx%5D", _enc(APP_TOKEN)),
        ),
        401,
        "token",
    ),
    "auth-a-scalar": Bad(join(without("auth"), b"auth=" + _enc(APP_TOKEN)), 401, "token"),
    "json-content-type": Bad(
        json.dumps({"event": "ONUSERADD", "auth": {"application_token": APP_TOKEN}}).encode(),
        415,
        "media_type",
        "application/json",
    ),
    "text-plain-content-type": Bad(join(valid_pairs()), 415, "media_type", "text/plain"),
    "multipart-content-type": Bad(
        join(valid_pairs()), 415, "media_type", "multipart/form-data; boundary=x"
    ),
    "six-megabytes": Bad(join(valid_pairs(), b"pad=" + b"x" * (6 * MB)), 413, "too_large"),
}


async def assert_refused(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    reason = response.json()
    assert reason["error"] == error
    assert isinstance(reason["message"], str)
    assert reason["message"]


async def test_the_valid_base_body_is_accepted(tmp_path: Path) -> None:
    """Every malformed case below is this body with one thing broken."""
    async with open_harness(tmp_path) as h:
        response = await h.post(join(valid_pairs()))
        assert response.status_code == 200
        assert response.json()["status"] == "accepted"
        assert response.json()["jobs"] == 1


async def test_answers_are_the_bytes_starlette_would_send(tmp_path: Path) -> None:
    """The shared encoder changes no byte of an answer: accepted, duplicate and ignored."""
    async with open_harness(tmp_path) as h:
        body = join(valid_pairs())
        answers = [await h.post(body), await h.post(body)]
        unknown = [p for p in valid_pairs() if p[0] != b"event"] + [(b"event", b"ONSOMETHINGELSE")]
        answers.append(await h.post(join(unknown)))
    for answer in answers:
        expected = JSONResponse(answer.json())
        assert answer.content == expected.body
        assert answer.headers["content-type"] == "application/json"
    assert [a.json()["status"] for a in answers] == ["accepted", "duplicate", "ignored"]


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
async def test_malformed_body_gets_a_4xx_with_a_json_reason(tmp_path: Path, case: str) -> None:
    bad = MALFORMED[case]
    async with open_harness(tmp_path) as h:
        response = await h.post(bad.body, content_type=bad.content_type)
        await assert_refused(response, bad.status, bad.error)
        assert await h.services.store.jobs() == []
        assert await rejected(h, bad.error) == 1.0


async def rejected(h: Harness, reason: str) -> float:
    """The refusal as /metrics counts it."""
    text = (await h.client.get("/metrics")).text
    line = f'autojoin_events_rejected_total{{reason="{reason}"}} '
    values = [float(row[len(line) :]) for row in text.splitlines() if row.startswith(line)]
    return values[0] if values else 0.0


def test_there_are_at_least_twenty_kinds_of_malformed_body() -> None:
    assert len({bad.body for bad in MALFORMED.values()}) >= 20


async def test_a_body_without_content_type_is_read_as_a_form(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        response = await h.client.post("/events", content=join(valid_pairs()))
        assert response.status_code == 200
        assert response.json()["status"] == "accepted"


async def test_form_content_type_with_a_charset_is_accepted(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        response = await h.post(join(valid_pairs()), content_type=f"{FORM}; charset=UTF-8")
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("setting", "value"),
    [("B24_MEMBER_ID", "0123456789abcdef0123456789abcdef"), ("B24_PORTAL_DOMAIN", "other.b24.com")],
)
async def test_an_event_from_a_foreign_portal_gets_403(
    tmp_path: Path, setting: str, value: str
) -> None:
    env: dict[str, Any] = {setting: value}
    async with open_harness(tmp_path, **env) as h:
        response = await h.post(join(valid_pairs()))
        await assert_refused(response, 403, "foreign_portal")
        assert await h.services.store.jobs() == []


@pytest.mark.parametrize(
    ("setting", "value"), [("B24_MEMBER_ID", MEMBER_ID), ("B24_PORTAL_DOMAIN", DOMAIN.upper())]
)
async def test_an_event_from_our_portal_passes_the_portal_check(
    tmp_path: Path, setting: str, value: str
) -> None:
    env: dict[str, Any] = {setting: value}
    async with open_harness(tmp_path, **env) as h:
        response = await h.post(join(valid_pairs()))
        assert response.status_code == 200


async def _chunks(total: int, size: int, sent: list[int]) -> AsyncIterator[bytes]:
    head = join(valid_pairs(), b"pad=")
    sent.append(len(head))
    yield head
    while sent[-1] < total:
        sent.append(sent[-1] + size)
        yield b"x" * size


async def test_a_chunked_body_without_content_length_is_cut_off_at_the_limit(
    tmp_path: Path,
) -> None:
    """The limit is enforced while streaming: the app stops reading soon after 1 MiB."""
    async with open_harness(tmp_path) as h:
        sent: list[int] = []
        response = await h.client.post(
            "/events",
            content=_chunks(6 * MB, 64 * 1024, sent),
            headers={"content-type": FORM},
        )
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        await assert_refused(response, 413, "too_large")
        limit = h.services.settings.max_body
        assert sent[-1] <= limit + 128 * 1024, "the app read far past the limit"


async def test_a_declared_oversize_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        sent: list[int] = []

        response = await h.client.post(
            "/events",
            content=_chunks(6 * MB, 64 * 1024, sent),
            headers={"content-type": FORM, "content-length": str(6 * MB)},
        )
        await assert_refused(response, 413, "too_large")
        assert len(sent) <= 1, "the app read the body although its declared size was too big"


async def test_the_body_limit_follows_the_setting(tmp_path: Path) -> None:
    body = join(valid_pairs())
    async with open_harness(tmp_path, AUTOJOIN_MAX_BODY=str(len(body) - 1)) as h:
        await assert_refused(await h.post(body), 413, "too_large")
    async with open_harness(tmp_path, AUTOJOIN_MAX_BODY=str(len(body))) as h:
        assert (await h.post(body)).status_code == 200


@pytest.fixture
def served_app(tmp_path: Path) -> Iterator[str]:
    """The real app under uvicorn on a loopback port (no worker: nothing here needs one)."""
    settings = make_settings(tmp_path, FakePortal())
    services = build_services(settings, router=handlers.router, run_worker=False)
    try:
        with serve_in_thread(create_app(services)) as base:
            yield base
    finally:
        anyio.run(services.aclose)


def test_oversize_bodies_get_413_over_a_real_socket(served_app: str) -> None:
    with httpx.Client(base_url=served_app, timeout=30.0) as client:
        big = join(valid_pairs(), b"pad=" + b"x" * (6 * MB))
        response = client.post("/events", content=big, headers={"content-type": FORM})
        assert response.status_code == 413
        assert response.json()["error"] == "too_large"

    def chunked() -> Iterator[bytes]:
        yield join(valid_pairs(), b"pad=")
        for _ in range(96):
            yield b"x" * (64 * 1024)

    with httpx.Client(base_url=served_app, timeout=30.0) as client:
        response = client.post("/events", content=chunked(), headers={"content-type": FORM})
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert response.status_code == 413
        assert response.json()["error"] == "too_large"


def test_valid_and_hostile_bodies_over_a_real_socket(served_app: str) -> None:
    with httpx.Client(base_url=served_app, timeout=30.0) as client:
        ok = client.post("/events", content=join(valid_pairs()), headers={"content-type": FORM})
        assert ok.status_code == 200
        for name in ("nesting-2000-levels", "100k-fields", "nul-byte-raw-in-key", "empty-body"):
            bad = MALFORMED[name]
            response = client.post(
                "/events", content=bad.body, headers={"content-type": bad.content_type}
            )
            assert response.status_code == bad.status, name
            assert response.json()["error"] == bad.error
        assert client.get("/healthz").status_code == 200


def _reference_token(name: str) -> str:
    tokens = [v for k, v in REFERENCE_PAIRS[name] if k == "auth[application_token]"]
    assert len(tokens) == 1
    return tokens[0]


@pytest.mark.parametrize("name", list(REFERENCE_BODIES))
async def test_every_reference_body_is_acknowledged(tmp_path: Path, name: str) -> None:
    token = _reference_token(name)
    async with open_harness(tmp_path, B24_APP_TOKEN=token) as h:
        response = await h.post(REFERENCE_BODIES[name])
        assert 200 <= response.status_code < 300, response.text
        assert response.json()["status"] in {"accepted", "ignored"}


@pytest.mark.parametrize("variant", ["ONUSERADD/app", "ONUSERADD/webhook"])
async def test_onuseradd_is_accepted_in_both_auth_variants(tmp_path: Path, variant: str) -> None:
    async with open_harness(tmp_path, B24_APP_TOKEN=_reference_token(variant)) as h:
        response = await h.post(REFERENCE_BODIES[variant])
        assert response.status_code == 200
        assert response.json()["status"] == "accepted"
        assert response.json()["jobs"] == 1
        (job,) = await h.services.store.jobs()
        assert job.payload["user_id"] == 245
        assert job.payload["departments"] == [7, 12]


async def test_both_variants_of_one_hire_are_the_same_event(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        first = await h.post(REFERENCE_BODIES["ONUSERADD/app"])
        second = await h.post(REFERENCE_BODIES["ONUSERADD/webhook"])
        assert [first.json()["status"], second.json()["status"]] == ["accepted", "duplicate"]
        assert len(await h.services.store.jobs()) == 1


async def test_the_app_variant_keeps_no_oauth_token(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        await h.post(REFERENCE_BODIES["ONUSERADD/app"])
        oauth = dict(REFERENCE_PAIRS["ONUSERADD/app"])["auth[access_token]"]
        (job,) = await h.services.store.jobs()
        assert oauth not in json.dumps(dict(job.payload))


def unknown_event(h: Harness, name: str, token: str = APP_TOKEN) -> bytes:
    """An event no feature handles, built like every other body (the sandbox's builder)."""
    data = {"FIELDS": {"ID": 1}}
    return event_body(name, data, auth_block(token), ts=int(h.clock()), handler_id=77)


@pytest.mark.parametrize("name", ["ONCRMDEALADD", "ONTASKADD", "onSomethingNew"])
async def test_unknown_events_are_acknowledged_and_ignored(tmp_path: Path, name: str) -> None:
    async with open_harness(tmp_path) as h:
        response = await h.post(unknown_event(h, name))
        assert response.status_code == 200
        assert response.json()["status"] == "ignored"
        assert await h.services.store.jobs() == []
        await h.drain()
        assert h.portal.http_requests == 0


async def test_an_unknown_event_still_needs_the_token(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        await assert_refused(await h.post(unknown_event(h, "ONCRMDEALADD", "forged")), 401, "token")


async def test_healthz_answers_ok(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        response = await h.client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "reasons": []}


async def test_events_path_only_takes_post(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        assert (await h.client.get("/events")).status_code == 405


def _shape(body: bytes) -> tuple[int, int, int, int]:
    """(fields, depth, longest key, longest value) of a wire body, measured independently."""
    fields = depth = key_length = value_length = 0
    for pair in body.split(b"&"):
        raw_key, _, raw_value = pair.partition(b"=")
        key = unquote(raw_key.decode())
        fields += 1
        depth = max(depth, key.count("[") + 1)
        key_length = max(key_length, len(key))
        value_length = max(value_length, len(unquote(raw_value.decode())))
    return fields, depth, key_length, value_length


def test_form_limits_are_ten_times_the_largest_reference_payload() -> None:
    shapes = [_shape(body) for body in REFERENCE_BODIES.values()]
    fields = max(s[0] for s in shapes)
    depth = max(s[1] for s in shapes)
    key_length = max(s[2] for s in shapes)
    value_length = max(s[3] for s in shapes)
    assert fields >= 40  # the measure itself sees the bot events' size and nesting
    assert depth >= 5
    assert DEFAULT_LIMITS.max_fields >= 10 * fields
    assert DEFAULT_LIMITS.max_depth >= 10 * depth
    assert DEFAULT_LIMITS.max_value_length >= 10 * value_length
    assert DEFAULT_LIMITS.max_key_length >= 10 * key_length
    for body in REFERENCE_BODIES.values():
        parse_form(body)  # and every reference body parses under them


async def test_a_sender_that_hangs_up_mid_body_is_one_warning_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hostile client cannot fill the error log with tracebacks by disconnecting."""
    async with open_harness(tmp_path) as h:
        app = create_app(h.services)
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": b"event=ONUSERADD&data", "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/events",
            "raw_path": b"/events",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", FORM.encode())],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)
        assert sent[0]["status"] == 400
        assert json.loads(sent[1]["body"])["error"] == "disconnected"
        assert not [r for r in caplog.records if r.levelname in {"ERROR", "CRITICAL"}]
        assert await h.services.store.jobs() == []
