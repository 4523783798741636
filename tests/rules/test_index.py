from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.departments import DepartmentTree
from bot.rules import ChatGrant, CompiledRules, Rule, RuleSet, load_rules, parse_rules
from tests.test_departments import SANDBOX_ROWS, sandbox

HEAD = "version: 1\ndefaults:\n  hide_history: false\nrules:\n"


def compile_rules(body: str, tree: DepartmentTree | None = None) -> CompiledRules:
    return CompiledRules.build(parse_rules(HEAD + body), tree or sandbox())


def chats(grants: list[ChatGrant]) -> dict[int, tuple[bool, tuple[str, ...]]]:
    return {g.chat_id: (g.hide_history, g.rules) for g in grants}


def test_rules_match_sub_departments_with_a_reason() -> None:
    compiled = compile_rules("  - name: sales-team\n    departments: [2]\n    chats: [101]\n")
    assert compiled.grants_for_departments([4]) == [
        ChatGrant(
            chat_id=101,
            hide_history=False,
            rules=("sales-team",),
            reasons=("department Sales DACH (4) is under Sales (2), named in rule sales-team",),
        )
    ]
    direct = compiled.grants_for_departments([2])[0]
    assert direct.reasons == ("department Sales (2) is named in rule sales-team",)
    assert compiled.grants_for_departments([5]) == []
    assert compiled.grants_for_departments([1]) == []  # parents do not inherit from children


def test_include_subdepartments_false_matches_only_that_department() -> None:
    compiled = compile_rules(
        "  - name: only-sales\n    departments: [2]\n    include_subdepartments: false\n"
        "    chats: [101]\n"
    )
    assert chats(compiled.grants_for_departments([2])) == {101: (False, ("only-sales",))}
    assert compiled.grants_for_departments([3]) == []
    assert compiled.grants_for_departments([4]) == []


def test_hiding_wins_and_every_rule_is_kept() -> None:
    compiled = compile_rules(
        "  - name: open\n    departments: [2]\n    chats: [101, 102]\n"
        "  - name: hidden\n    departments: [3]\n    chats: [101]\n    hide_history: true\n"
        "    mode: enforce\n"
    )
    grants = compiled.grants_for_departments([4])
    assert chats(grants) == {101: (True, ("open", "hidden")), 102: (False, ("open",))}
    assert grants[0].enforce is True
    assert grants[1].enforce is False
    assert len(grants[0].reasons) == 2


def test_one_rule_reached_twice_reports_the_closest_department() -> None:
    compiled = compile_rules("  - name: sales\n    departments: [2, 3]\n    chats: [101]\n")
    (grant,) = compiled.grants_for_departments([4, 3])
    assert grant.rules == ("sales",)
    assert grant.reasons == ("department Sales EMEA (3) is named in rule sales",)


def test_names_resolve_to_ids() -> None:
    compiled = compile_rules(
        '  - name: eng\n    departments: ["Engineering"]\n    chats: [104]\n'
        '  - name: ask\n    keywords: [backend]\n    only_departments: ["Engineering"]\n'
        "    chats: [105]\n"
    )
    assert compiled.problems == ()
    assert chats(compiled.grants_for_departments([8])) == {104: (False, ("eng",))}
    assert compiled.departments_of("eng") == (6,)
    ask = compiled.keyword_rules_for("backend please")[0]
    assert compiled.allowed(ask, [8])
    assert not compiled.allowed(ask, [2])


def test_a_name_matching_zero_or_several_departments_disables_the_rule() -> None:
    tree = DepartmentTree.from_rows([*SANDBOX_ROWS, {"ID": "12", "NAME": "Sales", "PARENT": "5"}])
    compiled = compile_rules(
        '  - name: ambiguous\n    departments: ["Sales", 9]\n    chats: [101]\n'
        '  - name: missing\n    keywords: [x]\n    only_departments: ["Nope"]\n    chats: [102]\n'
        "  - name: fine\n    departments: [9]\n    chats: [103]\n",
        tree,
    )
    assert [str(p) for p in compiled.problems] == [
        "rules.yaml:6:19: rule 'ambiguous': 2 departments are named 'Sales' (IDs 2, 12); "
        "use an ID. The rule is disabled",
        "rules.yaml:10:24: rule 'missing': no department is named 'Nope'; the rule is disabled",
    ]
    assert all(p.severity == "error" for p in compiled.problems)
    assert chats(compiled.grants_for_departments([9, 2, 12])) == {103: (False, ("fine",))}
    assert compiled.keyword_rules_for("x") == []
    assert compiled.rule("ambiguous") is None
    assert [r.name for r in compiled.rules] == ["fine"]
    assert compiled.chats() == (103,)


def test_a_quoted_department_id_that_names_no_department_suggests_the_id() -> None:
    compiled = compile_rules('  - name: quoted\n    departments: ["2"]\n    chats: [101]\n')
    [problem] = [p for p in compiled.problems if p.severity == "error"]
    assert (problem.line, problem.col) == (6, 19)
    assert "no department is named '2'" in problem.message
    assert "Department ID 2 is Sales (2): write 2 without quotes" in problem.message


