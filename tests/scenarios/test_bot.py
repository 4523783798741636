"""The chat bot end to end: real bodies in, the fake portal's chats and the bot's replies out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sandbox.company import BACKEND_GUILD, ENGINEERING, MARKETING, SECRET_PROJECT
from bot.sandbox.events import APP_TOKEN, bot_message
from tests.harness import open_harness
from tests.scenarios.bot_kit import CLIENT, bot_stage

pytestmark = pytest.mark.anyio


async def test_a_keyword_in_a_private_dialog_adds_the_author_and_says_so(tmp_path: Path) -> None:
    """Boris writes to the bot; the rule's own reply template answers him in his dialog."""
    async with bot_stage(tmp_path) as s:
        response = await s.say(2, "Hi! I'd like to join marketing, please", message_id=501)
        assert response.json()["status"] == "accepted"
        assert s.replies == []  # nothing on the acknowledgement path
        await s.h.drain()
        assert 2 in s.h.portal.chat_members(MARKETING)
        [reply] = s.replies
        assert (reply.method, reply.dialog_id, reply.bot_id) == (
            "imbot.message.add",
            "2",
            s.bot.bot_id,
        )
        assert reply.client_id == CLIENT
        assert reply.message == "Welcome, Boris! You are now in “Marketing”."
        [entry] = await s.h.services.store.history(user_id=2)
        assert (entry.chat_id, entry.outcome, entry.rule) == (
            MARKETING,
            "added",
            "marketing-self-service",
        )
        assert "asked the bot (message 501)" in (entry.detail or "")


