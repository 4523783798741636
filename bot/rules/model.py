"""The validated rules: frozen values that every other module may trust without re-checking."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.errors import Problem
from bot.rules.spec import RuleKind

DepartmentRef = int | str
"""A department as the rules file names it: an ID, or an exact name resolved against the portal."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule with defaults applied. `line` is where it starts in the file (1-based)."""

    name: str
    kind: RuleKind
    departments: tuple[DepartmentRef, ...] = ()
    keywords: tuple[str, ...] = ()
    chats: tuple[int, ...] = ()
    hide_history: bool = False
    include_subdepartments: bool = True
    only_departments: tuple[DepartmentRef, ...] = ()
    enabled: bool = True
    mode: str = "join_once"
    reply: str | None = None
    description: str | None = None
    line: int = 0
    # (key, entry, line, column) of each chat and department entry, so a problem found later
    # (against the portal) points at the entry itself; positions are not part of the rule
    spots: tuple[tuple[str, DepartmentRef, int, int], ...] = field(default=(), compare=False)

    def spot(self, key: str, entry: DepartmentRef) -> tuple[int, int]:
        """Line and column of an entry of `key` (chats, departments, only_departments)."""
        for name, value, line, col in self.spots:
            if name == key and value == entry:
                return line, col
        return self.line, 1


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A whole rules file. `digest` (sha256 of the bytes) ties audit entries to a file version."""

    rules: tuple[Rule, ...]
    path: str
    digest: str
    warnings: tuple[Problem, ...] = ()

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


def build_rule(
    kind: RuleKind,
    line: int,
    settings: Mapping[str, object],
    spots: tuple[tuple[str, DepartmentRef, int, int], ...] = (),
) -> Rule:
    """A `Rule` from validated plain values (defaults already merged, "chatNNN" not yet parsed)."""

    def items(key: str) -> list[object]:
        value = settings.get(key)
        return list(dict.fromkeys(value)) if isinstance(value, list) else []

    def text(key: str) -> str | None:
        value = settings.get(key)
        return value if isinstance(value, str) else None

    chats = (c if isinstance(c, int) else int(str(c).removeprefix("chat")) for c in items("chats"))
    return Rule(
        name=str(settings.get("name")),
        kind=kind,
        departments=tuple(v for v in items("departments") if isinstance(v, int | str)),
        keywords=tuple(v for v in items("keywords") if isinstance(v, str)),
        chats=tuple(dict.fromkeys(chats)),
        hide_history=settings.get("hide_history") is True,
        include_subdepartments=settings.get("include_subdepartments") is not False,
        only_departments=tuple(v for v in items("only_departments") if isinstance(v, int | str)),
        enabled=settings.get("enabled") is not False,
        mode=text("mode") or "join_once",
        reply=text("reply"),
        description=text("description"),
        line=line,
        spots=spots,
    )


def diff_rulesets(
    old: RuleSet, new: RuleSet
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Names of rules (added, removed, edited) from `old` to `new`; moving a rule is no edit."""
    before = {r.name: dataclasses.replace(r, line=0) for r in old.rules}
    after = {r.name: dataclasses.replace(r, line=0) for r in new.rules}
    added = tuple(n for n in after if n not in before)
    removed = tuple(n for n in before if n not in after)
    edited = tuple(n for n, r in after.items() if n in before and before[n] != r)
    return added, removed, edited


def hiding_conflicts(rules: Iterable[Rule], path: str) -> list[Problem]:
    """Warn where two enabled rules give one chat with different `hide_history`.

    Whether both can apply to one person depends on the portal, so this is a warning: when they
    do, the person is added with history hidden ("hiding wins").
    """
    first: dict[tuple[int, bool], Rule] = {}
    warnings: list[Problem] = []
    for rule in rules:
        if not rule.enabled:
            continue
        for chat in dict.fromkeys(rule.chats):
            other = first.get((chat, not rule.hide_history))
            if other is not None:
                warnings.append(
                    Problem(
                        path,
                        rule.line,
                        1,
                        f"rule {rule.name!r} gives chat {chat} with hide_history: "
                        f"{_yaml_bool(rule.hide_history)}, rule {other.name!r} (line "
                        f"{other.line}) with {_yaml_bool(other.hide_history)}; "
                        "a person matched by both gets hidden history (hiding wins)",
                        "warning",
                    )
                )
            first.setdefault((chat, rule.hide_history), rule)
    return warnings


def _yaml_bool(value: bool) -> str:
    return "true" if value else "false"
