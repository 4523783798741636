"""Rules compiled against the department tree, indexed so that an event never scans the rules.

A department rule is filed under each department it names. A person's grants are found by
walking each of their departments up to the root (self first) and reading the rules filed there,
so the cost is the depth of the tree times the rules that actually match, however many rules
the file has. Keyword phrases go into a word trie (`keywords.py`) for the same reason.

Department names are resolved here, not in the loader, because only the portal knows them. A
name that matches no department or several disables its rule: guessing would add people to the
wrong chats.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.departments import DepartmentTree
from bot.errors import Problem
from bot.rules.keywords import MAX_TEXT_CHARS, KeywordIndex
from bot.rules.model import DepartmentRef, Rule, RuleSet


@dataclass(frozen=True, slots=True)
class ChatGrant:
    """One chat a person should be in, merged over every rule that gives it.

    `rules` and `reasons` are parallel and in file order. History is hidden if any rule hides it
    ("hiding wins"); `enforce` is true if any of the rules has `mode: enforce`.
    """

    chat_id: int
    hide_history: bool
    rules: tuple[str, ...]
    reasons: tuple[str, ...]
    enforce: bool = False


@dataclass(frozen=True, slots=True)
class _Filed:
    position: int
    rule: Rule


class CompiledRules:
    """The active rules of one `RuleSet` against one `DepartmentTree`; immutable once built."""

    __slots__ = (
        "_allowed",
        "_by_chat",
        "_by_name",
        "_exact",
        "_keywords",
        "_resolved",
        "_subtree",
        "problems",
        "rules",
        "ruleset",
        "tree",
    )

    def __init__(self, ruleset: RuleSet, tree: DepartmentTree, max_text_chars: int) -> None:
        self.ruleset = ruleset
        self.tree = tree
        self.problems: tuple[Problem, ...] = ()
        self.rules: tuple[Rule, ...] = ()
        self._exact: dict[int, list[_Filed]] = {}
        self._subtree: dict[int, list[_Filed]] = {}
        self._keywords = KeywordIndex(max_text_chars)
        self._allowed: dict[str, frozenset[int]] = {}
        self._resolved: dict[str, tuple[int, ...]] = {}
        self._by_chat: dict[int, list[Rule]] = {}
        self._by_name: dict[str, Rule] = {}

    @classmethod
    def build(
        cls, ruleset: RuleSet, tree: DepartmentTree, max_text_chars: int = MAX_TEXT_CHARS
    ) -> CompiledRules:
        """Resolve names and file every enabled rule; problems go to `problems`, not raised."""
        compiled = cls(ruleset, tree, max_text_chars)
        problems: list[Problem] = []
        active: list[Rule] = []
        for rule in ruleset.rules:
            if not rule.enabled:
                continue
            departments = compiled._resolve(rule, rule.departments, problems)
            only = compiled._resolve(rule, rule.only_departments, problems)
            if departments is None or only is None:
                continue
            position = len(active)
            active.append(rule)
            compiled._by_name[rule.name] = rule
            compiled._resolved[rule.name] = departments
            for chat in rule.chats:
                compiled._by_chat.setdefault(chat, []).append(rule)
            if rule.kind == "keywords":
                compiled._keywords.add_all(rule.keywords, position)
                if only:
                    compiled._allowed[rule.name] = frozenset(only)
                continue
            table = compiled._subtree if rule.include_subdepartments else compiled._exact
            for department in departments:
                table.setdefault(department, []).append(_Filed(position, rule))
        compiled.rules = tuple(active)
        compiled.problems = tuple(problems)
        return compiled

    def _resolve(
        self, rule: Rule, refs: tuple[DepartmentRef, ...], problems: list[Problem]
    ) -> tuple[int, ...] | None:
        """IDs for the refs, or None (rule disabled) if a name matches zero or several."""
        ids: list[int] = []
        ok = True
        key = "departments" if refs is rule.departments else "only_departments"
        for ref in refs:
            where = (self.ruleset.path, *rule.spot(key, ref))
            if isinstance(ref, int):
                if not self.tree.contains(ref):
                    message = f"rule {rule.name!r}: department {ref} is not on the portal"
                    problems.append(Problem(*where, message, "warning"))
                ids.append(ref)
                continue
            found = self.tree.by_name(ref)
            if len(found) == 1:
                ids.append(found[0])
                continue
            ok = False
            if found:
                message = (
                    f"rule {rule.name!r}: {len(found)} departments are named {ref!r} "
                    f"(IDs {', '.join(map(str, found))}); use an ID. The rule is disabled"
                )
            else:
                message = (
                    f"rule {rule.name!r}: no department is named {ref!r}; the rule is disabled"
                )
                number = int(ref) if ref.strip().isdecimal() else None
                if number is not None and self.tree.contains(number):
                    message += (
                        f". Department ID {number} is {self.tree.label(number)}: write {number} "
                        "without quotes to name it by ID"
                    )
            problems.append(Problem(*where, message))
        return tuple(dict.fromkeys(ids)) if ok else None

    def grants_for_departments(self, dept_ids: Iterable[int]) -> list[ChatGrant]:
        """Chats a person in these departments gets, one merged grant per chat, by chat ID."""
        found: dict[int, dict[int, tuple[int, str]]] = {}  # chat -> rule position -> (depth, why)
        for department in sorted({int(d) for d in dept_ids}):  # tolerate "4" from JSON
            for depth, node in enumerate(self.tree.ancestors(department)):
                filed = self._subtree.get(node, [])
                if depth == 0:
                    filed = filed + self._exact.get(node, [])
                for entry in filed:
                    why = self._reason(department, node, entry.rule.name)
                    for chat in entry.rule.chats:
                        by_rule = found.setdefault(chat, {})
                        if entry.position not in by_rule or depth < by_rule[entry.position][0]:
                            by_rule[entry.position] = (depth, why)
        grants = []
        for chat in sorted(found):
            positions = sorted(found[chat])
            rules = [self.rules[p] for p in positions]
            grants.append(
                ChatGrant(
                    chat_id=chat,
                    hide_history=any(r.hide_history for r in rules),
                    rules=tuple(r.name for r in rules),
                    reasons=tuple(found[chat][p][1] for p in positions),
                    enforce=any(r.mode == "enforce" for r in rules),
                )
            )
        return grants

    def _reason(self, department: int, named: int, rule_name: str) -> str:
        if department == named:
            return f"department {self.tree.label(department)} is named in rule {rule_name}"
        return (
            f"department {self.tree.label(department)} is under {self.tree.label(named)}, "
            f"named in rule {rule_name}"
        )

    def keyword_rules_for(self, text: str) -> list[Rule]:
        """Keyword rules whose phrases occur in `text`, in file order; check `allowed` next."""
        return [self.rules[i] for i in self._keywords.match(text)]

    def allowed(self, rule: Rule, dept_ids: Iterable[int]) -> bool:
        """May a person in these departments self-join by this keyword rule?

        People without departments (extranet) never may. `only_departments` includes
        sub-departments.
        """
        departments = list(dept_ids)
        if not departments or self._by_name.get(rule.name) != rule:
            return False
        allowed = self._allowed.get(rule.name)
        if allowed is None:
            return True
        return self.tree.under(departments, allowed)

    def chats(self) -> tuple[int, ...]:
        """Every chat an active rule targets, ascending."""
        return tuple(sorted(self._by_chat))

    def rules_for_chat(self, chat_id: int) -> tuple[Rule, ...]:
        return tuple(self._by_chat.get(chat_id, ()))

    def rule(self, name: str) -> Rule | None:
        """An active rule by name; None if unknown, disabled or unresolved."""
        return self._by_name.get(name)

    def departments_of(self, rule_name: str) -> tuple[int, ...]:
        """Resolved department IDs of an active department rule (for `explain` and `plan`)."""
        return self._resolved.get(rule_name, ())
