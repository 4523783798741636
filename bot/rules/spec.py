"""What rules.yaml may contain, said once.

The validator (`loader.py`) and the JSON Schema generator (`schema.py`) both read these
declarations, so the editor's squiggles and `autojoin check` cannot drift apart. Patterns are
written in the common subset of Python `re` and ECMA-262, because editors run the schema with
JavaScript regexes while our tests run it with Python's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

RuleKind = Literal["departments", "keywords"]
KINDS: Final[tuple[RuleKind, ...]] = ("departments", "keywords")
MODES: Final[tuple[str, ...]] = ("join_once", "enforce")
PLACEHOLDERS: Final[tuple[str, ...]] = ("name", "first_name", "chats")
FORMAT_VERSION: Final = 1

ScalarType = Literal["boolean", "integer", "string"]

#: At least one non-space character.
NON_BLANK: Final = r"\S"
#: "chat" plus a positive integer without leading zeros, as the portal shows chat dialogs.
CHAT_PATTERN: Final = r"^chat[1-9][0-9]*$"
#: At least one character that is neither whitespace nor ASCII punctuation. The validator is
#: stricter (a Unicode word character is required), see `VALIDATOR_ONLY`.
KEYWORD_PATTERN: Final = r"[^\s!-/:-@\[-^`{-~]"
#: Literal text, `{{`/`}}` escapes, and only the known placeholders: no attribute access or
#: format specs, so rendering a template with `str.format` can never reach into objects.
TEMPLATE_PATTERN: Final = r"^(?:[^{}]|\{\{|\}\}|\{(?:" + "|".join(PLACEHOLDERS) + r")\})*$"

_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def template_problem(text: str) -> str:
    """Why `text` does not match `TEMPLATE_PATTERN`, for a message better than "no match"."""
    for token in _TEMPLATE_TOKEN.finditer(text):
        field = token.group(1)
        if token.group() in ("{", "}"):
            return f"unmatched {token.group()!r} in the reply template (write {{{{ or }}}})"
        if field is not None and field not in PLACEHOLDERS:
            allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            return f"unknown placeholder {{{field}}} in the reply template; use {allowed}"
    return "not a reply template"  # pragma: no cover - the pattern and the scan agree


@dataclass(frozen=True, slots=True)
class Scalar:
    """One scalar shape; `minimum` binds integers and `pattern` strings, as in JSON Schema."""

    label: str
    types: tuple[ScalarType, ...]
    enum: tuple[str, ...] = ()
    const: int | None = None
    minimum: int | None = None
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class ListOf:
    """A YAML sequence, at least `min_items` long; `label` names the items in messages."""

    item: Scalar | Section
    label: str
    min_items: int = 1


@dataclass(frozen=True, slots=True)
class Key:
    """One mapping key.

    `inherits` means a missing value is taken from the same key under `defaults`; a key that is
    both `required` and `inherits` is required only when `defaults` does not set it. `kinds`
    lists the rule kinds the key belongs to.
    """

    name: str
    shape: Scalar | ListOf | Section
    description: str
    required: bool = False
    default: bool | str | None = None
    inherits: bool = False
    kinds: tuple[RuleKind, ...] = KINDS


@dataclass(frozen=True, slots=True)
class Section:
    """A mapping with a closed set of keys.

    If some keys belong to only one kind, the section is a tagged union: exactly one key named
    after a kind must be present, and it decides which other keys are allowed.
    """

    keys: tuple[Key, ...]
    label: str

    def key(self, name: str) -> Key | None:
        return next((k for k in self.keys if k.name == name), None)


BOOLEAN = Scalar("a boolean (true or false)", ("boolean",))
MODE = Scalar("join_once or enforce", ("string",), enum=MODES)
TEXT = Scalar("a string", ("string",))
NAME = Scalar("a non-blank string", ("string",), pattern=NON_BLANK)
DEPARTMENT = Scalar(
    "a department (positive integer ID or exact name)",
    ("integer", "string"),
    minimum=1,
    pattern=NON_BLANK,
)
CHAT = Scalar(
    'a chat ID (integer or "chatNNN")', ("integer", "string"), minimum=1, pattern=CHAT_PATTERN
)
KEYWORD = Scalar(
    "a keyword with at least one letter or digit", ("string",), pattern=KEYWORD_PATTERN
)
TEMPLATE = Scalar(
    "a reply template using only {name}, {first_name} and {chats}",
    ("string",),
    pattern=TEMPLATE_PATTERN,
)

DEFAULTS = Section(
    label="defaults",
    keys=(
        Key(
            "hide_history",
            BOOLEAN,
            "Hide chat history from people added by rules that do not set it.",
        ),
        Key(
            "include_subdepartments",
            BOOLEAN,
            "Department rules also match everyone in sub-departments unless a rule says otherwise.",
            default=True,
        ),
        Key(
            "mode",
            MODE,
            "join_once: add people when a rule first matches them; enforce: keep them in the chat.",
            default="join_once",
        ),
    ),
)

RULE = Section(
    label="rule",
    keys=(
        Key("name", NAME, "Unique name, used in logs, audit and `explain`.", required=True),
        Key("description", TEXT, "Free text for reviewers."),
        Key(
            "departments",
            ListOf(DEPARTMENT, "departments"),
            "People in these departments join the chats. An integer is a department ID, "
            "a string an exact department name.",
            kinds=("departments",),
        ),
        Key(
            "keywords",
            ListOf(KEYWORD, "keywords"),
            "Words or phrases; a message to the bot containing one of them as whole words joins "
            "the sender. Case, ё/е and punctuation are ignored.",
            kinds=("keywords",),
        ),
        Key(
            "chats",
            ListOf(CHAT, "chats"),
            'Chats to add people to: the chat ID, or "chatNNN" as the portal shows it.',
            required=True,
        ),
        Key(
            "hide_history",
            BOOLEAN,
            "Hide earlier messages from people this rule adds. "
            "Falls back to defaults.hide_history.",
            required=True,
            inherits=True,
        ),
        Key(
            "include_subdepartments",
            BOOLEAN,
            "Also match sub-departments. Falls back to defaults.include_subdepartments.",
            inherits=True,
            kinds=("departments",),
        ),
        Key(
            "only_departments",
            ListOf(DEPARTMENT, "departments"),
            "Who may join by keyword: people in these departments or their sub-departments.",
            kinds=("keywords",),
        ),
        Key("enabled", BOOLEAN, "A disabled rule grants nothing.", default=True),
        Key("mode", MODE, "join_once or enforce. Falls back to defaults.mode.", inherits=True),
        Key(
            "reply",
            TEMPLATE,
            "What the bot answers after a keyword join. "
            "Placeholders: {name}, {first_name}, {chats}.",
            kinds=("keywords",),
        ),
    ),
)

TOP = Section(
    label="rules file",
    keys=(
        Key(
            "version",
            Scalar("1", ("integer",), const=FORMAT_VERSION),
            "Format version.",
            required=True,
        ),
        Key("defaults", DEFAULTS, "Values used by rules that do not set them."),
        Key("rules", ListOf(RULE, "rules", min_items=0), "The rules, in order.", required=True),
    ),
)

#: Checks the validator makes that a JSON Schema cannot, shown in the schema's description.
VALIDATOR_ONLY: Final[tuple[str, ...]] = (
    "rule names are unique",
    "a mapping has no duplicate keys",
    "a keyword contains a letter, digit or underscore (any script)",
    "scalars are typed as YAML 1.2 says: yes/no/on/off are strings, integers are plain decimal "
    "without leading zeros, 1.0 is not an integer",
    "YAML merge keys (<<) are refused",
    "a department name matches exactly one department (checked against the portal)",
)
