"""The REST envelope, request formats and auth, as any Bitrix24 client sees them."""

from __future__ import annotations

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.company import WEBHOOK_CODE
from tests.fakes import FakeClock
from tests.sandbox.conftest import ADMIN_BASE, client_for

pytestmark = pytest.mark.anyio

TIME_KEYS = {
    "start",
    "finish",
    "duration",
    "processing",
    "date_start",
    "date_finish",
    "operating",
    "operating_reset_at",
}


async def test_success_envelope_has_result_and_time(
    rest: httpx.AsyncClient, clock: FakeClock
) -> None:
    response = await rest.post("im.chat.user.list", json={"CHAT_ID": 101})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"result", "time"}
    assert body["result"] == [1, 2, 3]
    assert set(body["time"]) == TIME_KEYS
    assert body["time"]["start"] == clock()
    assert body["time"]["date_start"] == "2026-03-02T06:13:20+00:00"


async def test_list_methods_add_total_and_next_only_when_more_remain(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    for n in range(100, 160):
        portal.upsert_user(id=n, name=f"User {n}", departments=[9])
    first = (await rest.post("user.get", json={"FILTER": {"UF_DEPARTMENT": 9}})).json()
    assert (first["total"], first["next"], len(first["result"])) == (61, 50, 50)
    assert list(first) == ["result", "next", "total", "time"]
    second = (
        await rest.post("user.get", json={"FILTER": {"UF_DEPARTMENT": 9}, "start": 50})
    ).json()
    assert second["total"] == 61
    assert "next" not in second
    assert [row["ID"] for row in second["result"]] == [str(n) for n in range(149, 160)]


async def test_json_suffix_get_query_and_form_body_are_all_accepted(
    rest: httpx.AsyncClient,
) -> None:
    by_get = await rest.get("im.chat.user.list.json?CHAT_ID=104")
    by_form = await rest.post("im.chat.user.list", content=b"CHAT_ID=104")
    by_form_headers = await rest.post(
        "IM.CHAT.USER.LIST",
        content=b"chat_id=104",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert by_get.json()["result"] == by_form.json()["result"] == [1, 7]
    assert by_form_headers.json()["result"] == [1, 7]


async def test_unknown_method_is_404_method_not_found(rest: httpx.AsyncClient) -> None:
    response = await rest.post("crm.deal.list", json={})
    assert response.status_code == 404
    assert response.json() == {
        "error": "ERROR_METHOD_NOT_FOUND",
        "error_description": "Method not found!",
    }


async def test_bad_json_is_an_argument_error(rest: httpx.AsyncClient) -> None:
    response = await rest.post(
        "user.get", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "ERROR_ARGUMENT"


async def test_wrong_webhook_code_is_401_invalid_credentials(portal: FakePortal) -> None:
    async with client_for(portal, f"{ADMIN_BASE}/rest/1/wrongcode/") as client:
        response = await client.post("user.get", json={})
    assert response.status_code == 401
    assert response.json()["error"] == "INVALID_CREDENTIALS"
    assert portal.calls_to("user.get")[0].error == "INVALID_CREDENTIALS"


async def test_wrong_webhook_user_is_401_invalid_credentials(portal: FakePortal) -> None:
    async with client_for(portal, f"{ADMIN_BASE}/rest/2/{WEBHOOK_CODE}/") as client:
        response = await client.post("user.get", json={})
    assert (response.status_code, response.json()["error"]) == (401, "INVALID_CREDENTIALS")


async def test_malformed_webhook_path_is_401_no_auth_found(portal: FakePortal) -> None:
    async with client_for(portal, f"{ADMIN_BASE}/rest/admin/{WEBHOOK_CODE}/") as client:
        response = await client.post("user.get", json={})
    assert (response.status_code, response.json()["error"]) == (401, "NO_AUTH_FOUND")


async def test_missing_scope_is_401_insufficient_scope(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    portal.set_scopes("im", "user")
    denied = await rest.post("department.get", json={})
    allowed = await rest.post("user.get", json={"ID": 1})
    assert (denied.status_code, denied.json()["error"]) == (401, "insufficient_scope")
    assert allowed.status_code == 200


async def test_webhook_code_never_appears_in_errors_or_reprs(portal: FakePortal) -> None:
    async with client_for(portal, f"{ADMIN_BASE}/rest/1/{WEBHOOK_CODE}x/") as client:
        error = await client.post("user.get", json={})
    portal.revoke_webhook()
    async with client_for(portal) as client:
        revoked = await client.post("user.get", json={})
    assert WEBHOOK_CODE not in error.text
    assert WEBHOOK_CODE not in revoked.text
    assert WEBHOOK_CODE not in repr(portal)
    assert WEBHOOK_CODE not in repr(portal.state)
    async with client_for(portal, ADMIN_BASE) as admin:
        assert WEBHOOK_CODE not in (await admin.get("/_admin/state")).text


async def test_physical_requests_are_counted_once_per_http_request(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    await rest.post("user.get", json={})
    await rest.post("batch", json={"cmd": {"a": "user.get", "b": "department.get"}})
    assert portal.http_requests == 2
    assert len(portal.state.calls) == 4  # the batch and its two sub-commands
