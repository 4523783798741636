"""Real `autojoin` processes for tests: start on a free port, wait for conditions, stop or kill.

Everything here is bounded: every wait has a timeout and says what it was waiting for, and
`AutojoinProcess` kills its child when the `with` block ends however it ends. Output goes to
a file (never a pipe a chatty child could fill), readable at any time with `output()`.
The generic parts (free port, child environment, bounded waits, PostgreSQL schemas) live in
`bench/procs.py`, shared with the benchmarks; they are re-exported here for the tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from bench.procs import (
    LOOPBACK,
    POSTGRES_DSN,
    REPO,
    child_env,
    descendants,
    free_port,
    postgres_schema,
    wait_until,
)

__all__ = [
    "PG_DSN",
    "REPO",
    "AutojoinProcess",
    "ServeProcess",
    "free_port",
    "postgres_schema",
    "wait_until",
]

PG_DSN = POSTGRES_DSN
START_TIMEOUT = 45.0  # generous: two cores shared with other test runs
STOP_TIMEOUT = 20.0


class AutojoinProcess:
    """`python -m bot <args>` as a child process, its output in `log`."""

    def __init__(
        self, args: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path
    ) -> None:
        self.args = list(args)
        self.env = child_env({"PYTHONUNBUFFERED": "1", **env})
        self.cwd = cwd
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> AutojoinProcess:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("already running")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # its own group: `kill` takes its children too
                [sys.executable, "-m", "bot", *self.args],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("not started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """The exit code (negative: killed by that signal); TimeoutError if still running."""
        if self.proc is None:
            raise RuntimeError("not started")
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"autojoin {self.args[0]} still running after {timeout:.0f}s\n{self.tail()}"
            ) from None

    def kill(self) -> int:
        """SIGKILL to the process and its children (`serve`'s worker), as a crash of the
        machine or container would: no handler runs, nothing is flushed or released."""
        self._kill_group()
        return self.wait()

    def children(self) -> list[int]:
        """PIDs of the process's children (`serve` runs its worker as one)."""
        return descendants(self.pid)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait for the process to exit on its own."""
        self._signal(signal.SIGTERM)
        return self.wait(timeout)

    def stop(self) -> None:
        """Make sure the child is gone (for `finally`): SIGKILL if it is still there."""
        if self.proc is None:
            return
        self._kill_group()
        with contextlib.suppress(subprocess.TimeoutExpired):  # a zombie we cannot help
            self.proc.wait(timeout=STOP_TIMEOUT)

    def _kill_group(self) -> None:
        if self.proc is None:
            raise RuntimeError("not started")
        with contextlib.suppress(ProcessLookupError):  # all gone already
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _signal(self, signum: signal.Signals) -> None:
        if self.proc is None:
            raise RuntimeError("not started")
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    # -- output ----------------------------------------------------------------
    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = 3000) -> str:
        return self.output()[-chars:]

    def __enter__(self) -> AutojoinProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ServeProcess(AutojoinProcess):
    """`autojoin serve --port <free port>`, ready once `GET /healthz` answers."""

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        cwd: Path,
        log: Path,
        extra_args: Sequence[str] = (),
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        super().__init__(
            ["serve", "--host", LOOPBACK, "--port", str(self.port), *extra_args],
            env=env,
            cwd=cwd,
            log=log,
        )

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> ServeProcess:
        super().start()
        self.wait_ready()
        return self

    def __enter__(self) -> ServeProcess:
        return self.start()

    def health(self) -> httpx.Response | None:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2.0, trust_env=False)
        except httpx.HTTPError:
            return None

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"autojoin serve exited while starting:\n{self.tail()}")
            response = self.health()
            return response is not None and response.status_code == 200

        wait_until(ready, timeout=timeout, what=f"autojoin serve on port {self.port}")

    def post(self, path: str, body: bytes, content_type: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}{path}",
            content=body,
            headers={"content-type": content_type},
            timeout=30.0,
            trust_env=False,
        )