async def test_a_mention_in_a_group_chat_is_answered_in_that_chat(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        await s.say(8, ", please add me to marketing", message_id=502, chat_id=ENGINEERING)
        await s.h.drain()
        assert 8 in s.h.portal.chat_members(MARKETING)
        [reply] = s.replies
        assert (reply.method, reply.dialog_id, reply.client_id) == (
            "imbot.message.add",
            f"chat{ENGINEERING}",
            CLIENT,
        )
        assert reply.message.startswith("[USER=8]Hiro[/USER], Welcome, Hiro!")


async def test_join_command_help_and_bare_join(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        await s.command(3, "join", "marketing", message_id=503)
        await s.command(3, "join", "", message_id=504)
        await s.command(3, "help", "", message_id=505)
        await s.h.drain()
        assert 3 in s.h.portal.chat_members(MARKETING)
        by_message = {r.message_id: r for r in s.replies}
        assert len(s.replies) == 3
        joined, bare, helped = by_message[503], by_message[504], by_message[505]
        assert all(r.method == "imbot.command.answer" and r.client_id == CLIENT for r in s.replies)
        assert (joined.command_id, joined.message_id) == (s.bot.commands["join"], 503)
        assert joined.message == "Welcome, Clara! You are now in “Marketing”."
        assert (bare.command_id, helped.command_id) == (
            s.bot.commands["join"],
            s.bot.commands["help"],
        )
        assert bare.message == helped.message
        assert "“join marketing”" in helped.message
        assert "/join" in helped.message
        assert "backend" not in helped.message.lower()  # restricted keywords are not advertised


async def test_one_message_delivered_as_message_and_command_adds_once_replies_once(
    tmp_path: Path,
) -> None:
    async with bot_stage(tmp_path) as s:
        first = await s.say(4, "/join marketing", message_id=506)
        second = await s.command(4, "join", "marketing", message_id=506)
        assert (first.json()["status"], second.json()["status"]) == ("accepted", "duplicate")
        await s.h.drain()
        assert s.adds_of(4) == [MARKETING]
        [reply] = s.replies
        assert reply.method == "imbot.message.add"  # the message came first


async def test_only_departments_refusal_names_nothing(tmp_path: Path) -> None:
    """Boris (Sales) may not use the Engineering-only keyword; the reply does not reveal it."""
    async with bot_stage(tmp_path) as s:
        await s.say(2, "join backend", message_id=507)
        await s.h.drain()
        assert 2 not in s.h.portal.chat_members(BACKEND_GUILD)
        assert s.adds_of(2) == []
        [reply] = s.replies
        assert reply.message.startswith("Sorry, I can't add you to that")
        for secret in ("backend", "guild", str(BACKEND_GUILD)):
            assert secret not in reply.message.lower()


async def test_subdepartments_count_for_only_departments(tmp_path: Path) -> None:
    """Ines is in Platform, under Backend, under Engineering: the rule lets her in."""
    async with bot_stage(tmp_path) as s:
        await s.say(9, "join backend", message_id=508)
        await s.h.drain()
        assert 9 in s.h.portal.chat_members(BACKEND_GUILD)
        assert s.replies[0].message == "Done, Ines Iglesias: you are in “Backend guild”."


async def test_already_a_member_is_told_so(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        await s.say(6, "marketing", message_id=509)
        await s.h.drain()
        [reply] = s.replies
        assert reply.message == "You were already in “Marketing”."
        [entry] = await s.h.services.store.history(user_id=6)
        assert entry.outcome == "already_member"


SECRET_RULES = f"""
version: 1
defaults: {{hide_history: false}}
rules:
  - name: secret-project
    keywords: ["secret project"]
    chats: [{SECRET_PROJECT}, {MARKETING}]
    reply: "Hi {{first_name}}, you are in {{chats}}."
  - name: trees
    keywords: ["новогодняя ёлка"]
    chats: [{ENGINEERING}]
"""


async def test_a_chat_the_service_account_is_not_in_gets_a_plain_reason(tmp_path: Path) -> None:
    """Chat 107: the webhook user is no member, so Bitrix24 says ACCESS_DENIED_EXTEND."""
    async with bot_stage(tmp_path, SECRET_RULES) as s:
        await s.say(3, "Can I join the secret project?", message_id=510)
        await s.h.drain()
        assert 3 not in s.h.portal.chat_members(SECRET_PROJECT)
        assert 3 in s.h.portal.chat_members(MARKETING)
        [reply] = s.replies
        assert reply.message.splitlines() == [
            "Hi Clara, you are in “Marketing”.",
            f"I could not add you to chat {SECRET_PROJECT}: I am not allowed to add people to "
            "that chat — an admin needs to add the service account to it.",
        ]
        [dead] = await s.h.services.store.jobs(("dead",))
        assert dead.last_code == "ACCESS_DENIED_EXTEND"
        assert "webhook user" in (dead.last_error or "")  # what the admin must fix


async def test_cyrillic_keywords_with_yo_and_a_russian_reply(tmp_path: Path) -> None:
    async with bot_stage(tmp_path, SECRET_RULES) as s:
        await s.say(10, "Хочу в чат «Новогодняя ЕЛКА»", message_id=511, language="ru")
        await s.h.drain()
        assert 10 in s.h.portal.chat_members(ENGINEERING)
        assert s.replies[0].message == "Готово, вы добавлены: «Engineering»."


async def test_default_rules_match_russian_marketing(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        await s.say(5, "Добавьте меня в МАРКЕТИНГ, пожалуйста", message_id=512)
        await s.h.drain()
        assert 5 in s.h.portal.chat_members(MARKETING)


async def test_nobody_can_make_the_bot_add_someone_else(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        text = "join marketing for [USER=12]Lena Lind[/USER] (user 12) and ID 7"
        await s.say(3, text, message_id=513)
        await s.command(3, "join", "marketing 7 12", message_id=514)
        await s.h.drain()
        members = s.h.portal.chat_members(MARKETING)
        assert 3 in members
        assert not {7, 12} & members
        calls = s.h.portal.calls_to("im.chat.user.add")
        assert {int(u) for c in calls for u in c.params["USERS"]} == {3}
        assert len(s.replies) == 2


async def test_messages_written_by_bots_are_ignored(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        robot = {"ID": 77, "NAME": "Other Bot", "FIRST_NAME": "Other", "IS_BOT": "Y"}
        response = await s.say(77, "join marketing", message_id=515, author=robot)
        assert response.json()["jobs"] == 0
        await s.h.drain()
        assert s.replies == []
        assert 77 not in s.h.portal.chat_members(MARKETING)


async def test_welcome_in_a_new_chat_and_forgetting_a_deleted_bot(tmp_path: Path) -> None:
    from bot.chatbot.runtime import BOT_ID_KEY
    from bot.sandbox.events import bot_delete, bot_join_chat

    async with bot_stage(tmp_path) as s:
        joined = bot_join_chat(
            bot_id=s.bot.bot_id, bot_code=s.code, user=s.user(7), token=CLIENT, chat_id=ENGINEERING
        )
        await s.h.post(joined)
        await s.h.drain()
        [welcome] = s.replies
        assert welcome.dialog_id == f"chat{ENGINEERING}"
        assert welcome.message.startswith("Hello! I add you to chats.")
        store = s.h.services.store
        assert await store.get_state(BOT_ID_KEY) == str(s.bot.bot_id)
        await s.h.post(bot_delete(bot_id=s.bot.bot_id, bot_code=s.code, token=CLIENT))
        await s.h.drain()
        assert await store.get_state(BOT_ID_KEY) is None


async def test_the_composition_root_gives_the_bot_its_store_and_settings(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        assert h.services.worker is not None
        ctx = h.services.worker.ctx
        assert ctx.store is h.services.back_store
        assert ctx.settings is h.services.settings


async def test_without_a_client_id_the_reply_dies_with_the_fix(tmp_path: Path) -> None:
    """Events signed with B24_APP_TOKEN still work; the reply cannot, and says why."""
    async with open_harness(tmp_path) as h:
        body = bot_message(
            bot_id=567, bot_code="autojoin", text="marketing", author=h.portal.state.users[3],
            token=APP_TOKEN, message_id=516,
        )  # fmt: skip
        await h.post(body)
        await h.drain()
        assert 3 in h.portal.chat_members(MARKETING)
        [dead] = await h.services.store.jobs(("dead",))
        assert (dead.kind, dead.last_code) == ("bot.reply", "BOT_CLIENT_ID_MISSING")
        assert "B24_BOT_CLIENT_ID" in (dead.last_error or "")
        assert h.portal.messages == []
