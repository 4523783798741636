"""join_once and enforce, on the sample company (Engineering 6 > Backend 7 > Platform 8).

Chat 104 Engineering: members {1, 7}, the webhook user 1 is a manager (may remove).
Chat 101 Sales all-hands: members {1, 2, 3}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.jobs import REMOVE_FROM_CHAT, NewJob
from bot.sandbox.events import APP_TOKEN, user_add
from tests.harness import Harness, open_harness
from tests.reconcile.kit import cli, members, write_rules

pytestmark = pytest.mark.anyio

ENGINEERING, SALES = 104, 101
RULES: list[dict[str, Any]] = [
    {"name": "engineering", "departments": [6], "chats": [ENGINEERING], "mode": "enforce"},
    {"name": "sales", "departments": [2], "chats": [SALES]},
]


async def synced(h: Harness) -> None:
    run = await cli(h, "sync", "--yes")
    assert run.code == 0, run.out + run.err


async def test_first_sync_adds_the_missing_and_records_who_was_there(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        plan = (await cli(h, "plan", "--format", "json")).json()
        adds = {c["chat_id"]: [a["user_id"] for a in c["add"]] for c in plan["chats"]}
        assert adds == {SALES: [4, 5], ENGINEERING: [8, 9]}  # 11 is dismissed
        assert plan["totals"]["adopt"] == 3  # 2 and 3 in Sales, 7 in Engineering
        await synced(h)
        assert members(h, ENGINEERING) == {1, 7, 8, 9}
        assert members(h, SALES) == {1, 2, 3, 4, 5}
        ledger = {(r, c, u) for r, c, u, _ in await h.services.store.ledger()}
        assert ("engineering", ENGINEERING, 8) in ledger  # added by the rule
        assert ("engineering", -ENGINEERING, 7) in ledger  # was already there
        outcomes = {(e.chat_id, e.user_id, e.outcome) for e in await h.services.store.history()}
        assert (ENGINEERING, 9, "added") in outcomes


async def test_enforce_removes_after_a_transfer_and_a_dismissal(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        await synced(h)
        h.portal.upsert_user(9, departments=[9])  # Platform → Support
        h.portal.upsert_user(8, active=False)  # dismissed
        plan = (await cli(h, "plan", "--format", "json")).json()
        chat = next(c for c in plan["chats"] if c["chat_id"] == ENGINEERING)
        removed = {r["user_id"]: r["reasons"][0] for r in chat["remove"]}
        assert removed == {
            8: "not an active user any more",
            9: "no active rule gives this chat to their department Support (9)",
        }
        await synced(h)
        assert members(h, ENGINEERING) == {1, 7}
        rows = {(c, u) for _, c, u, _ in await h.services.store.ledger(ENGINEERING)}
        assert (ENGINEERING, 8) not in rows
        assert (ENGINEERING, 9) not in rows
        removed_audit = [e for e in await h.services.store.history() if e.outcome == "removed"]
        assert {e.user_id for e in removed_audit} == {8, 9}
        assert (await cli(h, "plan", "--detailed-exitcode")).code == 0


async def test_someone_who_was_there_first_or_was_added_by_hand_is_never_removed(
    tmp_path: Path,
) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        h.portal.state.chats[ENGINEERING].members.add(10)  # Jonas of Support, added by hand
        await synced(h)
        h.portal.upsert_user(7, departments=[9])  # Grace was in the chat before any rule
        h.portal.upsert_user(10, active=False)
        plan = await cli(h, "plan", "--detailed-exitcode")
        assert plan.code == 0, plan.out
        await synced(h)
        assert {7, 10} <= members(h, ENGINEERING)


async def test_join_once_does_not_add_back_someone_who_left(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        await synced(h)
        h.portal.state.chats[SALES].members.discard(4)  # Dieter leaves Sales all-hands
        h.portal.state.chats[SALES].members.discard(2)  # Boris too; he was there before
        h.portal.state.chats[ENGINEERING].members.discard(9)  # Ines leaves Engineering
        plan = (await cli(h, "plan", "--format", "json")).json()
        by_chat = {c["chat_id"]: c for c in plan["chats"]}
        assert by_chat[SALES]["add"] == []
        assert by_chat[SALES]["kept_out"] == [2, 4]
        assert [a["user_id"] for a in by_chat[ENGINEERING]["add"]] == [9]  # enforce: back in
        await synced(h)
        assert 4 not in members(h, SALES)
        assert 2 not in members(h, SALES)
        assert 9 in members(h, ENGINEERING)


async def test_a_new_hire_added_by_the_event_counts_as_handled(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        await synced(h)
        hire = h.portal.upsert_user(30, name="Mia", departments=[4])
        await h.post(user_add(hire, token=APP_TOKEN))
        await h.drain()
        assert 30 in members(h, SALES)
        h.portal.state.chats[SALES].members.discard(30)
        assert (await cli(h, "plan", "--detailed-exitcode")).code == 0


async def test_disabling_or_deleting_an_enforce_rule_removes_nobody(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        await synced(h)
        h.portal.upsert_user(8, active=False)
        h.portal.upsert_user(9, departments=[9])
        disabled = [dict(RULES[0], enabled=False), RULES[1]]
        write_rules(rules, disabled)
        assert (await cli(h, "plan", "--detailed-exitcode")).code == 0
        write_rules(rules, RULES[1:])
        assert (await cli(h, "plan", "--detailed-exitcode")).code == 0
        as_join_once = [dict(RULES[0], mode="join_once"), RULES[1]]
        write_rules(rules, as_join_once)
        assert (await cli(h, "plan", "--detailed-exitcode")).code == 0
        write_rules(rules, RULES)
        assert (await cli(h, "plan", "--detailed-exitcode")).code == 2  # enforce again: both


async def test_the_ledger_is_seeded_from_the_audit_once(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        hire = h.portal.upsert_user(31, name="Ola", departments=[7])
        await h.post(user_add(hire, token=APP_TOKEN))
        await h.drain()
        store = h.services.store
        assert await store.ledger_remove("engineering", ENGINEERING, 31)  # as before the ledger
        h.portal.upsert_user(31, departments=[9])
        plan = (await cli(h, "plan", "--format", "json")).json()
        removals = [r["user_id"] for c in plan["chats"] for r in c["remove"]]
        assert removals == [31]  # the audit's `added` row speaks for the rule
        assert await store.ledger(ENGINEERING) == []  # plan only reads
        await synced(h)
        assert 31 not in members(h, ENGINEERING)


async def test_removals_go_fifty_to_a_request_and_a_non_member_counts_as_done(
    tmp_path: Path,
) -> None:
    async with open_harness(tmp_path) as h:
        chat = h.portal.state.chats[ENGINEERING]
        people = range(2000, 2120)
        for uid in people:
            h.portal.upsert_user(uid, name=f"P{uid}", departments=[7])
        chat.members.update(people)
        chat.members.discard(2000)  # already gone: USER_NOT_FOUND
        await h.services.store.ledger_add([("engineering", ENGINEERING, 2001)], h.clock())
        jobs = [
            NewJob(
                REMOVE_FROM_CHAT,
                {
                    "chat_id": ENGINEERING,
                    "user_id": uid,
                    "rules": ["engineering"],
                    "reasons": ["test"],
                    "forget": [["engineering", ENGINEERING]],
                },
                dedupe_key=f"t:remove:{uid}",
            )
            for uid in people
        ]
        await h.services.store.enqueue(jobs, h.clock())
        before = h.portal.http_requests
        await h.drain()
        assert h.portal.http_requests - before == 3  # 50 + 50 + 20
        assert not chat.members & set(people)
        audit = {e.user_id: e for e in await h.services.store.history(limit=500)}
        assert {e.outcome for e in audit.values()} == {"removed"}
        assert audit[2000].code == "USER_NOT_FOUND"
        assert audit[2001].code is None
        assert await h.services.store.ledger(ENGINEERING) == []
        assert (await h.services.store.counts())["done"] == len(people)
