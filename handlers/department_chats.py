"""A new employee joins the chats their departments map to.

ONUSERADD fires at the user's first login. The handler only records who arrived and in
which departments; the worker resolves departments against the live tree (subdepartments
need `department.get`) and turns them into chat adds.
"""

from __future__ import annotations

from bot.events import Event
from bot.jobs import RESOLVE_USER, NewJob
from bot.routing import Dispatch, HandlerContext, Router

router = Router()


@router.register("ONUSERADD")
def join_department_chats(event: Event, ctx: HandlerContext) -> Dispatch:
    user_id = event.require_int("ID")
    key = f"user:{user_id}"
    departments = event.get_ints("UF_DEPARTMENT")
    if event.get_flag("ACTIVE") is False:
        return Dispatch(key, note="user is inactive")
    if not departments:
        return Dispatch(key, note="user has no department (extranet)")
    if not any(rule.enabled and rule.kind == "departments" for rule in ctx.rules.rules):
        return Dispatch(key, note="no enabled department rules")
    name = " ".join(
        part for part in (event.get_str("NAME"), event.get_str("LAST_NAME")) if part
    ).strip()
    job = NewJob(
        RESOLVE_USER,
        {"user_id": user_id, "departments": departments, "name": name},
        dedupe_key=f"{key}:resolve",
    )
    return Dispatch(key, (job,))
