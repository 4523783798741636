"""Hypothesis properties over the parser and the endpoint, seeded with real-format bodies."""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import handlers
from bot.errors import EventError, MalformedEvent
from bot.events import Verifier, parse_event
from bot.formparse import build_query, parse_form
from bot.sandbox.events import APP_TOKEN, REFERENCE_BODIES
from bot.settings import Settings
from bot.wiring import build_services, create_app

SEEDS = list(REFERENCE_BODIES.values())
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

keys = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=8)
scalars = st.text(max_size=20)
trees: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.dictionaries(keys, children, min_size=1, max_size=4),
    max_leaves=20,
)


def mutate(seed: bytes, data: st.DataObject) -> bytes:
    """Cut, splice, duplicate or corrupt a real body: near-misses find more than noise."""
    ops = data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=4))
    body = bytearray(seed)
    for op in ops:
        pos = data.draw(st.integers(0, max(0, len(body))))
        if op == 0:
            del body[pos : pos + data.draw(st.integers(1, 30))]
        elif op == 1:
            body[pos:pos] = data.draw(st.binary(max_size=20))
        elif op == 2:
            body[pos:pos] = data.draw(
                st.sampled_from([b"[", b"]", b"&", b"=", b"%", b"%5B", b"[]"])
            )
        elif op == 3:
            body += b"&" + bytes(body[: data.draw(st.integers(0, 60))])
        else:
            body = body.replace(b"%5D", b"%5D%5Bx%5D", 1)
    return bytes(body)


@FUZZ
@given(st.binary(max_size=400))
@example(b"a[" * 200 + b"=1")
@example(b"\x00\xff=\xfe")
def test_parser_refuses_garbage_only_with_malformed_event(body: bytes) -> None:
    try:
        tree = parse_form(body)
    except MalformedEvent:
        return
    assert isinstance(tree, dict)


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_real_bodies_parse_or_are_refused_cleanly(seed: bytes, data: st.DataObject) -> None:
    body = mutate(seed, data)
    try:
        event = parse_event(body, Verifier(tokens=(APP_TOKEN,)))
    except MalformedEvent:
        return
    except EventError:
        return  # a refusal with a reason (token, portal, freshness) is fine too
    assert event.name.isupper()


@FUZZ
@given(st.dictionaries(keys, trees, min_size=1, max_size=5))
def test_build_query_and_parse_form_round_trip(tree: dict[str, Any]) -> None:
    def expected(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: expected(v) for k, v in node.items()}
            if all(str(i) in out for i in range(len(out))):
                return [out[str(i)] for i in range(len(out))]
            return out
        return node

    parsed = parse_form(build_query(tree).encode())
    assert parsed == {k: expected(v) for k, v in tree.items()}


@dataclass
class Endpoint:
    portal: BlockingPortal
    client: httpx.AsyncClient

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.portal.call(lambda: self.client.post("/events", content=body, headers=headers))


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(Path(__file__).resolve().parent.parent.joinpath("rules.yaml").read_text())
    settings_ = Settings.load(
        {
            "B24_APP_TOKEN": APP_TOKEN,
            "AUTOJOIN_RULES": str(rules),
            "AUTOJOIN_DATABASE_URL": f"sqlite:///{tmp_path / 'fuzz.db'}",
        },
        env_file=tmp_path / "absent.env",
    )
    with start_blocking_portal() as portal:
        services = build_services(settings_, router=handlers.router, run_worker=False)
        app = create_app(services)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        yield Endpoint(portal, client)
        portal.call(client.aclose)
        portal.call(services.aclose)


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_the_endpoint_never_answers_5xx(
    endpoint: Endpoint, seed: bytes, data: st.DataObject
) -> None:
    body = mutate(seed, data) if data.draw(st.booleans()) else data.draw(st.binary(max_size=300))
    content_type = data.draw(
        st.sampled_from(["application/x-www-form-urlencoded", "", "application/json", "text/plain"])
    )
    headers = {"content-type": content_type} if content_type else {}
    response = endpoint.post(body, headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert "error" in response.json()
