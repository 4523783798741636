"""Read rules.yaml into a `RuleSet`, reporting every problem with its line and column.

The file is composed, not constructed: PyYAML's node tree keeps a mark on every key and value,
so each message can point at the exact spot. All problems are collected before anything is
raised, so one `autojoin check` run shows them all.

Scalars are typed as YAML 1.2 (what editors and the JSON Schema see), not as PyYAML's YAML 1.1:
only true/false (any case form YAML 1.2 allows) are booleans, so `hide_history: yes` is an error
rather than a silent True; integers are plain decimal, and `017` is refused because YAML 1.1
reads it as octal 15 while YAML 1.2 reads 17.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from dataclasses import dataclass

import yaml

from bot.errors import Problem, RulesError
from bot.rules import spec
from bot.rules.keywords import words
from bot.rules.model import DepartmentRef, RuleSet, build_rule, hiding_conflicts

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BOOLEANS = {
    text: text.lower() == "true" for text in ("true", "True", "TRUE", "false", "False", "FALSE")
}
_DECIMAL = re.compile(r"[-+]?[0-9]+")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+")
_KIND_NOUN = {"departments": "department", "keywords": "keyword"}
_Spots = tuple[tuple[str, DepartmentRef, int, int], ...]
_Draft = tuple[spec.RuleKind, int, dict[str, object], _Spots]
_LISTED = ("chats", "departments", "only_departments")
_RULE_KINDS = {k.name: k.kinds for k in spec.RULE.keys}
_BASE_SETTINGS: dict[str, object] = {
    k.name: k.default for k in (*spec.RULE.keys, *spec.DEFAULTS.keys) if k.default is not None
}


@dataclass(frozen=True, slots=True)
class _Entry:
    """A checked mapping entry: where its key and value are, and the value (None if invalid)."""

    key: yaml.Node
    node: yaml.Node
    value: object


def _classify(node: yaml.ScalarNode) -> tuple[str, object]:
    """YAML 1.2 core type of a scalar: boolean, integer, float, null, string or bad (+ reason)."""
    tag, text = node.tag.rsplit(":", 1)[-1], node.value
    if tag == "null":
        return "null", None
    if tag == "bool":
        return ("boolean", _BOOLEANS[text]) if text in _BOOLEANS else ("string", text)
    if tag == "int":
        return ("integer", int(text, 10)) if _DECIMAL.fullmatch(text) else ("string", text)
    if tag == "float":
        return "float", text
    if tag == "merge":
        return "bad", "merge keys ('<<') are not supported; write the keys out"
    if tag in ("str", "timestamp", "value"):
        return "string", text
    return "bad", f"unsupported YAML tag {node.tag!r}"


def _shown(node: yaml.Node) -> str:
    """How a value reads in a message: strings quoted, other scalars as written."""
    if not isinstance(node, yaml.ScalarNode):
        return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
    kind, _ = _classify(node)
    if kind == "null":
        return "nothing" if node.value == "" else "null"
    return repr(node.value) if kind in ("string", "bad") else str(node.value)


class _Checker:
    """Walks the node tree against `spec`, collecting problems."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def report(self, node: yaml.Node, where: str, message: str, severity: str = "error") -> None:
        mark = node.start_mark
        text = f"{where}: {message}" if where else message
        self.problems.append(Problem(self.path, mark.line + 1, mark.column + 1, text, severity))

    def check(
        self, node: yaml.Node, shape: spec.Scalar | spec.ListOf | spec.Section, where: str
    ) -> object:
        if isinstance(shape, spec.Section):
            return self.section(node, shape, where)
        if isinstance(shape, spec.ListOf):
            return self.sequence(node, shape, where)
        return self.scalar(node, shape, where)

    def scalar(self, node: yaml.Node, shape: spec.Scalar, where: str) -> object:
        kind, value = _classify(node) if isinstance(node, yaml.ScalarNode) else ("", None)
        if kind == "bad":  # an unsupported tag or a merge key
            self.report(node, where, str(value))
            return None
        problem = None
        if kind not in shape.types:
            problem = f"expected {shape.label}, got {_shown(node)}"
            if kind == "string" and "integer" in shape.types and _DECIMAL.fullmatch(node.value):
                problem = (
                    f"expected {shape.label}, got the string {node.value!r}; write it "
                    "without quotes"
                )
        elif isinstance(value, int) and not isinstance(value, bool):
            if _LEADING_ZERO.fullmatch(node.value):
                problem = (
                    f"write {value} without leading zeros (YAML 1.1 would read an octal number)"
                )
            elif (shape.const is not None and value != shape.const) or (
                shape.minimum is not None and value < shape.minimum
            ):
                problem = f"expected {shape.label}, got {value}"
        elif isinstance(value, str):
            problem = self._string_problem(value, shape)
        if problem:
            self.report(node, where, problem)
            return None
        return value

    @staticmethod
    def _string_problem(value: str, shape: spec.Scalar) -> str | None:
        if shape.enum and value not in shape.enum:
            close = difflib.get_close_matches(value, shape.enum, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return f"expected {shape.label}, got {value!r}{hint}"
        if shape.pattern and not re.search(shape.pattern, value):
            if shape is spec.TEMPLATE:
                return spec.template_problem(value)
            return f"expected {shape.label}, got {value!r}"
        if shape is spec.KEYWORD and not words(value):
            return f"expected {shape.label}, got {value!r}"
        return None

    def sequence(
        self, node: yaml.Node, shape: spec.ListOf, where: str
    ) -> list[tuple[yaml.Node, object]] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.report(node, where, f"expected a list of {shape.label}, got {_shown(node)}")
            return None
        if len(node.value) < shape.min_items:
            self.report(node, where, f"expected a non-empty list of {shape.label}")
        return [
            (item, self.check(item, shape.item, f"{where}[{i}]"))
            for i, item in enumerate(node.value)
        ]

    def section(self, node: yaml.Node, shape: spec.Section, where: str) -> dict[str, _Entry] | None:
        if not isinstance(node, yaml.MappingNode):
            self.report(node, where, f"expected a mapping ({shape.label}), got {_shown(node)}")
            return None
        entries: dict[str, _Entry] = {}
        for key_node, value_node in node.value:
            kind, name = (
                _classify(key_node) if isinstance(key_node, yaml.ScalarNode) else ("", None)
            )
            if kind == "bad" or not isinstance(name, str):
                self.report(
                    key_node,
                    where,
                    str(name) if kind == "bad" else f"keys are strings, got {_shown(key_node)}",
                )
            elif name in entries:
                first = entries[name].key.start_mark.line + 1
                self.report(key_node, where, f"duplicate key {name!r} (first at line {first})")
            elif (key := shape.key(name)) is None:
                close = difflib.get_close_matches(name, [k.name for k in shape.keys], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.report(key_node, where, f"unknown key {name!r}{hint}")
            else:
                value = self.check(value_node, key.shape, f"{where}.{name}" if where else name)
                entries[name] = _Entry(key_node, value_node, value)
        for key in shape.keys:
            if key.required and not key.inherits and key.name not in entries:
                self.report(node, where, f"missing required key {key.name!r}")
        return entries

    def rules(self, top: dict[str, _Entry]) -> list[_Draft]:
        defaults = top["defaults"].value if "defaults" in top else {}
        rule_list = top["rules"].value if "rules" in top else None
        if not isinstance(defaults, dict) or not isinstance(rule_list, list):
            return []
        names: dict[str, int] = {}
        out: list[_Draft] = []
        for i, (node, entries) in enumerate(rule_list):
            if not isinstance(entries, dict):
                continue
            name = entries.get("name")
            if name and isinstance(name.value, str) and name.value in names:
                message = f"duplicate rule name {name.value!r} (first at line {names[name.value]})"
                self.report(name.node, f"rules[{i}].name", message)
            elif name and isinstance(name.value, str):
                names[name.value] = node.start_mark.line + 1
            draft = self.rule(node, entries, defaults, f"rules[{i}]")
            if draft is not None:
                out.append(draft)
        return out

    def rule(
        self, node: yaml.Node, entries: dict[str, _Entry], defaults: dict[str, _Entry], where: str
    ) -> _Draft | None:
        """Cross-key checks of one rule; its settings if it has a kind (maybe still invalid)."""
        present = [k for k in spec.KINDS if k in entries]
        if len(present) > 1:
            message = "a rule has 'departments' or 'keywords', not both"
            self.report(entries[present[-1]].key, where, message)
        elif not present:
            self.report(node, where, "a rule needs 'departments' or 'keywords'")
        for name, entry in entries.items():
            kinds = _RULE_KINDS[name]
            if len(present) == 1 and present[0] not in kinds:
                self.report(
                    entry.key, where, f"{name!r} applies only to {_KIND_NOUN[kinds[0]]} rules"
                )
        for key in spec.RULE.keys:
            if key.required and key.inherits and key.name not in {*entries, *defaults}:
                self.report(node, where, f"{key.name!r} is set neither in the rule nor in defaults")
        enabled = entries.get("enabled")
        if enabled is not None and enabled.value is False:
            self.report(
                enabled.node, f"{where}.enabled", "rule is disabled and grants nothing", "warning"
            )
        settings = dict(_BASE_SETTINGS)
        for name, entry in (*defaults.items(), *entries.items()):
            value = entry.value
            settings[name] = [v for _, v in value] if isinstance(value, list) else value
        if len(present) != 1 or not isinstance(settings.get("name"), str):
            return None
        return present[0], node.start_mark.line + 1, settings, self.spots(entries, where)

    def spots(self, entries: dict[str, _Entry], where: str) -> _Spots:
        """Where each chat and department entry is; an entry listed twice is a warning."""
        found: list[tuple[str, DepartmentRef, int, int]] = []
        for key in _LISTED:
            items = entries[key].value if key in entries else None
            if not isinstance(items, list):
                continue
            first: dict[DepartmentRef, tuple[int, int]] = {}
            for i, (item, value) in enumerate(items):
                if not isinstance(value, int | str):
                    continue
                if key == "chats" and isinstance(value, str):
                    value = int(value.removeprefix("chat"))
                line, col = item.start_mark.line + 1, item.start_mark.column + 1
                if value in first:
                    noun = "chat" if key == "chats" else "department"
                    self.report(
                        item,
                        f"{where}.{key}[{i}]",
                        f"{noun} {value!r} is listed twice in this rule (first at line "
                        f"{first[value][0]}, column {first[value][1]}); remove one",
                        "warning",
                    )
                    continue
                first[value] = (line, col)
                found.append((key, value, line, col))
                if key != "chats" and isinstance(value, str) and value.strip().isdecimal():
                    self.report(
                        item,
                        f"{where}.{key}[{i}]",
                        f"{value!r} is a department name in quotes; to name department ID "
                        f"{value.strip()}, write it without quotes",
                        "warning",
                    )
        return tuple(found)


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def _syntax_problem(exc: yaml.MarkedYAMLError, path: str) -> Problem:
    """Point at the problem; name where the enclosing construct began if that is elsewhere."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = f"YAML syntax error: {exc.problem or exc.context}"
    start = exc.context_mark
    if exc.problem and exc.context and start and (start.line + 1, start.column + 1) != (line, col):
        message += f" ({exc.context} at line {start.line + 1}, column {start.column + 1})"
    return Problem(path, line, col, message)


def _compose(raw: bytes, path: str, problems: list[Problem]) -> yaml.Node | None:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start].decode("utf-8-sig")  # everything before the bad byte decodes
        at = _position(prefix, len(prefix))
        problems.append(Problem(path, *at, "the file is not valid UTF-8"))
        return None
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        problems.append(_syntax_problem(exc, path))
    except yaml.reader.ReaderError as exc:
        problems.append(Problem(path, *_position(text, exc.position), f"YAML: {exc.reason}"))
    return None


def check_rules_text(
    data: bytes | str, path: str = "rules.yaml"
) -> tuple[RuleSet | None, list[Problem]]:
    """Validate rules from memory; the `RuleSet` is None when any error was found."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    checker = _Checker(path)
    root = _compose(raw, path, checker.problems)
    drafts: list[_Draft] = []
    if root is not None:
        top = checker.section(root, spec.TOP, "")
        drafts = checker.rules(top) if top is not None else []
    elif not checker.problems:
        checker.problems.append(
            Problem(path, 1, 1, "the file is empty; expected 'version: 1' and 'rules'")
        )
    failed = any(p.severity == "error" for p in checker.problems)
    rules = [] if failed else [build_rule(*draft) for draft in drafts]
    checker.problems.extend(hiding_conflicts(rules, path))
    problems = sorted(checker.problems, key=lambda p: (p.line, p.col))
    if failed:
        return None, problems
    digest = hashlib.sha256(raw).hexdigest()
    return RuleSet(tuple(rules), path, digest, tuple(problems)), problems


def check_rules(path: str | os.PathLike[str]) -> tuple[RuleSet | None, list[Problem]]:
    """Validate a rules file for `autojoin check`: all problems, warnings included."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None, [Problem(name, 1, 1, "file not found")]
    except OSError as exc:
        return None, [Problem(name, 1, 1, f"cannot read the file: {exc.strerror or exc}")]
    return check_rules_text(raw, name)


def parse_rules(data: bytes | str, path: str = "rules.yaml") -> RuleSet:
    """Like `load_rules`, from memory (tests, the sandbox)."""
    ruleset, problems = check_rules_text(data, path)
    if ruleset is None:
        raise RulesError(problems)
    return ruleset


def load_rules(path: str | os.PathLike[str]) -> RuleSet:
    """Load and validate a rules file; raises `RulesError` listing every problem."""
    ruleset, problems = check_rules(path)
    if ruleset is None:
        raise RulesError(problems)
    return ruleset
