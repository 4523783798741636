"""Listening sockets, bound before anything else starts.

uvicorn binds late, after the application's startup, and reports a taken port as a
`SystemExit(3)` inside a task group: forty lines of traceback and an exit code the README does
not know. Binding here first turns every such mistake into one `ListenError` naming the fix,
before a database is opened or a story is told, and hands uvicorn a socket it cannot lose.
"""

from __future__ import annotations

import errno
import socket

from bot.errors import ListenError

LOOPBACK = "127.0.0.1"


def bind(host: str, port: int, option: str = "--port") -> socket.socket:
    """A TCP socket bound to host:port (not yet listening); `option` names the flag to fix."""
    if not 1 <= port <= 65535:
        raise ListenError(f"{option} {port} is out of range; choose a port from 1 to 65535")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        raise ListenError(
            f"--host {host} is not an address or a known name of this machine; use 127.0.0.1 "
            "(this machine only) or 0.0.0.0 (every interface)"
        ) from None
    family, kind, proto, _, address = found[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ListenError(_why(exc, host, port, option)) from None
    return sock


def _why(exc: OSError, host: str, port: int, option: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use by another program; stop it or choose "
            f"another {option}"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"--host {host} is not an address of this machine; use 127.0.0.1 (this machine "
            "only), 0.0.0.0 (every interface) or one of its own addresses"
        )
    if exc.errno == errno.EACCES:
        return f"port {port} needs administrator rights; choose {option} 1024 or above"
    return f"cannot listen on {host}:{port} ({exc.strerror or exc}); check --host and {option}"
