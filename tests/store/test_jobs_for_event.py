"""`jobs_for_event`: one event's jobs in every state, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from bot.jobs import ADD_TO_CHAT, BOT_REPLY, DEAD, DONE, PENDING, RUNNING, NewJob
from bot.store.base import Store
from tests.store.conftest import T0, accept, dead, done


def _job(key: str, event: str | None, kind: str = ADD_TO_CHAT) -> NewJob:
    return NewJob(kind, {"chat_id": 1, "user_id": 2, "n": key}, dedupe_key=key, event_key=event)


def test_returns_only_that_events_jobs_oldest_first_in_any_state(store: Store) -> None:
    accept(store, "ev-a", [_job("a1", "ev-a"), _job("a2", "ev-a")], T0)
    accept(store, "ev-b", [_job("b1", "ev-b")], T0)
    store.enqueue([_job("none", None)], T0)
    first, second, other, _ = store.claim("w", T0, 60, 10)
    followups = [_job("a3", "ev-a", BOT_REPLY), _job("b2", "ev-b")]
    settled = [done(first.id, followups), dead(second.id, "ACCESS_DENIED_EXTEND", "hint")]
    assert store.settle_many("w", T0 + 1, settled) == []
    assert other.event_key == "ev-b"

    found = store.jobs_for_event("ev-a")

    assert [j.dedupe_key for j in found] == ["a1", "a2", "a3"]
    assert [j.state for j in found] == [DONE, DEAD, PENDING]
    assert found[1].last_code == "ACCESS_DENIED_EXTEND"
    assert (found[2].kind, found[2].payload["n"]) == (BOT_REPLY, "a3")
    assert [j.dedupe_key for j in store.jobs_for_event("ev-b")] == ["b1", "b2"]
    assert store.jobs_for_event("ev-b")[0].state == RUNNING


def test_unknown_event_and_lookalike_keys_find_nothing(store: Store) -> None:
    accept(store, "portal:msg:1", [_job("x", "portal:msg:1")], T0)
    assert store.jobs_for_event("portal:msg:") == []
    assert store.jobs_for_event("portal:msg:%") == []
    assert store.jobs_for_event("portal:msg:10") == []
    assert [j.dedupe_key for j in store.jobs_for_event("portal:msg:1")] == ["x"]
