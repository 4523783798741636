"""`python -m bot.sandbox`: run the fake portal standalone for a demo or a container test.

The webhook URL is not printed unless asked for (`--print-url`), because log lines must not
carry webhook codes; the sandbox code is also importable as `bot.sandbox.company.WEBHOOK_CODE`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot.sandbox import FakePortal
from bot.sandbox.company import generated_company, sample_company
from bot.sandbox.server import serve_forever

log = logging.getLogger("bot.sandbox")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--company", choices=("sample", "generated"), default="sample")
    parser.add_argument("--users", type=int, default=1000, help="generated company size")
    parser.add_argument("--departments", type=int, default=60)
    parser.add_argument("--chats", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=2.0, help="bucket drain per second")
    parser.add_argument("--burst", type=int, default=50, help="bucket size")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--print-url", action="store_true", help="write the webhook URL to stdout")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.company == "generated":
        state = generated_company(args.users, args.departments, args.chats, seed=args.seed)
    else:
        state = sample_company()
    portal = FakePortal(state, rate=args.rate, burst=args.burst, time_scale=args.time_scale)
    base = f"http://{args.host}:{args.port}"
    log.info(
        "fake portal (%s company) on %s; admin API at %s/_admin/state", args.company, base, base
    )
    if args.print_url:
        sys.stdout.write(portal.webhook_url(base) + "\n")
        sys.stdout.flush()
    serve_forever(portal.app, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
