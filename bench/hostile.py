"""Hostile requests for `bench/soak.py`, and a raw HTTP/1.1 exchange that can send them.

httpx cannot send most of these (a declared length it does not deliver, a trickled body, a
body it gives up on), so requests are written as bytes on a fresh connection each (as a
portal posting events would). Big payloads are built once and shared between requests.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.sandbox.events import APP_TOKEN, MEMBER_ID, auth_block, event_body, user_add
from bot.sandbox.state import User

FORM = "application/x-www-form-urlencoded"
MIB = 1024 * 1024
ANSWER_TIMEOUT = 10.0  # a request without an answer after this counts as "timeout"
GIVE_UP = 0.3  # a partial body: how long the client waits before it hangs up
TRICKLE = (6, 0.04)  # a slow body: pieces, seconds between them


@dataclass(frozen=True, slots=True)
class Request:
    kind: str  # what is hostile about it ("" until `Hostile.make` names it)
    head: bytes  # request line and headers, up to the blank line
    pieces: tuple[bytes, ...]  # the body as written, in order
    pause: float = 0.0  # seconds between pieces (a slow client)
    give_up: bool = False  # the body is incomplete: wait GIVE_UP, then hang up


@dataclass(frozen=True, slots=True)
class Answer:
    kind: str
    status: int | None  # None: no answer (see `outcome`)
    outcome: str  # "2xx" … "5xx", "reset", "timeout", "gave up"
    ms: float
    body: bytes = b""


def request(
    body: bytes | tuple[bytes, ...],
    *,
    content_type: str | None = FORM,
    method: str = "POST",
    length: int | None = None,
    chunked: bool = False,
    extra: tuple[str, ...] = (),
    pause: float = 0.0,
    give_up: bool = False,
) -> Request:
    """`length` defaults to the real body length; `chunked` sends it chunk-encoded instead."""
    pieces = body if isinstance(body, tuple) else (body,)
    lines = [f"{method} /events HTTP/1.1", "Host: autojoin", "Connection: close", *extra]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        pieces = (*(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces), b"0\r\n\r\n")
    elif method == "POST":
        lines.append(f"Content-Length: {sum(map(len, pieces)) if length is None else length}")
    return Request("", ("\r\n".join(lines) + "\r\n\r\n").encode(), pieces, pause, give_up)


def _onuseradd(data: dict[str, object], token: str = APP_TOKEN, member: str = MEMBER_ID) -> bytes:
    return event_body(
        "ONUSERADD", data, auth_block(token, member_id=member), ts=int(time.time()), handler_id=31
    )


class Hostile:
    """Every hostile kind by name; `make()` builds a fresh request of a random (seeded) kind."""

    def __init__(self, rng: random.Random, replays: list[bytes]) -> None:
        self.rng = rng
        self.replays = replays  # bodies already accepted once: a redelivery is a duplicate
        base = _onuseradd({"ID": 7, "UF_DEPARTMENT": [2]})
        self.oversize = base + b"&pad=" + b"x" * (2 * MIB)
        self.chunk = b"x" * (64 * 1024)
        self.nested = base + b"&data" + b"%5Bx%5D" * 2000 + b"=1"
        self.fields = base + b"".join(b"&f%d=1" % i for i in range(12_000))
        self.kinds: dict[str, Callable[[], Request]] = {
            "oversize (Content-Length 2 MiB)": lambda: request(self.oversize),
            "oversize (chunked 1.5 MiB, no length)": lambda: request(
                (base + b"&pad=", *[self.chunk] * 24), chunked=True
            ),
            "nesting 2,000 levels": lambda: request(self.nested),
            "12,000 fields": lambda: request(self.fields),
            "invalid UTF-8": lambda: request(base + b"&data%5BNAME%5D=%C3%28\xff\xfe"),
            "NUL bytes": lambda: request(base + b"&da\x00ta=%00"),
            "JSON body": lambda: request(
                json.dumps({"event": "ONUSERADD", "auth": {}}).encode(),
                content_type="application/json",
            ),
            "JSON sent as a form": lambda: request(b'{"event": "ONUSERADD"}'),
            "forged token": lambda: request(self._hire(token="forged")),
            "foreign portal": lambda: request(self._hire(member_id="f" * 32)),
            "stale ts (replay)": lambda: request(self._hire(ts=int(time.time()) - 86_400)),
            "redelivered event": lambda: request(rng.choice(self.replays)),
            "unknown event": lambda: request(base.replace(b"ONUSERADD", b"ONFOOBAR")),
            "random bytes": lambda: request(rng.randbytes(rng.randint(1, 4096))),
            "random bytes (no Content-Type)": lambda: request(
                rng.randbytes(512), content_type=None
            ),
            "wrong method": lambda: request(b"", method="GET"),
            "1,000 headers (70 KB)": lambda: request(
                base, extra=tuple(f"X-H{i}: {'v' * 64}" for i in range(1_000))
            ),
            "slow body": lambda: request(
                self._split(self._hire(token="forged"), TRICKLE[0]), pause=TRICKLE[1]
            ),
            "partial body": lambda: request(base[: len(base) // 2], length=len(base), give_up=True),
        }

    def _hire(
        self, token: str = APP_TOKEN, member_id: str = MEMBER_ID, ts: int | None = None
    ) -> bytes:
        user = User(self.rng.randint(10**6, 10**7), "Eve", "Hostile", True, [2])
        return user_add(user, token=token, member_id=member_id, ts=ts)

    @staticmethod
    def _split(body: bytes, parts: int) -> tuple[bytes, ...]:
        step = max(1, len(body) // parts + 1)
        return tuple(body[i : i + step] for i in range(0, len(body), step))

    def make(self) -> Request:
        """A request of a kind picked at random (seeded), named after its kind."""
        kind = self.rng.choice(list(self.kinds))
        return replace(self.kinds[kind](), kind=kind)


async def exchange(host: str, port: int, req: Request) -> Answer:
    """One request on its own connection; the answer's status (or why there was none)."""
    began = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)

    async def write() -> None:
        writer.write(req.head)
        for index, piece in enumerate(req.pieces):
            if index and req.pause:
                await asyncio.sleep(req.pause)
            writer.write(piece)
            await writer.drain()

    sender = asyncio.create_task(write())
    try:
        wait = GIVE_UP if req.give_up else ANSWER_TIMEOUT
        if req.give_up:
            await asyncio.wait({sender}, timeout=GIVE_UP)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
        status = int(head[9:12])
        body = await asyncio.wait_for(_body(reader, head), ANSWER_TIMEOUT)
    except TimeoutError:
        return Answer(req.kind, None, "gave up" if req.give_up else "timeout", _ms(began))
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return Answer(req.kind, None, "reset", _ms(began))
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)  # a refused body's broken pipe
        writer.close()
    return Answer(req.kind, status, f"{status // 100}xx", _ms(began), body)


async def _body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        return await reader.read(64 * 1024)  # `Connection: close`: the body ends at EOF
    length = int(lowered[at + 17 : lowered.index(b"\r\n", at + 2)])
    return await reader.readexactly(min(length, 64 * 1024))


def _ms(began: float) -> float:
    return (time.perf_counter() - began) * 1000.0
