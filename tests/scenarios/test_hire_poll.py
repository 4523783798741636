"""New hires found by the `user.get` poll, with no POST at all; staff present at the first
start are left to `sync`; a hire both polled and pushed is added once."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from bot.hires import CURSOR_KEY, HirePoller
from bot.sandbox import Call
from bot.sandbox.company import EMEA_DEALS, SALES_ALL_HANDS
from bot.sandbox.events import APP_TOKEN, MEMBER_ID, user_add
from tests.harness import Harness, open_harness
from tests.scenarios.v2_kit import database_url

pytestmark = pytest.mark.anyio
__all__ = ["database_url"]

INTERVAL = 60.0


def poller(h: Harness) -> HirePoller:
    assert h.services.hires is not None
    return h.services.hires


def adds_of(h: Harness, user_id: int) -> list[int]:
    calls = h.portal.calls_to("im.chat.user.add")
    return [int(c.params["CHAT_ID"]) for c in calls if user_id in _ids(c)]


def _ids(call: Call) -> list[int]:
    users = call.params["USERS"]
    return [int(u) for u in (users.values() if isinstance(users, dict) else users)]


async def turn(h: Harness) -> None:
    """One turn of the poller's loop, then the time it asked to wait, then the worker."""
    h.clock.advance(await poller(h).poll_once())
    await h.drain()


async def test_a_new_hire_is_added_within_two_intervals_and_staff_are_not(
    tmp_path: Path, database_url: str
) -> None:
    env: dict[str, Any] = {
        "AUTOJOIN_DATABASE_URL": database_url,
        "AUTOJOIN_HIRE_POLL_SECONDS": "60",
        "B24_APP_TOKEN": "",  # pull-only: nothing can be pushed at all
    }
    async with open_harness(tmp_path, **env) as h:
        staff = max(h.portal.state.users)
        await turn(h)  # the very first start: today's staff are not hires
        assert await h.services.store.get_state(CURSOR_KEY) == str(staff)
        assert h.portal.calls_to("im.chat.user.add") == []
        h.clock.advance(INTERVAL / 3)
        hired_at = h.clock()
        nina = h.portal.stage.hire(name="Nina", last_name="Novak", departments=[4])
        h.portal.stage.hire(name="Ext", departments=[], user_type="extranet")
        h.portal.stage.hire(name="Gone", departments=[4], active=False)
        while not adds_of(h, nina.id):
            assert h.clock() - hired_at <= 2 * INTERVAL, "not added within two poll intervals"
            await turn(h)
        assert nina.id in h.portal.chat_members(SALES_ALL_HANDS)
        assert h.portal.history_hidden(EMEA_DEALS, nina.id) is True  # the rule's setting
        touched = {u for c in h.portal.calls_to("im.chat.user.add") for u in _ids(c)}
        assert touched == {nina.id}  # no staff member, no extranet or inactive user
        assert h.services.metrics.events.labels("ONUSERADD", "accepted")._value.get() == 1
        assert await h.services.store.get_state(CURSOR_KEY) == str(nina.id)
        filters = [c.params.get("filter") for c in h.portal.calls_to("user.get")]
        assert {">ID": staff, "USER_TYPE": "employee", "ACTIVE": True} in filters


async def test_a_hire_both_polled_and_pushed_is_added_once(
    tmp_path: Path, database_url: str
) -> None:
    env: dict[str, Any] = {
        "AUTOJOIN_DATABASE_URL": database_url,
        "AUTOJOIN_HIRE_POLL_SECONDS": "60",
        "B24_MEMBER_ID": MEMBER_ID,  # pulled events are keyed like the pushed ones
    }
    async with open_harness(tmp_path, **env) as h:
        await turn(h)
        mia = h.portal.stage.hire(name="Mia", departments=[4])
        pushed = await h.post(user_add(mia, token=APP_TOKEN))
        assert pushed.json()["status"] == "accepted"
        await turn(h)
        await turn(h)
        assert sorted(adds_of(h, mia.id)) == sorted({SALES_ALL_HANDS, EMEA_DEALS})
        assert h.services.metrics.events.labels("ONUSERADD", "duplicate")._value.get() == 1
        # The other order: polled first, the push (at the first login) comes later.
        max_ = h.portal.stage.hire(name="Max", departments=[4], logged_in=False)
        await turn(h)
        late = await h.post(user_add(max_, token=APP_TOKEN))
        assert late.json()["status"] == "duplicate"
        await h.drain()
        assert sorted(adds_of(h, max_.id)) == sorted({SALES_ALL_HANDS, EMEA_DEALS})


async def test_beside_pushed_events_the_poll_needs_the_member_id(tmp_path: Path) -> None:
    """Without B24_MEMBER_ID a polled hire could not share the pushed one's key: no poll."""
    async with open_harness(tmp_path, AUTOJOIN_HIRE_POLL_SECONDS="60") as h:
        assert h.services.hires is None
    async with open_harness(tmp_path, B24_MEMBER_ID=MEMBER_ID) as h:
        assert h.services.hires is not None
        assert h.services.settings.hire_poll_seconds == 300  # the default


async def test_a_killed_pollers_lease_is_taken_over_within_seconds(
    tmp_path: Path, database_url: str
) -> None:
    """kill -9 leaves the lease in the store: a short poll must not wait a minute for it."""
    env: dict[str, Any] = {
        "AUTOJOIN_DATABASE_URL": database_url,
        "AUTOJOIN_HIRE_POLL_SECONDS": "2",
        "B24_APP_TOKEN": "",
    }
    async with open_harness(tmp_path, **env) as h:
        await turn(h)  # the first process holds the lease, then dies without dropping it
        survivor = dataclasses.replace(poller(h), owner="survivor")
        died_at = h.clock()
        lena = h.portal.stage.hire(name="Lena", departments=[4])
        while not adds_of(h, lena.id):
            waited = h.clock() - died_at  # one lease, then its next turn
            assert waited <= h.services.settings.lease_seconds + 2.0, "waited too long"
            h.clock.advance(await survivor.poll_once())
            await h.drain()
        assert SALES_ALL_HANDS in adds_of(h, lena.id)
