"""`user.get` and `department.get`: the directory the service reads rules against (§4)."""

from __future__ import annotations

import operator
from collections.abc import Callable
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
    }


def _split(key: str) -> tuple[str, str]:
    for op in _OPERATORS:
        if key.startswith(op):
            return op, key[len(op) :].upper()
    return "", key.upper()


def _field(user: User, name: str) -> list[Any] | None:
    """The user's values for a filter field (several for UF_DEPARTMENT); None if unsupported."""
    values: dict[str, Callable[[], list[Any]]] = {
        "ID": lambda: [user.id],
        "ACTIVE": lambda: [user.active],
        "UF_DEPARTMENT": lambda: list(user.departments),
        "USER_TYPE": lambda: [user.user_type],
        "TIMESTAMP_X": lambda: [_when(user.timestamp_x)],
        "NAME": lambda: [user.name],
        "LAST_NAME": lambda: [user.last_name],
        "EMAIL": lambda: [user.email],
    }
    getter = values.get(name)
    return getter() if getter else None


def _when(text: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise RestError("ERROR_ARGUMENT", f"Invalid date value: {text!r}") from None


def _wanted(name: str, raw: Any) -> list[Any]:
    """Filter values converted to the field's type, so "7" matches department 7."""
    values = as_list(raw)
    if name in ("ID", "UF_DEPARTMENT"):
        return [n for n in (to_int(v) for v in values) if n is not None]
    if name == "ACTIVE":
        return [truthy_flag(v) for v in values]
    if name == "TIMESTAMP_X":
        return [_when(v) for v in values]
    return [str(v) for v in values]


def _matches(user: User, filters: Params) -> bool:
    for key, raw in filters.items():
        op, name = _split(str(key))
        have = _field(user, name)
        if have is None:
            continue  # unknown fields are skipped, as the portal skips fields outside the scope
        want = _wanted(name, raw)
        if op in _COMPARE:
            hit = bool(want) and any(_COMPARE[op](h, want[0]) for h in have)
        else:
            hit = any(h in want for h in have)
            if op.startswith("!"):
                hit = not hit
        if not hit:
            return False
    return True


def user_get(ctx: Context, params: Params) -> Reply:
    # Quirk [src]: without FILTER the whole top-level query is the filter.
    raw_filter = params.get("FILTER")
    if isinstance(raw_filter, dict):
        filters = dict(raw_filter)
    else:
        filters = {k: v for k, v in params.items() if k not in _CONTROL_KEYS}
    users = sorted(ctx.state.users.values(), key=lambda u: u.id)
    if str(params.get("ORDER", "")).upper() == "DESC":
        users.reverse()
    rows = [user_row(u) for u in users if _matches(u, filters)]
    return page(rows, params.get("START"))


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
