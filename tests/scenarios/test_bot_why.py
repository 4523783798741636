"""`/why` end to end: a person asks the bot why they are, or are not, in chats.

The sample company (`bot.sandbox.company`) and the repository's `rules.yaml`: Ines (9) is in
Platform, under Backend, under Engineering; Clara (3) in Sales EMEA; Jonas (10) in Support,
which no rule names; Lena (12) is in no department; Karl (11) is dismissed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.company import BACKEND_GUILD, ENGINEERING, SECRET_PROJECT
from bot.sandbox.state import Department
from tests.scenarios.bot_kit import CLIENT, BotStage, bot_stage
from tests.scenarios.test_bot import SECRET_RULES

pytestmark = pytest.mark.anyio

CLARA = (
    "Your departments: Example Corp / Sales / Sales EMEA.\n"
    "Chats:\n"
    "• “Sales all-hands”: you are in it (rule sales-all-hands)\n"
    "• “EMEA deals”: you are in it (rule emea-deals)\n"
    "If you ask, I can also add you to “Marketing”."
)


def user_get_ids(s: BotStage) -> set[int]:
    """Every user id any `user.get` asked the portal about (batched or not)."""
    ids: set[int] = set()
    for call in s.h.portal.calls_to("user.get"):
        raw: Any = call.params.get("FILTER", call.params).get("ID")
        values = raw.values() if isinstance(raw, dict) else raw if isinstance(raw, list) else [raw]
        ids |= {int(v) for v in values if v is not None}
    return ids


async def test_a_sub_department_gets_its_chats_with_status_and_rule(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        s.h.portal.state.chats[BACKEND_GUILD].members.add(9)
        await s.command(9, "why", "", message_id=701)
        await s.h.drain()
        [reply] = s.replies
        assert (reply.method, reply.command_id, reply.message_id, reply.client_id) == (
            "imbot.command.answer",
            s.bot.commands["why"],
            701,
            CLIENT,
        )
        assert reply.message.splitlines() == [
            "Your departments: Example Corp / Engineering / Backend / Platform.",
            "Chats:",
            "• “Engineering”: you are not in it yet; the next sync adds you (rule engineering)",
            "• “Backend guild”: you are in it (rule backend-guild)",
            "If you ask, I can also add you to “Marketing” and “Backend guild”.",
        ]
        assert 9 not in s.h.portal.chat_members(ENGINEERING)  # explaining changes nothing
        assert s.h.portal.calls_to("im.chat.user.add") == []


async def test_naming_someone_else_still_explains_only_the_author(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        await s.command(3, "why", "12", message_id=702)
        await s.say(3, "/why 12", message_id=703)
        await s.say(3, "/why [USER=12]Lena Lind[/USER], ID 12", message_id=704)
        await s.h.drain()
        assert [r.message for r in s.replies] == [CLARA] * 3
        assert user_get_ids(s) == {3}  # Lena's record was never even read


async def test_no_rule_gives_you_any_chat(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        await s.say(10, "why", message_id=705)
        await s.say(12, "Why?", message_id=706)
        await s.say(11, "/why", message_id=707)
        await s.h.drain()
        by_dialog = {r.dialog_id: r.message for r in s.replies}
        assert by_dialog == {
            "10": "Your departments: Example Corp / Support.\n"
            "No rule gives you any chat.\n"
            "If you ask, I can also add you to “Marketing”.",
            "12": "You are in no department.\nNo rule gives you any chat.",  # nor any keyword
            "11": "Bitrix24 does not list you as an active user, so no rule applies to you.",
        }


async def test_a_department_newer_than_the_cached_tree_is_read_before_answering(
    tmp_path: Path,
) -> None:
    """Jonas moves to a brand-new team under Engineering just after the tree was cached."""
    async with bot_stage(tmp_path) as s:
        await s.say(10, "why", message_id=716)
        await s.h.drain()
        s.h.portal.state.add_department(Department(20, "Data", parent=6))
        s.h.portal.upsert_user(10, departments=[20])
        await s.say(10, "why", message_id=717)
        await s.h.drain()
        assert s.replies[-1].message.splitlines()[:3] == [
            "Your departments: Example Corp / Engineering / Data.",
            "Chats:",
            "• “Engineering”: you are not in it yet; the next sync adds you (rule engineering)",
        ]


async def test_russian(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        await s.command(3, "why", "", message_id=708, language="ru")
        await s.h.drain()
        [reply] = s.replies
        assert reply.message.splitlines() == [
            "Ваши подразделения: Example Corp / Sales / Sales EMEA.",
            "Чаты:",
            "• «Sales all-hands»: вы участник (правило sales-all-hands)",
            "• «EMEA deals»: вы участник (правило emea-deals)",
            "По запросу я могу добавить вас ещё сюда: «Marketing».",
        ]


async def test_failed_work_is_told_in_plain_words(tmp_path: Path) -> None:
    """Clara's add to chat 107 died (the service account is not in it); /why says so."""
    async with bot_stage(tmp_path, SECRET_RULES) as s:
        await s.say(3, "secret project", message_id=709)
        await s.h.drain()
        await s.say(3, "why", message_id=710)
        await s.h.drain()
        lines = s.replies[-1].message.splitlines()
        assert lines[lines.index("Not finished:") + 1] == (
            f"• chat {SECRET_PROJECT}: I am not allowed to add people to that chat — an admin "
            "needs to add the service account to it"
        )
        assert "• “Marketing”: you are in it; no rule gives it now, so you stay" in lines


async def test_in_a_group_chat_the_answer_is_not_given(tmp_path: Path) -> None:
    """The answer names the person's departments and chats: not for everyone in a group."""
    async with bot_stage(tmp_path) as s:
        await s.say(3, "/why", message_id=711, chat_id=ENGINEERING)
        await s.h.drain()
        [reply] = s.replies
        assert (reply.dialog_id, reply.message) == (
            f"chat{ENGINEERING}",
            "[USER=3]Clara[/USER], I answer /why only in a private chat with me: the answer "
            "is about you.",
        )
        assert user_get_ids(s) == set()


async def test_why_counts_against_the_per_user_limit(tmp_path: Path) -> None:
    async with bot_stage(tmp_path, AUTOJOIN_BOT_USER_LIMIT="1") as s:
        await s.command(3, "why", "", message_id=712)
        await s.command(3, "why", "", message_id=713)
        await s.h.drain()
        assert [r.message for r in s.replies] == [
            CLARA,
            "You are sending requests too fast. Please wait a minute and try again.",
        ]


async def test_help_mentions_why(tmp_path: Path) -> None:
    async with bot_stage(tmp_path) as s:
        await s.command(3, "help", "", message_id=714)
        await s.command(3, "help", "", message_id=715, language="ru")
        await s.h.drain()
        english, russian = (r.message.splitlines()[-1] for r in s.replies)
        assert "/why to see which chats the rules give you" in english
        assert "/why — какие чаты вам положены по правилам" in russian
