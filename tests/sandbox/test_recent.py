"""`im.recent.list`: the webhook user's chats, paged by OFFSET/LIMIT, each with its chat card."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.company import SALES_ALL_HANDS, SECRET_PROJECT

pytestmark = pytest.mark.anyio


async def recent(rest: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await rest.post("im.recent.list", json=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


async def test_lists_only_the_chats_the_caller_is_in_with_title_count_and_role(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    result = await recent(rest, SKIP_DIALOG="Y", LIMIT=200)
    ids = [item["chat_id"] for item in result["items"]]
    mine = {c.id for c in portal.state.chats.values() if 1 in c.members}
    assert set(ids) == mine
    assert SECRET_PROJECT not in ids, "the webhook user is not in it"
    sales = next(i for i in result["items"] if i["chat_id"] == SALES_ALL_HANDS)
    chat = portal.state.chats[SALES_ALL_HANDS]
    assert sales["id"] == f"chat{SALES_ALL_HANDS}"
    assert sales["title"] == chat.title == sales["chat"]["name"]
    assert sales["chat"]["user_counter"] == len(chat.members)
    assert sales["chat"]["role"] == chat.role_of(1).upper()
    assert sales["chat"]["permissions"]["manage_users_add"] == chat.manage_users_add
    assert result["hasMore"] is False


async def test_pages_by_offset_and_limit_until_has_more_is_false(
    rest: httpx.AsyncClient, portal: FakePortal
) -> None:
    seen: list[int] = []
    offset = 0
    while True:
        page = await recent(rest, OFFSET=offset, LIMIT=2)
        assert len(page["items"]) <= 2
        seen += [item["chat_id"] for item in page["items"]]
        if not page["hasMore"]:
            break
        offset += 2
    assert (
        len(seen) == len(set(seen)) == sum(1 for c in portal.state.chats.values() if 1 in c.members)
    )


async def test_skip_chat_leaves_nothing_in_the_sandbox(rest: httpx.AsyncClient) -> None:
    assert (await recent(rest, SKIP_CHAT="Y"))["items"] == []
