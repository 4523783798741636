"""The Store contract, run unchanged against SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bot.jobs import ADD_TO_CHAT, DEAD, DONE, PENDING, RESOLVE_USER, RUNNING, NewJob
from bot.store.base import Store
from bot.store.sqlite import TAKE_CHUNK, SQLiteStore
from tests.store.conftest import T0, Backend, accept, audit, dead, done, job, retry, states


# -- intake ------------------------------------------------------------------
def test_accept_event_stores_the_key_and_jobs_atomically(store: Store) -> None:
    jobs = [job("a", user_id=1), job("b", user_id=2)]
    assert accept(store, "ev1", jobs, T0, "ONIMCHATUSERADD") is True
    stored = store.jobs()
    assert sorted(j.dedupe_key or "" for j in stored) == ["a", "b"]
    assert all(j.state == PENDING and j.attempts == 0 and j.created_at == T0 for j in stored)
    assert stored[0].payload == {"user_id": 2}


def test_a_repeated_event_stores_nothing_even_long_after_it_completed(store: Store) -> None:
    assert accept(store, "ev1", [job("a")], T0)
    [claimed] = store.claim("w", T0, 60, 10)
    assert store.settle_many("w", T0 + 1, [done(claimed.id)]) == []
    later = T0 + 30 * 86_400
    assert accept(store, "ev1", [job("a"), job("new-key"), job(None)], later) is False
    assert states(store) == {DONE: 1}


def test_accept_events_detects_a_duplicate_inside_one_group(store: Store) -> None:
    accept(store, "old", [job("x")], T0)
    batch = [("k1", "E", [job("1")]), ("k1", "E", [job("2")]), ("old", "E", []), ("k2", "E", [])]
    assert store.accept_events(batch, T0) == [True, False, False, True]
    assert sorted(j.dedupe_key or "" for j in store.jobs()) == ["1", "x"]


def test_enqueue_skips_known_dedupe_keys_in_any_state(store: Store) -> None:
    assert store.enqueue([job("a"), job("b"), job("a"), job(None), job(None)], T0) == 4
    [first, *_] = store.claim("w", T0, 60, 1)
    store.settle_many("w", T0, [done(first.id)])
    assert store.enqueue([job("a"), job("b"), job("c")], T0 + 1) == 1
    assert accept(store, "ev", [job("a"), job("d")], T0 + 2) is True
    assert sorted(j.dedupe_key or "-" for j in store.jobs()) == ["-", "-", "a", "b", "c", "d"]


def test_followups_obey_the_dedupe_rule(store: Store) -> None:
    store.enqueue([job("root"), job("existing")], T0)
    [root] = store.claim("w", T0, 60, 1)
    store.settle_many("w", T0, [done(root.id, followups=[job("existing"), job("child")])])
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
    stale = [
        done(a.id, followups=[job("f")], audit=[audit(T0, 1, 2)], ledger=[("rule-a", 1, 2)]),
        retry(b.id, T0 + 20, "X", "x", audit=[audit(T0, 1, 3)]),
        dead(c.id, "X", "x", audit=[audit(T0, 1, 4)]),
    ]
    assert store.settle_many("crashed", T0 + 12, stale) == [a.id, b.id, c.id]
    assert states(store) == {RUNNING: 3}
    assert [(j.attempts, j.lease_owner) for j in store.jobs()] == [(2, "w2")] * 3
    assert store.history() == []
    assert store.ledger() == []
    assert sorted(j.dedupe_key or "" for j in store.jobs()) == ["a", "b", "c"]  # no followup
    assert store.settle_many("w2", T0 + 12, [done(a.id)]) == []
    # settled jobs cannot be settled again, not even by their last owner
    assert store.settle_many("w2", T0 + 13, [done(a.id), dead(a.id, "X", "x")]) == [a.id, a.id]
    assert next(j for j in store.jobs() if j.id == a.id).updated_at == T0 + 12


def test_extend_lease_keeps_a_slow_job(store: Store) -> None:
    store.enqueue([job("a"), job("b")], T0)
    a, b = store.claim("w", T0, 10, 2)
    store.extend_lease([a.id, b.id], "other", T0 + 1000)  # not the owner: no effect
    store.extend_lease([a.id], "w", T0 + 100)
    assert [j.id for j in store.claim("w2", T0 + 50, 10, 5)] == [b.id]
    assert store.settle_many("w", T0 + 60, [done(a.id)]) == []


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
                seen[owner].extend(j.id for j in batch)
                assert store.settle_many(owner, T0, [done(j.id) for j in batch]) == []
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
def test_done_writes_followups_audit_and_ledger_in_one_step(store: Store) -> None:
    store.enqueue([job("a")], T0)
    [a] = store.claim("w", T0, 60, 1)
    entry = audit(T0 + 1, 10, 20)
    assert (
        store.settle_many("w", T0 + 1, [done(a.id, [job("f")], [entry], [("rule-a", 10, 20)])])
        == []
    )
    finished = next(j for j in store.jobs() if j.id == a.id)
    assert (finished.state, finished.lease_owner, finished.updated_at) == (DONE, None, T0 + 1)
    assert [h.job_id for h in store.history()] == [a.id]  # filled in from the settled job
    assert store.ledger() == [("rule-a", 10, 20, T0 + 1)]
    assert states(store) == {DONE: 1, PENDING: 1}


def test_a_failing_item_changes_nothing_of_its_group(store: Store) -> None:
    store.enqueue([job("a"), job("b")], T0)
    a, b = store.claim("w", T0, 60, 2)
    group = [
        done(a.id, [job("f")], [audit(T0, 1, 2)], [("rule-a", 1, 2)]),
        done(b.id, [NewJob(ADD_TO_CHAT, {"bad": object()})], [audit(T0, 1, 3)]),
    ]
    with pytest.raises(TypeError):
        store.settle_many("w", T0, group)
    assert states(store) == {RUNNING: 2}
    assert store.history() == []
    assert store.ledger() == []
    assert store.settle_many("w", T0 + 1, group[:1]) == []  # the lease survived the rollback


def test_retry_sets_the_next_attempt_spends_one_and_keeps_the_error(store: Store) -> None:
    store.enqueue([job("a")], T0)
    [a] = store.claim("w", T0, 60, 1)
    dropped = audit(T0, 1, 2, "dropped")
    assert (
        store.settle_many(
            "w", T0 + 1, [retry(a.id, T0 + 100, "QUERY_LIMIT_EXCEEDED", "slow down", [dropped])]
        )
        == []
    )
    [again] = store.jobs()
    assert (again.state, again.attempts, again.run_after) == (PENDING, 1, T0 + 100)
    assert (again.last_code, again.last_error, again.lease_owner) == (
        "QUERY_LIMIT_EXCEEDED",
        "slow down",
        None,
    )
    assert [(h.outcome, h.job_id) for h in store.history()] == [("dropped", a.id)]
    assert store.claim("w", T0 + 99, 60, 1) == []
    [b] = store.claim("w", T0 + 100, 60, 1)
    assert b.attempts == 2


def test_dead_keeps_the_reason(store: Store) -> None:
    store.enqueue([job("a")], T0)
    [a] = store.claim("w", T0, 60, 1)
    lost = store.settle_many(
        "w", T0 + 2, [dead(a.id, "ACCESS_DENIED", "grant im scope", [audit(T0 + 2, 1, 2, "dead")])]
    )
    assert lost == []
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


def test_sqlite_picks_without_the_write_lock_and_takes_in_short_transactions(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "claim.db")
    store.migrate()
    count = 2 * TAKE_CHUNK + 1
    store.enqueue([job(f"k{i}", i=i) for i in range(count)], T0)
    statements: list[str] = []
    conn = store._conn
    assert conn is not None
    conn.set_trace_callback(statements.append)
    claimed = store.claim("w1", T0, 60, count)
    conn.set_trace_callback(None)
    assert len(claimed) == count
    assert [j.id for j in claimed] == sorted(j.id for j in claimed)
    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN"] + ["BEGIN IMMEDIATE"] * 3  # one read, three short writes
    store.close()


def test_sqlite_picks_again_when_another_worker_took_what_it_picked(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "race.db")
    first.migrate()
    second = SQLiteStore(tmp_path / "race.db")
    first.enqueue([job(f"k{i}", i=i) for i in range(10)], T0)
    stolen: list[int] = []

    def race(statement: str) -> None:
        if statement == "BEGIN IMMEDIATE" and not stolen:  # between the pick and the take
            stolen.extend(j.id for j in second.claim("w2", T0, 60, 4))

    conn = first._conn
    assert conn is not None
    conn.set_trace_callback(race)
    mine = first.claim("w1", T0, 60, 4)
    conn.set_trace_callback(None)
    assert len(stolen) == 4
    assert len(mine) == 4
    assert not set(stolen) & {j.id for j in mine}
    first.close()
    second.close()
