"""Portal failures end to end: what is retried, what goes dead, what pauses the whole queue."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.jobs import ADD_TO_CHAT, Job, NewJob
from bot.rest.errors import hint_for
from bot.sandbox import Chat
from bot.sandbox.company import (
    BACKEND_GUILD,
    EMEA_DEALS,
    ENGINEERING,
    GENERAL_CHAT_ID,
    SALES_ALL_HANDS,
    SECRET_PROJECT,
    WEBHOOK_USER_ID,
)
from bot.sandbox.events import APP_TOKEN, user_add
from bot.worker import PauseState, Worker
from tests.harness import Harness, open_harness

pytestmark = pytest.mark.anyio

# What rules.yaml grants each department (subdepartments included).
GRANTS = {
    3: [SALES_ALL_HANDS, EMEA_DEALS],
    4: [SALES_ALL_HANDS, EMEA_DEALS],
    7: [ENGINEERING, BACKEND_GUILD],
    8: [ENGINEERING, BACKEND_GUILD],
}
HIDDEN = {EMEA_DEALS}


async def hire(h: Harness, user_id: int, department: int) -> list[tuple[int, int]]:
    user = h.portal.upsert_user(user_id, name=f"U{user_id}", departments=[department])
    response = await h.post(user_add(user, token=APP_TOKEN))
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    return [(chat, user_id) for chat in GRANTS.get(department, [])]


def worker_of(h: Harness) -> Worker:
    assert h.services.worker is not None
    return h.services.worker


async def completed_pairs(h: Harness) -> Counter[tuple[int, int]]:
    audit = await h.services.store.history(limit=10_000)
    return Counter(
        (e.chat_id, e.user_id) for e in audit if e.outcome in {"added", "already_member"}
    )


async def counts(h: Harness) -> dict[str, int]:
    return await h.services.store.counts()


async def health(h: Harness) -> dict[str, Any]:
    response = await h.client.get("/healthz")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_a_portal_failing_30_percent_of_calls_still_adds_everyone_exactly_once(
    tmp_path: Path,
) -> None:
    """Three calls in ten answer 500 (batches and the commands inside them alike); every job
    completes and every (chat, user) pair is completed once, with its history setting."""
    async with open_harness(tmp_path) as h:
        h.portal.set_failure_rate("*", 0.3, seed=11)
        pairs: list[tuple[int, int]] = []
        for n, department in enumerate([4, 7, 3, 8, 4, 7, 3, 8, 4, 7, 4, 8]):
            pairs += await hire(h, 300 + n, department)
        await h.drain(max_rounds=500)
        failed = [c for c in h.portal.state.calls if c.status == 500]
        assert len(failed) >= 5, "the failure rate did not bite; the test proves nothing"
        assert await completed_pairs(h) == Counter(pairs)
        for chat, user in pairs:
            assert user in h.portal.chat_members(chat)
            assert h.portal.history_hidden(chat, user) is (chat in HIDDEN)
        assert (await counts(h))["dead"] == 0
        assert (await counts(h))["done"] == 12 + len(pairs)


async def test_only_the_failing_method_matters_for_a_per_method_failure_rate(
    tmp_path: Path,
) -> None:
    async with open_harness(tmp_path) as h:
        h.portal.set_failure_rate("im.chat.user.add", 0.3, seed=3)
        pairs = [p for n in range(8) for p in await hire(h, 400 + n, 7)]
        await h.drain(max_rounds=500)
        errors = {c.method for c in h.portal.state.calls if c.status == 500}
        assert errors == {"im.chat.user.add"}
        assert await completed_pairs(h) == Counter(pairs)


def expected_delay(attempts: int, base: float, cap: float) -> float:
    return min(cap, base * 2.0 ** (attempts - 1))


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"code": "QUERY_LIMIT_EXCEEDED"}, "QUERY_LIMIT_EXCEEDED"),
        ({"code": "BAD_GATEWAY", "status": 502, "html": True}, "HTTP_502"),
        ({"code": "INTERNAL_SERVER_ERROR"}, "INTERNAL_SERVER_ERROR"),
    ],
    ids=["query-limit", "html-502", "internal-error"],
)
async def test_transient_errors_back_off_exponentially_up_to_the_cap(
    tmp_path: Path, fault: dict[str, Any], code: str
) -> None:
    async with open_harness(tmp_path, AUTOJOIN_RETRY_CAP="20") as h:
        worker = worker_of(h)
        assert worker.config.retry_cap == 20.0
        pairs = await hire(h, 500, 4)
        assert await worker.step() == 1  # the department lookup; the adds are queued
        failures = 8
        h.portal.fail_next("batch", times=failures, **fault)
        delays: list[list[float]] = []
        for attempt in range(1, failures + 1):
            assert await worker.step() == len(pairs)
            waiting = await h.services.store.jobs(("pending",))
            assert sorted((j.last_code, j.attempts) for j in waiting) == [(code, attempt)] * len(
                pairs
            )
            delays.append([j.run_after - h.clock() for j in waiting])
            # A claim now finds nothing (and so takes nothing): none is due before its
            # backoff ends. Asked of the store: `step()` would first wait out the bucket.
            early = await h.services.store.claim("probe", h.clock(), 60, 10_000)
            assert early == [], "nothing is due before its backoff ends"
            h.clock.advance(max(j.run_after for j in waiting) - h.clock())
        for attempt, round_delays in enumerate(delays, start=1):
            raw = expected_delay(attempt, worker.config.retry_base, 20.0)
            for delay in round_delays:
                assert 0.75 * raw <= delay <= min(20.0, 1.25 * raw), (attempt, delays)
        firsts = [min(d) for d in delays]
        assert firsts[0] < firsts[1] < firsts[2] < firsts[3], "the backoff grows"
        assert max(max(d) for d in delays) <= 20.0, "and stops at AUTOJOIN_RETRY_CAP"
        assert await worker.step() == len(pairs)
        assert (await counts(h))["done"] == 1 + len(pairs)
        assert await completed_pairs(h) == Counter(pairs)


def write_rules(tmp_path: Path, chats: dict[str, int]) -> None:
    body = "".join(
        f"  - name: {name}\n    departments: [4]\n    chats: [{chat}]\n"
        for name, chat in chats.items()
    )
    (tmp_path / "rules.yaml").write_text(
        f"version: 1\ndefaults: {{hide_history: false}}\nrules:\n{body}"
    )


TYPO_CHAT = 999
PER_JOB = {
    SECRET_PROJECT: "ACCESS_DENIED_EXTEND",  # the webhook user is not in the chat
    GENERAL_CHAT_ID: "ACCESS_ERROR",  # the company-wide general chat takes no adds
    TYPO_CHAT: "CHAT_ID_EMPTY",  # no such chat
}


def use_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the CLI at the harness's database, with nothing else from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOJOIN_DATABASE_URL", f"sqlite:///{tmp_path / 'autojoin.db'}")


async def test_per_job_errors_go_dead_with_a_hint_and_retry_revives_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each broken chat goes dead with its code and what to fix; the good chat is unaffected;
    after the admin fixes two of them, `autojoin retry --dead` brings those to completion."""
    write_rules(
        tmp_path,
        {"secret": SECRET_PROJECT, "general": GENERAL_CHAT_ID, "typo": TYPO_CHAT, "ok": 101},
    )
    async with open_harness(tmp_path) as h:
        await hire(h, 600, 4)
        await h.drain()
        assert 600 in h.portal.chat_members(SALES_ALL_HANDS)
        dead = {int(j.payload["chat_id"]): j for j in await h.services.store.jobs(("dead",))}
        assert {chat: j.last_code for chat, j in dead.items()} == PER_JOB
        for job in dead.values():
            assert job.last_code is not None
            assert job.last_error == hint_for(job.last_code)
            assert job.attempts == 1, "a per-job error is not retried"
        assert "webhook user" in (dead[SECRET_PROJECT].last_error or "")
        assert "rules.yaml" in (dead[TYPO_CHAT].last_error or "")
        audit = {e.chat_id: (e.outcome, e.code) for e in await h.services.store.history()}
        assert audit == {
            **{chat: ("dead", code) for chat, code in PER_JOB.items()},
            SALES_ALL_HANDS: ("added", None),
        }

        use_database(monkeypatch, tmp_path)
        assert main(["jobs"]) == 0
        listing = capsys.readouterr().out
        for code in PER_JOB.values():
            assert code in listing

        h.portal.state.chats[SECRET_PROJECT].members.add(WEBHOOK_USER_ID)
        h.portal.state.add_chat(Chat(TYPO_CHAT, "Typo fixed", owner=WEBHOOK_USER_ID))
        assert main(["retry", "--dead"]) == 0
        assert capsys.readouterr().out.strip() == "3 job(s) queued again"
        assert (await counts(h))["dead"] == 0
        await h.drain()
        assert 600 in h.portal.chat_members(SECRET_PROJECT)
        assert 600 in h.portal.chat_members(TYPO_CHAT)
        (still,) = await h.services.store.jobs(("dead",))
        assert (still.payload["chat_id"], still.last_code) == (GENERAL_CHAT_ID, "ACCESS_ERROR")

        h.portal.state.chats[GENERAL_CHAT_ID].type = "C"  # say the admin made it a group chat
        assert main(["retry", str(still.id)]) == 0
        assert capsys.readouterr().out.strip() == "1 job(s) queued again"
        await h.drain()
        assert 600 in h.portal.chat_members(GENERAL_CHAT_ID)
        assert (await counts(h))["dead"] == 0


