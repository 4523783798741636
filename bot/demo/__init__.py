"""`autojoin demo`: the sandbox story (`story`); with `--keep`, a live sandbox (`live`).

The demo drives the real commands against the fake portal (`bot.sandbox`), so it sits
above both.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

import anyio

from bot.demo.live import serve_live
from bot.demo.story import tell
from bot.listen import LOOPBACK, bind
from bot.logsafe import configure_logging


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="replay a sandbox story against a fake Bitrix24 portal")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="then keep serving: the fake portal and autojoin on localhost, rules.yaml editable",
    )
    demo.add_argument("--port", type=int, default=8000, help="autojoin's port with --keep")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    # --keep serves on a port afterwards: take it now, so a busy port is said before the story
    sock = bind(LOOPBACK, args.port) if args.keep else None
    configure_logging("ERROR")  # the story is the output; warnings would interleave with it
    tmp = Path(tempfile.mkdtemp(prefix="autojoin-demo-"))
    try:
        portal = anyio.run(tell, tmp, print)
        if sock is not None:
            serve_live(portal, tmp, sock)
    finally:
        if sock is not None:
            sock.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0
