"""New hires appearing at run time: `user.get` sees them, outgoing webhooks hear ONUSERADD (§9)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.events import APP_TOKEN
from tests.fakes import FakeClock
from tests.sandbox.v2 import FakeReceiver

pytestmark = pytest.mark.anyio

FILTER: dict[str, Any] = {">ID": 12, "USER_TYPE": "employee", "ACTIVE": True}
POLL: dict[str, Any] = {
    "filter": FILTER,
    "sort": "ID",
    "order": "ASC",
    "select": ["ID", "NAME", "LAST_NAME", "UF_DEPARTMENT", "DATE_REGISTER", "LAST_LOGIN", "ACTIVE"],
    "start": -1,
}


async def poll(rest: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    response = await rest.post("user.get", json=POLL | changes)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_hire_is_visible_to_the_id_cursor_poll_at_once(
    rest: httpx.AsyncClient, portal: FakePortal, clock: FakeClock
) -> None:
    assert (await poll(rest))["result"] == []
    clock.advance(60)
    nina = portal.stage.hire(name="Nina", last_name="Novak", departments=[8])
    portal.stage.hire(name="Olaf", last_name="Orr", departments=[2], user_type="extranet")
    portal.stage.hire(name="Pia", last_name="Pohl", departments=[2], active=False)
    body = await poll(rest)
    assert "total" not in body
    assert "next" not in body
    [row] = body["result"]
    assert row["ID"] == str(nina.id) == "13"
    assert row["UF_DEPARTMENT"] == [8]
    assert row["DATE_REGISTER"] == "2026-03-02T06:14:20+00:00"
    assert row["LAST_LOGIN"] == row["DATE_REGISTER"]
    assert (await poll(rest, filter=FILTER | {">ID": 13}))["result"] == []


async def test_the_cursor_pages_by_fifty_in_id_order(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    for n in range(120):
        portal.stage.hire(name=f"Hire{n}", departments=[2])
    cursor, pages = 12, []
    while True:
        rows = (await poll(rest, filter=FILTER | {">ID": cursor}))["result"]
        pages.append(len(rows))
        if rows:
            cursor = int(rows[-1]["ID"])
        if len(rows) < 50:
            break
    assert pages == [50, 50, 20]
    assert cursor == 132
    newest_first = (await poll(rest, order="DESC"))["result"]
    assert int(newest_first[0]["ID"]) == 132


async def test_onuseradd_fires_at_the_first_login_to_subscribed_webhooks(
    portal: FakePortal, admin: httpx.AsyncClient, rest: httpx.AsyncClient
) -> None:
    receiver = FakeReceiver()
    portal.outbound = receiver.transport()
    hook = "https://autojoin.example.com/events"
    await admin.post(
        "/_admin/outbound", json={"event": "ONUSERADD", "url": hook, "token": APP_TOKEN}
    )
    invited = await admin.post(
        "/_admin/hire", json={"name": "Nina", "departments": [8], "logged_in": False}
    )
    body = invited.json()
    assert body["deliveries"] == []
    assert body["user"]["id"] == 13
    row = (await rest.post("user.get", json={"ID": 13})).json()["result"][0]
    assert row["LAST_LOGIN"] == ""  # invited, never logged in: visible, but no ONUSERADD yet
    first = (await admin.post("/_admin/login", json={"user_id": 13})).json()
    again = (await admin.post("/_admin/login", json={"user_id": 13})).json()
    assert [d["event"] for d in first["deliveries"]] == ["ONUSERADD"]
    assert again["deliveries"] == []
    [tree] = receiver.trees()
    assert tree["event"] == "ONUSERADD"
    assert tree["auth"]["application_token"] == APP_TOKEN
    assert (tree["data"]["ID"], tree["data"]["UF_DEPARTMENT"]) == ("13", ["8"])
    hired = (await admin.post("/_admin/hire", json={"name": "Olaf", "id": 40})).json()
    assert [d["status"] for d in hired["deliveries"]] == [200]
    assert hired["user"]["id"] == 40
    state = (await admin.get("/_admin/state")).json()
    assert state["v2"]["subscriptions"] == [{"event": "ONUSERADD", "url": hook}]
    assert APP_TOKEN not in str(state)


async def test_without_a_subscription_a_hire_posts_nothing(
    portal: FakePortal, admin: httpx.AsyncClient
) -> None:
    body = (await admin.post("/_admin/hire", json={"name": "Nina"})).json()
    assert body["deliveries"] == []
    assert portal.state.users[13].last_login != ""


async def test_bad_hires_are_400(admin: httpx.AsyncClient) -> None:
    taken = await admin.post("/_admin/hire", json={"name": "Alice", "id": 1})
    nameless = await admin.post("/_admin/hire", json={"departments": [2]})
    unknown = await admin.post("/_admin/hire", json={"name": "X", "shoe_size": 44})
    no_user = await admin.post("/_admin/login", json={"user_id": 404})
    assert [r.status_code for r in (taken, nameless, unknown, no_user)] == [400, 400, 400, 400]
    assert "already exists" in taken.json()["detail"]
