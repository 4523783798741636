from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import (
    PortalError,
    PortalJobError,
    PortalRateLimited,
    PortalRetryable,
    PortalWideError,
)
from bot.rest import ERROR_TABLE, ErrorRow, error_from_response, hint_for, make_error
from bot.rest.errors import UNKNOWN_HINT

BITRIX_ROWS = [row for row in ERROR_TABLE if not row.code.startswith("HTTP_")]
STATUS_OF = {
    "HTTP_3XX": 302,
    "HTTP_401": 401,
    "HTTP_403": 403,
    "HTTP_408": 408,
    "HTTP_429": 429,
    "HTTP_4XX": 404,
    "HTTP_5XX": 502,
}


def body(code: str, description: str = "", **extra: Any) -> bytes:
    return json.dumps({"error": code, "error_description": description, **extra}).encode()


@pytest.mark.parametrize("row", BITRIX_ROWS, ids=lambda row: f"{row.code}{'+' if row.when else ''}")
def test_every_code_maps_to_its_class_with_a_hint(row: ErrorRow) -> None:
    description = "REST is available only on commercial plans" if row.when else "whatever"
    exc = error_from_response("im.chat.user.add", 400, body(row.code, description))
    assert type(exc) is row.kind
    assert exc.code == row.code
    assert exc.hint == row.hint
    assert exc.hint
    assert exc.method == "im.chat.user.add"
    assert exc.description == description
    assert exc.status == 400


@pytest.mark.parametrize("row", [r for r in ERROR_TABLE if r.code.startswith("HTTP_")])
def test_status_rows_apply_only_without_a_json_error(row: ErrorRow) -> None:
    status = STATUS_OF[row.code]
    exc = error_from_response("user.get", status, b"<html><body>Bad gateway</body></html>")
    assert type(exc) is row.kind
    assert exc.code == f"HTTP_{status}"
    assert exc.hint == row.hint
    assert "an HTML page" in exc.description


def test_table_has_one_row_per_code_and_covers_the_brief() -> None:
    plain = [row.code for row in ERROR_TABLE if not row.when]
    assert len(plain) == len(set(plain))
    kinds = {row.code: row.kind for row in ERROR_TABLE if not row.when}
    assert kinds["OPERATION_TIME_LIMIT"] is PortalRateLimited
    assert kinds["QUERY_LIMIT_EXCEEDED"] is PortalRateLimited
    assert kinds["insufficient_scope"] is PortalWideError
    assert kinds["ACCESS_DENIED"] is PortalJobError
    assert all(row.hint for row in ERROR_TABLE)


def test_decision_follows_the_error_string_not_the_status() -> None:
    assert type(error_from_response("m", 200, body("ACCESS_DENIED_EXTEND"))) is PortalJobError
    assert type(error_from_response("m", 503, body("ACCESS_ERROR"))) is PortalJobError
    assert type(error_from_response("m", 400, body("QUERY_LIMIT_EXCEEDED"))) is PortalRateLimited
    assert type(error_from_response("m", 401, body("INTERNAL_SERVER_ERROR"))) is PortalRetryable
    assert type(error_from_response("m", 500, body("NO_AUTH_FOUND"))) is PortalWideError


def test_codes_match_case_insensitively_and_keep_their_spelling() -> None:
    exc = error_from_response("m", 401, body("INSUFFICIENT_SCOPE"))
    assert type(exc) is PortalWideError
    assert exc.code == "INSUFFICIENT_SCOPE"
    assert "scope" in exc.hint
    assert type(error_from_response("m", 400, body("access_denied_extend"))) is PortalJobError


@pytest.mark.parametrize(
    "description",
    [
        "REST API is available only on commercial plans",
        "Tariff restriction",
        "REST API доступен только на коммерческих тарифах",
        "Not available on your PLAN",
    ],
)
def test_access_denied_on_free_plans_pauses_the_portal(description: str) -> None:
    exc = error_from_response("user.get", 403, body("ACCESS_DENIED", description))
    assert type(exc) is PortalWideError
    assert "commercial" in exc.hint


def test_other_access_denied_is_per_job() -> None:
    exc = error_from_response("imbot.message.add", 403, body("ACCESS_DENIED", "Access denied"))
    assert type(exc) is PortalJobError
    assert exc.hint == hint_for("ACCESS_DENIED")


def test_admin_hints_say_what_to_fix() -> None:
    assert "manage_users_add" in hint_for("ACCESS_DENIED_EXTEND")
    assert "general chat" in hint_for("ACCESS_ERROR")
    assert "im, imbot, user, department" in hint_for("insufficient_scope")
    assert "B24_WEBHOOK_URL" in hint_for("INVALID_CREDENTIALS")
    assert hint_for("NO_AUTH_FOUND") == hint_for("INVALID_CREDENTIALS")
    assert hint_for("HTTP_502") == hint_for("HTTP_5XX")
    assert hint_for("SOMETHING_NEW") == UNKNOWN_HINT


def test_unknown_codes_are_per_job() -> None:
    exc = error_from_response("m", 500, body("BRAND_NEW_ERROR", "oops"))
    assert type(exc) is PortalJobError
    assert exc.hint == UNKNOWN_HINT
    assert str(exc) == "m: BRAND_NEW_ERROR: oops"


def test_operation_time_limit_carries_reset_at() -> None:
    raw = body("OPERATION_TIME_LIMIT", "blocked", time={"operating_reset_at": 1700000600})
    exc = error_from_response("user.get", 429, raw)
    assert isinstance(exc, PortalRateLimited)
    assert exc.reset_at == 1700000600.0
    plain = error_from_response("user.get", 429, body("OPERATION_TIME_LIMIT"))
    assert isinstance(plain, PortalRateLimited)
    assert plain.reset_at is None


