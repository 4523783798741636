"""Keyword matching: whole-word phrases, case- and ё-insensitive, in time linear in the message.

Text and keywords go through the same `words()` so that what a reviewer reads in rules.yaml is
what matches: NFKC (full-width and compatibility forms fold to plain letters), `casefold()`,
`ё` as `е`, then a split on every non-word character. A phrase matches only a run of
consecutive words; there is no stemming, so "маркетинг" does not match "маркетингу".

Phrases live in a word trie, so a message costs O(words × longest phrase) however many rules
there are.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

MAX_TEXT_CHARS: Final = 2_000
_NON_WORD = re.compile(r"\W+")


def normalize(text: str) -> str:
    """Fold case, compatibility forms and ё so that equal-looking words compare equal."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    # casefold() can leave sequences that NFKC would compose differently; settle them again.
    return unicodedata.normalize("NFKC", folded).replace("ё", "е")


def words(text: str) -> tuple[str, ...]:
    """The normalised words of `text`; punctuation and spaces only separate."""
    return tuple(w for w in _NON_WORD.split(normalize(text)) if w)


class _Node:
    __slots__ = ("children", "ids")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.ids: list[int] = []


class KeywordIndex:
    """Maps phrases to integer ids (the caller's rule positions) and finds them in text."""

    __slots__ = ("_max_chars", "_root")

    def __init__(self, max_chars: int = MAX_TEXT_CHARS) -> None:
        if max_chars < 1:
            raise ValueError("max_chars must be positive")
        self._root = _Node()
        self._max_chars = max_chars

    def add(self, phrase: str, ident: int) -> bool:
        """Index `phrase` for `ident`; False if the phrase has no words and can never match."""
        node = self._root
        phrase_words = words(phrase)
        for word in phrase_words:
            node = node.children.setdefault(word, _Node())
        if phrase_words and ident not in node.ids:
            node.ids.append(ident)
        return bool(phrase_words)

    def add_all(self, phrases: Iterable[str], ident: int) -> None:
        for phrase in phrases:
            self.add(phrase, ident)

    def match(self, text: str) -> list[int]:
        """Ids whose phrases occur in `text` (first `max_chars` characters), ascending."""
        found: set[int] = set()
        seq = words(text[: self._max_chars])
        for start in range(len(seq)):
            node = self._root
            for i in range(start, len(seq)):
                child = node.children.get(seq[i])
                if child is None:
                    break
                node = child
                found.update(node.ids)
        return sorted(found)
