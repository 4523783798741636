"""`/why`'s wording: every chat state has words in both languages, and long answers are cut."""

from __future__ import annotations

import pytest

from bot.chatbot import texts
from bot.chatbot.why import MAX_CHARS, MAX_CHATS, MAX_JOBS, why_text
from bot.jobs import ADD_TO_CHAT, DEAD
from bot.reconcile.explain import STATES, ChatLine, DepartmentLine, Explanation, JobLine, RuleLine


def explanation(chats: int, jobs: int, path: str = "Corp / Sales") -> Explanation:
    return Explanation(
        7,
        "Ana Lee",
        True,
        (DepartmentLine(2, path, ("Sales (2)", "Corp (1)")),),
        (RuleLine("sales", "join_once", tuple(range(100, 100 + chats)), ("department 2",)),),
        (),
        tuple(ChatLine(100 + n, ("sales",), True, "member", (), "member") for n in range(chats)),
        tuple(JobLine(n, ADD_TO_CHAT, 100 + n, DEAD, 5, "ACCESS_ERROR", "") for n in range(jobs)),
        (),
    )


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_chat_state_is_worded(lang: str) -> None:
    words = [texts.say(lang, f"state_{state}") for state in STATES]
    assert len(set(words)) == len(STATES)


def test_many_chats_and_failures_are_counted_not_listed() -> None:
    text = why_text("en", explanation(chats=40, jobs=10), {})
    lines = text.splitlines()
    assert lines.count("• chat 100: you are in it (rule sales)") == 1
    assert sum(line.endswith("(rule sales)") for line in lines) == MAX_CHATS
    assert f"…and {40 - MAX_CHATS} more." in lines
    assert f"…and {10 - MAX_JOBS} more." in lines
    assert "• chat 102: that chat does not accept new members" in lines


def test_long_chat_titles_and_department_names_stay_under_the_cap() -> None:
    names = {100 + n: "N" * 400 for n in range(40)}
    titled = why_text("en", explanation(chats=40, jobs=0), names)
    assert len(titled) <= MAX_CHARS
    assert titled.endswith("\n…")
    assert titled.splitlines()[2].startswith("• “NNN")  # cut after whole lines
    deep = why_text("ru", explanation(chats=1, jobs=0, path=" / ".join(["Отдел"] * 2000)), {})
    assert len(deep) <= MAX_CHARS
    assert deep.startswith("Ваши подразделения: Отдел / Отдел")
