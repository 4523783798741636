"""Migrations on both backends: every earlier version's data survives the upgrade to the
latest, reruns are no-ops, the future is refused."""

from __future__ import annotations

import threading

import pytest

from bot.errors import StoreError
from bot.jobs import ADD_TO_CHAT, DONE, PENDING, AuditEntry, NewJob
from bot.store import open_store, schema
from bot.store.base import Store
from tests.store.conftest import Backend, accept, done

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
    assert accept(store, "ev-v1", [], T0 + 1, "ONIMCHATUSERADD") is False
    [claimed] = store.claim("w", T0 + 1, 60, 10)
    assert (claimed.payload, claimed.group, claimed.event_key) == ({"u": 1}, None, "ev-v1")
    # The v1 done job's dedupe key was copied into dedupe_keys: it outlives pruning the job.
    assert store.prune(T0 + 10, T0 + 5, None, None)["jobs"] == 1
    assert store.enqueue([NewJob(ADD_TO_CHAT, {}, dedupe_key="k-done")], T0 + 10) == 0
    # The v2 tables work.
    entry = AuditEntry(T0, "ev-v1", "r", 1, 2, True, "added")
    assert (
        store.settle_many("w", T0 + 2, [done(claimed.id, audit=[entry], ledger=[("r", 1, 2)])])
        == []
    )
    assert store.history()[0].hide_history is True
    assert store.ledger() == [("r", 1, 2, T0 + 2)]
    store.enqueue([NewJob(ADD_TO_CHAT, {}, group="chat:1")], T0 + 3)
    assert [j.group for j in store.jobs([PENDING])] == ["chat:1"]
    assert store.counts()[DONE] == 1


def indexes_on(backend: Backend, table: str) -> set[str]:
    if backend.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
    else:
        query = (
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ?"
        )
    return {str(name) for (name,) in backend.execute(query, (table,))}


def seed(backend: Backend, version: int) -> None:
    """Rows written the way a database at `version` holds them, straight into the tables."""
    backend.execute("INSERT INTO events VALUES (?, ?, ?)", ("ev-old", "ONIMBOTMESSAGEADD", T0))
    backend.execute("INSERT INTO kv VALUES (?, ?, ?)", ("bot.id", "42", T0))
    columns = "kind, payload, state, attempts, run_after, dedupe_key, event_key, updated_at"
    rows: list[tuple[object, ...]] = [
        (ADD_TO_CHAT, '{"chat_id": 5}', "pending", 0, T0, "k-a", "ev-old", T0),
        (ADD_TO_CHAT, '{"chat_id": 6}', "done", 1, T0, "k-b", "ev-old", T0),
    ]
    if version >= 2:  # group_key, audit, ledger and dedupe_keys exist from v2 on
        columns += ", group_key"
        rows = [(*row, f"group-{i}") for i, row in enumerate(rows)]
        audit = "INSERT INTO audit (at, event_key, rule, chat_id, user_id, hide_history, outcome)"
        backend.execute(
            f"{audit} VALUES (?, ?, ?, ?, ?, ?, ?)", (T0, "ev-old", "r", 6, 2, 1, "added")
        )
        backend.execute("INSERT INTO ledger VALUES (?, ?, ?, ?)", ("r", 6, 2, T0))
        backend.execute("INSERT INTO dedupe_keys VALUES (?, ?)", ("k-b", T0))
    marks = ", ".join("?" * (len(rows[0]) + 1))
    for row in rows:
        backend.execute(f"INSERT INTO jobs ({columns}, created_at) VALUES ({marks})", (*row, T0))


@pytest.mark.parametrize("previous", range(1, schema.LATEST))
def test_every_previous_version_is_upgraded_with_its_rows(backend: Backend, previous: int) -> None:
    store = backend.open()
    assert store.migrate(target=previous) == previous
    assert "jobs_event" not in indexes_on(backend, "jobs")
    seed(backend, previous)

    assert store.migrate() == schema.LATEST
    assert version_rows(backend) == list(range(1, schema.LATEST + 1))
    assert "jobs_event" in indexes_on(backend, "jobs")
    assert store.get_state("bot.id") == "42"
    assert accept(store, "ev-old", [], T0 + 1, "ONIMBOTMESSAGEADD") is False
    found = store.jobs_for_event("ev-old")
    assert [(j.dedupe_key, j.state, j.payload) for j in found] == [
        ("k-a", PENDING, {"chat_id": 5}),
        ("k-b", DONE, {"chat_id": 6}),
    ]
    assert store.enqueue([NewJob(ADD_TO_CHAT, {}, dedupe_key="k-b")], T0 + 2) == 0
    if previous >= 2:
        assert [j.group for j in found] == ["group-0", "group-1"]
        [entry] = store.history(user_id=2)
        assert (entry.event_key, entry.chat_id, entry.hide_history) == ("ev-old", 6, True)
        assert store.ledger() == [("r", 6, 2, T0)]


def test_jobs_for_event_can_search_an_index(backend: Backend) -> None:
    """v3's point: the bot's replies look their adds up by event key, often."""
    store = backend.open()
    store.migrate()
    if backend.name == "sqlite":
        query = "EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE event_key = ? ORDER BY id"
        plan = " ".join(str(row[-1]) for row in backend.execute(query, ("e",)))
        assert "SEARCH jobs USING INDEX jobs_event (event_key=?)" in plan
        assert "TEMP B-TREE" not in plan  # the index is in id order too: no sort
    else:  # the planner scans a table this small anyway; the index's definition is the point
        query = (
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ?"
        )
        [(definition,)] = backend.execute(query, ("jobs_event",))
        assert str(definition).endswith("(event_key)")


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
