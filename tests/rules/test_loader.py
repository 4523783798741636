from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from bot.errors import Problem, RulesError
from bot.rules import loader
from bot.rules.loader import check_rules, check_rules_text, load_rules, parse_rules
from bot.rules.model import Rule, RuleSet, diff_rulesets

HEAD = "version: 1\ndefaults:\n  hide_history: false\nrules:\n"  # rules start on line 5

LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if yaml.__with_libyaml__ else [])


@pytest.fixture(params=LOADERS, ids=lambda c: c.__name__)
def yaml_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run position tests with libyaml and with pure Python: marks must agree."""
    monkeypatch.setattr(loader, "_LOADER", request.param)


def problems(text: str) -> list[str]:
    _, found = check_rules_text(text, "rules.yaml")
    return [str(p) for p in found]


def test_the_libyaml_loader_is_used_when_available() -> None:
    assert loader._LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def test_a_valid_file_becomes_rules_with_defaults_applied() -> None:
    ruleset = parse_rules(
        HEAD
        + '  - name: sales\n    departments: [2, "Marketing", 2]\n'
        + '    chats: [101, "chat102", 101]\n'
        + "  - name: ask\n    keywords: [join marketing]\n    only_departments: [5]\n"
        + "    chats: [103]\n    hide_history: true\n    mode: enforce\n"
        + '    reply: "Hi {name}"\n    description: self-service\n'
    )
    sales, ask = ruleset.rules
    assert sales == Rule(
        name="sales",
        kind="departments",
        departments=(2, "Marketing"),
        chats=(101, 102),
        hide_history=False,
        include_subdepartments=True,
        enabled=True,
        mode="join_once",
        line=5,
    )
    assert ask.kind == "keywords"
    assert ask.keywords == ("join marketing",)
    assert ask.only_departments == (5,)
    assert (ask.hide_history, ask.mode, ask.reply, ask.line) == (True, "enforce", "Hi {name}", 8)
    assert ask.description == "self-service"
    assert [(w.line, w.col, w.message) for w in ruleset.warnings] == [
        (
            6,
            35,
            "rules[0].departments[2]: department 2 is listed twice in this rule "
            "(first at line 6, column 19); remove one",
        ),
        (
            7,
            29,
            "rules[0].chats[2]: chat 101 is listed twice in this rule "
            "(first at line 7, column 13); remove one",
        ),
    ]
    assert sales.spot("chats", 102) == (7, 18)
    assert sales.spot("departments", "Marketing") == (6, 22)


def test_defaults_fill_mode_and_subdepartments() -> None:
    text = (
        "version: 1\ndefaults:\n  hide_history: true\n  include_subdepartments: false\n"
        "  mode: enforce\nrules:\n  - name: a\n    departments: [2]\n    chats: [1]\n"
        "  - name: b\n    departments: [2]\n    chats: [1]\n    include_subdepartments: true\n"
    )
    a, b = parse_rules(text).rules
    assert (a.hide_history, a.include_subdepartments, a.mode) == (True, False, "enforce")
    assert b.include_subdepartments is True


def test_digest_is_sha256_of_the_file_bytes(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(b"version: 1\nrules: []\n")
    ruleset = load_rules(path)
    assert ruleset.digest == hashlib.sha256(b"version: 1\nrules: []\n").hexdigest()
    assert ruleset.path == str(path)
    assert ruleset.rules == ()


@pytest.mark.usefixtures("yaml_loader")
def test_message_format_matches_the_documented_example() -> None:
    text = HEAD + "  - name: a\n    departments: [2]\n    chats: [101]\n" + "\n" * 4
    text += "  - name: b\n    departments: [2]\n    chats: [abc]\n"
    assert problems(text) == [
        'rules.yaml:14:13: rules[1].chats[0]: expected a chat ID (integer or "chatNNN"), '
        "got 'abc'"
    ]


@pytest.mark.usefixtures("yaml_loader")
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            HEAD + "  - name: a\n    departments: [2]\n    chat: [101]\n",
            [
                "rules.yaml:5:5: rules[0]: missing required key 'chats'",
                "rules.yaml:7:5: rules[0]: unknown key 'chat' (did you mean 'chats'?)",
            ],
            id="unknown-rule-key",
        ),
        pytest.param(
            "version: 1\nrules: []\nfrobnicate: 1\n",
            ["rules.yaml:3:1: unknown key 'frobnicate'"],
            id="unknown-key-without-suggestion",
        ),
        pytest.param(
            "version: 1\ndefaults:\n  hide_histroy: true\nrules: []\n",
            ["rules.yaml:3:3: defaults: unknown key 'hide_histroy' (did you mean 'hide_history'?)"],
            id="unknown-defaults-key",
        ),
        pytest.param(
            HEAD + "  - name: a\n    departments: [2]\n    chats: [1]\n    hide_history: yes\n",
            [
                "rules.yaml:8:19: rules[0].hide_history: expected a boolean (true or false), "
                "got 'yes'"
            ],
            id="yes-is-not-a-boolean",
        ),
        pytest.param(
            HEAD + "  - name: 5\n    departments: [2]\n    chats: [1]\n    enabled: 1\n",
            [
                "rules.yaml:5:11: rules[0].name: expected a non-blank string, got 5",
                "rules.yaml:8:14: rules[0].enabled: expected a boolean (true or false), got 1",
            ],
            id="wrong-types",
        ),
        pytest.param(
            HEAD + "  - name: a\n    departments: [2]\n    chats: [1]\n    mode: enforced\n",
            [
                "rules.yaml:8:11: rules[0].mode: expected join_once or enforce, "
                "got 'enforced' (did you mean 'enforce'?)"
            ],
            id="enum-suggestion",
        ),
        pytest.param(
            HEAD + "  - name: a\n    departments: [2]\n    chats: [1]\n"
            "  - name: a\n    departments: [3]\n    chats: [2]\n",
            ["rules.yaml:8:11: rules[1].name: duplicate rule name 'a' (first at line 5)"],
            id="duplicate-rule-name",
        ),
        pytest.param(
            HEAD + "  - name: a\n    chats: [1]\n",
            ["rules.yaml:5:5: rules[0]: a rule needs 'departments' or 'keywords'"],
            id="neither-departments-nor-keywords",
        ),
        pytest.param(
            HEAD + "  - name: a\n    departments: [2]\n    keywords: [x]\n    chats: [1]\n",
            ["rules.yaml:7:5: rules[0]: a rule has 'departments' or 'keywords', not both"],
            id="both-departments-and-keywords",
        ),
        pytest.param(
            HEAD + "  - name: a\n    departments: [2]\n    chats: []\n",
            ["rules.yaml:7:12: rules[0].chats: expected a non-empty list of chats"],
            id="empty-chats",
        ),
        pytest.param(
            "version: 1\nrules:\n  - name: a\n    departments: [2]\n    chats: [1]\n",
            ["rules.yaml:3:5: rules[0]: 'hide_history' is set neither in the rule nor in defaults"],
            id="missing-hide-history",
        ),
        pytest.param(
            HEAD + '  - name: a\n    departments: [2]\n    chats: [0, "chat0", "chatx", -3, 1.5]\n',
            [
                'rules.yaml:7:13: rules[0].chats[0]: expected a chat ID (integer or "chatNNN"), '
                "got 0",
                'rules.yaml:7:16: rules[0].chats[1]: expected a chat ID (integer or "chatNNN"), '
                "got 'chat0'",
                'rules.yaml:7:25: rules[0].chats[2]: expected a chat ID (integer or "chatNNN"), '
                "got 'chatx'",
                'rules.yaml:7:34: rules[0].chats[3]: expected a chat ID (integer or "chatNNN"), '
                "got -3",
                'rules.yaml:7:38: rules[0].chats[4]: expected a chat ID (integer or "chatNNN"), '
                "got 1.5",
            ],
            id="bad-chat-ids",
        ),
        pytest.param(
            HEAD + "  - name: a\n    departments: [017]\n    chats: [1]\n",
            [
                "rules.yaml:6:19: rules[0].departments[0]: write 17 without leading zeros "
                "(YAML 1.1 would read an octal number)"
            ],
            id="octal-looking-id",
        ),
        pytest.param(
            HEAD + '  - name: a\n    keywords: ["", "!!!", "—", ok]\n    chats: [1]\n',
            [
                "rules.yaml:6:16: rules[0].keywords[0]: expected a keyword with at least one "
                "letter or digit, got ''",
                "rules.yaml:6:20: rules[0].keywords[1]: expected a keyword with at least one "
                "letter or digit, got '!!!'",
                "rules.yaml:6:27: rules[0].keywords[2]: expected a keyword with at least one "
                "letter or digit, got '—'",
            ],
            id="bad-keywords",
        ),
        pytest.param(
            HEAD + "  - name: a\n    departments: [2]\n    only_departments: [5]\n    chats: [1]\n"
            "  - name: b\n    keywords: [b]\n    include_subdepartments: false\n    chats: [1]\n"
            '    reply: "x"\n  - name: c\n    departments: [2]\n    chats: [1]\n    reply: "x"\n',
            [
                "rules.yaml:7:5: rules[0]: 'only_departments' applies only to keyword rules",
                "rules.yaml:11:5: rules[1]: 'include_subdepartments' applies only to "
                "department rules",
                "rules.yaml:17:5: rules[2]: 'reply' applies only to keyword rules",
            ],
            id="misplaced-kind-keys",
        ),
        pytest.param(
            HEAD + "  - name: a\n    departments: [2]\n    chats: [1]\n    chats: [2]\n",
            ["rules.yaml:8:5: rules[0]: duplicate key 'chats' (first at line 7)"],
            id="duplicate-mapping-key",
        ),
        pytest.param(
            HEAD
            + '  - name: a\n    keywords: [x]\n    chats: [1]\n    reply: "Hi {user.__class__}"\n'
            '  - name: b\n    keywords: [x]\n    chats: [1]\n    reply: "Hi {name"\n',
            [
                "rules.yaml:8:12: rules[0].reply: unknown placeholder {user.__class__} in the "
                "reply template; use {name}, {first_name}, {chats}",
                "rules.yaml:12:12: rules[1].reply: unmatched '{' in the reply template "
                "(write {{ or }})",
            ],
            id="reply-template",
        ),
        pytest.param(
            HEAD + "  - name: a\n    departments: [2]\n    chats: [1]\n    <<: {mode: enforce}\n"
            "    description: !!binary aGk=\n",
            [
                "rules.yaml:8:5: rules[0]: merge keys ('<<') are not supported; write the keys out",
                "rules.yaml:9:18: rules[0].description: unsupported YAML tag "
                "'tag:yaml.org,2002:binary'",
            ],
            id="merge-keys-and-tags",
        ),
        pytest.param(
            "version: 2\nrules: {}\n",
            [
                "rules.yaml:1:10: version: expected 1, got 2",
                "rules.yaml:2:8: rules: expected a list of rules, got a mapping",
            ],
            id="version-and-rules-shape",
        ),
        pytest.param(
            "rules: []\n[1]: x\n",
            [
                "rules.yaml:1:1: missing required key 'version'",
                "rules.yaml:2:1: keys are strings, got a list",
            ],
            id="missing-version-and-odd-key",
        ),
        pytest.param(
            HEAD + "  - sales\n  - name: a\n    departments: sales\n    chats: [1]\n",
            [
                "rules.yaml:5:5: rules[0]: expected a mapping (rule), got 'sales'",
                "rules.yaml:7:18: rules[1].departments: expected a list of departments, "
                "got 'sales'",
            ],
            id="wrong-shapes",
        ),
    ],
)
def test_problems_point_at_the_offending_key_or_value(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


@pytest.mark.usefixtures("yaml_loader")
def test_yaml_syntax_error_is_positioned() -> None:
    found = problems("version: 1\nrules:\n  - name: a\n    chats: [1, 2\n  - name: b\n")
    assert len(found) == 1
    assert found[0].startswith("rules.yaml:5:")
    assert "YAML syntax error" in found[0]
    assert "line 4, column 12" in found[0]  # where the unclosed flow sequence began


@pytest.mark.usefixtures("yaml_loader")
def test_yaml_syntax_errors_bad_indentation_and_two_documents() -> None:
    assert problems("version: 1\n  rules: []\n")[0].startswith("rules.yaml:2:8: YAML syntax error")
    assert problems("version: 1\n---\nrules: []\n")[0].startswith("rules.yaml:2:1: YAML syntax")


def test_control_characters_and_bad_utf8_are_positioned() -> None:
    assert problems("version: 1\nrules: [\x07]\n") == [
        "rules.yaml:2:9: YAML: control characters are not allowed"
        if loader._LOADER is not yaml.SafeLoader
        else "rules.yaml:2:9: YAML: special characters are not allowed"
    ]
    _, found = check_rules_text(b"version: 1\nrules: [\xff]\n")
    assert [str(p) for p in found] == ["rules.yaml:2:9: the file is not valid UTF-8"]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_empty_file_is_an_error(text: str) -> None:
    assert problems(text) == [
        "rules.yaml:1:1: the file is empty; expected 'version: 1' and 'rules'"
    ]


def test_missing_file_is_one_problem_at_1_1(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert check_rules(path) == (None, [Problem(str(path), 1, 1, "file not found")])
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(caught.value) == f"{path}:1:1: file not found"


def test_unreadable_path_is_one_problem(tmp_path: Path) -> None:
    ruleset, found = check_rules(tmp_path)
    assert ruleset is None
    assert [(p.line, p.col) for p in found] == [(1, 1)]
    assert found[0].message.startswith("cannot read the file")


def test_every_problem_is_collected_and_sorted() -> None:
    text = (
        "version: 1\nrules:\n  - name: a\n    departments: [x, 0]\n    chats: [y]\n"
        "    hide_history: no\n  - name: a\n    keywords: ['?']\n    chats: []\n"
    )
    with pytest.raises(RulesError) as caught:
        parse_rules(text)
    lines = [(p.line, p.col) for p in caught.value.problems]
    assert lines == sorted(lines)
    assert len(lines) == 7  # 0, y, no, duplicate name, '?', empty chats, hide_history missing


def test_true_false_in_any_yaml_1_2_case_are_booleans() -> None:
    text = HEAD + "  - name: a\n    departments: [2]\n    chats: [1]\n    hide_history: TRUE\n"
    assert parse_rules(text).rules[0].hide_history is True


def test_yaml_1_1_only_scalars_are_plain_strings() -> None:
    """Under YAML 1.2, `on`, dates and `1_000` are strings, so they are fine as names."""
    text = (
        HEAD + "  - name: on\n    departments: [2024-01-01, 1_000]\n    chats: [1]\n"
        "    description: !!str 5\n"
    )
    rule = parse_rules(text).rules[0]
    assert (rule.name, rule.departments, rule.description) == ("on", ("2024-01-01", "1_000"), "5")


def test_warnings_do_not_fail_the_load() -> None:
    text = (
        HEAD + "  - name: a\n    departments: [2]\n    chats: [101]\n    enabled: false\n"
        "  - name: b\n    departments: [2]\n    chats: [101, 102]\n"
        "  - name: c\n    departments: [3]\n    chats: [102]\n    hide_history: true\n"
    )
    ruleset, found = check_rules_text(text)
    assert ruleset is not None
    assert [str(w) for w in ruleset.warnings] == [
        "rules.yaml:8:14: warning: rules[0].enabled: rule is disabled and grants nothing",
        "rules.yaml:12:1: warning: rule 'c' gives chat 102 with hide_history: true, rule 'b' "
        "(line 9) with false; a person matched by both gets hidden history (hiding wins)",
    ]
    assert [str(p) for p in found] == [str(w) for w in ruleset.warnings]
    assert ruleset.rules[0].enabled is False


def test_warnings_are_reported_alongside_errors() -> None:
    text = HEAD + "  - name: a\n    departments: [2]\n    chats: [x]\n    enabled: false\n"
    ruleset, found = check_rules_text(text)
    assert ruleset is None
    assert [p.severity for p in found] == ["error", "warning"]


def test_repo_example_loads_cleanly() -> None:
    ruleset = load_rules(Path(__file__).parents[2] / "rules.yaml")
    assert ruleset.warnings == ()
    assert len(ruleset.rules) >= 6


def _ruleset(*rules: Rule) -> RuleSet:
    return RuleSet(rules, "rules.yaml", "0" * 64)


def test_diff_rulesets_names_added_removed_and_edited() -> None:
    a = Rule("a", "departments", departments=(1,), chats=(1,), line=5)
    b = Rule("b", "departments", departments=(2,), chats=(2,), line=9)
    c = Rule("c", "keywords", keywords=("c",), chats=(3,), line=13)
    old = _ruleset(a, b, c)
    moved_a = Rule("a", "departments", departments=(1,), chats=(1,), line=20)
    edited_b = Rule("b", "departments", departments=(2,), chats=(2, 4), line=9)
    d = Rule("d", "keywords", keywords=("d",), chats=(4,), line=1)
    assert diff_rulesets(old, _ruleset(d, moved_a, edited_b)) == (("d",), ("c",), ("b",))
    assert diff_rulesets(old, old) == ((), (), ())
    assert old.rule("b") == b
    assert old.rule("zzz") is None
