"""`batch` (§7.3): PHP sub-queries, PHP-shaped output, limits and halt."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.formparse import build_query
from bot.sandbox import FakePortal
from bot.sandbox.company import SALES_ALL_HANDS, SECRET_PROJECT

pytestmark = pytest.mark.anyio


def sub(method: str, params: dict[str, Any]) -> str:
    return f"{method}?{build_query(params)}"


async def batch(rest: httpx.AsyncClient, cmd: Any, halt: int = 0) -> dict[str, Any]:
    response = await rest.post("batch", json={"halt": halt, "cmd": cmd})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"result", "time"}
    result: dict[str, Any] = body["result"]
    return result


async def test_batch_runs_each_command_with_php_parameters(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    cmd = {
        "add": sub("im.chat.user.add", {"CHAT_ID": SALES_ALL_HANDS, "USERS": [4, 5]}),
        "users": sub("user.get", {"FILTER": {"UF_DEPARTMENT": [4]}}),
        "deny": sub("im.chat.user.add", {"CHAT_ID": SECRET_PROJECT, "USERS": [4]}),
    }
    result = await batch(rest, cmd)
    assert result["result"]["add"] is True
    assert [u["ID"] for u in result["result"]["users"]] == ["4", "5"]
    assert result["result_total"] == {"users": 2}
    assert result["result_next"] == []
    assert result["result_error"] == {
        "deny": {
            "error": "ACCESS_DENIED_EXTEND",
            "error_description": "You don't have enough permissions to add users to this chat",
        }
    }
    assert set(result["result_time"]) == {"add", "users"}
    assert portal.chat_members(SALES_ALL_HANDS) == {1, 2, 3, 4, 5}
    assert [(c.method, c.batch, c.key) for c in portal.state.calls] == [
        ("batch", False, None),
        ("im.chat.user.add", True, "add"),
        ("user.get", True, "users"),
        ("im.chat.user.add", True, "deny"),
    ]


async def test_empty_sections_are_json_arrays(rest: httpx.AsyncClient) -> None:
    result = await batch(rest, {"a": "im.chat.user.list?CHAT_ID=101"})
    assert result["result"] == {"a": [1, 2, 3]}
    assert result["result_error"] == []
    assert result["result_total"] == []
    assert result["result_next"] == []
    nothing = await batch(rest, {})
    assert nothing == {
        name: []
        for name in ("result", "result_error", "result_total", "result_next", "result_time")
    }


async def test_list_cmd_gives_list_results(rest: httpx.AsyncClient) -> None:
    result = await batch(rest, ["im.chat.user.list?CHAT_ID=104", "im.chat.user.list?CHAT_ID=103"])
    assert result["result"] == [[1, 7], [1, 6]]


async def test_batch_is_one_request_and_one_bucket_unit(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    cmd = {f"k{i}": "user.get?ID=1" for i in range(50)}
    await batch(rest, cmd)
    assert portal.http_requests == 1
    assert portal.bucket.level(portal.clock()) == 1
    assert len(portal.calls_to("user.get")) == 50


async def test_commands_beyond_fifty_get_length_exceeded(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    cmd = {
        f"u{i}": sub("im.chat.user.add", {"CHAT_ID": SALES_ALL_HANDS, "USERS": [i]})
        for i in range(1, 53)
    }
    result = await batch(rest, cmd)
    assert len(result["result"]) == 50
    assert set(result["result_error"]) == {"u51", "u52"}
    assert result["result_error"]["u51"]["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    assert 12 in portal.chat_members(SALES_ALL_HANDS)  # user 12 was command 12, within 50


async def test_nested_batch_is_not_allowed(rest: httpx.AsyncClient) -> None:
    result = await batch(rest, {"inner": "batch?cmd%5Bx%5D=user.get", "ok": "user.get?ID=2"})
    assert result["result_error"]["inner"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    assert result["result"]["ok"][0]["ID"] == "2"


async def test_halt_stops_at_the_first_failure(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    cmd = {
        "first": sub("im.chat.user.add", {"CHAT_ID": SALES_ALL_HANDS, "USERS": [4]}),
        "fails": sub("im.chat.user.add", {"CHAT_ID": SECRET_PROJECT, "USERS": [4]}),
        "never": sub("im.chat.user.add", {"CHAT_ID": SALES_ALL_HANDS, "USERS": [5]}),
    }
    result = await batch(rest, cmd, halt=1)
    assert list(result["result"]) == ["first"]
    assert list(result["result_error"]) == ["fails"]
    assert 5 not in portal.chat_members(SALES_ALL_HANDS)
    assert [c.key for c in portal.calls_to("im.chat.user.add")] == ["first", "fails"]


async def test_without_halt_later_commands_still_run(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    cmd = {
        "fails": sub("im.chat.user.add", {"CHAT_ID": SECRET_PROJECT, "USERS": [4]}),
        "runs": sub("im.chat.user.add", {"CHAT_ID": SALES_ALL_HANDS, "USERS": [5]}),
    }
    result = await batch(rest, cmd, halt=0)
    assert result["result"] == {"runs": True}
    assert 5 in portal.chat_members(SALES_ALL_HANDS)


async def test_back_references_use_earlier_results(rest: httpx.AsyncClient) -> None:
    cmd = {
        "user": "user.get?ID=9",
        "dept": "department.get?ID=$result[user][0][UF_DEPARTMENT][0]",
    }
    result = await batch(rest, cmd)
    assert result["result"]["dept"][0]["NAME"] == "Platform"


async def test_sub_command_scope_and_unknown_method_errors(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    portal.set_scopes("im")
    result = await batch(
        rest, {"u": "user.get", "x": "no.such.method", "l": "im.chat.user.list?CHAT_ID=103"}
    )
    assert result["result_error"]["u"]["error"] == "insufficient_scope"
    assert result["result_error"]["x"]["error"] == "ERROR_METHOD_NOT_FOUND"
    assert result["result"] == {"l": [1, 6]}


async def test_batch_sent_as_a_php_form(rest: httpx.AsyncClient) -> None:
    body = build_query({"halt": 0, "cmd": {"a": sub("user.get", {"ID": 3})}}).encode()
    response = await rest.post("batch", content=body)
    assert response.json()["result"]["result"]["a"][0]["NAME"] == "Clara"
