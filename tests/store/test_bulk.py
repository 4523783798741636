"""Multi-row inserts (`bot.store.bulk`): row order, dedupe and counts, past one chunk."""

from __future__ import annotations

from bot.store.base import Store
from tests.store.conftest import T0, audit, done, job


def test_many_jobs_go_in_in_order_and_skip_known_and_repeated_keys(store: Store) -> None:
    assert store.enqueue([job("seen")], T0) == 1
    wanted = [job(f"k{i}", n=i) for i in range(450)]
    batch = [*wanted[:100], job("seen", n=-1), job("k5", n=-2), job(None, n=1000), *wanted[100:]]
    assert store.enqueue(batch, T0 + 1) == 451
    claimed = store.claim("w", T0 + 2, 60, 1000)
    order = [j.payload["n"] for j in claimed if j.dedupe_key != "seen"]
    assert order == [*range(100), 1000, *range(100, 450)]


def test_a_group_of_events_keeps_the_first_of_each_key(store: Store) -> None:
    events = [(f"e{i % 300}", "ONUSERADD", [job(f"j{i}", n=i)]) for i in range(450)]
    fresh = store.accept_events(events, T0)
    assert fresh == [True] * 300 + [False] * 150
    assert store.accept_events([("e1", "ONUSERADD", [job("other")])], T0) == [False]
    claimed = store.claim("w", T0 + 1, 60, 1000)
    assert [j.payload["n"] for j in claimed] == list(range(300))


def test_whole_numbers_go_into_real_columns(store: Store) -> None:
    """Times given as ints among floats are stored as the floats they mean (PostgreSQL's
    binary arrays take one element type per array)."""
    store.enqueue([job("a")], T0)
    (claimed,) = store.claim("w", T0, 60, 1)
    entries = [audit(5, 1, 2), audit(5.5, 1, 3)]
    assert store.settle_many("w", T0 + 1, [done(claimed.id, audit=entries)]) == []
    assert sorted(e.at for e in store.history()) == [5.0, 5.5]
