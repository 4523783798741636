"""Injected faults, outages, holds and webhook revocation."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.company import SALES_ALL_HANDS
from tests.fakes import FakeClock
from tests.sandbox.conftest import client_for

pytestmark = pytest.mark.anyio

ADD = {"CHAT_ID": SALES_ALL_HANDS, "USERS": [4]}


async def test_fail_next_fails_that_many_calls_then_recovers(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    portal.fail_next("im.chat.user.add", "QUERY_LIMIT_EXCEEDED", times=2)
    first = await rest.post("im.chat.user.add", json=ADD)
    other = await rest.post("user.get", json={"ID": 1})
    second = await rest.post("im.chat.user.add", json=ADD)
    third = await rest.post("im.chat.user.add", json=ADD)
    assert (first.status_code, first.json()["error"]) == (503, "QUERY_LIMIT_EXCEEDED")
    assert other.status_code == 200
    assert second.status_code == 503
    assert third.json()["result"] is True
    assert 4 in portal.chat_members(SALES_ALL_HANDS)
    assert [c.error for c in portal.calls_to("im.chat.user.add")] == [
        "QUERY_LIMIT_EXCEEDED",
        "QUERY_LIMIT_EXCEEDED",
        None,
    ]


async def test_failed_call_changes_no_state(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    portal.fail_next("im.chat.user.add", "INTERNAL_SERVER_ERROR", description="boom")
    response = await rest.post("im.chat.user.add", json=ADD)
    assert response.status_code == 500
    assert response.json() == {"error": "INTERNAL_SERVER_ERROR", "error_description": "boom"}
    assert 4 not in portal.chat_members(SALES_ALL_HANDS)


async def test_fail_next_with_explicit_status_and_wildcard(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    portal.fail_next("*", "ACCESS_DENIED_EXTEND", status=403)
    response = await rest.post("department.get", json={})
    assert (response.status_code, response.json()["error"]) == (403, "ACCESS_DENIED_EXTEND")
    assert (await rest.post("department.get", json={})).status_code == 200


async def test_html_fault_returns_a_non_json_page(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    portal.fail_next("user.get", "OPERATION_TIME_LIMIT", status=429, html=True)
    response = await rest.post("user.get", json={})
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError, match="Expecting value"):
        response.json()


async def test_faults_hit_batch_sub_commands(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    portal.fail_next("user.get", "INTERNAL_SERVER_ERROR")
    cmd = {"a": "user.get?ID=1", "b": "user.get?ID=2"}
    result = (await rest.post("batch", json={"cmd": cmd})).json()["result"]
    assert result["result_error"]["a"]["error"] == "INTERNAL_SERVER_ERROR"
    assert result["result"]["b"][0]["ID"] == "2"


async def test_html_fault_in_a_sub_command_breaks_the_whole_batch(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    portal.fail_next("user.get", "BAD_GATEWAY", status=502, html=True)
    response = await rest.post("batch", json={"cmd": {"a": "user.get?ID=1"}})
    assert response.status_code == 502
    assert "BAD_GATEWAY" in response.text
    assert portal.calls_to("batch")[0].status == 502


async def test_failure_rate_is_seeded_and_repeatable(clock: FakeClock) -> None:
    async def run() -> list[int]:
        portal = FakePortal(clock=clock, burst=1000)
        portal.set_failure_rate("user.get", 0.3, seed=7)
        async with client_for(portal) as rest:
            return [(await rest.post("user.get", json={"ID": 1})).status_code for _ in range(40)]

    first, second = await run(), await run()
    assert first == second
    assert 3 <= first.count(500) <= 25
    assert set(first) == {200, 500}


async def test_failure_rate_zero_switches_it_off(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    portal.set_failure_rate("*", 1.0, code="ERROR_UNEXPECTED_ANSWER")
    assert (await rest.post("user.get", json={})).json()["error"] == "ERROR_UNEXPECTED_ANSWER"
    portal.set_failure_rate("*", 0)
    assert (await rest.post("user.get", json={})).status_code == 200


async def test_a_request_failure_rate_fails_whole_requests_seeded(clock: FakeClock) -> None:
    """One draw per HTTP request: a failed batch runs none of its commands, a passed one
    runs all of them (no per-command faults), and the same seed fails the same requests."""

    async def run() -> list[int]:
        portal = FakePortal(clock=clock, burst=1000)
        portal.set_request_failure_rate(0.3, seed=5)
        cmd = {"a": "im.chat.user.add?CHAT_ID=101&USERS[]=4", "b": "user.get?ID=2"}
        statuses: list[int] = []
        async with client_for(portal) as rest:
            for _ in range(40):
                response = await rest.post("batch", json={"cmd": cmd})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    assert response.json()["result"]["result_error"] == []
        added = [c for c in portal.calls_to("im.chat.user.add") if c.error is None]
        assert len(added) == statuses.count(200)
        assert {c.error for c in portal.calls_to("batch")} == {None, "INTERNAL_SERVER_ERROR"}
        return statuses

    first, second = await run(), await run()
    assert first == second
    assert 3 <= first.count(500) <= 25
    assert set(first) == {200, 500}


async def test_a_request_failure_rate_over_http_and_off_again(
    rest: httpx.AsyncClient, admin: httpx.AsyncClient, portal: FakePortal
) -> None:
    await admin.post("/_admin/request_failure_rate", json={"rate": 1.0, "code": "X", "status": 502})
    failed = await rest.post("user.get", json={})
    assert (failed.status_code, failed.json()["error"]) == (502, "X")
    portal.set_request_failure_rate(0)
    assert (await rest.post("user.get", json={})).status_code == 200
    with pytest.raises(ValueError, match="rate"):
        portal.set_request_failure_rate(-0.1)


async def test_hold_parks_requests_until_release(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    portal.hold()
    task = asyncio.create_task(rest.post("im.chat.user.add", json=ADD))
    for _ in range(200):
        if portal.counters.held_now == 1:
            break
        await asyncio.sleep(0.01)
    assert portal.counters.held_now == 1
    await asyncio.sleep(0.1)
    assert not task.done()
    assert 4 not in portal.chat_members(SALES_ALL_HANDS)
    portal.release()
    response = await asyncio.wait_for(task, timeout=5)
    assert response.json()["result"] is True
    assert portal.counters.held_now == 0
    assert 4 in portal.chat_members(SALES_ALL_HANDS)


async def test_down_portal_answers_503_html(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    portal.set_down(True)
    response = await rest.post("im.chat.user.add", json=ADD)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert 4 not in portal.chat_members(SALES_ALL_HANDS)
    portal.set_down(False)
    assert (await rest.post("im.chat.user.add", json=ADD)).status_code == 200


async def test_revoked_webhook_fails_auth_until_restored(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    portal.revoke_webhook()
    response = await rest.post("im.chat.user.add", json=ADD)
    assert (response.status_code, response.json()["error"]) == (401, "INVALID_CREDENTIALS")
    assert 4 not in portal.chat_members(SALES_ALL_HANDS)
    portal.restore_webhook()
    assert (await rest.post("im.chat.user.add", json=ADD)).json()["result"] is True


def test_fault_arguments_are_checked() -> None:
    portal = FakePortal()
    with pytest.raises(ValueError, match="times"):
        portal.fail_next("user.get", "X", times=0)
    with pytest.raises(ValueError, match="rate"):
        portal.set_failure_rate("user.get", 1.5)
