"""`serve`'s worker as a child process, and the link between the two.

The acknowledgement path and the worker each need about a core at full load: in one
interpreter they share one, so every claim and settlement sits in front of an answer. `serve`
therefore runs `autojoin worker` as its child, on a socket pair:

- front → worker: `w` (jobs were committed: look now, instead of at the next idle poll) and
  `m` (send your metrics);
- worker → front: a metrics reply, a 4-byte length and the exposition text;
- end of file: the front is gone (even by kill -9), so the worker finishes or releases its
  claims and exits rather than run on unsupervised.

The front restarts a worker that dies, with a backoff, and reports it in `/healthz` meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

import anyio

log = logging.getLogger("autojoin")

LINK_FD = "AUTOJOIN_WORKER_LINK_FD"  # set by `serve` for its child; not a user setting
WAKE, METRICS = b"w", b"m"
STOP_GRACE = 10.0  # seconds a stopping worker gets before it is killed
METRICS_TIMEOUT = 2.0
STABLE_AFTER = 60.0  # a worker that ran this long restarts without the backoff it had built


class WorkerProcess:
    """The front's side: start, wake, ask, restart and stop the worker child."""

    def __init__(
        self,
        argv: Sequence[str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.argv = list(argv or [sys.executable, "-m", "bot", "worker"])
        self.clock = clock
        self.sleep = sleep
        self.proc: subprocess.Popen[bytes] | None = None
        self.exits: list[int] = []  # exit codes of workers that died while the front ran
        self._sock: socket.socket | None = None
        self._asking = anyio.Lock()

    def __repr__(self) -> str:
        pid = self.proc.pid if self.proc else None
        return f"WorkerProcess(pid={pid}, restarts={len(self.exits)})"

    def start(self) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ, **{LINK_FD: str(theirs.fileno())})
        try:
            self.proc = subprocess.Popen(self.argv, env=env, pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        log.info("worker process %d started", self.proc.pid)

    def wake(self) -> None:
        """Called on every accepted event: one byte, never blocking the acknowledgement."""
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):  # full (it is awake anyway) or gone (restarting)
                sock.send(WAKE)

    async def metrics(self) -> bytes:
        """The worker's exposition text, or nothing while it is down or slow to answer."""
        sock = self._sock
        if sock is None:
            return b""
        async with self._asking:
            _drain(sock)  # the rest of a reply that came after its request timed out
            with anyio.move_on_after(METRICS_TIMEOUT):
                try:
                    sock.send(METRICS)
                    head = await _read(sock, 4)
                    return await _read(sock, int.from_bytes(head, "big"))
                except (OSError, EOFError):
                    return b""
            return b""

    async def health(self) -> list[dict[str, object]]:
        if self.proc is not None and self.proc.poll() is None:
            return []
        last = f" (exit code {self.exits[-1]})" if self.exits else ""
        return [{"check": "worker", "message": f"the worker process is down{last}; restarting"}]

    async def run(self) -> None:
        """Keep a worker running until cancelled; then stop it (TERM, then KILL)."""
        delay = 1.0
        try:
            while True:
                began = self.clock()
                self.start()
                code = await self._wait()
                self._drop_link()
                self.exits.append(code)
                if self.clock() - began >= STABLE_AFTER:
                    delay = 1.0
                log.error("worker process exited with %d; restarting in %.0f s", code, delay)
                await self.sleep(delay)
                delay = min(30.0, delay * 2)
        finally:
            with anyio.CancelScope(shield=True):
                await self.stop()

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            self._drop_link()
            return
        proc.send_signal(signal.SIGTERM)
        with anyio.move_on_after(STOP_GRACE):
            await self._wait()
        if proc.poll() is None:
            log.error("worker process %d did not stop in %.0f s: killed", proc.pid, STOP_GRACE)
            proc.kill()
            await self._wait()
        self._drop_link()

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    async def _wait(self) -> int:
        proc = self.proc
        assert proc is not None
        return await anyio.to_thread.run_sync(proc.wait, abandon_on_cancel=True)

    def _drop_link(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _drain(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # BlockingIOError: nothing (more) waiting
        while sock.recv(65536):
            pass


async def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        await anyio.wait_readable(sock)
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("the worker closed the link")
        data += chunk
    return data


async def serve_link(fd: int, wake: Callable[[], None], metrics: Callable[[], bytes]) -> None:
    """The worker's side: returns when the front is gone (end of file)."""
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)  # reads follow `wait_readable`; the replies are small
    try:
        while True:
            await anyio.wait_readable(sock)
            try:
                data = sock.recv(4096)
            except OSError:
                return
            if not data:
                return
            if WAKE in data:
                wake()
            for _ in range(data.count(METRICS)):
                text = metrics()
                sock.sendall(len(text).to_bytes(4, "big") + text)
    finally:
        sock.close()
