"""Where the acknowledgement path's CPU goes: N real ONUSERADD bodies through the app, profiled.

    python -m bench.ackprofile [--database sqlite|postgres] [-n 3000] [--worker] [--no-profile]

The app is `serve`'s, built by the composition root and driven in-process through its ASGI
interface at a fixed concurrency (so group commit forms groups as under load), with logging
configured as `serve` does at INFO (to a file). Without `--worker` it is `serve --no-worker`;
with it, the worker delivers every event to the fake portal (in a thread here) and the timed
window lasts until the last job settled. cProfile covers the event loop's thread; each store
connection's thread gets a profiler of its own around every store call; the profiles are
merged. CPU time is far steadier than wall-clock on a shared machine, so this reports process
CPU per event, and the ceiling app's (`bench/ceiling.py`) on the same bodies. A diagnostic
tool: no verdicts.
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
from typing import Any, cast

import anyio

import handlers
from bench import ackwork, ceiling
from bench.procs import POSTGRES_DSN, postgres_schema
from bench.workload import bodies, hires, served, spread_rules, write_rules
from bot.logsafe import configure_logging
from bot.settings import Settings
from bot.store.base import Store
from bot.wiring import build_services, create_app

CONCURRENCY = 32
DEPARTMENTS = 50
Message = MutableMapping[str, Any]


class ProfiledStore:
    """Profiles every store call in the store's own thread, once `profiler` is set."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.profiler: cProfile.Profile | None = None  # set once the warm-up is over

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            profiler = self.profiler
            if profiler is None:
                return attr(*args, **kwargs)
            return profiler.runcall(attr, *args, **kwargs)

        return call


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


def profile(
    kind: str, count: int, top: int, sort: str, enabled: bool = True, worker: bool = False
) -> str:
    with tempfile.TemporaryDirectory(prefix="autojoin-ackprofile-") as tmp:
        work = Path(tmp)
        rule_specs = spread_rules(20, DEPARTMENTS, 5, seed=1)
        rules = write_rules(work / "rules.yaml", rule_specs)
        users = hires(100_000, 200 + count, DEPARTMENTS, seed=2)
        warmup, timed = bodies(users[:200]), bodies(users[200:])
        stage = ackwork.make_stage(users if worker else [], rule_specs, DEPARTMENTS, 5)
        with (
            database(kind, work) as url,
            served(stage.portal) as webhook,
            (work / "serve.log").open("w") as log,
            contextlib.redirect_stderr(log),
        ):
            settings = Settings.load(
                ackwork.serve_env(webhook, rules, url), env_file=work / "absent.env"
            )
            configure_logging(settings.log_level, settings.log_format)
            services = build_services(settings, router=handlers.router, run_worker=worker)
            profiled = [
                ProfiledStore(services.store.store),
                ProfiledStore(services.back_store.store),
            ]
            services.store.store = cast(Store, profiled[0])
            services.back_store.store = cast(Store, profiled[1])
            profilers = [cProfile.Profile() for _ in range(3)]
            app = create_app(services)

            async def idle() -> None:
                """Until the worker has settled every job (at once without a worker)."""
                while worker:
                    counts = await services.store.counts()
                    if counts["pending"] + counts["running"] == 0:
                        return
                    await anyio.sleep(0.05)

            async def run() -> tuple[float, float]:
                async with services.running():
                    await drive(app, warmup)
                    await idle()
                    cpu, wall = time.process_time(), time.perf_counter()
                    if enabled:
                        profiled[0].profiler, profiled[1].profiler = profilers[1:]
                        profilers[0].enable()
                    await drive(app, timed)
                    await idle()
                    profilers[0].disable()
                    return time.process_time() - cpu, time.perf_counter() - wall

            cpu, wall = anyio.run(run)
            if worker and stage.landed(users) != stage.pairs(users):
                raise RuntimeError("not every hire landed in its chats")
    what = "events, worker on, until every hire landed" if worker else "events"
    head = (
        f"{kind}: {count} {what}, concurrency {CONCURRENCY}: process CPU"
        f" {cpu / count * 1e6:.0f} µs/event (wall {wall / count * 1e6:.0f} µs/event,"
        f" {count / wall:.0f} events/s"
        + ("; profiled, so slower than real)\n" if enabled else ")\n")
    )
    if not enabled:
        return head
    out = io.StringIO()
    stats = pstats.Stats(profilers[0], stream=out)
    for other in profilers[1:]:
        if other.getstats():
            stats.add(other)
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
    parser.add_argument(
        "--worker",
        action="store_true",
        help="serve's worker on, delivering to the fake portal (in a thread here: its CPU counts)",
    )
    args = parser.parse_args(argv)
    for _ in range(args.runs):
        print(f"ceiling (Starlette + parse_form): {ceiling_cpu(args.n) * 1e6:.0f} µs/event CPU")
        print(profile(args.database, args.n, args.top, args.sort, not args.no_profile, args.worker))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
