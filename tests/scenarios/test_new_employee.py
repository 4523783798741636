"""ONUSERADD end to end: real bodies over HTTP, the real worker, the fake portal's state."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sandbox import FakePortal
from bot.sandbox.company import (
    BACKEND_GUILD,
    EMEA_DEALS,
    ENGINEERING,
    SALES_ALL_HANDS,
    SECRET_PROJECT,
)
from bot.sandbox.events import APP_TOKEN, user_add
from tests.fakes import FakeClock
from tests.harness import open_harness

pytestmark = pytest.mark.anyio


def hire(portal: FakePortal, user_id: int, departments: list[int], name: str = "Mia") -> bytes:
    user = portal.upsert_user(user_id, name=name, last_name="Meyer", departments=departments)
    return user_add(user, token=APP_TOKEN)


async def test_new_hire_in_a_subdepartment_lands_in_every_matching_chat(tmp_path: Path) -> None:
    """Sales DACH is under Sales EMEA under Sales: both rules apply, each with its history."""
    async with open_harness(tmp_path) as h:
        response = await h.post(hire(h.portal, 40, [4]))
        assert response.status_code == 200
        assert response.json()["status"] == "accepted"
        assert h.portal.calls_to("im.chat.user.add") == []  # nothing on the ack path
        await h.drain()
        assert 40 in h.portal.chat_members(SALES_ALL_HANDS)
        assert 40 in h.portal.chat_members(EMEA_DEALS)
        assert h.portal.history_hidden(SALES_ALL_HANDS, 40) is False
        assert h.portal.history_hidden(EMEA_DEALS, 40) is True
        assert 40 not in h.portal.chat_members(ENGINEERING)
        history = await h.services.store.history(user_id=40)
        assert {(e.chat_id, e.outcome) for e in history} == {
            (SALES_ALL_HANDS, "added"),
            (EMEA_DEALS, "added"),
        }


async def test_hide_history_is_always_sent_explicitly(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        await h.post(hire(h.portal, 41, [4]))
        await h.drain()
        sent = {call.params.get("HIDE_HISTORY") for call in h.portal.calls_to("im.chat.user.add")}
        assert sent == {"Y", "N"}


async def test_duplicate_delivery_before_and_after_completion_adds_once(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        body = hire(h.portal, 42, [7])
        first = await h.post(body)
        second = await h.post(body)
        assert (first.json()["status"], second.json()["status"]) == ("accepted", "duplicate")
        await h.drain()
        adds = len(h.portal.calls_to("im.chat.user.add"))
        third = await h.post(body)
        assert third.json()["status"] == "duplicate"
        await h.drain()
        assert len(h.portal.calls_to("im.chat.user.add")) == adds
        added = [e for e in await h.services.store.history(user_id=42) if e.outcome == "added"]
        assert sorted(e.chat_id for e in added) == [ENGINEERING, BACKEND_GUILD]


async def test_already_member_and_dropped_users_are_told_apart(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        await h.post(user_add(h.portal.state.users[8], token=APP_TOKEN))  # Hiro, Backend
        inactive = h.portal.upsert_user(43, name="Ghost", departments=[7], active=False)
        body = user_add(inactive, token=APP_TOKEN)
        body = body.replace(b"data%5BACTIVE%5D=0", b"data%5BACTIVE%5D=1")  # portal says active
        await h.post(body)
        await h.drain()
        outcomes = {(e.user_id, e.chat_id): e.outcome for e in await h.services.store.history()}
        assert outcomes[(8, BACKEND_GUILD)] in {"added", "already_member"}
        assert outcomes[(43, BACKEND_GUILD)] == "dropped"
        assert 43 not in h.portal.chat_members(BACKEND_GUILD)


async def test_a_dead_chat_does_not_stop_the_other_chats(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\ndefaults: {hide_history: false}\nrules:\n"
        f"  - name: secret\n    departments: [9]\n    chats: [{SECRET_PROJECT}]\n"
        f"  - name: support-all\n    departments: [9]\n    chats: [{SALES_ALL_HANDS}]\n"
    )
    async with open_harness(tmp_path) as h:
        await h.post(hire(h.portal, 44, [9]))
        await h.drain()
        assert 44 in h.portal.chat_members(SALES_ALL_HANDS)
        assert 44 not in h.portal.chat_members(SECRET_PROJECT)
        dead = await h.services.store.jobs(("dead",))
        assert [job.last_code for job in dead] == ["ACCESS_DENIED_EXTEND"]
        assert "webhook user" in (dead[0].last_error or "")
        outcomes = {e.chat_id: (e.outcome, e.code) for e in await h.services.store.history()}
        assert outcomes[SECRET_PROJECT] == ("dead", "ACCESS_DENIED_EXTEND")
        assert outcomes[SALES_ALL_HANDS] == ("added", None)


async def test_forged_token_gets_401_and_causes_no_rest_call(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        user = h.portal.upsert_user(45, name="Eve", departments=[4])
        response = await h.post(user_add(user, token="forged-token-123"))
        assert response.status_code == 401
        assert response.json()["error"] == "token"
        await h.drain()
        assert h.portal.http_requests == 0
        assert await h.services.store.jobs() == []


async def test_extranet_user_matches_nothing(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        response = await h.post(hire(h.portal, 46, []))
        assert response.json() == {
            "status": "accepted",
            "jobs": 0,
            "event_id": response.json()["event_id"],
        }
        await h.drain()
        assert h.portal.http_requests == 0


async def test_a_new_department_forces_a_tree_refresh(tmp_path: Path) -> None:
    clock = FakeClock()
    async with open_harness(tmp_path, clock=clock) as h:
        await h.post(hire(h.portal, 47, [4]))
        await h.drain()
        fetched = len(h.portal.calls_to("department.get"))
        from bot.sandbox.state import Department

        h.portal.state.add_department(Department(20, "Sales Nordics", 3))
        await h.post(hire(h.portal, 48, [20]))
        await h.drain()
        assert len(h.portal.calls_to("department.get")) > fetched
        assert 48 in h.portal.chat_members(EMEA_DEALS)
