"""`build_explanation` is pure: the bot's `/why` feeds it without touching the portal."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.departments import DepartmentTree
from bot.jobs import AuditEntry, Job
from bot.reconcile.explain import build_explanation, explain_user, render_explanation
from bot.reconcile.ledger import Ledger
from bot.reconcile.model import Person
from bot.reconcile.session import open_client
from bot.rules import CompiledRules, parse_rules
from tests.harness import open_harness
from tests.reconcile.kit import runtime, write_rules
from tests.reconcile.test_semantics import RULES as SAMPLE_RULES

RULES = """
version: 1
defaults: {hide_history: false}
rules:
  - {name: platform, departments: [3], chats: [11], mode: enforce}
  - {name: everyone, departments: [1], chats: [12]}
  - {name: ask, keywords: [join ops], only_departments: [2], chats: [13]}
"""


def test_an_explanation_from_plain_values() -> None:
    tree = DepartmentTree({1: "Corp", 2: "Eng", 3: "Platform"}, {2: 1, 3: 2})
    compiled = CompiledRules.build(parse_rules(RULES), tree)
    person = Person(5, "Ana Lee", True, (3,))
    ledger = Ledger.from_rows([("everyone", 12, 5), ("old", 14, 5)])
    job = Job(
        9,
        "chat.add",
        {"chat_id": 11, "user_id": 5},
        "dead",
        3,
        0.0,
        0.0,
        0.0,
        last_code="ACCESS_DENIED_EXTEND",
        last_error="add the webhook user",
    )
    entry = AuditEntry(0.0, None, "everyone", 12, 5, False, "added")
    explanation = build_explanation(
        5,
        person,
        tree,
        compiled,
        {11: frozenset({1}), 12: frozenset({1}), 14: frozenset({1, 5})},
        {},
        ledger,
        [job],
        [entry],
        webhook_user=1,
    )
    assert [(c.chat_id, c.status) for c in explanation.chats] == [
        (11, "not a member: the next sync adds them"),
        (12, "not a member: left on their own, not added again (join_once)"),
        (14, "member; no rule gives it now, so it is kept"),
    ]
    assert [c.state for c in explanation.chats] == ["will_add", "kept_out", "kept"]
    assert [r.name for r in explanation.rules] == ["platform", "everyone"]
    assert [r.name for r in explanation.keyword_rules] == ["ask"]
    assert explanation.departments[0].chain == ("Platform (3)", "Eng (2)", "Corp (1)")
    text = render_explanation(explanation)
    assert "Keyword rules open to them: ask (chat 13)" in text
    assert "  job 9 chat.add chat 11: dead [ACCESS_DENIED_EXTEND] add the webhook user" in text
    assert explanation.to_json()["jobs"][0]["code"] == "ACCESS_DENIED_EXTEND"


@pytest.mark.anyio
async def test_with_a_cached_tree_it_takes_two_requests(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", SAMPLE_RULES)
    async with open_harness(tmp_path) as h, open_client(runtime(h)) as client:
        tree = DepartmentTree.from_rows(await client.call_list("department.get", {}))
        before = h.portal.http_requests
        rules = h.services.rules.current
        explanation = await explain_user(client, h.services.store, rules, 8, tree=tree)
        assert h.portal.http_requests - before == 2  # the user, then the member lists
    assert [(c.chat_id, c.status) for c in explanation.chats] == [
        (104, "not a member: the next sync adds them")
    ]
