"""The fake over a real socket: uvicorn in a thread, and `python -m bot.sandbox`."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.company import SALES_ALL_HANDS, WEBHOOK_CODE
from bot.sandbox.server import serve_in_thread
from tests.sandbox.v2 import FakeReceiver, bot_fields


def test_serve_in_thread_answers_rest_and_admin_over_tcp() -> None:
    portal = FakePortal()
    with portal.serve_in_thread() as base, httpx.Client(timeout=5) as http:
        assert base.startswith("http://127.0.0.1:")
        added = http.post(
            f"{portal.webhook_url(base)}im.chat.user.add",
            json={"CHAT_ID": SALES_ALL_HANDS, "USERS": [4], "HIDE_HISTORY": "N"},
        )
        assert added.json()["result"] is True
        state = http.get(f"{base}/_admin/state").json()
    chat = next(c for c in state["chats"] if c["id"] == SALES_ALL_HANDS)
    assert chat["members"] == [1, 2, 3, 4]
    assert chat["history_hidden"] == {"4": False}
    assert portal.chat_members(SALES_ALL_HANDS) == {1, 2, 3, 4}


def test_hold_blocks_a_request_from_another_thread_until_release() -> None:
    portal = FakePortal()
    answers: list[int] = []
    with portal.serve_in_thread() as base:
        url = f"{portal.webhook_url(base)}user.get"
        portal.hold()
        worker = threading.Thread(
            target=lambda: answers.append(httpx.post(url, json={}).status_code)
        )
        worker.start()
        deadline = time.monotonic() + 5
        while portal.counters.held_now == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert portal.counters.held_now == 1
        assert answers == []
        portal.release()
        worker.join(timeout=5)
    assert answers == [200]


def test_leaving_the_context_releases_a_held_request() -> None:
    portal = FakePortal()
    answers: list[int] = []
    with portal.serve_in_thread() as base:
        url = f"{portal.webhook_url(base)}user.get"
        portal.hold()
        worker = threading.Thread(
            target=lambda: answers.append(httpx.post(url, json={}).status_code)
        )
        worker.start()
        deadline = time.monotonic() + 5
        while portal.counters.held_now == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert answers == []
    worker.join(timeout=5)
    assert answers == [200]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_module_runs_standalone_without_logging_the_code() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.sandbox",
            "--port",
            str(port),
            "--company",
            "generated",
            "--users",
            "60",
            "--departments",
            "5",
            "--chats",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                state = httpx.get(f"{base}/_admin/state", timeout=1).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the sandbox did not start"
                time.sleep(0.1)
        users = httpx.post(f"{base}/rest/1/{WEBHOOK_CODE}/user.get", json={}).json()
        assert users["total"] == len(state["users"]) == 60
        assert [c["id"] for c in state["chats"]] == [1, 101, 102]
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert WEBHOOK_CODE not in out + err
    assert "fake portal (generated company)" in err


def test_a_served_portal_posts_webhook_events_over_the_network() -> None:
    """No transport injected: the POST to a webhook-mode bot goes over a real socket."""
    portal, receiver = FakePortal(), FakeReceiver()
    with (
        serve_in_thread(receiver.app()) as hook_base,
        portal.serve_in_thread() as base,
        httpx.Client(timeout=5) as http,
    ):
        fields = bot_fields(eventMode="webhook", webhookUrl=f"{hook_base}/events")
        registered = http.post(
            f"{portal.webhook_url(base)}imbot.v2.Bot.register", json={"fields": fields}
        )
        bot_id = registered.json()["result"]["bot"]["id"]
        answer = http.post(
            f"{base}/_admin/v2/message", json={"bot_id": bot_id, "user_id": 4, "text": "hi"}
        ).json()
    assert [d["status"] for d in answer["deliveries"]] == [200]
    [(path, _, _)] = receiver.posts
    assert path == "/events"
    assert receiver.trees()[0]["data"]["message"]["text"] == "hi"
