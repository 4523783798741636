"""Chat membership methods: permissions, silent outcomes and HIDE_HISTORY (§3)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.company import (
    ANNOUNCEMENTS,
    BACKEND_GUILD,
    EMEA_DEALS,
    GENERAL_CHAT_ID,
    SALES_ALL_HANDS,
    SECRET_PROJECT,
    TEAM_LEADS,
)
from tests.fakes import FakeClock

pytestmark = pytest.mark.anyio


async def call(rest: httpx.AsyncClient, method: str, **params: Any) -> httpx.Response:
    return await rest.post(method, json=params)


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"], body["error_description"]


async def test_add_puts_active_users_in_and_returns_true(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    response = await call(rest, "im.chat.user.add", CHAT_ID=SALES_ALL_HANDS, USERS=[4, 5])
    assert response.json()["result"] is True
    assert portal.chat_members(SALES_ALL_HANDS) == {1, 2, 3, 4, 5}


async def test_add_accepts_dialog_id(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    await call(rest, "im.chat.user.add", DIALOG_ID=f"chat{EMEA_DEALS}", USERS=[4])
    assert 4 in portal.chat_members(EMEA_DEALS)


async def test_add_drops_inactive_and_unknown_users_silently(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    response = await call(rest, "im.chat.user.add", CHAT_ID=SALES_ALL_HANDS, USERS=[11, 999, 4])
    assert response.status_code == 200
    assert response.json()["result"] is True
    assert portal.chat_members(SALES_ALL_HANDS) == {1, 2, 3, 4}


async def test_add_of_existing_member_is_true_and_changes_nothing(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    await call(rest, "im.chat.user.add", CHAT_ID=SALES_ALL_HANDS, USERS=[4], HIDE_HISTORY="Y")
    again = await call(
        rest, "im.chat.user.add", CHAT_ID=SALES_ALL_HANDS, USERS=[4, 2], HIDE_HISTORY="N"
    )
    assert again.json()["result"] is True
    assert portal.chat_members(SALES_ALL_HANDS) == {1, 2, 3, 4}
    assert portal.history_hidden(SALES_ALL_HANDS, 4) is True  # the first add's setting stands
    assert portal.history_hidden(SALES_ALL_HANDS, 2) is None  # a founding member, not added


async def test_joins_record_when_each_membership_was_created(
    rest: httpx.AsyncClient, portal: FakePortal, clock: FakeClock
) -> None:
    """Only adds that made someone a member are logged; leaving and coming back logs again."""
    start = clock()
    await call(rest, "im.chat.user.add", CHAT_ID=SALES_ALL_HANDS, USERS=[4, 2])
    clock.advance(5.0)
    await call(rest, "im.chat.user.add", CHAT_ID=SALES_ALL_HANDS, USERS=[4, 5])
    portal.state.chats[SALES_ALL_HANDS].managers.add(1)
    await call(rest, "im.chat.user.delete", CHAT_ID=SALES_ALL_HANDS, USER_ID=4)
    await call(rest, "im.chat.user.add", CHAT_ID=SALES_ALL_HANDS, USERS=[4])
    assert portal.state.chats[SALES_ALL_HANDS].joins == [
        (4, start),
        (5, start + 5.0),
        (4, start + 5.0),
    ]
    assert portal.snapshot()["chats"][1]["joins"] == [[4, start], [5, start + 5], [4, start + 5]]


@pytest.mark.parametrize(
    ("value", "hidden"),
    [("Y", True), ("N", False), ("0", False), ("", False), ("false", True), (True, True)],
)
async def test_hide_history_follows_the_php_cast(
    rest: httpx.AsyncClient, portal: FakePortal, value: Any, hidden: bool
) -> None:
    await call(rest, "im.chat.user.add", CHAT_ID=SALES_ALL_HANDS, USERS=[5], HIDE_HISTORY=value)
    assert portal.history_hidden(SALES_ALL_HANDS, 5) is hidden


async def test_hide_history_omitted_shows_history_but_extranet_is_always_hidden(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    await call(rest, "im.chat.user.add", CHAT_ID=SALES_ALL_HANDS, USERS=[5, 12])
    assert portal.history_hidden(SALES_ALL_HANDS, 5) is False
    assert portal.history_hidden(SALES_ALL_HANDS, 12) is True


async def test_hide_history_from_a_php_form(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    body = f"CHAT_ID={SALES_ALL_HANDS}&USERS%5B%5D=4&USERS%5B%5D=5&HIDE_HISTORY=Y".encode()
    assert (await rest.post("im.chat.user.add", content=body)).json()["result"] is True
    assert portal.chat_members(SALES_ALL_HANDS) >= {4, 5}
    assert portal.history_hidden(SALES_ALL_HANDS, 4) is True


async def test_add_department_entry_adds_its_direct_active_members(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    await call(rest, "im.chat.user.add", CHAT_ID=SALES_ALL_HANDS, USERS=["department7"])
    assert portal.chat_members(SALES_ALL_HANDS) == {1, 2, 3, 8}  # Karl (7, dismissed) dropped


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"USERS": [4]}, (400, "CHAT_ID_EMPTY", "Chat ID can't be empty")),
        ({"CHAT_ID": 0, "USERS": [4]}, (400, "CHAT_ID_EMPTY", "Chat ID can't be empty")),
        ({"CHAT_ID": 999, "USERS": [4]}, (400, "CHAT_ID_EMPTY", "Chat ID can't be empty")),
        ({"DIALOG_ID": "42", "USERS": [4]}, (400, "DIALOG_ID_EMPTY", "Dialog ID can't be empty")),
        ({"CHAT_ID": GENERAL_CHAT_ID, "USERS": [12]}, (403, "ACCESS_ERROR", "Action unavailable")),
        (
            {"CHAT_ID": ANNOUNCEMENTS, "USERS": [12]},
            (403, "ACCESS_ERROR", "It is forbidden to add users to this chat"),
        ),
    ],
)
async def test_add_errors(
    rest: httpx.AsyncClient, portal: FakePortal, params: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    before = {cid: set(chat.members) for cid, chat in portal.state.chats.items()}
    response = await rest.post("im.chat.user.add", json=params)
    assert error_of(response) == expected
    assert {cid: chat.members for cid, chat in portal.state.chats.items()} == before


@pytest.mark.parametrize("chat_id", [SECRET_PROJECT, TEAM_LEADS])
async def test_add_needs_membership_and_the_add_role(
    rest: httpx.AsyncClient, portal: FakePortal, chat_id: int
) -> None:
    response = await call(rest, "im.chat.user.add", CHAT_ID=chat_id, USERS=[4])
    status, code, _ = error_of(response)
    assert (status, code) == (400, "ACCESS_DENIED_EXTEND")
    assert 4 not in portal.chat_members(chat_id)


async def test_owner_only_chat_accepts_its_owner(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    assert (await call(rest, "im.chat.user.add", CHAT_ID=BACKEND_GUILD, USERS=[9])).json()["result"]
    assert 9 in portal.chat_members(BACKEND_GUILD)
    portal.state.chats[BACKEND_GUILD].owner = 8  # the webhook user is now a plain member
    denied = await call(rest, "im.chat.user.add", CHAT_ID=BACKEND_GUILD, USERS=[10])
    assert denied.json()["error"] == "ACCESS_DENIED_EXTEND"


async def test_delete_removes_a_member(rest: httpx.AsyncClient, portal: FakePortal) -> None:
    await call(rest, "im.chat.user.add", CHAT_ID=SALES_ALL_HANDS, USERS=[4], HIDE_HISTORY="Y")
    portal.state.chats[SALES_ALL_HANDS].managers.add(1)
    response = await call(rest, "im.chat.user.delete", CHAT_ID=SALES_ALL_HANDS, USER_ID=4)
    assert response.json()["result"] is True
    assert 4 not in portal.chat_members(SALES_ALL_HANDS)
    assert portal.history_hidden(SALES_ALL_HANDS, 4) is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"CHAT_ID": SALES_ALL_HANDS, "USER_ID": 9}, (400, "USER_NOT_FOUND")),
        ({"CHAT_ID": SALES_ALL_HANDS, "USER_ID": 3}, (400, "ACCESS_DENIED_KICK")),
        ({"CHAT_ID": GENERAL_CHAT_ID, "USER_ID": 3}, (403, "ACCESS_ERROR")),
        ({"CHAT_ID": SALES_ALL_HANDS}, (400, "USER_ID_EMPTY")),
        ({"USER_ID": 3}, (400, "CHAT_ID_EMPTY")),
    ],
)
async def test_delete_errors(
    rest: httpx.AsyncClient, portal: FakePortal, params: dict[str, Any], expected: tuple[int, str]
) -> None:
    before = portal.chat_members(SALES_ALL_HANDS)
    status, code, _ = error_of(await rest.post("im.chat.user.delete", json=params))
    assert (status, code) == expected
    assert portal.chat_members(SALES_ALL_HANDS) == before


async def test_a_member_may_always_remove_themselves(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    response = await call(rest, "im.chat.user.delete", CHAT_ID=SALES_ALL_HANDS, USER_ID=1)
    assert response.json()["result"] is True
    assert 1 not in portal.chat_members(SALES_ALL_HANDS)


async def test_list_is_empty_for_chats_the_caller_cannot_see(rest: httpx.AsyncClient) -> None:
    visible = await call(rest, "im.chat.user.list", CHAT_ID=EMEA_DEALS)
    hidden = await call(rest, "im.chat.user.list", CHAT_ID=SECRET_PROJECT)
    unknown = await call(rest, "im.chat.user.list", CHAT_ID=999)
    assert visible.json()["result"] == [1, 3]
    assert (hidden.status_code, hidden.json()["result"]) == (200, [])
    assert unknown.json()["result"] == []


async def test_dialog_get_reports_role_and_permissions(rest: httpx.AsyncClient) -> None:
    card = (await call(rest, "im.dialog.get", DIALOG_ID=f"chat{EMEA_DEALS}")).json()["result"]
    assert card["id"] == EMEA_DEALS
    assert card["name"] == "EMEA deals"
    assert card["owner"] == 3
    assert card["role"] == "manager"
    assert card["user_counter"] == 2
    assert card["permissions"]["manage_users_add"] == "manager"
    assert card["permissions"]["manage_users_delete"] == "manager"
    team = (await call(rest, "im.dialog.get", DIALOG_ID=f"chat{TEAM_LEADS}")).json()["result"]
    assert (team["role"], team["permissions"]["manage_users_add"]) == ("member", "owner")


async def test_dialog_get_open_chat_shows_role_none(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    portal.state.chats[SECRET_PROJECT].type = "O"
    card = (await call(rest, "im.dialog.get", DIALOG_ID=f"chat{SECRET_PROJECT}")).json()["result"]
    assert (card["role"], card["type"]) == ("none", "open")


@pytest.mark.parametrize(
    ("dialog", "expected"),
    [
        (f"chat{SECRET_PROJECT}", (403, "ACCESS_ERROR")),
        ("chat999", (403, "ACCESS_ERROR")),
        ("", (400, "DIALOG_ID_EMPTY")),
    ],
)
async def test_dialog_get_errors(
    rest: httpx.AsyncClient, dialog: str, expected: tuple[int, str]
) -> None:
    status, code, _ = error_of(await call(rest, "im.dialog.get", DIALOG_ID=dialog))
    assert (status, code) == expected
