"""What the bot says: language choice, lists of chats, templates and honest failure reasons."""

from __future__ import annotations

import pytest

from bot.chatbot import texts
from bot.chatbot.texts import ChatResult, result_text


@pytest.mark.parametrize(
    ("code", "lang"),
    [("ru", "ru"), ("RU", "ru"), ("kz", "ru"), ("en", "en"), ("de", "en"), ("", "en")],
)
def test_language_falls_back_to_english(code: str, lang: str) -> None:
    assert texts.language(code) == lang


def test_lists_of_chats_read_naturally_in_both_languages() -> None:
    assert texts.enumerate_names("en", ["A", "B", "C"]) == "A, B and C"
    assert texts.enumerate_names("ru", ["A", "B"]) == "A и B"
    assert texts.chat_label("ru", 7, "Маркетинг") == "«Маркетинг»"
    assert texts.chat_label("en", 7, None) == "chat 7"


def test_result_uses_a_template_once_per_chat_and_defaults_for_the_rest() -> None:
    results = [
        ChatResult(101, "“Sales”", "added"),
        ChatResult(102, "“Deals”", "added"),
        ChatResult(103, "“Marketing”", "already_member"),
        ChatResult(104, "chat 104", "dropped"),
        ChatResult(105, "chat 105", "failed", "SOMETHING_NEW"),
    ]
    templates = [("Hi {first_name}: {chats}", [101]), ("Again {name}: {chats}", [101, 102])]
    text = result_text(
        "en", results, templates, name="Ann Lee", first_name="Ann", refused_some=True
    )
    assert text.splitlines() == [
        "Hi Ann: “Sales”",
        "Again Ann Lee: “Deals”",
        "You were already in “Marketing”.",
        "I could not add you to chat 104: Bitrix24 did not add you — your account may be inactive.",
        "I could not add you to chat 105: something went wrong (SOMETHING_NEW) — an admin can "
        "see the details.",
        "Anything else you asked for is not open to you.",
    ]


def test_a_broken_template_falls_back_to_the_plain_sentence() -> None:
    results = [ChatResult(1, "“A”", "added")]
    text = result_text(
        "en", results, [("{oops}", [1])], name="N", first_name="N", refused_some=False
    )
    assert text == "Done: you are now in “A”."


def test_russian_reasons_and_mentions() -> None:
    results = [ChatResult(9, "чат 9", "failed", "ACCESS_DENIED_EXTEND")]
    text = result_text("ru", results, [], name="Иван", first_name="Иван", refused_some=False)
    assert "служебную учётную запись" in text
    assert texts.reason("ru", "failed", "CHAT_ID_EMPTY").startswith("этого чата больше нет")
    assert texts.mention(27, "Eve [admin]") == "[USER=27]Eve admin[/USER]"
