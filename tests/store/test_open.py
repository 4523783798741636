"""Opening stores: URL parsing, credential masking, file permissions, reconnects."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import psycopg
import pytest

from bot.errors import StoreError
from bot.jobs import NewJob
from bot.store import mask_url, open_store, schema
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore
from bot.store.urls import parse_url
from tests.store.conftest import Backend

SECRET = "s3cr3t-pw"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "private.db"
    store = SQLiteStore(path)
    try:
        store.migrate()
        store.enqueue([NewJob("k", {})], 1.0)
        assert mode(path) == 0o600
        sidecars = [p for p in (Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
        assert sidecars, "WAL mode should have created its files"
        assert all(mode(p) == 0o600 for p in sidecars)
    finally:
        store.close()


def test_an_existing_sqlite_file_is_opened_as_is(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    path.chmod(0o640)
    store = SQLiteStore(path)
    store.close()
    assert mode(path) == 0o640  # the operator's choice on an existing file is respected


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_url("sqlite:///rel.db").location == "rel.db"
    assert parse_url("sqlite:////abs/path.db").location == "/abs/path.db"
    assert parse_url("SQLITE:///x%20y.db").location == "x y.db"
    relative = open_store("sqlite:///data.db")
    absolute = open_store(f"sqlite:///{tmp_path / 'abs.db'}")
    try:
        assert relative.migrate() == absolute.migrate() == schema.LATEST
    finally:
        relative.close()
        absolute.close()
    assert (tmp_path / "data.db").exists()
    assert (tmp_path / "abs.db").exists()
    with pytest.raises(StoreError, match=r"sqlite:///relative\.db"):
        parse_url("sqlite://host/db")


def test_postgres_urls_keep_the_dsn_and_take_an_optional_schema() -> None:
    target = parse_url(f"postgres://u:{SECRET}@db:5433/app?sslmode=require&schema=tenant1")
    assert target.kind == "postgres"
    assert target.location == f"postgresql://u:{SECRET}@db:5433/app?sslmode=require"
    assert target.schema == "tenant1"
    assert parse_url("postgresql://db/app").schema is None


@pytest.mark.parametrize(
    "url",
    [f"mysql://root:{SECRET}@db/app", f"redis://:{SECRET}@cache", "autojoin.db", "http://x"],
)
def test_unknown_schemes_name_only_the_scheme(url: str) -> None:
    with pytest.raises(StoreError, match="unsupported database URL scheme") as caught:
        open_store(url)
    assert SECRET not in str(caught.value)
    assert "db/app" not in str(caught.value)


def test_masking() -> None:
    assert mask_url(f"postgresql://app:{SECRET}@h:5432/db") == "postgresql://app:***@h:5432/db"
    assert (
        mask_url(f"postgresql://h/db?password={SECRET}&x=1") == "postgresql://h/db?password=***&x=1"
    )
    assert mask_url("postgresql://app@h/db") == "postgresql://app@h/db"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_a_failed_postgres_connection_does_not_reveal_the_password() -> None:
    url = f"postgresql://app:{SECRET}@127.0.0.1:1/nowhere"
    with pytest.raises(StoreError, match="cannot connect") as caught:
        open_store(url)
    assert SECRET not in str(caught.value)
    assert "PostgreSQL at 127.0.0.1:1/nowhere: cannot connect: " in str(caught.value)
    assert "app" not in str(caught.value).split("cannot connect")[0], "no user name either"
    with pytest.raises(StoreError) as malformed:
        PostgresStore(f"postgresql://app:{SECRET}@127.0.0.1:1/x?bogus_option=1")
    assert SECRET not in str(malformed.value)


@pytest.mark.postgres
def test_postgres_repr_masks_the_password(pg_dsn: str) -> None:
    # The test server trusts local connections, so any password is accepted and ignored.
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    dsn = f"postgresql://{info.get('user', 'postgres')}:{SECRET}@{info.get('host', '127.0.0.1')}"
    dsn += f":{info.get('port', 5432)}/{info.get('dbname', 'test')}"
    store = PostgresStore(dsn)
    try:
        assert SECRET not in repr(store)
        assert ":***@" in repr(store)
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_reconnects_once_after_the_connection_dies(pg_backend: Backend) -> None:
    store = pg_backend.open()
    store.migrate()
    store.set_state("k", "v", 1.0)
    assert isinstance(store, PostgresStore)
    assert store._conn is not None
    pid = store._conn.info.backend_pid
    assert pg_backend.execute("SELECT pg_terminate_backend(?)", (pid,)) == [(True,)]
    assert store.get_state("k") == "v"  # the broken connection was replaced
    store.set_state("k", "w", 2.0)
    assert store.get_state("k") == "w"


def test_an_urgent_sqlite_connection_waits_for_the_write_lock_instead_of_failing(
    tmp_path: Path,
) -> None:
    """The acknowledgement path's connection has no SQLite busy wait of its own: it polls.
    While another connection holds the write lock, its commit waits and then lands."""
    path = tmp_path / "autojoin.db"
    urgent = open_store(f"sqlite:///{path}", urgent=True)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        timer = threading.Timer(0.3, lambda: other.execute("ROLLBACK"))
        timer.start()
        job = NewJob("resolve_user", {"u": 1})
        assert urgent.accept_events([("k1", "ONUSERADD", [job])], 1.0) == [True]
        timer.join()
        assert urgent.counts()["pending"] == 1
    finally:
        other.close()
        urgent.close()
