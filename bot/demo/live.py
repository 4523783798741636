"""`autojoin demo --keep`: the story's portal and autojoin, served on localhost to play with.

The newcomer posts their own events (a ready-made body is written next to the rules), edits
rules.yaml and watches it reload, and reads the fake portal's state, all without an account.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import sys
from pathlib import Path

import uvicorn

import handlers
from bot.demo.story import demo_settings
from bot.logsafe import configure_logging
from bot.sandbox import FakePortal
from bot.sandbox.events import APP_TOKEN, user_add
from bot.wiring import build_services, create_app


def invoked_as(argv0: str | None = None) -> str:
    """How to type autojoin again in this shell: `autojoin` only if PATH finds this one.

    The README installs into .venv without activating it, so the hints must say
    `.venv/bin/autojoin` there; `python -m bot` is repeated as such.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    if os.path.basename(argv0) in {"__main__.py", "-m"}:
        return f"{shlex.quote(sys.executable)} -m bot"
    found = shutil.which("autojoin")
    if found and os.path.exists(argv0) and os.path.samefile(found, argv0):
        return "autojoin"
    return shlex.quote(argv0) if os.path.basename(argv0) == "autojoin" else "autojoin"


def serve_live(portal: FakePortal, folder: Path, sock: socket.socket) -> None:
    """Serve on `sock`, bound by the caller before the story, so a busy port fails first."""
    port = int(sock.getsockname()[1])
    rules = folder / "rules.yaml"
    hire = folder / "hire.txt"
    newcomer = portal.upsert_user(30, name="Nina", last_name="Novak", departments=[8])
    hire.write_bytes(user_add(newcomer, token=APP_TOKEN))
    with portal.serve_in_thread() as base:
        settings = demo_settings(folder, portal, rules, base)
        configure_logging("INFO")
        services = build_services(settings, router=handlers.router)
        app = create_app(services)
        url = f"http://127.0.0.1:{port}"
        print(
            f"""
Live sandbox (Ctrl-C to stop):
  autojoin      {url}/events   {url}/healthz   {url}/metrics
  fake portal   {base}/_admin/state   (users, chats, members, bot messages)
  rules         {rules}   (edit it: autojoin reloads it within seconds)

Post a new hire (Nina Novak, Platform) and watch her join Engineering and the Backend guild:
  curl -s -H 'content-type: application/x-www-form-urlencoded' --data-binary @{hire} {url}/events
Then:
  curl -s {base}/_admin/state | python3 -m json.tool | less
  AUTOJOIN_DATABASE_URL=sqlite:///{folder / "autojoin.db"} {invoked_as()} history
""",
            flush=True,
        )
        config = uvicorn.Config(app, log_config=None, access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