def test_unknown_department_ids_warn_but_still_match() -> None:
    compiled = compile_rules("  - name: new\n    departments: [42]\n    chats: [101]\n")
    assert [(p.severity, p.message) for p in compiled.problems] == [
        ("warning", "rule 'new': department 42 is not on the portal")
    ]
    assert chats(compiled.grants_for_departments([42])) == {101: (False, ("new",))}


def test_disabled_rules_grant_nothing() -> None:
    compiled = compile_rules(
        "  - name: off\n    departments: [2]\n    chats: [101]\n    enabled: false\n"
        "  - name: off-kw\n    keywords: [x]\n    chats: [102]\n    enabled: false\n"
    )
    assert compiled.grants_for_departments([2]) == []
    assert compiled.keyword_rules_for("x") == []
    assert compiled.chats() == ()
    assert compiled.rules_for_chat(101) == ()
    off_kw = compiled.ruleset.rules[1]
    assert not compiled.allowed(off_kw, [2])


def test_extranet_users_match_nothing() -> None:
    compiled = CompiledRules.build(load_rules(Path(__file__).parents[2] / "rules.yaml"), sandbox())
    assert compiled.grants_for_departments([]) == []
    for rule in compiled.keyword_rules_for("join marketing join backend"):
        assert not compiled.allowed(rule, [])


def test_keyword_rules_and_only_departments() -> None:
    compiled = CompiledRules.build(load_rules(Path(__file__).parents[2] / "rules.yaml"), sandbox())
    assert compiled.problems == ()
    marketing, backend = compiled.keyword_rules_for("Join MARKETING, then join backend!")
    assert (marketing.name, backend.name) == ("marketing-self-service", "backend-self-service")
    assert compiled.allowed(marketing, [9])  # no only_departments: any employee
    assert compiled.allowed(backend, [6])
    assert compiled.allowed(backend, [8])  # Platform is under Engineering
    assert compiled.allowed(backend, [9, 7])
    assert not compiled.allowed(backend, [9, 5])
    stranger = Rule("backend-self-service", "keywords", keywords=("x",), chats=(1,))
    assert not compiled.allowed(stranger, [6])  # only the compiled rule itself is allowed
    assert compiled.keyword_rules_for("маркетинг")[0].name == "marketing-self-service"


def test_chats_and_rules_for_chat_cover_every_active_rule() -> None:
    compiled = CompiledRules.build(load_rules(Path(__file__).parents[2] / "rules.yaml"), sandbox())
    assert compiled.chats() == (101, 102, 103, 104, 105)
    assert [r.name for r in compiled.rules_for_chat(105)] == [
        "backend-guild",
        "backend-self-service",
    ]
    assert compiled.rules_for_chat(107) == ()
    assert compiled.rule("emea-deals") is not None


def test_the_demo_company_gets_the_documented_chats() -> None:
    compiled = CompiledRules.build(load_rules(Path(__file__).parents[2] / "rules.yaml"), sandbox())
    assert chats(compiled.grants_for_departments([4])) == {
        101: (False, ("sales-all-hands",)),
        102: (True, ("emea-deals",)),
    }
    assert chats(compiled.grants_for_departments([8])) == {
        104: (False, ("engineering",)),
        105: (False, ("backend-guild",)),
    }
    assert compiled.grants_for_departments([5, 9]) == []


# --- property: the index agrees with scanning every rule -------------------------------------


@st.composite
def trees_and_rules(draw: st.DrawFn) -> tuple[DepartmentTree, RuleSet]:
    size = draw(st.integers(1, 12))
    parents = {i: draw(st.one_of(st.none(), st.integers(1, size))) for i in range(1, size + 1)}
    tree = DepartmentTree({i: f"d{i}" for i in parents}, parents)  # cycles get repaired
    rules = [
        Rule(
            name=f"r{n}",
            kind="departments",
            departments=tuple(draw(st.lists(st.integers(1, size + 2), min_size=1, max_size=3))),
            chats=tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3, unique=True))),
            hide_history=draw(st.booleans()),
            include_subdepartments=draw(st.booleans()),
            enabled=draw(st.booleans()),
            line=n + 1,
        )
        for n in range(draw(st.integers(0, 10)))
    ]
    return tree, RuleSet(tuple(rules), "rules.yaml", "")


def brute_force(
    tree: DepartmentTree, ruleset: RuleSet, user: list[int]
) -> dict[int, tuple[bool, tuple[str, ...]]]:
    found: dict[int, list[Rule]] = {}
    for rule in ruleset.rules:
        if not rule.enabled:
            continue
        hit = any(
            u == d or (rule.include_subdepartments and u in tree.descendants(d))
            for u in user
            for d in rule.departments
            if isinstance(d, int)
        )
        for chat in rule.chats if hit else ():
            found.setdefault(chat, []).append(rule)
    return {
        chat: (any(r.hide_history for r in rules), tuple(r.name for r in rules))
        for chat, rules in sorted(found.items())
    }


@settings(max_examples=300)
@given(data=trees_and_rules(), user=st.lists(st.integers(1, 14), max_size=3))
def test_grants_equal_a_brute_force_scan(
    data: tuple[DepartmentTree, RuleSet], user: list[int]
) -> None:
    tree, ruleset = data
    compiled = CompiledRules.build(ruleset, tree)
    assert chats(compiled.grants_for_departments(user)) == brute_force(tree, ruleset, user)
