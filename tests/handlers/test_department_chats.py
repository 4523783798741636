"""department_chats: ONUSERADD + rules → one resolve job, pure (no store, no portal, no clock)."""

from __future__ import annotations

from typing import Any

import pytest

import handlers
from bot.errors import MalformedEvent
from bot.events import Event, Verifier, parse_event
from bot.jobs import RESOLVE_USER
from bot.routing import HandlerContext
from bot.rules import parse_rules
from bot.sandbox.events import APP_TOKEN, user_add
from handlers.department_chats import join_department_chats

RULES = parse_rules(
    """
version: 1
defaults: {hide_history: false}
rules:
  - name: sales
    departments: [2]
    chats: [101]
  - name: marketing-keyword
    keywords: ["join marketing"]
    chats: [103]
"""
)
CTX = HandlerContext(rules=RULES)
ANNA: dict[str, Any] = {
    "ID": 8,
    "ACTIVE": True,
    "NAME": "Anna",
    "LAST_NAME": "Petrova",
    "UF_DEPARTMENT": [3, 2],
}


def arrives(**fields: Any) -> Event:
    return parse_event(user_add(ANNA | fields, token=APP_TOKEN), Verifier(tokens=(APP_TOKEN,)))


def test_a_new_employee_becomes_one_resolve_job() -> None:
    dispatch = join_department_chats(arrives(), CTX)
    assert (dispatch.key, dispatch.note) == ("user:8", "")
    [job] = dispatch.jobs
    assert (job.kind, job.dedupe_key, job.event_key) == (RESOLVE_USER, "user:8:resolve", None)
    assert job.payload == {"user_id": 8, "departments": [3, 2], "name": "Anna Petrova"}


def test_the_service_routes_onuseradd_here() -> None:
    assert handlers.router.handler_for("ONUSERADD") is join_department_chats


@pytest.mark.parametrize(
    ("fields", "name"),
    [({"LAST_NAME": ""}, "Anna"), ({"NAME": "", "LAST_NAME": "Petrova"}, "Petrova"),
     ({"NAME": "", "LAST_NAME": ""}, "")],
)  # fmt: skip
def test_the_name_is_what_the_portal_has(fields: dict[str, Any], name: str) -> None:
    [job] = join_department_chats(arrives(**fields), CTX).jobs
    assert job.payload["name"] == name


def test_one_department_sent_as_a_scalar_counts() -> None:
    [job] = join_department_chats(arrives(UF_DEPARTMENT=5), CTX).jobs
    assert job.payload["departments"] == [5]


@pytest.mark.parametrize(
    ("fields", "note"),
    [
        ({"ACTIVE": False}, "user is inactive"),
        ({"UF_DEPARTMENT": []}, "user has no department (extranet)"),
    ],
)
def test_who_cannot_join_is_acknowledged_without_work(fields: dict[str, Any], note: str) -> None:
    dispatch = join_department_chats(arrives(**fields), CTX)
    assert (dispatch.key, dispatch.jobs, dispatch.note) == ("user:8", (), note)


def test_without_an_enabled_department_rule_nothing_is_resolved() -> None:
    only_keywords = HandlerContext(
        rules=parse_rules(
            "version: 1\ndefaults: {hide_history: false}\nrules:\n"
            "  - {name: off, enabled: false, departments: [2], chats: [101]}\n"
            "  - {name: kw, keywords: [hello], chats: [103]}\n"
        )
    )
    dispatch = join_department_chats(arrives(), only_keywords)
    assert (dispatch.jobs, dispatch.note) == ((), "no enabled department rules")


def test_an_event_without_a_user_id_is_malformed() -> None:
    parsed = arrives()
    data = {k: v for k, v in parsed.data.items() if k != "ID"}
    with pytest.raises(MalformedEvent, match=r"data\[ID\] is missing"):
        join_department_chats(Event(parsed.name, data, parsed.member_id, parsed.domain), CTX)