async def advance_to_probe(h: Harness) -> PauseState:
    state = await worker_of(h).pause_state()
    assert state is not None
    h.clock.advance(max(0.0, state.next_probe - h.clock()))
    return state


async def assert_paused_without_cost(h: Harness, code: str) -> None:
    body = await health(h)
    assert body["status"] == "degraded"
    (reason,) = [r for r in body["reasons"] if r["check"] == "portal"]
    assert reason["code"] == code
    assert reason["message"] == hint_for(code)
    jobs = await h.services.store.jobs()
    assert jobs, "the test needs queued work"
    assert all(j.state == "pending" for j in jobs if j.kind == ADD_TO_CHAT or j.attempts == 0)
    assert [j for j in jobs if j.state in {"dead", "running"}] == []
    assert all(j.attempts == 0 for j in jobs if j.state == "pending"), "no attempt is spent"


async def test_a_revoked_webhook_pauses_the_queue_until_it_is_restored(tmp_path: Path) -> None:
    """While the webhook is revoked nothing is spent and nothing dies; /healthz says why;
    probes back off; once the webhook works again the next probe resumes the queue."""
    async with open_harness(tmp_path) as h:
        worker = worker_of(h)
        pairs = await hire(h, 700, 4)
        pairs += await hire(h, 701, 7)
        h.portal.revoke_webhook()
        await worker.run_until_idle()
        await assert_paused_without_cost(h, "INVALID_CREDENTIALS")
        assert "B24_WEBHOOK_URL" in (await health(h))["reasons"][0]["message"]

        probes: list[float] = []
        for _ in range(6):
            before = await advance_to_probe(h)
            await worker.run_until_idle()
            after = await worker.pause_state()
            assert after is not None, "a failed probe keeps the pause"
            probes.append(after.next_probe - h.clock())
            assert after.since == before.since
            await assert_paused_without_cost(h, "INVALID_CREDENTIALS")
        assert probes == sorted(probes)
        assert probes[-1] == worker.config.probe_cap
        user_gets = [c for c in h.portal.calls_to("user.get") if c.error is not None]
        assert len(user_gets) == 6, "each probe is one cheap call"
        assert h.portal.calls_to("im.chat.user.add") == []

        h.portal.restore_webhook()
        await worker.run_until_idle()
        assert (await health(h))["status"] == "degraded", "nothing happens before the probe"
        await advance_to_probe(h)
        await h.drain()
        assert await health(h) == {"status": "ok", "reasons": []}
        assert await completed_pairs(h) == Counter(pairs)
        assert (await counts(h))["dead"] == 0


