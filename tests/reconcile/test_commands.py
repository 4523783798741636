"""plan / sync / explain as an operator meets them: exit codes, output, confirmation."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.errors import NothingDone
from bot.reconcile.portal_check import run_check
from bot.rules import load_rules
from tests.harness import open_harness
from tests.reconcile.kit import TtyInput, cli, members, runtime, write_rules
from tests.reconcile.test_semantics import ENGINEERING, RULES, SALES, synced

pytestmark = pytest.mark.anyio

SECRET_PROJECT = 107  # the webhook user is not a member: its member list reads as []


async def test_detailed_exitcode_tells_no_changes_pending_and_error_apart(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        assert (await cli(h, "plan")).code == 0  # without the flag: 0 on success
        assert (await cli(h, "plan", "--detailed-exitcode")).code == 2
        await synced(h)
        assert (await cli(h, "plan", "--detailed-exitcode")).code == 0
        write_rules(rules, [*RULES, {"name": "secret", "departments": [8], "chats": [107]}])
        assert (await cli(h, "plan", "--detailed-exitcode")).code == 1


async def test_an_unreadable_member_list_is_an_error_never_an_empty_chat(tmp_path: Path) -> None:
    write_rules(
        tmp_path / "rules.yaml",
        [*RULES, {"name": "secret", "departments": [7], "chats": [SECRET_PROJECT]}],
    )
    async with open_harness(tmp_path) as h:
        h.portal.fail_next("im.chat.user.list", "ACCESS_ERROR")
        run = await cli(h, "plan", "--format", "json")
        assert run.code == 1
        body = run.json()
        assert [(e["chat_id"], e["code"]) for e in body["errors"]] == [
            (SALES, "ACCESS_ERROR"),  # the first member list read failed outright
            (SECRET_PROJECT, "MEMBER_LIST_UNREADABLE"),
        ]
        chats = {c["chat_id"]: c for c in body["chats"]}
        assert chats[SECRET_PROJECT]["add"] == []
        assert chats[SECRET_PROJECT]["members"] is None
        text = await cli(h, "plan")
        # the same diagnosis as `check --portal`: the portal cannot tell "no such chat" from
        # "a closed chat the webhook user is not in", and the message says both
        assert (
            "error: chat 107 does not exist or the webhook user cannot see it (ACCESS_ERROR); "
            "check the ID (`autojoin chats` lists the chats it can see) and add the webhook "
            "user to the chat"
        ) in text.out.splitlines()
        assert body["errors"][1]["message"].startswith("chat 107 does not exist")
        applied = await cli(h, "sync", "--yes")
        assert applied.code == 1  # the readable chats are applied; the run still fails
        assert 8 in members(h, ENGINEERING)
        assert 8 not in members(h, SECRET_PROJECT)


async def test_plan_and_check_portal_give_one_diagnosis_for_a_chat_that_does_not_exist(
    tmp_path: Path,
) -> None:
    rules = write_rules(
        tmp_path / "rules.yaml", [{"name": "ghost", "departments": [2], "chats": [999]}]
    )
    async with open_harness(tmp_path) as h:
        plan = await cli(h, "plan")
        assert plan.code == 1
        errors = [line.removeprefix("error: ") for line in plan.out.splitlines() if "999" in line]
        env = runtime(h)
        assert await run_check(env, load_rules(rules)) == 1
        assert isinstance(env.out, io.StringIO)
        checked = env.out.getvalue().splitlines()[0]
        assert errors == [checked.split("rule 'ghost': ", 1)[1]]
        assert "does not exist or the webhook user cannot see it" in errors[0]


async def test_plan_and_sync_name_the_chats(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        title = h.portal.state.chats[ENGINEERING].title
        plan = await cli(h, "plan")
        assert f"chat {ENGINEERING} “{title}”: +" in plan.out
        body = (await cli(h, "plan", "--format", "json")).json()
        assert {c["chat_id"]: c["title"] for c in body["chats"]}[ENGINEERING] == title
        applied = await cli(h, "sync", "--yes")
        assert f"chat {ENGINEERING} “{title}”: " in applied.out


async def test_plan_json_shape(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        body = (await cli(h, "plan", "--format", "json")).json()
        assert set(body) == {
            "rules",
            "people",
            "requests",
            "title_requests",
            "chats",
            "totals",
            "errors",
            "warnings",
        }
        assert set(body["rules"]) == {"path", "sha256"}
        assert body["totals"] == {
            "add": 4,
            "remove": 0,
            "kept_out": 0,
            "adopt": 3,
            "chats": 2,
            "chats_changed": 2,
        }
        sales = next(c for c in body["chats"] if c["chat_id"] == SALES)
        assert sales["members"] == 3
        assert sales["counts"] == {"add": 2, "remove": 0, "kept_out": 0}
        assert sales["add"][0] == {
            "user_id": 4,
            "name": "Dieter Dorn",
            "rules": ["sales"],
            "reasons": [
                "department Sales DACH (4) is under Sales (2), named in rule sales",
            ],
            "hide_history": False,
        }


async def test_plan_text_lists_people_per_chat_with_totals(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        run = await cli(h, "plan", "--limit", "1")
        lines = run.out.splitlines()
        assert "chat 101 “Sales all-hands”: +2" in lines
        assert any(line.startswith("  + 4 Dieter Dorn  [sales]") for line in lines)
        assert "  … and 1 more (--limit 0 shows all)" in lines
        assert lines[-1] == "Totals: 4 to add, 0 to remove in 2 of 2 chats."
        assert "plan: reading the portal: " in run.err  # progress, plain lines off a terminal


async def test_plan_with_rules_previews_an_edit_before_it_is_deployed(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    edited = write_rules(
        tmp_path / "edited.yaml", [*RULES, {"name": "support", "departments": [9], "chats": [103]}]
    )
    async with open_harness(tmp_path) as h:
        await synced(h)
        preview = (await cli(h, "plan", "--rules", str(edited), "--format", "json")).json()
        assert preview["rules"]["path"] == str(edited)
        assert [(c["chat_id"], [a["user_id"] for a in c["add"]]) for c in preview["chats"]] == [
            (SALES, []),
            (103, [10]),
            (ENGINEERING, []),
        ]
        assert (await cli(h, "plan", "--detailed-exitcode")).code == 0  # deployed file: in line
        assert 10 not in members(h, 103)


async def test_sync_asks_first_and_refuses_without_a_terminal(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path) as h:
        refused = await cli(h, "sync")
        assert refused.code == 1
        assert "pass --yes" in refused.err
        declined = await cli(h, "sync", stdin=TtyInput("n\n"))
        assert declined.code == 1
        assert "Apply 4 additions and 0 removals? [y/N]" in declined.err
        assert await h.services.store.jobs(limit=10) == []
        accepted = await cli(h, "sync", stdin=TtyInput("y\n"))
        assert accepted.code == 0
        assert "chat 101 “Sales all-hands”: 2 added" in accepted.out
        assert accepted.out.splitlines()[-1].startswith("Done: 4 added")
        assert members(h, SALES) == {1, 2, 3, 4, 5}


async def test_sync_exits_1_when_a_job_goes_dead(tmp_path: Path) -> None:
    rules = [{"name": "leads", "departments": [6], "chats": [108]}]  # adding needs the owner
    write_rules(tmp_path / "rules.yaml", rules)
    async with open_harness(tmp_path) as h:
        run = await cli(h, "sync", "--yes")
        assert run.code == 1
        assert "chat 108 “Team leads”: 2 dead" in run.out
        dead = await h.services.store.jobs(("dead",), limit=10)
        assert {j.last_code for j in dead} == {"ACCESS_DENIED_EXTEND"}


async def test_explain_tells_why(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", [*RULES, dict(RULES[1], name="sales-emea", chats=[102])])
    async with open_harness(tmp_path) as h:
        await synced(h)
        h.portal.state.chats[SALES].members.discard(4)
        run = await cli(h, "explain", "--user", "4")
        assert run.code == 0
        assert run.out.splitlines() == [
            "User 4 Dieter Dorn (active)",
            "Departments:",
            "  Example Corp / Sales / Sales EMEA / Sales DACH   "
            "[Sales DACH (4) ← Sales EMEA (3) ← Sales (2) ← Example Corp (1)]",
            "Rules that match:",
            "  sales (join_once) → chat 101 “Sales all-hands”: department Sales DACH (4) is "
            "under Sales (2), named in rule sales",
            "  sales-emea (join_once) → chat 102 “EMEA deals”: department Sales DACH (4) is "
            "under Sales (2), named in rule sales-emea",
            "Chats:",
            "  chat 101 “Sales all-hands”: not a member: left on their own, not added again "
            "(join_once)  [sales]  ledger: added by sales",
            "  chat 102 “EMEA deals”: member  [sales-emea]  ledger: added by sales-emea",
            "Recent history:",
            *[line for line in run.out.splitlines() if "  added  " in line],
        ]
        assert len([line for line in run.out.splitlines() if "  added  " in line]) == 2
        body = (await cli(h, "explain", "--user", "4", "--format", "json")).json()
        assert body["active"] is True
        assert [c["status"] for c in body["chats"]][1] == "member"


async def test_explain_shows_pending_and_dead_work(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", [{"name": "leads", "departments": [7], "chats": [108]}])
    async with open_harness(tmp_path) as h:
        await cli(h, "sync", "--yes")
        run = await cli(h, "explain", "--user", "8")
        assert "  chat 108 “Team leads”: not a member: the next sync adds them  [leads]" in run.out
        assert any(
            line.startswith("  job ") and "chat.add chat 108: dead [ACCESS_DENIED_EXTEND]" in line
            for line in run.out.splitlines()
        )
        with pytest.raises(NothingDone, match="user 999 does not exist on the portal"):
            await cli(h, "explain", "--user", "999")
        h.portal.state.users.pop(8)  # gone from the portal, but the queue remembers them
        gone = await cli(h, "explain", "--user", "8")
        assert gone.code == 0
        assert gone.out.splitlines()[0] == "User 8 (unknown to the portal)"


async def test_sync_refuses_a_mass_removal_unless_allowed(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yaml", RULES)
    async with open_harness(tmp_path, AUTOJOIN_MAX_REMOVALS="1") as h:
        await synced(h)
        h.portal.upsert_user(8, active=False)
        h.portal.upsert_user(9, active=False)
        jobs_before = len(await h.services.store.jobs(limit=100))
        for argv in (("sync", "--yes"), ("sync", "--yes", "--allow-removals", "1")):
            refused = await cli(h, *argv)
            assert refused.code == 1
            assert "refusing to remove 2 people" in refused.err
        assert len(await h.services.store.jobs(limit=100)) == jobs_before
        assert {8, 9} <= members(h, ENGINEERING)
        assert (await cli(h, "sync", "--yes", "--allow-removals", "2")).code == 0
        assert not {8, 9} & members(h, ENGINEERING)


async def test_plan_with_a_rule_disabled_by_an_unknown_department_name_exits_1(
    tmp_path: Path,
) -> None:
    write_rules(tmp_path / "rules.yaml", [{"name": "x", "departments": ["2"], "chats": [101]}])
    async with open_harness(tmp_path) as h:
        run = await cli(h, "plan")
        assert run.code == 1, "the plan leaves a rule out: that is not success"
        assert "no department is named '2'" in run.err
        assert "Department ID 2 is Sales (2)" in run.err
