"""Operations: /metrics with closed label sets, hot reload of rules.yaml, JSON logs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from bot.logsafe import configure_logging
from bot.sandbox.events import APP_TOKEN, auth_block, event_body, user_add
from tests.harness import Harness, open_harness

pytestmark = pytest.mark.anyio


def series(text: str, name: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


async def test_metrics_count_events_rest_calls_and_jobs(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        user = h.portal.upsert_user(60, name="Mia", departments=[4])
        await h.post(user_add(user, token=APP_TOKEN))
        await h.post(user_add(user, token=APP_TOKEN))
        await h.post(user_add(user, token="forged"))
        await h.drain()
        text = (await h.client.get("/metrics")).text
        events = series(text, "autojoin_events_total")
        assert events['autojoin_events_total{event="ONUSERADD",outcome="accepted"}'] == 1
        assert events['autojoin_events_total{event="ONUSERADD",outcome="duplicate"}'] == 1
        rejected = series(text, "autojoin_events_rejected_total")
        assert rejected['autojoin_events_rejected_total{reason="token"}'] == 1
        calls = series(text, "autojoin_rest_calls_total")
        assert calls['autojoin_rest_calls_total{code="ok",method="batch"}'] >= 1
        jobs = series(text, "autojoin_jobs")
        assert jobs['autojoin_jobs{state="done"}'] == 3  # resolve + two adds
        assert jobs['autojoin_jobs{state="pending"}'] == 0
        digest = h.services.rules.current.digest[:16]
        assert f'autojoin_rules_info{{sha256="{digest}"}} 1.0' in text
        latency = series(text, "autojoin_event_to_membership_seconds_count")
        assert sum(latency.values()) == 2


async def test_a_flood_of_unknown_event_names_cannot_grow_the_series(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        auth, ts = auth_block(APP_TOKEN), int(h.clock())
        for i in range(300):
            body = event_body(f"ONEVIL{i}", {"ID": i}, auth, ts=ts, handler_id=i)
            assert (await h.post(body)).status_code == 200
            await h.post(b"event=ONEVIL%d&data=1" % i)  # no token: rejected
        text = (await h.client.get("/metrics")).text
        labels = set(re.findall(r'event="([^"]+)"', text))
        assert labels <= {"ONUSERADD", "other"} | set(h.services.router.events)
        assert not any("EVIL" in line for line in text.splitlines())
        events = series(text, "autojoin_events_total")
        assert events['autojoin_events_total{event="other",outcome="ignored"}'] == 300


async def test_a_valid_edit_is_swapped_in_and_an_invalid_one_keeps_the_last_good_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_harness(tmp_path) as h:
        holder = h.services.rules
        path = tmp_path / "rules.yaml"
        original = holder.current
        path.write_text(
            path.read_text().replace("name: sales-all-hands", "name: sales-everyone"), "utf-8"
        )
        assert holder.changed()
        with caplog.at_level(logging.INFO, logger="autojoin.rules"):
            assert holder.reload()
        assert holder.current is not original
        assert holder.current.rule("sales-everyone") is not None
        [swapped] = [r for r in caplog.records if "rules reloaded" in r.getMessage()]
        assert swapped.levelno == logging.INFO, "a wanted change is no warning"
        assert "added sales-everyone; removed sales-all-hands" in swapped.getMessage()
        good = holder.current
        path.write_text(path.read_text() + "  - name: broken\n    chats: []\n    bogus: 1\n")
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="autojoin.rules"):
            assert not holder.reload()
        assert holder.current is good
        assert re.search(r"rules\.yaml:\d+:\d+: ", caplog.text)
        health = (await h.client.get("/healthz")).json()
        assert health["status"] == "degraded"
        assert health["reasons"][0]["check"] == "rules"
        assert all(re.search(r":\d+:\d+: ", e) for e in health["reasons"][0]["errors"])
        # Jobs queued before the edit keep their settings; a fixed file clears the state.
        path.write_text(path.read_text().split("  - name: broken")[0])
        assert holder.reload() is False  # same content as the last good rules
        assert (await h.client.get("/healthz")).json()["status"] == "ok"


async def json_log_lines(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    scenario: Callable[[Harness], Awaitable[None]],
) -> list[dict[str, Any]]:
    """Run `scenario` with JSON logs at INFO, then drain the worker; every line, parsed."""
    configure_logging("INFO", "json")
    try:
        async with open_harness(tmp_path) as h:
            await scenario(h)
            await h.drain()
    finally:
        configure_logging("WARNING", "text")
    return [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.strip()]


async def test_json_logs_are_one_object_per_line_with_a_stable_event_id(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    async def hire(h: Harness) -> None:
        user = h.portal.upsert_user(61, name="Jo", departments=[4])
        await h.post(user_add(user, token=APP_TOKEN))

    lines = await json_log_lines(tmp_path, capfd, hire)
    accepted = [x for x in lines if "accepted" in x["msg"]]
    assert len(accepted) == 1
    event_id = accepted[0]["event_id"]
    followed = [x for x in lines if x.get("event_id") == event_id and "chat" in x["msg"]]
    assert len(followed) == 2  # one line per chat the user was added to
    assert "sandboxcode" not in json.dumps(lines)


async def test_events_committed_together_share_one_line_that_names_each(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    ids_of_users = range(70, 75)

    async def hire_together(h: Harness) -> None:
        async with anyio.create_task_group() as tg:
            for uid in ids_of_users:
                user = h.portal.upsert_user(uid, name=f"U{uid}", departments=[4])
                tg.start_soon(h.post, user_add(user, token=APP_TOKEN))

    lines = await json_log_lines(tmp_path, capfd, hire_together)
    [group] = [x for x in lines if "accepted" in x["msg"]]
    ids = group["event_ids"]
    assert len(ids) == 5
    assert len(set(ids)) == 5
    assert all(f"{i} ONUSERADD accepted key=" in group["msg"] for i in ids)
    # The worker adds all five to each chat in one request and says so in one line per chat,
    # naming every user with their event and job.
    chats = [x for x in lines if x["msg"].startswith("chat ")]
    assert len(chats) == 2
    for line in chats:
        assert sorted(line["event_ids"]) == sorted(ids)
        assert all(f"user {uid} added [" in line["msg"] for uid in ids_of_users)