async def test_a_probe_that_meets_a_transient_error_keeps_the_pause_and_its_reason(
    tmp_path: Path,
) -> None:
    """A probe answered 500 says nothing about the credentials: the queue stays paused and
    /healthz keeps telling the admin what to fix."""
    async with open_harness(tmp_path) as h:
        worker = worker_of(h)
        await hire(h, 720, 4)
        h.portal.revoke_webhook()
        await worker.run_until_idle()
        await assert_paused_without_cost(h, "INVALID_CREDENTIALS")
        h.portal.restore_webhook()
        h.portal.fail_next("user.get", "INTERNAL_SERVER_ERROR")
        await advance_to_probe(h)
        await worker.run_until_idle()
        assert [c.error for c in h.portal.calls_to("user.get")] == ["INTERNAL_SERVER_ERROR"]
        await assert_paused_without_cost(h, "INVALID_CREDENTIALS")
        await advance_to_probe(h)
        await h.drain()
        assert (await health(h))["status"] == "ok"


@pytest.mark.parametrize("code", ["insufficient_scope", "PORTAL_DELETED", "OVERLOAD_LIMIT"])
@pytest.mark.parametrize("where", ["batch", "im.chat.user.add"])
async def test_portal_wide_errors_pause_the_queue(tmp_path: Path, code: str, where: str) -> None:
    """Whether the whole batch or one command inside it says so, the queue pauses unspent."""
    async with open_harness(tmp_path) as h:
        worker = worker_of(h)
        pairs = await hire(h, 800, 7)
        assert await worker.step() == 1  # resolved; the adds are queued
        h.portal.fail_next(where, code)
        await worker.run_until_idle()
        await assert_paused_without_cost(h, code)
        assert h.portal.state.faults == [], "the fault was met"
        await advance_to_probe(h)
        await h.drain()
        assert (await health(h))["status"] == "ok"
        assert await completed_pairs(h) == Counter(pairs)


