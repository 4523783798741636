"""The Store contract, operator side: listing, revive, history, state, ledger, prune."""

from __future__ import annotations

import pytest

from bot.errors import StoreError
from bot.jobs import DEAD, DONE, PENDING, RUNNING, AuditEntry
from bot.store.base import Store
from tests.store.conftest import T0, Backend, accept, audit, dead, done, job, retry


# -- operators ---------------------------------------------------------------
def test_jobs_are_listed_newest_first_and_filtered(store: Store) -> None:
    store.enqueue([job(f"k{i}") for i in range(5)], T0)
    [first] = store.claim("w", T0, 60, 1)
    store.settle_many("w", T0, [dead(first.id, "X", "x")])
    ids = [j.id for j in store.jobs()]
    assert ids == sorted(ids, reverse=True)
    assert [j.id for j in store.jobs(limit=2)] == ids[:2]
    assert [j.id for j in store.jobs([DEAD])] == [first.id]
    assert len(store.jobs([DEAD, PENDING])) == 5
    assert store.jobs([]) == []
    assert store.counts() == {PENDING: 4, RUNNING: 0, DONE: 0, DEAD: 1}


def test_revive_restarts_dead_and_named_retrying_jobs(store: Store) -> None:
    store.enqueue([job(f"k{i}") for i in range(5)], T0)
    d1, d2, retrying, finished, running = store.claim("w", T0, 60, 5)
    settled = [
        dead(d1.id, "X", "x"),
        dead(d2.id, "X", "x"),
        retry(retrying.id, T0 + 999, "Y", "y"),
        done(finished.id),
    ]
    assert store.settle_many("w", T0, settled) == []
    named = [d1.id, retrying.id, finished.id, running.id]
    assert store.revive(named, T0 + 10) == 2
    by_id = {j.id: j for j in store.jobs()}
    for jid in (d1.id, retrying.id):
        revived = by_id[jid]
        assert (revived.state, revived.attempts, revived.run_after) == (PENDING, 0, T0 + 10)
        assert revived.last_code is None
    assert (by_id[finished.id].state, by_id[running.id].state, by_id[d2.id].state) == (
        DONE,
        RUNNING,
        DEAD,
    )
    assert store.revive(None, T0 + 20) == 1
    assert store.revive(None, T0 + 20) == 0
    assert store.counts()[DEAD] == 0


def test_history_filters_and_orders_newest_first(store: Store) -> None:
    store.enqueue([job("a")], T0)
    [a] = store.claim("w", T0, 60, 1)
    rows = [audit(T0 + 3, 1, 10), audit(T0 + 1, 1, 11), audit(T0 + 2, 2, 10, "removed")]
    store.settle_many("w", T0, [done(a.id, audit=rows)])
    assert [h.at for h in store.history()] == [T0 + 3, T0 + 2, T0 + 1]
    assert [h.at for h in store.history(user_id=10)] == [T0 + 3, T0 + 2]
    assert [h.at for h in store.history(chat_id=1)] == [T0 + 3, T0 + 1]
    assert [h.outcome for h in store.history(user_id=10, chat_id=2)] == ["removed"]
    assert len(store.history(limit=1)) == 1
    first = store.history(user_id=11)[0]
    assert first == AuditEntry(T0 + 1, "ev", "rule-a", 1, 11, False, "added", None, None, a.id)


def test_state_is_a_small_key_value_table(store: Store) -> None:
    assert store.get_state("queue.pause") is None
    store.set_state("queue.pause", '{"code": "X"}', T0)
    store.set_state("bucket", "1.5", T0)
    store.set_state("queue.pause", '{"code": "Y"}', T0 + 1)
    assert store.get_state("queue.pause") == '{"code": "Y"}'
    store.set_state("queue.pause", None, T0 + 2)
    store.set_state("missing", None, T0 + 2)
    assert store.get_state("queue.pause") is None
    assert store.get_state("bucket") == "1.5"


def test_ledger_records_who_a_rule_added(store: Store) -> None:
    assert store.ledger_add([("r1", 5, 1), ("r1", 5, 2), ("r2", 6, 1)], T0) == 3
    assert store.ledger_add([("r1", 5, 1)], T0 + 9) == 0  # keeps the first added_at
    big = 2**40
    store.ledger_add([("r3", big, big)], T0)
    assert store.ledger(5) == [("r1", 5, 1, T0), ("r1", 5, 2, T0)]
    assert store.ledger_remove("r1", 5, 1) is True
    assert store.ledger_remove("r1", 5, 1) is False
    assert store.ledger() == [("r1", 5, 2, T0), ("r2", 6, 1, T0), ("r3", big, big, T0)]


def test_prune_deletes_old_rows_and_keeps_dedupe_keys_as_long_as_events(store: Store) -> None:
    accept(store, "old-ev", [job("old")], T0)
    store.enqueue([job("dead")], T0)
    accept(store, "new-ev", [job("new")], T0 + 100)
    old, dead_job, new = store.claim("w", T0 + 100, 60, 3)
    assert [j.dedupe_key for j in (old, dead_job, new)] == ["old", "dead", "new"]
    store.settle_many("w", T0 + 1, [done(old.id, audit=[audit(T0, 1, 1)])])
    store.settle_many("w", T0 + 1, [dead(dead_job.id, "X", "x", [audit(T0 + 200, 1, 2)])])
    store.settle_many("w", T0 + 150, [done(new.id)])
    store.enqueue([job("waiting")], T0)
    kept = store.prune(T0 + 300, None, None, None)
    assert kept == {"jobs": 0, "events": 0, "dedupe_keys": 0, "audit": 0}

    assert store.prune(T0 + 300, T0 + 100, T0 + 50, T0 + 100) == {
        "jobs": 1,  # "old": done before the cutoff; "new" finished later, "dead" is not done
        "events": 1,  # "old-ev"
        "dedupe_keys": 3,  # "old", "dead" and "waiting" were stored at T0
        "audit": 1,
    }
    assert sorted(j.dedupe_key or "" for j in store.jobs()) == ["dead", "new", "waiting"]
    assert store.enqueue([job("new"), job("waiting"), job("dead")], T0 + 300) == 0
    assert accept(store, "new-ev", [], T0 + 300) is False
    assert accept(store, "old-ev", [job("old")], T0 + 300) is True
    assert store.counts()[PENDING] == 2  # "waiting" and the second "old"
    assert [h.user_id for h in store.history()] == [2]


def test_a_pruned_done_job_still_blocks_its_duplicate_while_events_are_kept(store: Store) -> None:
    accept(store, "ev", [job("k")], T0)
    [k] = store.claim("w", T0, 60, 1)
    store.settle_many("w", T0, [done(k.id)])
    assert store.prune(T0 + 10, T0 + 5, None, None)["jobs"] == 1
    assert store.jobs() == []
    assert store.enqueue([job("k")], T0 + 20) == 0
    assert store.prune(T0 + 30, T0 + 5, T0 + 5, None)["dedupe_keys"] == 1
    assert store.enqueue([job("k")], T0 + 40) == 1


def test_a_closed_store_refuses_work(backend: Backend) -> None:
    store = backend.open()
    store.migrate()
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get_state("x")
