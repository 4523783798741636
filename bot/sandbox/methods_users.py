"""`user.get` and `department.get`: the directory the service reads rules against (§4)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from bot.sandbox.methods import (
    Context,
    Params,
    Reply,
    RestError,
    as_list,
    page,
    to_int,
    truthy_flag,
)
from bot.sandbox.state import Department, PortalState, User

_CONTROL_KEYS: Final = frozenset(
    {"SORT", "ORDER", "START", "SELECT", "ADMIN_MODE", "IMAGE_RESIZE", "FILTER", "NAME_SEARCH"}
)
# Longest first so ">=" is not read as ">" followed by "=FIELD".
_OPERATORS: Final = ("!@", "!=", ">=", "<=", "@", "!", "=", ">", "<")
_COMPARE: Final[dict[str, Callable[[Any, Any], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def user_row(user: User) -> dict[str, Any]:
    return {
        "ID": str(user.id),
        "ACTIVE": user.active,
        "NAME": user.name,
        "LAST_NAME": user.last_name,
        "EMAIL": user.email,
        "UF_DEPARTMENT": list(user.departments),
        "USER_TYPE": user.user_type,
        "TIMESTAMP_X": user.timestamp_x,
        "DATE_REGISTER": user.date_register,
        "LAST_LOGIN": user.last_login,  # "" until the first login (an invited user)
    }


def _split(key: str) -> tuple[str, str]:
    for op in _OPERATORS:
        if key.startswith(op):
            return op, key[len(op) :].upper()
    return "", key.upper()


# The user's values for each filter field (several for UF_DEPARTMENT). Built once, not per
# user: a full read of a 10,000-user company filters every user on every one of its pages.
_SCALAR: Final[dict[str, Callable[[User], Any]]] = {
    "ID": operator.attrgetter("id"),
    "ACTIVE": operator.attrgetter("active"),
    "USER_TYPE": operator.attrgetter("user_type"),
    "TIMESTAMP_X": lambda user: _when(user.timestamp_x),
    "DATE_REGISTER": lambda user: _when(user.date_register),
    "NAME": operator.attrgetter("name"),
    "LAST_NAME": operator.attrgetter("last_name"),
    "EMAIL": operator.attrgetter("email"),
}
_MULTI: Final[dict[str, Callable[[User], Iterable[Any]]]] = {
    "UF_DEPARTMENT": operator.attrgetter("departments"),
}
Test = Callable[[User], bool]
# `sort`: ID by default; an unknown field keeps ID order. Dates sort by their ISO text.
_SORTABLE: Final[dict[str, Callable[[User], Any]]] = {
    "NAME": operator.attrgetter("name"),
    "LAST_NAME": operator.attrgetter("last_name"),
    "EMAIL": operator.attrgetter("email"),
    "DATE_REGISTER": operator.attrgetter("date_register"),
    "TIMESTAMP_X": operator.attrgetter("timestamp_x"),
}


def _when(text: Any) -> datetime:
    try:
        return _stamp(str(text))
    except ValueError:
        raise RestError("ERROR_ARGUMENT", f"Invalid date value: {text!r}") from None


@functools.lru_cache(maxsize=1 << 16)
def _stamp(text: str) -> datetime:
    """Parsed once per distinct stamp: `>TIMESTAMP_X` reads every user's on every page."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _wanted(name: str, raw: Any) -> list[Any]:
    """Filter values converted to the field's type, so "7" matches department 7."""
    values = as_list(raw)
    if name in ("ID", "UF_DEPARTMENT"):
        return [n for n in (to_int(v) for v in values) if n is not None]
    if name == "ACTIVE":
        return [truthy_flag(v) for v in values]
    if name in ("TIMESTAMP_X", "DATE_REGISTER"):
        return [_when(v) for v in values]
    return [str(v) for v in values]


