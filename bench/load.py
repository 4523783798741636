"""A closed-loop load generator: a fixed number of bodies at a fixed concurrency.

Each of `concurrency` connections posts the next unsent body as soon as its previous answer
arrived (HTTP/1.1 keep-alive), so the rate is what the server sustains and the latency is
what a Bitrix24 delivery waits for its acknowledgement.

Two clients. `raw` writes prebuilt requests on asyncio streams and reads the answer by its
Content-Length: about 0.05 ms of CPU per request, so on two cores the server, not the
client, is what gets measured. `httpx` is the client the issue named; it costs ~0.8 ms of
CPU per request and its pool slows down with 32 connections, so it caps a fast server well
below its ceiling. It is kept to show that cap, not to measure the server.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import anyio
import httpx

from bench.stats import percentile
from bench.workload import FORM_HEADERS

Client = Literal["raw", "httpx"]


@dataclass(frozen=True, slots=True)
class Load:
    sent: int
    seconds: float
    latencies_ms: tuple[float, ...]
    client_cpu: float  # CPU seconds the benchmark process spent meanwhile
    failures: int
    first_failure: str

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# (status, body) for one request body; the connection it belongs to is the caller's business.
Sender = Callable[[bytes], Awaitable[tuple[int, bytes]]]


async def _raw_connection(url: str) -> tuple[Sender, Callable[[], Awaitable[None]]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: {FORM_HEADERS['content-type']}\r\nContent-Length: "
    ).encode()

    async def send(body: bytes) -> tuple[int, bytes]:
        writer.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
        await writer.drain()
        answer = await reader.readuntil(b"\r\n\r\n")
        status = int(answer[9:12])
        lowered = answer.lower()
        at = lowered.find(b"\r\ncontent-length:")
        if at < 0:
            raise RuntimeError("answer without Content-Length")
        length = int(lowered[at + 17 : lowered.index(b"\r\n", at + 2)])
        return status, await reader.readexactly(length)

    async def close() -> None:
        writer.close()
        await writer.wait_closed()

    return send, close


async def post_all(
    url: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    expect: bytes | None,
    time_limit: float,
    client: Client = "raw",
    interval: float = 0.0,
) -> Load:
    """Post every body once (or until `time_limit`); `expect` must occur in each 200 answer.

    `interval` > 0 paces the load: body i is not sent before i × interval seconds from the
    start (a steady trickle, like a portal delivering events as people log in)."""
    latencies: list[float] = []
    failures: list[str] = []
    cursor = 0
    deadline = time.monotonic() + time_limit
    begin = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    pool = httpx.AsyncClient(limits=limits, timeout=30.0, trust_env=False)

    async def via_httpx(body: bytes) -> tuple[int, bytes]:
        response = await pool.post(url, content=body, headers=FORM_HEADERS)
        return response.status_code, response.content

    async def one_connection() -> None:
        nonlocal cursor
        send, close = (via_httpx, None) if client == "httpx" else await _raw_connection(url)
        try:
            while cursor < len(bodies) and time.monotonic() < deadline:
                index, body = cursor, bodies[cursor]
                cursor += 1
                if interval > 0:
                    await anyio.sleep(max(0.0, begin + index * interval - time.monotonic()))
                began = time.perf_counter_ns()
                status, content = await send(body)
                latencies.append((time.perf_counter_ns() - began) / 1e6)
                if status != 200 or (expect is not None and expect not in content):
                    failures.append(f"HTTP {status}: {content[:200]!r}")
        finally:
            if close is not None:
                await close()

    async with pool:
        cpu = _cpu()
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(concurrency):
                group.start_soon(one_connection)
        seconds = time.perf_counter() - started
        cpu = _cpu() - cpu
    return Load(
        len(latencies),
        seconds,
        tuple(latencies),
        cpu,
        len(failures),
        failures[0] if failures else "",
    )


def run_load(
    url: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    expect: bytes | None,
    time_limit: float,
    client: Client = "raw",
) -> Load:
    """`post_all` from synchronous code (each call gets its own event loop)."""

    async def go() -> Load:
        return await post_all(
            url,
            bodies,
            concurrency=concurrency,
            expect=expect,
            time_limit=time_limit,
            client=client,
        )

    return anyio.run(go)
