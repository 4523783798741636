"""The ready-made companies keep the promises the demo and other tests rely on."""

from __future__ import annotations

from bot.sandbox.company import (
    ANNOUNCEMENTS,
    GENERAL_CHAT_ID,
    SECRET_PROJECT,
    WEBHOOK_USER_ID,
    generated_company,
    sample_company,
)
from bot.sandbox.methods_users import tree_order


def test_sample_company_shape() -> None:
    state = sample_company()
    assert state.departments[4].parent == 3
    assert state.departments[3].parent == 2
    assert state.departments[8].parent == 7
    assert 10 <= len(state.users) <= 15
    assert state.chats[GENERAL_CHAT_ID].type == "general"
    assert state.chats[ANNOUNCEMENTS].extend_forbidden
    assert WEBHOOK_USER_ID not in state.chats[SECRET_PROJECT].members
    for chat_id in range(101, 107):
        chat = state.chats[chat_id]
        assert chat.may(WEBHOOK_USER_ID, chat.manage_users_add), chat.title
    assert [w.user_id for w in state.webhooks] == [WEBHOOK_USER_ID]


def test_generated_company_is_deterministic_and_consistent() -> None:
    first = generated_company(users=300, departments=40, chats=25, seed=3)
    again = generated_company(users=300, departments=40, chats=25, seed=3)
    other = generated_company(users=300, departments=40, chats=25, seed=4)
    assert first.users == again.users
    assert first.chats == again.chats
    assert first.users != other.users
    assert len(tree_order(first)) == 40  # every department hangs off the root
    assert all(set(u.departments) <= set(first.departments) for u in first.users.values())
    assert len(first.chats) == 26
    for chat in first.chats.values():
        if chat.type != "general":
            assert chat.may(WEBHOOK_USER_ID, chat.manage_users_add)
