"""Trust boundaries: forged, foreign-portal and replayed events change nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bot.sandbox import FakePortal
from bot.sandbox.events import APP_TOKEN, DOMAIN, MEMBER_ID, auth_block, event_body, user_add
from tests.fakes import FakeClock, FakeRecordingTransport
from tests.harness import Harness, open_harness

pytestmark = pytest.mark.anyio


async def assert_nothing_happened(h: Harness) -> None:
    await h.drain()
    assert h.portal.http_requests == 0
    assert [e for e in await h.services.store.history() if e.outcome == "added"] == []
    assert await h.services.store.jobs() == []


async def test_forged_events_cause_no_rest_call_and_no_audit(tmp_path: Path) -> None:
    async with open_harness(tmp_path) as h:
        user = h.portal.upsert_user(70, name="Eve", departments=[4])
        for token in ["forged", "", APP_TOKEN.upper(), APP_TOKEN + " "]:
            response = await h.post(user_add(user, token=token))
            assert response.status_code == 401
        await assert_nothing_happened(h)


async def test_foreign_portal_events_are_refused(tmp_path: Path) -> None:
    async with open_harness(
        tmp_path, B24_MEMBER_ID=MEMBER_ID, B24_PORTAL_DOMAIN=DOMAIN.upper()
    ) as h:
        user = h.portal.upsert_user(71, name="Eve", departments=[4])
        other_member = user_add(user, token=APP_TOKEN, member_id="0" * 32)
        other_domain = user_add(user, token=APP_TOKEN, domain="evil.bitrix24.com")
        for body in (other_member, other_domain):
            response = await h.post(body)
            assert response.status_code == 403
            assert response.json()["error"] == "foreign_portal"
        await assert_nothing_happened(h)
        ours = await h.post(user_add(user, token=APP_TOKEN))
        assert ours.json()["status"] == "accepted"


async def test_replayed_events_change_nothing_inside_or_outside_the_window(tmp_path: Path) -> None:
    clock = FakeClock(start=1_800_000_000.0)
    async with open_harness(tmp_path, clock=clock, AUTOJOIN_MAX_EVENT_AGE="300") as h:
        user = h.portal.upsert_user(72, name="Ann", departments=[4])
        genuine = user_add(user, token=APP_TOKEN, ts=int(clock()))
        assert (await h.post(genuine)).json()["status"] == "accepted"
        await h.drain()
        requests = h.portal.http_requests
        audit = len(await h.services.store.history(limit=1000))
        clock.advance(60)
        assert (await h.post(genuine)).json()["status"] == "duplicate"
        clock.advance(3600)
        late = await h.post(genuine)
        assert late.status_code == 409
        assert late.json()["error"] == "stale"
        await h.drain()
        assert h.portal.http_requests == requests
        assert len(await h.services.store.history(limit=1000)) == audit


async def test_credentials_never_go_to_urls_taken_from_events(tmp_path: Path) -> None:
    clock = FakeClock()
    portal = FakePortal(clock=clock)
    transport = FakeRecordingTransport(httpx.ASGITransport(app=portal.app))
    async with open_harness(tmp_path, portal=portal, clock=clock, transport=transport) as h:
        h.portal.upsert_user(73, name="Ann", departments=[4])
        auth = auth_block(APP_TOKEN, member_id=MEMBER_ID, domain=DOMAIN)
        auth["client_endpoint"] = "https://evil.example/rest/"
        auth["server_endpoint"] = "https://evil.example/oauth/"
        data = {"ID": "73", "ACTIVE": "1", "UF_DEPARTMENT": ["4"], "NAME": "Ann"}
        body = event_body("ONUSERADD", data, auth, ts=int(clock()), handler_id=31)
        assert (await h.post(body)).json()["status"] == "accepted"
        await h.drain()
        assert 73 in h.portal.chat_members(101)
        hosts = {url.host for url in transport.urls}
        assert hosts == {"127.0.0.1"}