@pytest.mark.parametrize("reset", ["soon", True, None, float("inf"), [1], "1e999"])
def test_unusable_reset_at_is_ignored(reset: object) -> None:
    raw = json.dumps({"error": "OPERATION_TIME_LIMIT", "time": {"operating_reset_at": reset}})
    exc = error_from_response("m", 429, raw)
    assert isinstance(exc, PortalRateLimited)
    assert exc.reset_at is None


@pytest.mark.parametrize(
    ("status", "raw", "kind", "code", "what"),
    [
        (502, b"<!DOCTYPE html><title>502</title>", PortalRetryable, "HTTP_502", "HTML"),
        (500, b"", PortalRetryable, "HTTP_500", "empty"),
        (503, "upstream down", PortalRetryable, "HTTP_503", "non-JSON"),
        (401, b"<html>Unauthorized</html>", PortalWideError, "HTTP_401", "HTML"),
        (403, b"", PortalWideError, "HTTP_403", "empty"),
        (404, b"Not Found", PortalJobError, "HTTP_404", "non-JSON"),
        (429, b"<html>slow down</html>", PortalRateLimited, "HTTP_429", "HTML"),
        (301, b"", PortalWideError, "HTTP_301", "empty"),
        (200, b"<html>login</html>", PortalRetryable, "ERROR_UNEXPECTED_ANSWER", "HTML"),
        (200, b'{"result": 1, "error": 5}', PortalRetryable, "ERROR_UNEXPECTED_ANSWER", "JSON"),
        (500, b"[1, 2]", PortalRetryable, "HTTP_500", "non-JSON"),
        (0, b"", PortalRetryable, "ERROR_UNEXPECTED_ANSWER", "empty"),
    ],
)
def test_status_only_fallbacks(
    status: int, raw: bytes | str, kind: type[PortalError], code: str, what: str
) -> None:
    exc = error_from_response("user.get", status, raw)
    assert type(exc) is kind
    assert exc.code == code
    assert what in exc.description
    assert exc.hint


def test_pages_are_described_never_quoted() -> None:
    page = b"<html>The URL /rest/1/s3cr3tc0de/user.get was not found</html>"
    exc = error_from_response("user.get", 404, page)
    assert "s3cr3tc0de" not in str(exc)
    assert "s3cr3tc0de" not in exc.description


def test_redact_scrubs_portal_supplied_text() -> None:
    raw = body("ERROR_CORE", "bad call to /rest/1/s3cr3tc0de/x")
    exc = error_from_response("m", 400, raw, redact=lambda t: t.replace("s3cr3tc0de", "***"))
    assert "s3cr3tc0de" not in str(exc)
    assert "/rest/1/***/x" in exc.description


def test_long_descriptions_and_codes_are_clipped() -> None:
    exc = error_from_response("m", 400, body("X" * 5000, "y" * 100_000))
    assert len(exc.code) <= 100
    assert len(exc.description) <= 300


def test_parsed_mappings_are_accepted_as_bodies() -> None:
    exc = error_from_response("im.chat.user.add", 200, {"error": "ACCESS_ERROR"})
    assert type(exc) is PortalJobError
    assert exc.description == ""


def test_make_error_builds_transport_codes() -> None:
    exc = make_error("user.get", "TIMEOUT", "ReadTimeout")
    assert type(exc) is PortalRetryable
    assert exc.hint == hint_for("TIMEOUT")
    limited = make_error("user.get", "OPERATION_TIME_LIMIT", reset_at=5.0)
    assert isinstance(limited, PortalRateLimited)
    assert limited.reset_at == 5.0


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
        b'{"error": {"nested": true}}',
        b'{"error": ["x"]}',
        b'{"error": null, "error_description": 5}',
        b'{"error": "", "error_description": "x"}',
        b'{"error": "   "}',
        b"1" * 10_000,
        b"null",
        b'"string"',
        b" " * (2_000_000),
        "ünïcödé",
        object(),
        None,
        42,
        [{"error": "ACCESS_ERROR"}],
        {"error": 1.5},
        {1: 2},
    ],
    ids=repr,
)
def test_garbage_never_raises(raw: object) -> None:
    for status in (200, 400, 403, 500, 502, 999):
        assert isinstance(error_from_response("m", status, raw), PortalError)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
ERRORISH = st.fixed_dictionaries(
    {"error": JSON | st.sampled_from([row.code for row in ERROR_TABLE])},
    optional={
        "error_description": JSON,
        "time": JSON | st.fixed_dictionaries({"operating_reset_at": JSON}),
    },
)


@given(status=st.integers(min_value=-1, max_value=1000), raw=st.binary(max_size=2048))
def test_any_bytes_become_a_portal_error(status: int, raw: bytes) -> None:
    exc = error_from_response("m", status, raw)
    assert isinstance(exc, PortalError)
    assert exc.hint


@given(status=st.sampled_from([200, 400, 401, 403, 429, 500, 503]), data=JSON | ERRORISH)
def test_any_json_shape_becomes_a_portal_error(status: int, data: object) -> None:
    for raw in (data, json.dumps(data), json.dumps(data).encode()):
        exc = error_from_response("m", status, raw)
        assert isinstance(exc, PortalError)
        assert exc.hint
        if isinstance(exc, PortalRateLimited) and exc.reset_at is not None:
            assert exc.reset_at == exc.reset_at  # finite, never NaN
