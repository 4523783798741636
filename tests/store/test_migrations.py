"""Migrations on both backends: v1 data survives v2, reruns are no-ops, the future is refused."""

from __future__ import annotations

import threading

import pytest

from bot.errors import StoreError
from bot.jobs import ADD_TO_CHAT, DONE, PENDING, AuditEntry, NewJob
from bot.store import open_store, schema
from bot.store.base import Store
from tests.store.conftest import Backend

T0 = 2_000_000.0


def version_rows(backend: Backend) -> list[int]:
    return [int(str(v)) for (v,) in backend.execute("SELECT version FROM schema_version")]


def test_the_steps_render_for_both_dialects() -> None:
    assert schema.LATEST >= 2
    for version in range(1, schema.LATEST + 1):
        lite, pg = schema.statements(version, "sqlite"), schema.statements(version, "postgres")
        assert len(lite) == len(pg) > 0
        assert all("{" not in s for s in lite + pg)
    assert "AUTOINCREMENT" in schema.statements(1, "sqlite")[1]
    assert "BIGSERIAL" in schema.statements(1, "postgres")[1]


def test_a_v1_database_is_upgraded_with_its_rows(backend: Backend) -> None:
    store = backend.open()
    assert store.migrate(target=1) == 1
    assert version_rows(backend) == [1]
    # Rows written the v1 way: no group_key column, no dedupe_keys table yet.
    backend.execute("INSERT INTO events VALUES (?, ?, ?)", ("ev-v1", "ONIMCHATUSERADD", T0))
    insert = (
        "INSERT INTO jobs (kind, payload, state, attempts, run_after, dedupe_key, event_key,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    backend.execute(
        insert, (ADD_TO_CHAT, '{"u":1}', "pending", 0, T0, "k-pending", "ev-v1", T0, T0)
    )
    backend.execute(insert, (ADD_TO_CHAT, '{"u":2}', "done", 1, T0, "k-done", "ev-v1", T0, T0))
    backend.execute("INSERT INTO kv VALUES (?, ?, ?)", ("bot.id", "42", T0))
    with pytest.raises(Exception, match="audit"):
        backend.execute("SELECT * FROM audit")

    assert store.migrate() == schema.LATEST
    assert version_rows(backend) == list(range(1, schema.LATEST + 1))
    assert store.get_state("bot.id") == "42"
    assert store.accept_event("ev-v1", "ONIMCHATUSERADD", [], T0 + 1) is False
    [claimed] = store.claim("w", T0 + 1, 60, 10)
    assert (claimed.payload, claimed.group, claimed.event_key) == ({"u": 1}, None, "ev-v1")
    # The v1 done job's dedupe key was copied into dedupe_keys: it outlives pruning the job.
    assert store.prune(T0 + 10, T0 + 5, None, None)["jobs"] == 1
    assert store.enqueue([NewJob(ADD_TO_CHAT, {}, dedupe_key="k-done")], T0 + 10) == 0
    # The v2 tables work.
    entry = AuditEntry(T0, "ev-v1", "r", 1, 2, True, "added")
    store.complete(claimed.id, "w", T0 + 2, audit=[entry], ledger=[("r", 1, 2)])
    assert store.history()[0].hide_history is True
    assert store.ledger() == [("r", 1, 2, T0 + 2)]
    store.enqueue([NewJob(ADD_TO_CHAT, {}, group="chat:1")], T0 + 3)
    assert [j.group for j in store.jobs([PENDING])] == ["chat:1"]
    assert store.counts()[DONE] == 1


def test_migrating_again_is_a_no_op(backend: Backend) -> None:
    store = backend.open()
    assert store.migrate() == schema.LATEST
    store.set_state("k", "v", T0)
    assert store.migrate() == schema.LATEST
    assert store.migrate(target=1) == schema.LATEST  # never downgrades
    assert version_rows(backend) == list(range(1, schema.LATEST + 1))
    assert store.get_state("k") == "v"


def test_two_processes_starting_together_migrate_once(backend: Backend) -> None:
    stores = [backend.open() for _ in range(4)]
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def start(store: Store) -> None:
        try:
            barrier.wait()
            results.append(store.migrate())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert results == [schema.LATEST] * len(stores)
    assert version_rows(backend) == list(range(1, schema.LATEST + 1))


def test_a_database_newer_than_the_code_is_refused(backend: Backend) -> None:
    store = backend.open()
    store.migrate()
    backend.execute("INSERT INTO schema_version (version) VALUES (?)", (schema.LATEST + 7,))
    with pytest.raises(StoreError, match=f"version {schema.LATEST + 7}, newer than this code"):
        store.migrate()
    with pytest.raises(StoreError, match="upgrade autojoin"):
        open_store(backend.url)
