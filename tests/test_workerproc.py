"""The front's handle on its worker process, against real child processes.

The children here are small Python programs speaking the link's side of the protocol
(`serve_link`), so each behaviour (restart, backoff, metrics, end of file) is shown without a
portal; `tests/scenarios/test_worker_process.py` runs the real `serve` and its worker.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import handlers
from bot.sandbox import FakePortal
from bot.wiring import build_services
from bot.workerproc import WorkerProcess, serve_link
from tests.harness import make_settings
from tests.processes import wait_until

# A worker stand-in: counts wakes into a file, answers `m` with a fixed text, exits at EOF.
LINKED = """
import anyio, os, signal, sys
signal.signal(signal.SIGHUP, signal.SIG_IGN)
from bot.workerproc import LINK_FD, serve_link
out = sys.argv[1]
def wake():
    with open(out, "a") as f:
        f.write("w")
anyio.run(serve_link, int(os.environ[LINK_FD]), wake, lambda: b"# worker says hi\\n")
with open(out, "a") as f:
    f.write("eof")
"""


def linked(tmp_path: Path) -> tuple[list[str], Path]:
    out = tmp_path / "child.out"
    return [sys.executable, "-c", LINKED, str(out)], out


async def wait_for(check: Callable[[], bool], what: str) -> None:
    await anyio.to_thread.run_sync(functools.partial(wait_until, check, timeout=15.0, what=what))


@pytest.mark.anyio
async def test_the_child_is_woken_asked_for_metrics_and_ends_with_the_link(
    tmp_path: Path,
) -> None:
    argv, out = linked(tmp_path)
    child = WorkerProcess(argv)
    child.start()
    assert child.proc is not None
    try:
        assert await child.metrics() == b"# worker says hi\n"
        child.wake()
        await wait_for(lambda: out.exists() and "w" in out.read_text(), "a wake")
        assert await child.health() == []
        child._drop_link()  # what the front's death looks like to the child: end of file
        assert await anyio.to_thread.run_sync(child.proc.wait, 15) == 0
        assert out.read_text().endswith("eof")
    finally:
        await child.stop()


@pytest.mark.anyio
async def test_a_dead_child_is_restarted_with_a_growing_backoff_and_reported_meanwhile() -> None:
    delays: list[float] = []
    child = WorkerProcess([sys.executable, "-c", "raise SystemExit(3)"], clock=lambda: 0.0)

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        reasons = await child.health()
        assert reasons == [
            {"check": "worker", "message": "the worker process is down (exit code 3); restarting"}
        ]
        if len(delays) == 4:
            raise anyio.get_cancelled_exc_class()()

    child.sleep = sleep
    with pytest.raises(anyio.get_cancelled_exc_class()):
        await child.run()
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert child.exits == [3, 3, 3, 3]
    assert await child.metrics() == b""  # nothing to ask while down


@pytest.mark.anyio
async def test_stop_terminates_the_child_and_kills_one_that_ignores_it(tmp_path: Path) -> None:
    stubborn = (
        "import signal, time, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "open(sys.argv[1], 'w').write('ready')\n"
        "time.sleep(60)\n"
    )
    ready = tmp_path / "ready"
    child = WorkerProcess([sys.executable, "-c", stubborn, str(ready)])
    child.start()
    await wait_for(ready.exists, "the child to start")
    with anyio.fail_after(30):
        await child.stop()
    assert child.proc is not None
    assert child.proc.returncode == -9


@pytest.mark.anyio
async def test_serve_link_returns_at_end_of_file_and_answers_each_metrics_request() -> None:
    ours, theirs = socket.socketpair()
    woken: list[int] = []
    with ours:
        ours.sendall(b"wmwm")
        ours.shutdown(socket.SHUT_WR)
        with anyio.fail_after(10):
            await serve_link(os.dup(theirs.fileno()), lambda: woken.append(1), lambda: b"ab")
        theirs.close()
        replies = b""
        while chunk := ours.recv(100):
            replies += chunk
    assert replies == b"\x00\x00\x00\x02ab" * 2
    assert woken  # at least one wake per read that held one


@pytest.mark.anyio
async def test_a_late_reply_is_not_taken_for_the_next_one() -> None:
    """A reply that comes after its request gave up is dropped, not read as the next one's."""
    slow = (
        "import anyio, os, sys, time\n"
        "from bot.workerproc import LINK_FD, serve_link\n"
        "def late(): time.sleep(3.0); return b'late'\n"
        "anyio.run(serve_link, int(os.environ[LINK_FD]), lambda: None, late)\n"
    )
    child = WorkerProcess([sys.executable, "-c", slow])
    child.start()
    try:
        assert await child.metrics() == b""  # gave up after 2 s; the reply comes at 3 s
        await anyio.sleep(1.5)
        assert await child.metrics() == b""  # the late reply is drained, this one is late too
    finally:
        await child.stop()


@pytest.mark.anyio
async def test_a_front_runs_starts_wakes_asks_and_stops_its_worker_process(
    tmp_path: Path,
) -> None:
    """`serve`'s front as the composition root builds it, with a stand-in worker process:
    its lifespan starts the child, a wake and a metrics scrape reach it, and the end of the
    lifespan stops it."""
    argv, out = linked(tmp_path)
    child = WorkerProcess(argv)
    settings = make_settings(tmp_path, FakePortal(), AUTOJOIN_RULES_POLL="0.05")
    services = build_services(settings, router=handlers.router, worker_process=child)
    assert services.worker is None  # no worker in the front
    assert services.child is child
    async with services.running():
        await wait_for(lambda: child.proc is not None and child._sock is not None, "the child")
        assert await services.refresh_metrics() == b"# worker says hi\n"
        services.wake_worker()
        await wait_for(lambda: out.exists() and "w" in out.read_text(), "a wake")
        assert not [r for r in await services.health_reasons() if r.get("check") == "worker"]
        first = child.proc.pid if child.proc else 0
        os.kill(os.getpid(), signal.SIGHUP)  # reloads the rules here, and is passed on
        await anyio.sleep(0.3)  # the rules watcher polls meanwhile
        assert child.proc is not None
        assert child.proc.poll() is None  # the stand-in ignores it; the same child runs on
        assert child.proc.pid == first
    assert child.proc is not None
    assert child.proc.poll() is not None  # stopped with the lifespan
