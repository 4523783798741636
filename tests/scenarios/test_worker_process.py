"""`autojoin serve` runs its worker as a child process: it delivers, it is restarted when it
dies, it does not outlive its front, and its metrics are served by the front."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from bot.commands.run import WORKER_NICE
from tests.processes import ServeProcess, wait_until
from tests.scenarios.test_crash import CHATS, Stage, staged

pytestmark = pytest.mark.slow
WAIT = 30.0


def child_of(service: ServeProcess) -> int:
    wait_until(lambda: len(service.children()) == 1, timeout=WAIT, what="the worker process")
    return service.children()[0]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie (not reaped yet) is gone too
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def landed(stage: Stage, pairs: list[tuple[int, int]]) -> bool:
    return all(user in stage.portal.chat_members(chat) for chat, user in pairs)


def test_the_worker_process_delivers_and_the_front_serves_its_metrics(tmp_path: Path) -> None:
    with staged(tmp_path, f"sqlite:///{tmp_path / 'autojoin.db'}") as stage, stage.serve() as s:
        worker = child_of(s)
        front_nice = os.getpriority(os.PRIO_PROCESS, s.pid)
        wait_until(  # the front's answers go first on a busy machine
            lambda: os.getpriority(os.PRIO_PROCESS, worker) == front_nice + WORKER_NICE,
            timeout=WAIT,
            what="the worker at a lower CPU priority",
        )
        pairs = stage.hire(s, 60)
        wait_until(lambda: landed(stage, pairs), timeout=WAIT, what="the hire's chats")
        text = httpx.get(f"{s.url}/metrics", timeout=10.0, trust_env=False).text
    types = re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)
    assert len(types) == len(set(types)), "each family once"
    calls = re.findall(r'^autojoin_rest_calls_total\{code="ok",method="(\S+)"\} (\S+)$', text, re.M)
    assert sum(float(n) for _, n in calls) >= 1, "the worker's portal calls, from its process"
    assert re.search(
        r'^autojoin_events_total\{event="ONUSERADD",outcome="accepted"\} 1\.0$', text, re.M
    )
    assert len(pairs) == len(CHATS)


def test_a_dead_worker_is_restarted_and_the_work_goes_on(tmp_path: Path) -> None:
    with staged(tmp_path, f"sqlite:///{tmp_path / 'autojoin.db'}") as stage, stage.serve() as s:
        first = child_of(s)
        os.kill(first, signal.SIGKILL)
        wait_until(
            lambda: s.children() not in ([], [first]), timeout=WAIT, what="a new worker process"
        )
        pairs = stage.hire(s, 61)
        wait_until(lambda: landed(stage, pairs), timeout=WAIT, what="the hire's chats")
        assert "worker process exited with -9; restarting" in s.output()


def test_a_killed_front_takes_its_worker_down_within_seconds(tmp_path: Path) -> None:
    with staged(tmp_path, f"sqlite:///{tmp_path / 'autojoin.db'}") as stage, stage.serve() as s:
        worker = child_of(s)
        os.kill(s.pid, signal.SIGKILL)  # the front alone: its worker must not run on
        wait_until(lambda: gone(worker), timeout=15.0, what="the orphaned worker to exit")
        assert "the serve process is gone: stopping" in s.output()


def test_sigterm_stops_front_and_worker_cleanly(tmp_path: Path) -> None:
    with staged(tmp_path, f"sqlite:///{tmp_path / 'autojoin.db'}") as stage, stage.serve() as s:
        worker = child_of(s)
        wait_until(lambda: " running" in s.output(), timeout=WAIT, what="the worker to run")
        s.terminate()  # uvicorn re-raises the signal once it has shut down cleanly
        assert gone(worker)
        log = s.output()
    assert "signal SIGTERM: stopping" in log  # the worker's own clean stop
    assert "Application shutdown complete" in log
    assert "did not stop" not in log
    assert "Traceback" not in log


def test_inline_worker_runs_in_the_process(tmp_path: Path) -> None:
    with (
        staged(tmp_path, f"sqlite:///{tmp_path / 'autojoin.db'}") as stage,
        ServeProcess(
            env=stage.env, cwd=tmp_path, log=tmp_path / "inline.log", extra_args=["--inline-worker"]
        ) as s,
    ):
        pairs = stage.hire(s, 62)
        wait_until(lambda: landed(stage, pairs), timeout=WAIT, what="the hire's chats")
        assert s.children() == []
