"""Typed job payloads: what the store keeps must read back the same, old payloads included."""

from __future__ import annotations

import json

import pytest

from bot.jobs import (
    ADD_TO_CHAT,
    REMOVE_FROM_CHAT,
    AuditEntry,
    ChatAdd,
    ChatRemove,
    Job,
    NewJob,
    audit_entry,
    event_id,
)


def stored(new: NewJob, job_id: int = 9) -> Job:
    """The job as the store hands it back: the payload went through JSON."""
    payload = json.loads(json.dumps(dict(new.payload)))
    return Job(
        job_id, new.kind, payload, "running", 1, 0.0, 0.0, 0.0,
        new.dedupe_key, new.event_key, new.group,
    )  # fmt: skip


ADD = ChatAdd(101, 8, True, ("sales", "emea"), ("in Sales", "in EMEA"), 1_700_000_000.25)


def test_chat_add_round_trips_through_a_stored_job() -> None:
    new = ADD.to_job("ev-1", "portal:user:8")
    assert (new.kind, new.dedupe_key, new.event_key, new.group) == (
        ADD_TO_CHAT,
        "ev-1:add:101:8",
        "portal:user:8",
        "101:Y",
    )
    assert ChatAdd.from_job(stored(new)) == ADD


def test_the_group_separates_history_settings_of_one_chat() -> None:
    visible = ChatAdd(101, 8, False).to_job("s", None)
    hidden = ChatAdd(101, 9, True).to_job("s", None)
    assert (visible.group, hidden.group) == ("101:N", "101:Y")
    assert (
        ChatAdd(101, 8, False).to_job("s", None).group
        == ChatAdd(101, 7, False).to_job("t", "e").group
    )


def test_a_chat_add_without_accepted_at_leaves_it_out_of_the_payload() -> None:
    new = ChatAdd(101, 8, False).to_job("s", None)
    assert "accepted_at" not in new.payload
    assert ChatAdd.from_job(stored(new)).accepted_at is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # written before accepted_at existed
        (
            {"chat_id": 101, "user_id": 8, "hide_history": True, "rules": ["r"], "reasons": ["x"]},
            ChatAdd(101, 8, True, ("r",), ("x",), None),
        ),
        # the oldest shape: ids as strings, no history flag, no rules or reasons
        ({"chat_id": "101", "user_id": "8"}, ChatAdd(101, 8, False)),
        # garbage in the optional lists reads as empty, an integer timestamp as a float
        (
            {"chat_id": 1, "user_id": 2, "rules": "r", "reasons": None, "accepted_at": 5},
            ChatAdd(1, 2, False, (), (), 5.0),
        ),
    ],
)
def test_old_chat_add_payloads_still_read(payload: dict[str, object], expected: ChatAdd) -> None:
    assert ChatAdd.from_job(stored(NewJob(ADD_TO_CHAT, payload))) == expected


def test_a_chat_add_without_ids_is_refused() -> None:
    with pytest.raises(KeyError):
        ChatAdd.from_job(stored(NewJob(ADD_TO_CHAT, {"chat_id": 1})))


def test_chat_remove_round_trips_with_what_it_forgets() -> None:
    remove = ChatRemove(104, 12, ("eng",), ("left Engineering",), (("eng", 104), ("old", 104)))
    new = remove.to_job("reconcile:7", None)
    assert (new.kind, new.dedupe_key, new.group) == (
        REMOVE_FROM_CHAT,
        "reconcile:7:remove:104:12",
        "104:remove",
    )
    assert new.payload["forget"] == [["eng", 104], ["old", 104]]
    assert ChatRemove.from_job(stored(new)) == remove


def test_an_old_chat_remove_without_forget_reads() -> None:
    job = stored(NewJob(REMOVE_FROM_CHAT, {"chat_id": 104, "user_id": "12"}))
    assert ChatRemove.from_job(job) == ChatRemove(104, 12)


def test_audit_entry_of_an_add() -> None:
    job = stored(ADD.to_job("ev-1", "portal:user:8"), job_id=42)
    entry = audit_entry(job, ADD, 1_700_000_100.0, "added")
    assert entry == AuditEntry(
        1_700_000_100.0, "portal:user:8", "sales,emea", 101, 8, True, "added",
        None, "in Sales; in EMEA", 42,
    )  # fmt: skip


def test_audit_entry_of_a_remove_and_of_a_change_without_rules() -> None:
    remove = ChatRemove(104, 12)
    job = stored(remove.to_job("s", None), job_id=3)
    entry = audit_entry(job, remove, 5.0, "dead", "ACCESS_DENIED_KICK")
    assert (entry.rule, entry.detail, entry.hide_history) == (None, None, False)
    assert (entry.outcome, entry.code, entry.job_id, entry.event_key) == (
        "dead",
        "ACCESS_DENIED_KICK",
        3,
        None,
    )


def test_event_id_is_short_stable_and_distinct() -> None:
    assert event_id(None) == event_id("") == "-"
    first = event_id("portal:user:8")
    assert first == event_id("portal:user:8")
    assert len(first) == 12
    assert all(c in "0123456789abcdef" for c in first)
    assert first != event_id("portal:user:9")
    assert "portal" not in first
