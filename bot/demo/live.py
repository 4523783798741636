"""`autojoin demo --keep`: the story's portal and autojoin, served on localhost to play with.

The newcomer posts their own events (a ready-made body is written next to the rules), edits
rules.yaml and watches it reload, and reads the fake portal's state, all without an account.
"""

from __future__ import annotations

from pathlib import Path

import uvicorn

import handlers
from bot.demo.story import demo_settings
from bot.logsafe import configure_logging
from bot.sandbox import FakePortal
from bot.sandbox.events import APP_TOKEN, user_add
from bot.wiring import build_services, create_app


def serve_live(portal: FakePortal, folder: Path, port: int) -> None:
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
  AUTOJOIN_DATABASE_URL=sqlite:///{folder / "autojoin.db"} autojoin history
""",
            flush=True,
        )
        uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
