"""`check --portal`: every problem the live portal would cause, named by the rule causing it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.reconcile.portal_check import portal_problems, run_check
from bot.reconcile.session import open_client
from bot.rules import load_rules
from bot.sandbox import Department
from tests.harness import open_harness
from tests.reconcile.kit import runtime, write_rules

pytestmark = pytest.mark.anyio

RULES = [
    {"name": "engineering", "departments": [6], "chats": [104], "mode": "enforce"},
    {"name": "secret", "departments": [7], "chats": [107]},
    {"name": "announcements", "departments": [1], "chats": [106]},
    {"name": "everyone", "departments": [1], "chats": [1]},
    {"name": "leads", "departments": [6], "chats": [108]},
    {"name": "sales-kept", "departments": [2], "chats": [101], "mode": "enforce"},
    {"name": "ghost", "departments": [2], "chats": [999]},
    {"name": "by-name", "departments": ["Backend"], "chats": [105]},
    {"name": "typo", "departments": ["Suport"], "chats": [105]},
    {"name": "self-service", "keywords": ["join leads"], "chats": [108]},
]


def test_the_flag_is_offered() -> None:
    assert build_parser().parse_args(["check", "--portal"]).portal is True
    assert build_parser().parse_args(["check"]).portal is False


async def test_each_problem_is_reported_with_the_rule_that_causes_it(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        h.portal.state.add_department(Department(20, "Backend", 9))  # a second "Backend"
        async with open_client(runtime(h)) as client:
            problems, requests = await portal_problems(client, load_rules(rules))
    by_rule = {
        rule["name"]: [p.message for p in problems if f"'{rule['name']}'" in p.message]
        for rule in RULES
    }
    assert by_rule["engineering"] == []  # manager: may add and remove
    assert by_rule["secret"] == [
        "rule 'secret': chat 107 does not exist or the webhook user cannot see it "
        "(ACCESS_ERROR); check the ID (`autojoin chats` lists the chats it can see) and add "
        "the webhook user to the chat"
    ]
    assert by_rule["announcements"] == [
        "rule 'announcements': chat 106 takes no new members "
        "(its type forbids adding; ACCESS_ERROR)"
    ]
    assert by_rule["everyone"] == [
        "rule 'everyone': chat 1 is the company-wide general chat, which takes no members"
    ]
    assert by_rule["leads"] == [
        "rule 'leads': the webhook user is only member in chat 108, and adding members needs "
        "owner (manage_users_add); give the webhook user that role in the chat"
    ]
    assert by_rule["self-service"] == [by_rule["leads"][0].replace("'leads'", "'self-service'")]
    assert by_rule["sales-kept"] == [
        "rule 'sales-kept' (enforce): the webhook user is only member in chat 101, and removing "
        "members needs manager (manage_users_delete); give the webhook user that role in the chat"
    ]
    assert by_rule["ghost"] == [
        "rule 'ghost': chat 999 does not exist or the webhook user cannot see it (ACCESS_ERROR); "
        "check the ID (`autojoin chats` lists the chats it can see) and add the webhook user "
        "to the chat"
    ]
    assert by_rule["by-name"] == [
        "rule 'by-name': 2 departments are named 'Backend' (IDs 7, 20); use an ID. "
        "The rule is disabled"
    ]
    assert by_rule["typo"] == ["rule 'typo': no department is named 'Suport'; the rule is disabled"]
    spots = {p.message: (p.line, p.col) for p in problems}
    text = rules.read_text().splitlines()
    ghost = text.index("- name: ghost")
    entry = next(i for i in range(ghost, len(text)) if text[i].strip() == "- 999")
    # at the offending entry, as editors want it, not at the rule's first line
    assert spots[by_rule["ghost"][0]] == (entry + 1, text[entry].index("999") + 1)
    typo = next(i for i in range(len(text)) if text[i].strip() == "- Suport")
    assert spots[by_rule["typo"][0]] == (typo + 1, text[typo].index("Suport") + 1)
    assert all(p.severity == "error" for p in problems)
    assert requests == 1  # one batch: the tree and ten chat cards


async def test_a_clean_file_passes_and_a_broken_one_exits_1(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules.yaml", RULES[:1])
    async with open_harness(tmp_path) as h:
        env = runtime(h)
        assert await run_check(env, load_rules(rules)) == 0
        assert isinstance(env.out, io.StringIO)
        assert "portal: OK: 1 chats and the department names checked in 1 requests" in (
            env.out.getvalue()
        )
        broken = runtime(h)
        assert await run_check(broken, load_rules(write_rules(rules, RULES[:2]))) == 1
        assert isinstance(broken.out, io.StringIO)
        out = broken.out.getvalue().splitlines()
        text = rules.read_text().splitlines()
        entry = text.index("  - 107") + 1
        assert out[0].startswith(f"{rules}:{entry}:5: rule 'secret': chat 107 does not exist")
        assert out[-1].startswith(f"{rules}: portal: 1 error(s)")