def _clause(key: str, raw: Any) -> Test | None:
    """One filter entry as a test; None for fields the portal skips (outside the scope).

    A bad filter value fails only when a user reaches this clause, as it did when the value
    was converted per user: a request whose earlier clauses match nobody still succeeds.
    """
    op, name = _split(key)
    scalar, multi = _SCALAR.get(name), _MULTI.get(name)
    if multi is not None:
        have = multi
    elif scalar is not None:
        have = _one(scalar)
    else:
        return None
    try:
        want = _wanted(name, raw)
    except RestError as exc:
        return _fails(have, exc)
    if op in _COMPARE:
        if not want:
            return lambda user: _never(have(user))
        compare, bound = _COMPARE[op], want[0]
        if scalar is not None:
            return lambda user: compare(scalar(user), bound)
        return lambda user: any(compare(h, bound) for h in have(user))
    wanted = frozenset(want)
    negate = op.startswith("!")
    if scalar is not None:
        return lambda user: (scalar(user) in wanted) is not negate
    return lambda user: (not wanted.isdisjoint(have(user))) is not negate


def _one(get: Callable[[User], Any]) -> Callable[[User], Iterable[Any]]:
    return lambda user: (get(user),)


def _never(_: Iterable[Any]) -> bool:
    """No comparison value: nobody matches (the user's value is still read, as before)."""
    return False


def _fails(have: Callable[[User], Iterable[Any]], exc: RestError) -> Test:
    def test(user: User) -> bool:
        have(user)
        raise exc

    return test


def compile_filter(filters: Params) -> Test | None:
    """All clauses, in the request's order, stopping at the first miss; None keeps everyone."""
    tests = [t for key, raw in filters.items() if (t := _clause(str(key), raw)) is not None]
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda user: all(test(user) for test in tests)


def user_get(ctx: Context, params: Params) -> Reply:
    # Quirk [src]: without FILTER the whole top-level query is the filter.
    raw_filter = params.get("FILTER")
    if isinstance(raw_filter, dict):
        filters = dict(raw_filter)
    else:
        filters = {k: v for k, v in params.items() if k not in _CONTROL_KEYS}
    matches = compile_filter(filters)
    users = sorted(ctx.state.users.values(), key=operator.attrgetter("id"))
    sort_key = _SORTABLE.get(str(params.get("SORT") or "ID").upper())
    if sort_key is not None:
        users.sort(key=sort_key)  # stable: ties stay in ID order
    if str(params.get("ORDER", "")).upper() == "DESC":
        users.reverse()
    if matches is not None:
        users = [u for u in users if matches(u)]
    reply = page(users, params.get("START"))
    return replace(reply, result=[user_row(u) for u in reply.result])


def tree_order(state: PortalState) -> list[Department]:
    """Nested-set pre-order (the portal's LEFT_MARGIN order): parents before children."""
    children: dict[int | None, list[Department]] = {}
    for dept in state.departments.values():
        parent = dept.parent if dept.parent in state.departments else None
        children.setdefault(parent, []).append(dept)
    ordered: list[Department] = []
    stack = sorted(children.get(None, []), key=lambda d: (d.sort, d.id), reverse=True)
    while stack:
        dept = stack.pop()
        ordered.append(dept)
        stack.extend(sorted(children.get(dept.id, []), key=lambda d: (d.sort, d.id), reverse=True))
    return ordered


def department_row(dept: Department) -> dict[str, Any]:
    row: dict[str, Any] = {"ID": str(dept.id), "NAME": dept.name, "SORT": dept.sort}
    if dept.parent is not None:
        row["PARENT"] = str(dept.parent)
    return row


def department_get(ctx: Context, params: Params) -> Reply:
    raw_filter = params.get("FILTER")
    filters = (
        {str(k).upper(): v for k, v in raw_filter.items()}
        if isinstance(raw_filter, dict)
        else params
    )
    ids = _wanted("ID", filters["ID"]) if "ID" in filters else None
    parents = _wanted("ID", filters["PARENT"]) if "PARENT" in filters else None
    name = str(filters["NAME"]) if "NAME" in filters else None
    rows = [
        department_row(d)
        for d in tree_order(ctx.state)
        if (ids is None or d.id in ids)
        and (parents is None or d.parent in parents)
        and (name is None or d.name == name)
    ]
    return page(rows, params.get("START"))
