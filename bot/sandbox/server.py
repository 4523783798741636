"""Run an ASGI app under uvicorn: in a background thread for tests, or in the foreground.

Access logging is off on purpose: uvicorn would print every request path, and a REST path
carries the webhook code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import uvicorn

STARTUP_TIMEOUT: Final = 10.0


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` on a free port (port 0) in a daemon thread; yield its base URL."""
    server = uvicorn.Server(_config(app, host, port))
    thread = threading.Thread(target=server.run, name="fake-portal", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"fake portal did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)


def serve_forever(app: Any, host: str, port: int) -> None:
    uvicorn.Server(_config(app, host, port)).run()
