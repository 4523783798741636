"""The Store contract, run unchanged against SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest

from bot.errors import LeaseLost
from bot.jobs import ADD_TO_CHAT, DEAD, DONE, PENDING, RESOLVE_USER, RUNNING, NewJob
from bot.store.base import Store
from tests.store.conftest import T0, Backend, audit, job, states


# -- intake ------------------------------------------------------------------
def test_accept_event_stores_the_key_and_jobs_atomically(store: Store) -> None:
    jobs = [job("a", user_id=1), job("b", user_id=2)]
    assert store.accept_event("ev1", "ONIMCHATUSERADD", jobs, T0) is True
    stored = store.jobs()
    assert sorted(j.dedupe_key or "" for j in stored) == ["a", "b"]
    assert all(j.state == PENDING and j.attempts == 0 and j.created_at == T0 for j in stored)
    assert stored[0].payload == {"user_id": 2}


def test_a_repeated_event_stores_nothing_even_long_after_it_completed(store: Store) -> None:
    assert store.accept_event("ev1", "E", [job("a")], T0)
    [claimed] = store.claim("w", T0, 60, 10)
    store.complete(claimed.id, "w", T0 + 1)
    later = T0 + 30 * 86_400
    assert store.accept_event("ev1", "E", [job("a"), job("new-key"), job(None)], later) is False
    assert states(store) == {DONE: 1}


def test_accept_events_detects_a_duplicate_inside_one_group(store: Store) -> None:
    store.accept_event("old", "E", [job("x")], T0)
    batch = [("k1", "E", [job("1")]), ("k1", "E", [job("2")]), ("old", "E", []), ("k2", "E", [])]
    assert store.accept_events(batch, T0) == [True, False, False, True]
    assert sorted(j.dedupe_key or "" for j in store.jobs()) == ["1", "x"]


def test_enqueue_skips_known_dedupe_keys_in_any_state(store: Store) -> None:
    assert store.enqueue([job("a"), job("b"), job("a"), job(None), job(None)], T0) == 4
    [first, *_] = store.claim("w", T0, 60, 1)
    store.complete(first.id, "w", T0)
    assert store.enqueue([job("a"), job("b"), job("c")], T0 + 1) == 1
    assert store.accept_event("ev", "E", [job("a"), job("d")], T0 + 2) is True
    assert sorted(j.dedupe_key or "-" for j in store.jobs()) == ["-", "-", "a", "b", "c", "d"]


def test_followups_obey_the_dedupe_rule(store: Store) -> None:
    store.enqueue([job("root"), job("existing")], T0)
    [root] = store.claim("w", T0, 60, 1)
    store.complete(root.id, "w", T0, followups=[job("existing"), job("child")])
    assert sorted(j.dedupe_key or "" for j in store.jobs()) == ["child", "existing", "root"]


# -- claim -------------------------------------------------------------------
def test_claim_takes_due_jobs_oldest_first_and_leases_them(store: Store) -> None:
    store.enqueue([NewJob(ADD_TO_CHAT, {"n": 1}, run_after=T0 + 50)], T0)
    store.enqueue([NewJob(ADD_TO_CHAT, {"n": 2}, run_after=T0 + 20)], T0)
    store.enqueue([NewJob(ADD_TO_CHAT, {"n": 3})], T0 + 10)
    store.enqueue([NewJob(ADD_TO_CHAT, {"n": 4}, run_after=T0 + 500)], T0)
    claimed = store.claim("w1", T0 + 60, 30, 10)
    assert [j.payload["n"] for j in claimed] == [3, 2, 1]
    for j in claimed:
        assert (j.state, j.lease_owner, j.lease_until, j.attempts) == (RUNNING, "w1", T0 + 90, 1)
    assert store.claim("w2", T0 + 60, 30, 10) == []


def test_claim_respects_limit_and_kinds(store: Store) -> None:
    store.enqueue([job(kind=RESOLVE_USER), job(), job(), job(kind=RESOLVE_USER)], T0)
    assert [j.kind for j in store.claim("w", T0, 60, 1, kinds={RESOLVE_USER})] == [RESOLVE_USER]
    assert len(store.claim("w", T0, 60, 5, kinds=[ADD_TO_CHAT])) == 2
    assert store.claim("w", T0, 60, 5, kinds=[]) == []
    assert store.claim("w", T0, 60, 5, kinds="nope.kind") == []
    assert len(store.claim("w", T0, 60, 5)) == 1
    assert store.claim("w", T0, 60, 0) == []


def test_an_expired_lease_is_reclaimed_and_the_old_owner_loses_it(store: Store) -> None:
    store.enqueue([job("a"), job("b"), job("c")], T0)
    a, b, c = store.claim("crashed", T0, 10, 3)
    assert store.claim("w2", T0 + 10, 10, 5) == []  # lease_until is not yet *before* now
    taken = store.claim("w2", T0 + 11, 10, 5)
    assert [(j.id, j.attempts, j.lease_owner) for j in taken] == [
        (a.id, 2, "w2"),
        (b.id, 2, "w2"),
        (c.id, 2, "w2"),
    ]
    with pytest.raises(LeaseLost):
        store.complete(a.id, "crashed", T0 + 12, followups=[job("f")], audit=[audit(T0, 1, 2)])
    with pytest.raises(LeaseLost):
        store.retry(b.id, "crashed", T0 + 12, T0 + 20, "X", "x")
    with pytest.raises(LeaseLost):
        store.dead(c.id, "crashed", T0 + 12, "X", "x")
    assert states(store) == {RUNNING: 3}
    assert store.history() == []
    store.complete(a.id, "w2", T0 + 12)
    with pytest.raises(LeaseLost):
        store.complete(a.id, "w2", T0 + 13)  # settled jobs cannot be settled again


def test_extend_lease_keeps_a_slow_job(store: Store) -> None:
    store.enqueue([job("a"), job("b")], T0)
    a, b = store.claim("w", T0, 10, 2)
    store.extend_lease([a.id, b.id], "other", T0 + 1000)  # not the owner: no effect
    store.extend_lease([a.id], "w", T0 + 100)
    assert [j.id for j in store.claim("w2", T0 + 50, 10, 5)] == [b.id]
    store.complete(a.id, "w", T0 + 60)


def test_concurrent_claims_on_two_connections_never_overlap(backend: Backend) -> None:
    first = backend.open()
    first.migrate()
    second = backend.open()
    total = 240
    first.enqueue([job(f"k{i}", i=i) for i in range(total)], T0)
    seen: dict[str, list[int]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(store: Store, owner: str) -> None:
        try:
            barrier.wait()
            while batch := store.claim(owner, T0, 300, 7):
                for j in batch:
                    seen[owner].append(j.id)
                    store.complete(j.id, owner, T0)
                time.sleep(0.002)  # "work" outside any transaction lets the other side in
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, o)) for s, o in ((first, "a"), (second, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    ids = seen["a"] + seen["b"]
    assert len(ids) == total
    assert len(set(ids)) == total
    assert seen["a"]
    assert seen["b"]
    assert states(first) == {DONE: total}


# -- settling ----------------------------------------------------------------
def test_complete_writes_followups_audit_and_ledger_in_one_step(store: Store) -> None:
    store.enqueue([job("a")], T0)
    [a] = store.claim("w", T0, 60, 1)
    entry = audit(T0 + 1, 10, 20)
    store.complete(a.id, "w", T0 + 1, [job("f")], [entry], [("rule-a", 10, 20)])
    done = next(j for j in store.jobs() if j.id == a.id)
    assert (done.state, done.lease_owner, done.updated_at) == (DONE, None, T0 + 1)
    assert [h.job_id for h in store.history()] == [a.id]  # filled in from the settled job
    assert store.ledger() == [("rule-a", 10, 20, T0 + 1)]
    assert states(store) == {DONE: 1, PENDING: 1}


def test_a_failing_complete_changes_nothing(store: Store) -> None:
    store.enqueue([job("a")], T0)
    [a] = store.claim("w", T0, 60, 1)
    with pytest.raises(TypeError):
        store.complete(a.id, "w", T0, [NewJob(ADD_TO_CHAT, {"bad": object()})], [audit(T0, 1, 2)])
    assert states(store) == {RUNNING: 1}
    assert store.history() == []


def test_retry_sets_the_next_attempt_and_keeps_the_error(store: Store) -> None:
    store.enqueue([job("a")], T0)
    [a] = store.claim("w", T0, 60, 1)
    store.retry(a.id, "w", T0 + 1, T0 + 100, "QUERY_LIMIT_EXCEEDED", "slow down")
    [again] = store.jobs()
    assert (again.state, again.attempts, again.run_after) == (PENDING, 1, T0 + 100)
    assert (again.last_code, again.last_error, again.lease_owner) == (
        "QUERY_LIMIT_EXCEEDED",
        "slow down",
        None,
    )
    assert store.claim("w", T0 + 99, 60, 1) == []
    [b] = store.claim("w", T0 + 100, 60, 1)
    assert b.attempts == 2


def test_retry_without_spending_an_attempt(store: Store) -> None:
    store.enqueue([job("a")], T0)
    [a] = store.claim("w", T0, 60, 1)
    store.retry(a.id, "w", T0, T0 + 5, "PORTAL_PAUSED", "paused", spend_attempt=False)
    assert store.jobs()[0].attempts == 0
    [a] = store.claim("w", T0 + 5, 60, 1)
    store.retry(a.id, "w", T0 + 5, T0 + 6, "E", "e", audit=[audit(T0, 1, 2, "dropped")])
    assert store.jobs()[0].attempts == 1
    assert store.history()[0].outcome == "dropped"


def test_dead_keeps_the_reason(store: Store) -> None:
    store.enqueue([job("a")], T0)
    [a] = store.claim("w", T0, 60, 1)
    store.dead(a.id, "w", T0 + 2, "ACCESS_DENIED", "grant im scope", [audit(T0 + 2, 1, 2, "dead")])
    [d] = store.jobs()
    assert (d.state, d.last_code, d.last_error, d.lease_until) == (
        DEAD,
        "ACCESS_DENIED",
        "grant im scope",
        None,
    )
    assert store.claim("w", T0 + 1000, 60, 5) == []
    assert [(h.outcome, h.job_id) for h in store.history()] == [("dead", a.id)]


def test_release_returns_jobs_without_spending_attempts(store: Store) -> None:
    store.enqueue([job("a"), job("b"), job("c")], T0)
    a, b = store.claim("w", T0, 60, 2)
    [c] = store.claim("other", T0, 60, 1)
    store.release([a.id, b.id, c.id], "w", T0 + 1)
    by_id = {j.id: j for j in store.jobs()}
    assert (by_id[a.id].state, by_id[a.id].attempts, by_id[a.id].lease_owner) == (PENDING, 0, None)
    assert by_id[b.id].state == PENDING
    assert (by_id[c.id].state, by_id[c.id].lease_owner) == (RUNNING, "other")
    assert [j.id for j in store.claim("w", T0 + 1, 60, 5)] == [a.id, b.id]
    store.release([], "w", T0)
