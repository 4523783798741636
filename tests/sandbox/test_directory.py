"""`user.get` and `department.get`: filters, row shapes and paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.sandbox import FakePortal, methods_users
from bot.sandbox.company import generated_company
from bot.sandbox.methods import Context
from bot.sandbox.state import Department
from tests.fakes import FakeClock
from tests.sandbox.conftest import client_for

pytestmark = pytest.mark.anyio


async def ids(rest: httpx.AsyncClient, method: str, params: dict[str, Any]) -> list[int]:
    response = await rest.post(method, json=params)
    assert response.status_code == 200, response.text
    return [int(row["ID"]) for row in response.json()["result"]]


async def test_user_rows_have_the_portal_types(rest: httpx.AsyncClient) -> None:
    row = (await rest.post("user.get", json={"ID": 11})).json()["result"][0]
    assert row == {
        "ID": "11",
        "ACTIVE": False,
        "NAME": "Karl",
        "LAST_NAME": "Krause",
        "EMAIL": "karl.krause@example.com",
        "UF_DEPARTMENT": [7],
        "USER_TYPE": "employee",
        "TIMESTAMP_X": "2026-01-12T09:11:00+00:00",
        "DATE_REGISTER": "2026-01-15T09:00:00+00:00",
        "LAST_LOGIN": "2026-01-15T09:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"FILTER": {"ACTIVE": True, "UF_DEPARTMENT": 7}}, [8]),
        ({"FILTER": {"UF_DEPARTMENT": [7, 4]}}, [4, 5, 8, 11]),
        ({"FILTER": {"UF_DEPARTMENT": "6"}}, [7]),  # direct members only, no subtree
        ({"FILTER": {"ID": [3, "5", 99]}}, [3, 5]),
        ({"FILTER": {">ID": 10}}, [11, 12]),
        ({"FILTER": {"USER_TYPE": "extranet"}}, [12]),
        ({"FILTER": {">TIMESTAMP_X": "2026-01-11T00:00:00+00:00"}}, [10, 11, 12]),
        ({"FILTER": {"ACTIVE": "Y", ">=ID": 10}}, [10, 12]),
        ({"ACTIVE": "1", "UF_DEPARTMENT": 7}, [8]),  # top-level fields without FILTER
        ({"FILTER": {"ACTIVE": "N"}}, [11]),
    ],
)
async def test_user_get_filters(
    rest: httpx.AsyncClient, params: dict[str, Any], expected: list[int]
) -> None:
    assert await ids(rest, "user.get", params) == expected


async def test_user_get_form_filter_with_php_brackets(rest: httpx.AsyncClient) -> None:
    body = b"FILTER%5BUF_DEPARTMENT%5D%5B0%5D=4&FILTER%5BACTIVE%5D=1"
    response = await rest.post("user.get", content=body)
    assert [r["ID"] for r in response.json()["result"]] == ["4", "5"]


async def test_user_get_pages_a_big_company(clock: FakeClock) -> None:
    portal = FakePortal(generated_company(users=130, departments=10, chats=3), clock=clock)
    async with client_for(portal) as rest:
        pages = [(await rest.post("user.get", json={"start": s})).json() for s in (0, 50, 100)]
        uncounted = (await rest.post("user.get", json={"start": -1, ">ID": 120})).json()
    assert [p["total"] for p in pages] == [130, 130, 130]
    assert [p.get("next") for p in pages] == [50, 100, None]
    assert [len(p["result"]) for p in pages] == [50, 50, 30]
    seen = [int(r["ID"]) for p in pages for r in p["result"]]
    assert seen == list(range(1, 131))
    assert "total" not in uncounted
    assert "next" not in uncounted
    assert [int(r["ID"]) for r in uncounted["result"]] == list(range(121, 131))


async def test_department_rows_and_tree_order(rest: httpx.AsyncClient) -> None:
    rows = (await rest.post("department.get", json={})).json()["result"]
    assert rows[0] == {"ID": "1", "NAME": "Example Corp", "SORT": 500}
    assert rows[3] == {"ID": "4", "NAME": "Sales DACH", "SORT": 500, "PARENT": "3"}
    assert [r["ID"] for r in rows] == ["1", "2", "3", "4", "5", "6", "7", "8", "9"]


async def test_department_order_is_preorder_not_id_order(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    portal.state.add_department(Department(10, "Sales Nordics", parent=2, sort=600))
    order = await ids(rest, "department.get", {})
    assert order.index(10) == order.index(4) + 1  # after Sales EMEA's subtree, before Marketing
    assert order.index(10) < order.index(5)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"ID": 7}, [7]),
        ({"FILTER": {"PARENT": 1}}, [2, 5, 6, 9]),
        ({"PARENT": ["3", "7"]}, [4, 8]),
        ({"NAME": "Support"}, [9]),
        ({"filter": {"ID": [8, 2]}}, [2, 8]),
    ],
)
async def test_department_get_filters(
    rest: httpx.AsyncClient, params: dict[str, Any], expected: list[int]
) -> None:
    assert await ids(rest, "department.get", params) == expected


async def test_department_get_pages_by_50(clock: FakeClock) -> None:
    portal = FakePortal(generated_company(users=5, departments=120, chats=0), clock=clock)
    async with client_for(portal) as rest:
        first = (await rest.post("department.get", json={})).json()
        last = (await rest.post("department.get", json={"START": 100})).json()
    assert (first["total"], first["next"], len(first["result"])) == (120, 50, 50)
    assert (last["total"], len(last["result"])) == (120, 20)
    assert "next" not in last


async def test_user_get_rejects_an_unreadable_date(rest: httpx.AsyncClient) -> None:
    response = await rest.post("user.get", json={"FILTER": {">TIMESTAMP_X": "yesterday"}})
    assert (response.status_code, response.json()["error"]) == (400, "ERROR_ARGUMENT")


async def test_a_bad_date_behind_a_clause_nobody_passes_is_never_read(
    rest: httpx.AsyncClient,
) -> None:
    """Filter values are converted when a user first reaches them, so this is no error."""
    params = {"FILTER": {"ID": 99, ">TIMESTAMP_X": "yesterday"}}
    assert await ids(rest, "user.get", params) == []


def test_filter_values_are_converted_once_per_request_not_per_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At 10,000 users a full read converted them 2,000,000 times (six seconds of CPU)."""
    conversions: list[str] = []
    original = methods_users._wanted

    def counted(name: str, raw: Any) -> list[Any]:
        conversions.append(name)
        return original(name, raw)

    monkeypatch.setattr(methods_users, "_wanted", counted)
    ctx = Context(generated_company(users=300, departments=10, chats=0), 1, 0.0)
    params = {"FILTER": {"ACTIVE": "Y", ">=TIMESTAMP_X": "2026-01-10T00:00:00+00:00"}}
    reply = methods_users.user_get(ctx, params)
    assert conversions == ["ACTIVE", "TIMESTAMP_X"]
    assert 0 < (reply.total or 0) < 300