async def test_a_webhook_without_the_im_scope_pauses_until_the_scope_is_added(
    tmp_path: Path,
) -> None:
    async with open_harness(tmp_path) as h:
        worker = worker_of(h)
        pairs = await hire(h, 810, 4)
        h.portal.set_scopes("user", "department")
        await worker.run_until_idle()
        await assert_paused_without_cost(h, "insufficient_scope")
        h.portal.set_scopes("user", "department", "im", "imbot")
        await advance_to_probe(h)
        await h.drain()
        assert await completed_pairs(h) == Counter(pairs)


async def test_a_job_that_crashes_its_executor_is_retried_and_does_not_stop_the_worker(
    tmp_path: Path,
) -> None:
    """A job the executor cannot even read (here: a chat ID that is not a number) is logged
    with its traceback and retried with backoff; the other work goes on."""
    async with open_harness(tmp_path) as h:
        poison = NewJob(ADD_TO_CHAT, {"chat_id": "not-a-number", "user_id": 5, "hide_history": 0})
        await h.services.store.enqueue([poison], h.clock())
        pairs = await hire(h, 900, 7)
        worker = worker_of(h)
        for _ in range(3):
            await worker.run_until_idle()
            h.clock.advance(1.0)
        jobs: list[Job] = await h.services.store.jobs(("pending",))
        (stuck,) = jobs
        assert stuck.payload["chat_id"] == "not-a-number"
        assert stuck.last_code == "INTERNAL_ERROR"
        assert stuck.run_after > h.clock() - 3.0
        assert await completed_pairs(h) == Counter(pairs)


async def test_a_crashing_executor_spends_attempts_and_backs_off(tmp_path: Path) -> None:
    async with open_harness(tmp_path, AUTOJOIN_RETRY_CAP="30") as h:
        poison = NewJob(ADD_TO_CHAT, {"chat_id": 101, "user_id": "x", "hide_history": 0})
        await h.services.store.enqueue([poison], h.clock())
        worker = worker_of(h)
        delays = []
        for _ in range(4):
            await worker.step()
            (job,) = await h.services.store.jobs(("pending",))
            delays.append(job.run_after - h.clock())
            h.clock.advance(job.run_after - h.clock())
        assert job.attempts == 4
        assert delays == sorted(delays)
        assert delays[-1] <= 30.0
