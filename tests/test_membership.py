"""Membership executors against the fake portal (in-process over ASGI), with the real client.

Jobs are handed to the executors directly, the way the worker would after a claim; what the
executors return is checked here, what the worker does with it in tests/test_worker.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.errors import PortalWideError
from bot.executor import WorkContext
from bot.jobs import ADD_TO_CHAT, RESOLVE_USER, ChatAdd, Job, NewJob
from bot.membership import GROUPS_PER_BATCH, add_to_chats, resolve_users
from bot.outcomes import Dead, Done, Retry
from bot.sandbox import Chat
from bot.sandbox.company import ANNOUNCEMENTS, ENGINEERING, MARKETING, SALES_ALL_HANDS
from tests.harness import Harness, open_harness

pytestmark = pytest.mark.anyio

LATENCY = "autojoin_event_to_membership_seconds_count"


@asynccontextmanager
async def portal_and_ctx(tmp_path: Path) -> AsyncIterator[tuple[Harness, WorkContext]]:
    async with open_harness(tmp_path) as h:
        assert h.services.worker is not None
        yield h, h.services.worker.ctx


def as_job(new: NewJob, job_id: int, created_at: float = 0.0) -> Job:
    """The job as a claim returns it (its payload went through JSON)."""
    payload = json.loads(json.dumps(dict(new.payload)))
    return Job(
        job_id, new.kind, payload, "running", 1, created_at, created_at, created_at,
        new.dedupe_key, new.event_key, new.group,
    )  # fmt: skip


def adds(*changes: ChatAdd) -> list[Job]:
    return [as_job(c.to_job("t", "ev-1"), i) for i, c in enumerate(changes, start=1)]


# -- add_to_chats ----------------------------------------------------------------
async def test_one_request_per_chat_group_tells_added_from_already_member(tmp_path: Path) -> None:
    async with portal_and_ctx(tmp_path) as (h, ctx):
        accepted = h.clock() - 3.0
        jobs = adds(
            ChatAdd(SALES_ALL_HANDS, 4, False, ("sales",), ("in Sales DACH",), accepted),
            ChatAdd(SALES_ALL_HANDS, 3, False, ("sales",)),  # already a member
            ChatAdd(SALES_ALL_HANDS, 5, False, ("sales", "dach")),
            ChatAdd(MARKETING, 7, True, ("marketing",)),
        )
        before = h.portal.http_requests
        results = await add_to_chats(jobs, ctx)
        assert h.portal.http_requests - before == 1  # both chats: list, add, list in one batch
        assert {4, 5} <= h.portal.chat_members(SALES_ALL_HANDS)
        assert h.portal.history_hidden(MARKETING, 7) is True
        outcomes = {}
        for job in jobs:
            result = results[job.id]
            assert isinstance(result, Done)
            [entry] = result.audit
            assert (entry.job_id, entry.event_key, entry.at) == (job.id, "ev-1", h.clock())
            outcomes[job.id] = (entry.outcome, result.ledger)
        assert outcomes == {
            1: ("added", (("sales", SALES_ALL_HANDS, 4),)),
            2: ("already_member", ()),
            3: ("added", (("sales", SALES_ALL_HANDS, 5), ("dach", SALES_ALL_HANDS, 5))),
            4: ("added", (("marketing", MARKETING, 7),)),
        }
        # only the add that knows when its event arrived is measured
        assert ctx.metrics.registry.get_sample_value(LATENCY) == 1


async def test_a_silently_ignored_add_is_reported_as_dropped(tmp_path: Path) -> None:
    async with portal_and_ctx(tmp_path) as (h, ctx):
        [job] = adds(ChatAdd(MARKETING, 11, False, ("marketing",)))  # dismissed: not added
        result = (await add_to_chats([job], ctx))[job.id]
        assert 11 not in h.portal.chat_members(MARKETING)
        assert isinstance(result, Done)
        assert ([e.outcome for e in result.audit], result.ledger) == (["dropped"], ())


async def test_a_refused_chat_kills_only_its_own_jobs_with_an_audit(tmp_path: Path) -> None:
    async with portal_and_ctx(tmp_path) as (h, ctx):
        jobs = adds(
            ChatAdd(ANNOUNCEMENTS, 12, False, ("news",)),
            ChatAdd(ENGINEERING, 8, False, ("eng",)),
        )
        results = await add_to_chats(jobs, ctx)
        refused, fine = results[1], results[2]
        assert isinstance(refused, Dead)
        assert refused.code == "ACCESS_ERROR"
        assert "remove it from rules.yaml" in refused.error
        assert [(e.outcome, e.code, e.job_id) for e in refused.audit] == [
            ("dead", "ACCESS_ERROR", 1)
        ]
        assert isinstance(fine, Done)
        assert 8 in h.portal.chat_members(ENGINEERING)


async def test_a_transient_failure_of_one_chat_retries_only_that_chat(tmp_path: Path) -> None:
    async with portal_and_ctx(tmp_path) as (h, ctx):
        h.portal.fail_next("im.chat.user.add", "INTERNAL_SERVER_ERROR")
        jobs = adds(ChatAdd(MARKETING, 7, False), ChatAdd(ENGINEERING, 8, False))
        results = await add_to_chats(jobs, ctx)
        assert isinstance(results[1], Retry)
        assert results[1].code == "INTERNAL_SERVER_ERROR"
        assert isinstance(results[2], Done)


async def test_a_failed_request_retries_every_job_in_it(tmp_path: Path) -> None:
    async with portal_and_ctx(tmp_path) as (h, ctx):
        h.portal.fail_next("batch", "QUERY_LIMIT_EXCEEDED")
        jobs = adds(ChatAdd(MARKETING, 7, False), ChatAdd(ENGINEERING, 8, False))
        results = await add_to_chats(jobs, ctx)
        assert {type(r) for r in results.values()} == {Retry}
        assert {r.code for r in results.values() if isinstance(r, Retry)} == {
            "QUERY_LIMIT_EXCEEDED"
        }
        assert 7 not in h.portal.chat_members(MARKETING)


async def test_a_revoked_webhook_is_raised_for_the_worker_to_pause(tmp_path: Path) -> None:
    async with portal_and_ctx(tmp_path) as (h, ctx):
        h.portal.revoke_webhook()
        with pytest.raises(PortalWideError):
            await add_to_chats(adds(ChatAdd(MARKETING, 7, False)), ctx)


async def test_a_member_list_without_the_webhook_user_is_unreadable(tmp_path: Path) -> None:
    async with portal_and_ctx(tmp_path) as (h, ctx):
        h.portal.fail_next("im.chat.user.list", "INTERNAL_SERVER_ERROR")
        [job] = adds(ChatAdd(MARKETING, 7, False))
        result = (await add_to_chats([job], ctx))[job.id]
        assert result == Retry(
            "MEMBER_LIST_UNREADABLE",
            f"chat {MARKETING}: the member list does not include the webhook user",
        )


async def test_many_chats_are_split_into_batches_of_whole_groups(tmp_path: Path) -> None:
    async with portal_and_ctx(tmp_path) as (h, ctx):
        first = 200
        for n in range(GROUPS_PER_BATCH + 1):
            h.portal.state.add_chat(Chat(first + n, f"chat {n}", owner=1, members={1}))
        changes = [ChatAdd(first + n, 2 + n % 2, False) for n in range(GROUPS_PER_BATCH + 1)]
        results = await add_to_chats(adds(*changes), ctx)
        assert len(h.portal.calls_to("batch")) == 2
        assert all(isinstance(r, Done) for r in results.values())
        assert all(
            2 + n % 2 in h.portal.chat_members(first + n) for n in range(GROUPS_PER_BATCH + 1)
        )


# -- resolve_users -----------------------------------------------------------------
def resolve(user_id: int, departments: list[int], **extra: object) -> NewJob:
    payload = {"user_id": user_id, "departments": departments, "name": "x", **extra}
    return NewJob(RESOLVE_USER, payload, dedupe_key=f"user:{user_id}:resolve", event_key="ev-9")


async def test_departments_become_one_add_per_granted_chat(tmp_path: Path) -> None:
    async with portal_and_ctx(tmp_path) as (_, ctx):
        platform = as_job(resolve(9, [8]), 1, created_at=123.0)  # Platform, under Backend
        stranger = as_job(resolve(10, [9]), 2)  # Support: no department rule
        results = await resolve_users([platform, stranger], ctx)
        granted = results[1]
        assert isinstance(granted, Done)
        found = {ChatAdd.from_job(as_job(f, 0)) for f in granted.followups}
        assert {(a.chat_id, a.user_id, a.rules) for a in found} == {
            (104, 9, ("engineering",)),
            (105, 9, ("backend-guild",)),
        }
        assert {a.accepted_at for a in found} == {123.0}  # the event's arrival, for latency
        assert {(f.kind, f.event_key) for f in granted.followups} == {(ADD_TO_CHAT, "ev-9")}
        assert {f.dedupe_key for f in granted.followups} == {"ev-9:add:104:9", "ev-9:add:105:9"}
        assert results[2] == Done()


async def test_accepted_at_in_the_payload_wins_over_created_at(tmp_path: Path) -> None:
    async with portal_and_ctx(tmp_path) as (_, ctx):
        job = as_job(resolve(8, [7], accepted_at=50.5), 1, created_at=99.0)
        result = (await resolve_users([job], ctx))[1]
        assert isinstance(result, Done)
        assert {ChatAdd.from_job(as_job(f, 0)).accepted_at for f in result.followups} == {50.5}


async def test_an_unreadable_tree_retries_every_resolve(tmp_path: Path) -> None:
    async with portal_and_ctx(tmp_path) as (h, ctx):
        h.portal.fail_next("department.get", "INTERNAL_SERVER_ERROR", times=5)
        jobs = [as_job(resolve(8, [7]), 1), as_job(resolve(9, [8]), 2)]
        results = await resolve_users(jobs, ctx)
        assert {type(r) for r in results.values()} == {Retry}
