"""`autojoin chats` lists the webhook user's chats for rule writers; `history` names chats."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from bot.cli import main
from bot.sandbox import FakePortal
from bot.sandbox.company import (
    ANNOUNCEMENTS,
    GENERAL_CHAT_ID,
    SALES_ALL_HANDS,
    SECRET_PROJECT,
    TEAM_LEADS,
    sample_company,
)
from bot.sandbox.state import Chat
from bot.store import open_store
from tests.test_cli import fill

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePortal]:
    fake = FakePortal(sample_company())
    with fake.serve_in_thread() as base:
        monkeypatch.setenv("B24_WEBHOOK_URL", fake.webhook_url(base))
        yield fake


def test_chats_lists_the_webhook_users_chats_with_members_and_the_add_verdict(
    portal: FakePortal, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chats", "--format", "json"]) == 0
    rows = {row["chat_id"]: row for row in json.loads(capsys.readouterr().out)}
    mine = {c.id for c in portal.state.chats.values() if 1 in c.members}
    assert set(rows) == mine
    assert SECRET_PROJECT not in rows, "a chat the webhook user is not in cannot be listed"
    sales = portal.state.chats[SALES_ALL_HANDS]
    assert rows[SALES_ALL_HANDS] | {"why_not": None} == {
        "chat_id": SALES_ALL_HANDS,
        "title": sales.title,
        "members": len(sales.members),
        "role": "owner" if sales.owner == 1 else "member",
        "may_add": True,
        "why_not": None,
    }
    refused = {c for c, row in rows.items() if not row["may_add"]}
    assert refused == {GENERAL_CHAT_ID, ANNOUNCEMENTS, TEAM_LEADS}
    assert "needs owner" in rows[TEAM_LEADS]["why_not"]


def test_chats_as_text_has_a_row_per_chat_and_says_why_not(
    portal: FakePortal, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chats"]) == 0
    out = capsys.readouterr().out.splitlines()
    title = portal.state.chats[SALES_ALL_HANDS].title
    assert any(line.split()[:1] == [str(SALES_ALL_HANDS)] and line.endswith(title) for line in out)
    assert any(line.startswith(f"  {TEAM_LEADS}: ") for line in out)
    assert out[-1].startswith("8 chats the webhook user is in; autojoin may add people to 5.")


def test_chats_reads_every_page(portal: FakePortal, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(450):
        portal.state.add_chat(Chat(5000 + n, f"Project {n}", owner=1, members={1}))
    assert main(["chats", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    ids = [row["chat_id"] for row in rows]
    assert len(ids) == len(set(ids)) == 458
    assert len(portal.calls_to("im.recent.list")) == 3  # 200 a page


def test_chats_needs_only_the_webhook(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chats"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("autojoin: B24_WEBHOOK_URL: ")
    assert len(err.splitlines()) == 1


def test_history_names_the_chats_when_a_webhook_is_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    anyio.run(fill, tmp_path)
    monkeypatch.setenv("AUTOJOIN_DATABASE_URL", f"sqlite:///{tmp_path / 'autojoin.db'}")
    fake = FakePortal(sample_company())
    with fake.serve_in_thread() as base:
        monkeypatch.setenv("B24_WEBHOOK_URL", fake.webhook_url(base))
        assert main(["history"]) == 0
    out = capsys.readouterr().out.splitlines()
    title = fake.state.chats[SALES_ALL_HANDS].title
    sales = [line for line in out if f" {SALES_ALL_HANDS} " in line]
    assert sales
    assert all(line.endswith(f"“{title}”") for line in sales)


def test_history_without_the_portal_still_works_and_says_why_no_titles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    anyio.run(fill, tmp_path)
    monkeypatch.setenv("AUTOJOIN_DATABASE_URL", f"sqlite:///{tmp_path / 'autojoin.db'}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("B24_WEBHOOK_URL", f"http://127.0.0.1:{port}/rest/1/code/")
    assert main(["history"]) == 0
    captured = capsys.readouterr()
    assert "note: chat titles unavailable" in captured.err
    assert f" {SALES_ALL_HANDS} " in captured.out


def test_history_of_nothing_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(f"sqlite:///{tmp_path / 'autojoin.db'}").close()
    assert main(["history", "--user", "999"]) == 0
    assert capsys.readouterr().out == "no audit entries match these filters\n"
