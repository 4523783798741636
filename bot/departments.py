"""Departments: the portal's tree, its cache, and who is under what.

The one home for the idea. `DepartmentTree` is the tree as `department.get` returns it,
`DepartmentDirectory` caches it over REST, and `departments_of` reads a `user.get` row's
`UF_DEPARTMENT`. "Under" always means: one of the person's departments, or an ancestor of
one, is the department in question (`DepartmentTree.under`).

Portal data can be wrong (a parent that was deleted, a cycle after a bad import), and rule
matching walks parent chains on every event, so the tree is repaired once when it is built:
a dangling parent or a cycle makes that department a root, and the repair is recorded in
`anomalies`. After that every walk ends, and none of them recurses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from bot.errors import PortalRateLimited

log = logging.getLogger("autojoin.directory")


def positive_id(value: object) -> int | None:
    """A positive department ID from a REST value ("15", 15), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdecimal():
        number = int(value.strip())
        return number if number > 0 else None
    return None


def departments_of(row: Mapping[str, object]) -> tuple[int, ...]:
    """The positive department IDs of a `user.get` row, in order, without repeats."""
    raw = row.get("UF_DEPARTMENT")
    values = raw if isinstance(raw, list) else [] if raw in (None, "", False) else [raw]
    return tuple(dict.fromkeys(d for d in map(positive_id, values) if d is not None))


def _repair(parents: dict[int, int | None], notes: list[str]) -> dict[int, int | None]:
    """Make dangling and self parents roots, then cut each cycle at its smallest ID."""
    for ident, parent in sorted(parents.items()):
        if parent is not None and (parent not in parents or parent == ident):
            notes.append(f"department {ident} has parent {parent}, which is missing or itself")
            parents[ident] = None
    state: dict[int, int] = {}  # 1 = on the current walk, 2 = known to reach a root
    for start in sorted(parents):
        walk: list[int] = []
        node: int | None = start
        while node is not None and node not in state:
            state[node] = 1
            walk.append(node)
            node = parents[node]
        if node is not None and state[node] == 1:
            cycle = walk[walk.index(node) :]
            root = min(cycle)
            notes.append(f"departments {sorted(cycle)} form a cycle; {root} made a root")
            parents[root] = None
        for seen in walk:
            state[seen] = 2
    return parents


