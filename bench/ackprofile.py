"""Where the acknowledgement path's CPU goes: N real ONUSERADD bodies through the app, profiled.

    python -m bench.ackprofile [--database sqlite|postgres] [-n 3000] [--top 25]

The app is `serve --no-worker`'s, built by the composition root and driven in-process through
its ASGI interface at a fixed concurrency (so group commit forms groups as under load), with
logging configured as `serve` does at INFO (to a file). cProfile covers the event loop's thread;
the store's thread is profiled by a second profiler around each `accept_events` call, and
the two are merged. CPU time is a far steadier figure than wall-clock on a shared machine, so
this reports process CPU per event next to the profile. A diagnostic tool: no verdicts.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import anyio

import handlers
from bench import ceiling
from bench.procs import POSTGRES_DSN, postgres_schema
from bench.workload import bodies, hires, settings_env, spread_rules, write_rules
from bot.jobs import NewJob
from bot.logsafe import configure_logging
from bot.settings import Settings
from bot.store.base import EventBatch, Store
from bot.wiring import build_services, create_app

CONCURRENCY = 32
DEPARTMENTS = 50
Message = MutableMapping[str, Any]


class ProfiledStore:
    """Profiles `accept_events` in the store's thread; everything else passes through."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.profiler: cProfile.Profile | None = None  # set once the warm-up is over

    def accept_events(self, batch: EventBatch, now: float) -> list[bool]:
        if self.profiler is None:
            return self._store.accept_events(batch, now)
        result: list[bool] = self.profiler.runcall(self._store.accept_events, batch, now)
        return result

    def accept_event(self, key: str, name: str, jobs: Sequence[NewJob], now: float) -> bool:
        return self.accept_events([(key, name, jobs)], now)[0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def post(app: Callable[..., Awaitable[None]], body: bytes) -> tuple[int, bytes]:
    """One POST /events through the ASGI interface, as uvicorn would call it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/events",
        "raw_path": b"/events",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await anyio.sleep_forever()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def drive(
    app: Callable[..., Awaitable[None]], batch: Sequence[bytes], expect: bytes | None = b"accepted"
) -> None:
    cursor = 0

    async def one() -> None:
        nonlocal cursor
        while cursor < len(batch):
            body = batch[cursor]
            cursor += 1
            status, answer = await post(app, body)
            if status != 200 or (expect is not None and expect not in answer):
                raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")

    async with anyio.create_task_group() as group:
        for _ in range(CONCURRENCY):
            group.start_soon(one)


@contextlib.contextmanager
def database(kind: str, work: Path) -> Iterator[str]:
    if kind == "postgres":
        with postgres_schema(POSTGRES_DSN, "bench_profile") as url:
            yield url
    else:
        yield f"sqlite:///{work / 'profile.db'}"


def ceiling_cpu(count: int) -> float:
    """CPU per event of the bare Starlette ceiling (bench/ceiling.py) on the same bodies."""
    users = hires(100_000, 200 + count, DEPARTMENTS, seed=2)
    warmup, timed = bodies(users[:200]), bodies(users[200:])
    app = ceiling.create_app()

    async def run() -> float:
        await drive(app, warmup, None)
        cpu = time.process_time()
        await drive(app, timed, None)
        return time.process_time() - cpu

    return anyio.run(run) / count


def profile(kind: str, count: int, top: int, sort: str, enabled: bool = True) -> str:
    with tempfile.TemporaryDirectory(prefix="autojoin-ackprofile-") as tmp:
        work = Path(tmp)
        rules = write_rules(work / "rules.yaml", spread_rules(20, DEPARTMENTS, 5, seed=1))
        users = hires(100_000, 200 + count, DEPARTMENTS, seed=2)
        warmup, timed = bodies(users[:200]), bodies(users[200:])
        with (
            database(kind, work) as url,
            (work / "serve.log").open("w") as log,
            contextlib.redirect_stderr(log),
        ):
            env = settings_env(
                webhook="http://127.0.0.1:9/rest/1/abcdefgh/", rules=rules, database=url
            )
            settings = Settings.load(env, env_file=work / "absent.env")
            configure_logging(settings.log_level, settings.log_format)
            services = build_services(settings, router=handlers.router, run_worker=False)
            main, store_side = cProfile.Profile(), cProfile.Profile()
            profiled = ProfiledStore(services.store.store)
            services.store.store = profiled
            app = create_app(services)

            async def run() -> tuple[float, float]:
                try:
                    await drive(app, warmup)
                    cpu, wall = time.process_time(), time.perf_counter()
                    if enabled:
                        profiled.profiler = store_side
                        main.enable()
                    await drive(app, timed)
                    main.disable()
                    return time.process_time() - cpu, time.perf_counter() - wall
                finally:
                    await services.aclose()

            cpu, wall = anyio.run(run)
    head = (
        f"{kind}: {count} events, concurrency {CONCURRENCY}: process CPU {cpu / count * 1e6:.0f} µs"
        f"/event (wall {wall / count * 1e6:.0f} µs/event, {count / wall:.0f} events/s"
        + ("; profiled, so slower than real)\n" if enabled else ")\n")
    )
    if not enabled:
        return head
    out = io.StringIO()
    stats = pstats.Stats(main, stream=out)
    stats.add(store_side)
    stats.sort_stats(sort).print_stats(top)
    return head + out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ackprofile")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("-n", type=int, default=3000, help="timed events")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumulative)")
    parser.add_argument("--no-profile", action="store_true", help="only the CPU per event")
    parser.add_argument("--runs", type=int, default=1, help="repeat (ceiling, autojoin) pairs")
    args = parser.parse_args(argv)
    for _ in range(args.runs):
        print(f"ceiling (Starlette + parse_form): {ceiling_cpu(args.n) * 1e6:.0f} µs/event CPU")
        print(profile(args.database, args.n, args.top, args.sort, not args.no_profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
