"""`settle_many`: a worker's whole group of results in one transaction (SQLite: a few)."""

from __future__ import annotations

from pathlib import Path

from bot.store.base import Settlement, Store
from bot.store.sqlite import SETTLE_CHUNK, SQLiteStore
from tests.store.conftest import T0, audit, job, states


def test_done_retry_and_dead_are_settled_together(store: Store) -> None:
    store.enqueue([job(f"k{i}") for i in range(3)], T0)
    a, b, c = store.claim("w1", T0, 60, 10)
    lost = store.settle_many(
        "w1",
        T0 + 1,
        [
            Settlement(
                a.id,
                "done",
                followups=[job("follow")],
                audit=[audit(T0, 5, 6)],
                ledger=[("rule-a", 5, 6)],
            ),
            Settlement(b.id, "retry", run_after=T0 + 30, code="QUERY_LIMIT_EXCEEDED", error="x"),
            Settlement(
                c.id, "dead", audit=[audit(T0, 7, 8, "dead")], code="ACCESS_ERROR", error="y"
            ),
        ],
    )
    assert lost == []
    assert states(store) == {"done": 1, "pending": 2, "dead": 1}
    retried = next(j for j in store.jobs() if j.id == b.id)
    assert (retried.run_after, retried.last_code, retried.attempts) == (
        T0 + 30,
        "QUERY_LIMIT_EXCEEDED",
        1,
    )
    assert {(e.chat_id, e.outcome) for e in store.history()} == {(5, "added"), (7, "dead")}
    assert store.ledger() == [("rule-a", 5, 6, T0 + 1)]


def test_jobs_taken_over_by_another_worker_are_reported_and_skipped(store: Store) -> None:
    store.enqueue([job("a"), job("b")], T0)
    first, second = store.claim("w1", T0, 10, 10)
    assert [j.id for j in store.claim("w2", T0 + 20, 10, 10)] == [first.id, second.id]
    lost = store.settle_many("w1", T0 + 21, [Settlement(first.id, "done", audit=[audit(T0, 1, 1)])])
    assert lost == [first.id]
    assert store.history() == []
    assert states(store) == {"running": 2}


def test_a_large_group_settles_in_order_as_if_one_by_one(store: Store) -> None:
    """Past one multi-row chunk: a lost lease in the middle keeps nothing of its job, a
    repeated id is lost the second time, the first follow-up with a dedupe key wins."""
    store.enqueue([job(f"k{i}") for i in range(450)], T0)
    claimed = store.claim("w1", T0, 60, 450)
    taken = claimed[50]
    store.release([taken.id], "w1", T0)
    store.claim("w2", T0 + 1, 60, 1)  # the released job now belongs to w2
    items = [
        Settlement(
            j.id,
            "done",
            followups=[job(f"follow-{i % 100}", user=i)],
            audit=[audit(T0, 9, i)],
            ledger=[("rule-a", 9, i % 300)],
        )
        for i, j in enumerate(claimed)
    ]
    items.append(Settlement(claimed[0].id, "done", followups=[job("late")]))
    lost = store.settle_many("w1", T0 + 2, items)
    assert lost == [taken.id, claimed[0].id]
    follow = {j.dedupe_key: j.payload["user"] for j in store.jobs(["pending"], limit=1000)}
    assert len(follow) == 100
    assert "late" not in follow
    assert follow["follow-50"] == 150  # item 50 was lost: item 150's follow-up goes in
    assert follow["follow-10"] == 10
    history = store.history(limit=1000)
    assert len(history) == 449
    assert 50 not in {e.user_id for e in history}
    assert {e.job_id for e in history} == {j.id for j in claimed} - {taken.id}
    assert len(store.ledger()) == 300


def test_sqlite_commits_a_large_group_in_short_transactions(tmp_path: Path) -> None:
    """The single write lock is given up between chunks, so an acknowledgement waits behind
    one chunk of the worker's writes at most, not behind the whole group."""
    store = SQLiteStore(tmp_path / "chunks.db")
    store.migrate()
    count = 2 * SETTLE_CHUNK + 1
    store.enqueue([job(f"k{i}") for i in range(count)], T0)
    claimed = store.claim("w1", T0, 60, count)
    statements: list[str] = []
    conn = store._conn
    assert conn is not None
    conn.set_trace_callback(statements.append)
    lost = store.settle_many("w1", T0 + 1, [Settlement(j.id, "done") for j in claimed])
    conn.set_trace_callback(None)
    assert lost == []
    assert statements.count("COMMIT") == 3
    assert states(store) == {"done": count}
    store.close()
