"""Subprocesses for benchmarks: a server on a free loopback port, and a one-shot child.

Servers run as real processes (the way `autojoin serve` runs in production) so their
memory and CPU can be read from /proc without the benchmark's own objects in the figures.
Output goes to files, never pipes: a chatty server must not block on a full pipe.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (a race is retried by `start`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without autojoin settings, plus `extra` and the repo on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("B24_", "AUTOJOIN_", "PYTHON"))}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


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
                self.proc = subprocess.Popen(
                    argv, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
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

    def rss_kib(self) -> int:
        return status_kib(self.pid, "VmRSS")

    def hwm_kib(self) -> int:
        return status_kib(self.pid, "VmHWM")

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it does not go."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)

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