class DepartmentTree:
    """Departments by ID with parent links guaranteed acyclic."""

    __slots__ = ("_by_name", "_children", "_names", "_parents", "anomalies")

    def __init__(
        self,
        names: Mapping[int, str],
        parents: Mapping[int, int | None],
        notes: Iterable[str] = (),
    ) -> None:
        self._names = dict(names)
        repairs: list[str] = []
        self._parents = _repair({i: parents.get(i) for i in self._names}, repairs)
        self.anomalies: tuple[str, ...] = (*notes, *repairs)
        self._children: dict[int, list[int]] = {i: [] for i in self._names}
        for child in sorted(self._parents):
            parent = self._parents[child]
            if parent is not None:
                self._children[parent].append(child)
        self._by_name: dict[str, list[int]] = {}
        for ident in sorted(self._names):
            self._by_name.setdefault(self._names[ident], []).append(ident)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]]) -> DepartmentTree:
        """Build from `department.get` rows: `{"ID": "15", "NAME": "R&D", "PARENT": "1"}`."""
        names: dict[int, str] = {}
        parents: dict[int, int | None] = {}
        skipped: list[str] = []
        for row in rows:
            ident = positive_id(row.get("ID"))
            if ident is None or ident in names:
                skipped.append(f"row {row.get('ID')!r} skipped: missing or repeated ID")
                continue
            raw_name = row.get("NAME")
            names[ident] = raw_name if isinstance(raw_name, str) else ""
            parents[ident] = positive_id(row.get("PARENT"))
        return cls(names, parents, skipped)

    @property
    def ids(self) -> tuple[int, ...]:
        """Every known department ID, ascending."""
        return tuple(sorted(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def contains(self, ident: int) -> bool:
        return ident in self._names

    def name(self, ident: int) -> str | None:
        return self._names.get(ident)

    def parent(self, ident: int) -> int | None:
        """The parent ID, or None for a root or an unknown department."""
        return self._parents.get(ident)

    def children(self, ident: int) -> tuple[int, ...]:
        """Direct sub-departments, ascending."""
        return tuple(self._children.get(ident, ()))

    def roots(self) -> tuple[int, ...]:
        """Departments without a parent (after repair), ascending."""
        return tuple(i for i in sorted(self._names) if self._parents[i] is None)

    def ancestors(self, ident: int) -> tuple[int, ...]:
        """The chain to the root, self first. An unknown ID is its own one-element chain."""
        chain = [ident]
        parent = self._parents.get(ident)
        while parent is not None:
            chain.append(parent)
            parent = self._parents[parent]
        return tuple(chain)

    def descendants(self, ident: int) -> tuple[int, ...]:
        """The subtree under `ident`, self first, in depth-first order."""
        out: list[int] = []
        stack = [ident]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(self._children.get(node, ())))
        return tuple(out)

    def under(self, departments: Iterable[int], allowed: Iterable[int]) -> bool:
        """Is any of `departments`, or one of their ancestors, in `allowed`?"""
        wanted = set(allowed)
        return any(a in wanted for d in departments for a in self.ancestors(d))

    def by_name(self, name: str) -> list[int]:
        """IDs of departments whose name is exactly `name`, ascending."""
        return list(self._by_name.get(name, ()))

    def label(self, ident: int) -> str:
        """ "Sales (2)" for messages; unknown IDs read "department 42"."""
        name = self._names.get(ident)
        return f"department {ident}" if name is None else f"{name} ({ident})"

    def path_names(self, ident: int) -> str:
        """ "Example Corp / Sales / Sales EMEA", root first, for `explain`."""
        return " / ".join(
            self._names.get(i, f"department {i}") for i in reversed(self.ancestors(ident))
        )


class RowReader(Protocol):
    """The one REST call the directory makes (`PortalClient` has it)."""

    async def call_list(
        self, method: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> list[Any]: ...


class DepartmentDirectory:
    """The tree over `department.get`, cached with a TTL.

    An ID the cache does not know forces a refresh (a department created since the last
    fetch), but at most once per `unknown_refresh` seconds so a bogus ID cannot cause a storm;
    until then the job waits (a retry at the refresh time) instead of matching too little.
    """

    def __init__(
        self,
        client: RowReader,
        *,
        clock: Callable[[], float],
        ttl: float = 600.0,
        unknown_refresh: float = 30.0,
    ) -> None:
        self._client = client
        self._clock = clock
        self._ttl = ttl
        self._unknown_refresh = unknown_refresh
        self._tree: DepartmentTree | None = None
        self._fetched_at = float("-inf")
        self.fetches = 0

    async def tree(self, require: Iterable[int] = ()) -> DepartmentTree:
        now = self._clock()
        tree = self._tree
        stale = tree is None or now - self._fetched_at > self._ttl
        missing = tree is not None and any(not tree.contains(d) for d in require)
        if stale:
            return await self.refresh()
        assert tree is not None
        if missing:
            retry_at = self._fetched_at + self._unknown_refresh
            if now < retry_at:
                raise PortalRateLimited(
                    "department.get",
                    "DEPARTMENT_UNKNOWN",
                    "a department newer than the cached tree; refreshing soon",
                    reset_at=retry_at,
                )
            return await self.refresh()
        return tree

    async def refresh(self) -> DepartmentTree:
        rows = await self._client.call_list("department.get", {})
        self._tree = DepartmentTree.from_rows(rows)
        self._fetched_at = self._clock()
        self.fetches += 1
        log.debug("department tree refreshed: %d departments", len(self._tree.ids))
        return self._tree
