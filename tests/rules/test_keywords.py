from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.rules.keywords import MAX_TEXT_CHARS, KeywordIndex, normalize, words


def index(*phrases: str, max_chars: int = MAX_TEXT_CHARS) -> KeywordIndex:
    built = KeywordIndex(max_chars)
    for ident, phrase in enumerate(phrases):
        built.add(phrase, ident)
    return built


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("please JOIN Marketing!", ("please", "join", "marketing")),
        ("  /join   маркетинг...", ("join", "маркетинг")),
        ("ＪＯＩＮ　ｍａｒｋｅｔｉｎｇ", ("join", "marketing")),  # full-width letters and space
        ("Ёлка и ЕЛКА", ("елка", "и", "елка")),
        ("e-mail, chat_ops; 42nd", ("e", "mail", "chat_ops", "42nd")),
        ("STRASSE Straße", ("strasse", "strasse")),
        ("", ()),
        ("!!! ... ???", ()),
    ],
)
def test_words_normalise_and_split(text: str, expected: tuple[str, ...]) -> None:
    assert words(text) == expected


def test_decomposed_yo_folds_like_composed() -> None:
    decomposed = "е\u0308лка"  # е + combining diaeresis
    assert normalize(decomposed) == normalize("ёлка") == "елка"


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("please JOIN Marketing!", True),
        ("join marketing", True),
        ("Join, marketing.", True),  # punctuation only separates words
        ("join the marketing team", False),
        ("marketing join", False),
        ("rejoin marketing", False),
        ("join marketingteam", False),
        ("[USER=12]Bot[/USER] join marketing", True),
    ],
)
def test_phrases_match_runs_of_whole_words(text: str, matches: bool) -> None:
    assert index("join marketing").match(text) == ([0] if matches else [])


def test_cyrillic_is_case_and_yo_insensitive_without_stemming() -> None:
    built = index("маркетинг", "ёжик")
    assert built.match("Хочу в МАРКЕТИНГ") == [0]
    assert built.match("хочу к маркетингу") == []  # no stemming
    assert built.match("Ежик в тумане") == [1]
    assert built.match("ЁЖИК") == [1]


def test_every_matching_phrase_applies_in_id_order() -> None:
    built = index("join", "join marketing", "marketing", "sales")
    assert built.match("join marketing now") == [0, 1, 2]
    built.add("marketing", 7)
    assert built.match("marketing") == [2, 7]


def test_one_id_may_own_several_phrases_and_repeats_count_once() -> None:
    built = KeywordIndex()
    built.add_all(["marketing", "маркетинг", "marketing"], 3)
    assert built.match("marketing маркетинг marketing") == [3]


def test_a_phrase_without_words_is_refused() -> None:
    built = KeywordIndex()
    assert built.add("?!", 0) is False
    assert built.add("ok", 1) is True
    assert built.match("?! ok") == [1]


def test_text_is_truncated_before_matching() -> None:
    filler = "x " * (MAX_TEXT_CHARS // 2)
    assert index("marketing").match(filler[:-1] + "marketing") == []
    assert index("marketing").match("marketing " + filler) == [0]
    assert index("marketing", max_chars=12).match("a marketing!") == [0]
    assert index("marketing", max_chars=11).match("hi marketing") == []


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        KeywordIndex(0)


def test_many_phrases_with_one_first_word_stay_exact() -> None:
    built = index(*(f"join team{i}" for i in range(5_000)))
    assert built.match("please join team4321 and join team7") == [7, 4321]


VOCAB = st.sampled_from(["join", "sales", "маркетинг", "ёж", "a"])


@given(
    phrases=st.lists(st.lists(VOCAB, min_size=1, max_size=3), min_size=1, max_size=8),
    text=st.lists(st.one_of(VOCAB, st.sampled_from(["!", ", ", "ЕЖ", "JOIN"])), max_size=12),
)
def test_matches_equal_a_brute_force_scan(phrases: list[list[str]], text: list[str]) -> None:
    built = index(*(" ".join(p) for p in phrases))
    message = " ".join(text)
    seq = words(message)
    expected = [
        i
        for i, phrase in enumerate(phrases)
        if any(seq[s : s + len(phrase)] == words(" ".join(phrase)) for s in range(len(seq)))
    ]
    assert built.match(message) == expected
