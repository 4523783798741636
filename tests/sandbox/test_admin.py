"""`/_admin/*`: everything a test in another process needs to drive and read the fake."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.company import SALES_ALL_HANDS

pytestmark = pytest.mark.anyio

ADD = {"CHAT_ID": SALES_ALL_HANDS, "USERS": [4], "HIDE_HISTORY": "Y"}


async def test_state_shows_chats_counters_and_calls(
    rest: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await rest.post("im.chat.user.add", json=ADD)
    await rest.post("im.chat.user.add", json={"CHAT_ID": 107, "USERS": [4]})
    state = (await admin.get("/_admin/state")).json()
    chat = next(c for c in state["chats"] if c["id"] == SALES_ALL_HANDS)
    assert chat["members"] == [1, 2, 3, 4]
    assert chat["history_hidden"] == {"4": True}
    assert state["counters"]["http_requests"] == 2
    assert state["calls"]["im.chat.user.add"] == {
        "count": 2,
        "errors": {"ACCESS_DENIED_EXTEND": 1},
    }
    assert {u["id"] for u in state["users"]} == set(range(1, 13))
    assert state["webhooks"] == [
        {"user_id": 1, "revoked": False, "scopes": ["department", "im", "imbot", "user"]}
    ]


async def test_calls_endpoint_filters_by_method(
    rest: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await rest.post("user.get", json={"ID": 2})
    await rest.post("im.chat.user.add", json=ADD)
    calls = (await admin.get("/_admin/calls", params={"method": "im.chat.user.add"})).json()
    assert [(c["method"], c["status"], c["params"]["USERS"]) for c in calls] == [
        ("im.chat.user.add", 200, [4])
    ]
    everything = (await admin.get("/_admin/calls")).json()
    assert [c["method"] for c in everything] == ["user.get", "im.chat.user.add"]


async def test_fault_and_failure_rate_over_http(
    rest: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.post(
        "/_admin/fault",
        json={"method": "im.chat.user.add", "code": "QUERY_LIMIT_EXCEEDED", "times": 1},
    )
    refused = await rest.post("im.chat.user.add", json=ADD)
    assert (refused.status_code, refused.json()["error"]) == (503, "QUERY_LIMIT_EXCEEDED")
    await admin.post(
        "/_admin/fault", json={"method": "*", "code": "X", "status": 502, "html": True}
    )
    assert (await rest.post("user.get", json={})).headers["content-type"].startswith("text/html")
    await admin.post("/_admin/failure_rate", json={"method": "user.get", "rate": 1.0})
    assert (await rest.post("user.get", json={})).status_code == 500


async def test_hold_release_down_revoke_restore_over_http(
    rest: httpx.AsyncClient, admin: httpx.AsyncClient, portal: FakePortal
) -> None:
    await admin.post("/_admin/hold")
    task = asyncio.create_task(rest.post("user.get", json={}))
    await asyncio.sleep(0.1)
    assert not task.done()
    assert (await admin.get("/_admin/state")).json()["counters"]["held_now"] == 1
    await admin.post("/_admin/release")
    assert (await asyncio.wait_for(task, 5)).status_code == 200
    await admin.post("/_admin/down", json={"down": True})
    assert (await rest.post("user.get", json={})).status_code == 503
    await admin.post("/_admin/down", json={"down": False})
    await admin.post("/_admin/revoke")
    assert (await rest.post("user.get", json={})).status_code == 401
    await admin.post("/_admin/restore")
    assert (await rest.post("user.get", json={})).status_code == 200
    assert portal.state.held is False


async def test_users_endpoint_adds_and_updates(
    rest: httpx.AsyncClient, admin: httpx.AsyncClient, portal: FakePortal
) -> None:
    created = (
        await admin.post(
            "/_admin/users", json={"name": "Nina", "last_name": "Nowak", "departments": [8]}
        )
    ).json()
    assert created["id"] == 13
    moved = await admin.post("/_admin/users", json={"id": 13, "departments": [3], "active": False})
    assert moved.json()["departments"] == [3]
    rows = (await rest.post("user.get", json={"ID": 13})).json()["result"]
    assert rows[0]["UF_DEPARTMENT"] == [3]
    assert rows[0]["ACTIVE"] is False
    assert portal.state.users[13].name == "Nina"


async def test_bad_admin_requests_are_400(admin: httpx.AsyncClient) -> None:
    missing = await admin.post("/_admin/fault", json={"method": "user.get"})
    not_json = await admin.post("/_admin/users", content=b"{")
    unknown_field = await admin.post("/_admin/users", json={"id": 1, "shoe_size": 44})
    assert [r.status_code for r in (missing, not_json, unknown_field)] == [400, 400, 400]


async def test_scopes_operating_and_reset_counters(
    rest: httpx.AsyncClient, admin: httpx.AsyncClient, portal: FakePortal
) -> None:
    await admin.post("/_admin/scopes", json={"scopes": ["im"]})
    assert (await rest.post("user.get", json={})).json()["error"] == "insufficient_scope"
    await admin.post("/_admin/operating", json={"method": "im.chat.user.list", "cost": 5})
    listed = await rest.post("im.chat.user.list", json={"CHAT_ID": 101})
    assert listed.json()["time"]["operating"] == 5
    await admin.post("/_admin/reset_counters")
    state = (await admin.get("/_admin/state")).json()
    assert state["counters"]["http_requests"] == 0
    assert state["calls"] == {}
    assert portal.http_requests == 0
