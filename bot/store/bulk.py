"""Multi-row INSERTs in the shape each database handles best.

SQLite gets `VALUES (?, …), (?, …)` lists of up to `ROWS` rows: its statements are cheap to
prepare. PostgreSQL gets one statement text per table whatever the number of rows, with one
binary array per column (`SELECT … FROM unnest(%b::text[], …) WITH ORDINALITY`): psycopg parses and
prepares a text once instead of for every new row count (a long VALUES list is never cached),
and the rows still go in, and get their ids, in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

T = TypeVar("T")
Row = tuple[Any, ...]
ROWS: Final = 400  # rows per SQLite statement: well under its variable limit


class BulkTx(Protocol):
    dialect: str

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

    def count(self, sql: str, params: Sequence[object] = ()) -> int: ...


@dataclass(frozen=True, slots=True)
class Bulk:
    """`INSERT INTO table`: `columns` get one value per row, as (name, PostgreSQL array type);
    `fixed` columns get the same SQL literal in every row; `tail` follows (ON CONFLICT …)."""

    table: str
    columns: tuple[tuple[str, str], ...]
    fixed: tuple[tuple[str, str], ...] = ()
    tail: str = ""

    def _names(self) -> str:
        return ", ".join([name for name, _ in self.columns] + [name for name, _ in self.fixed])

    def values(self, count: int) -> str:
        row = "(" + ", ".join(["?"] * len(self.columns) + [v for _, v in self.fixed]) + ")"
        return f"INSERT INTO {self.table} ({self._names()}) VALUES {', '.join([row] * count)}"

    def unnest(self) -> str:
        names = [f"c{i}" for i in range(len(self.columns))]
        # %b: arrays travel in binary, ~3× less CPU than psycopg's text quoting per element.
        # This text only ever goes to PostgreSQL, so it may hold a `%` placeholder.
        arrays = ", ".join(f"%b::{kind}[]" for _, kind in self.columns)
        picked = ", ".join(names + [v for _, v in self.fixed])
        return (
            f"INSERT INTO {self.table} ({self._names()}) SELECT {picked}"
            f" FROM unnest({arrays}) WITH ORDINALITY AS t({', '.join(names)}, n) ORDER BY n"
        )


_NUMBERS: Final = {"float8": float, "int8": int, "int4": int}


def _typed(column: Sequence[Any], kind: str) -> list[Any]:
    """One Python type per binary array (psycopg picks the element dumper from one value)."""
    convert = _NUMBERS.get(kind)
    if convert is None:
        return list(column)
    return [None if v is None else convert(v) for v in column]


def chunks(items: Sequence[T], size: int = ROWS) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def insert(tx: BulkTx, spec: Bulk, rows: Sequence[Row]) -> tuple[int, list[Row]]:
    """Insert `rows` (one value per column of `spec.columns`, in order); return how many rows
    went in and what `RETURNING` in `spec.tail` gave back."""
    if not rows:
        return 0, []
    if tx.dialect == "postgres":
        statement = spec.unnest() + spec.tail
        arrays = [
            _typed(column, kind)
            for column, (_, kind) in zip(zip(*rows, strict=True), spec.columns, strict=True)
        ]
        if "RETURNING" in spec.tail:
            back = tx.rows(statement, arrays)
            return len(back), back
        return tx.count(statement, arrays), []
    inserted, returned = 0, list[Row]()
    for chunk in chunks(rows):
        statement = spec.values(len(chunk)) + spec.tail
        params = [v for row in chunk for v in row]
        if "RETURNING" in spec.tail:
            back = tx.rows(statement, params)
            inserted += len(back)
            returned += back
        else:
            inserted += tx.count(statement, params)
    return inserted, returned
