"""Real processes and throwaway databases, for the benchmarks and the process tests.

Servers run as real processes (the way `autojoin serve` runs in production) so their
memory and CPU can be read from /proc without the benchmark's own objects in the figures.
Output goes to files, never pipes: a chatty server must not block on a full pipe.
This module is the one home of the helpers both sides need (free port, child environment,
bounded waits, PostgreSQL schemas); `tests/processes.py` builds its test processes on them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx
import psycopg
from psycopg import sql as pgsql

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
POSTGRES_DSN = os.environ.get("AUTOJOIN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

T = TypeVar("T")


def free_port(host: str = LOOPBACK) -> int:
    """A port the kernel handed out just now (another process could still take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without autojoin, Bitrix24 or Python settings, plus `extra`
    and the repo on the path: a developer's own settings must not leak into a child."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("B24_", "AUTOJOIN_", "PYTHON"))}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> T:
    """Poll `condition` until it returns something truthy, and return that; else TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def postgres_problem(dsn: str = POSTGRES_DSN) -> str | None:
    """None if the server answers, else why not (in one line, without the DSN)."""
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]}"
    return None


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        name = pgsql.Identifier(schema)
        conn.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(name))


@contextmanager
def postgres_schema(dsn: str = POSTGRES_DSN, prefix: str = "autojoin_test") -> Iterator[str]:
    """A database URL on a fresh schema (`?schema=` as `bot.store.open_store` reads it),
    dropped with everything in it afterwards, however the block ends."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"
    finally:
        drop_schema(dsn, schema)


def status_kib(pid: int, field: str) -> int:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM), in KiB; 0 if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """Children, grandchildren, ... of a process (/proc/<pid>/task/*/children)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Server:
    """A server subprocess on a free port, up once `health_path` answers 200."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log: Path,
        health_path: str = "/healthz",
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.log = log
        self.health_path = health_path
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("the server is not running")
        return self.proc.pid

    def start(self, attempts: int = 3) -> Server:
        for _ in range(attempts):
            self.port = free_port()
            argv = [a.replace("{port}", str(self.port)) for a in self.argv]
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(  # its own group: a crash takes its children too
                    argv,
                    cwd=self.cwd,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_healthy():
                return self
            self.stop()
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(self.argv[:4])} did not start:\n{tail}")

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                if (
                    httpx.get(self.url + self.health_path, timeout=1.0, trust_env=False).status_code
                    == 200
                ):
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        return False

    def tree(self) -> list[int]:
        """The server and its children (`serve` runs its worker as one)."""
        return [self.pid, *descendants(self.pid)]

    def rss_kib(self) -> int:
        return sum(status_kib(pid, "VmRSS") for pid in self.tree())

    def hwm_kib(self) -> int:
        return sum(status_kib(pid, "VmHWM") for pid in self.tree())

    def cpu(self) -> float:
        """CPU seconds of the whole tree (a child that died meanwhile is not counted)."""
        return sum(cpu_seconds(pid) for pid in self.tree())

    def own_cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> int | None:
        """`signum` (SIGTERM: uvicorn shuts down gracefully; SIGKILL: a crash), then SIGKILL
        if it does not go; the exit code, or None if nothing was running."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            if signum == signal.SIGKILL:  # a crash (an OOM kill, a node lost) takes them all
                os.killpg(proc.pid, signum)
            else:  # a stop goes to the server, which stops its children
                proc.send_signal(signum)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError):  # nothing of it may outlive the stop
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass(frozen=True, slots=True)
class ChildResult:
    returncode: int
    output: str
    seconds: float
    cpu_seconds: float  # user + system, from wait4 for this child alone
    peak_kib: int  # the last VmHWM read before the child exited


def run_child(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path, timeout: float
) -> ChildResult:
    """Run to completion, reading the child's VmHWM every few milliseconds.

    Peak memory is not `ru_maxrss` from wait4: Linux carries the high-water mark of the
    pre-exec image (a copy of this big benchmark process) into that figure. VmHWM belongs
    to the exec'd program's own address space; it only grows, so the last read is its peak
    up to a few milliseconds before exit. CPU time from wait4 has no such problem.
    """
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    peak = 0
    while True:
        peak = max(peak, status_kib(proc.pid, "VmHWM"))
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.005)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    output = log.read_text(errors="replace")
    cpu = usage.ru_utime + usage.ru_stime
    return ChildResult(proc.returncode, output, seconds, cpu, peak)


def python(*args: str) -> list[str]:
    """argv for this interpreter (the venv's), so children run the same code and packages."""
    return [sys.executable, *args]
