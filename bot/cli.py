"""`autojoin` command line: `main(argv) -> int`, one module per command group.

Exit codes come from the exception tree (`bot.errors`): configuration problems exit 1 with
one line naming the variable or the rules file position; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot import __version__, demo
from bot.commands import botreg, chats, check, ops, plan, run, schema
from bot.errors import AutojoinError, PortalError, RulesError
from bot.logsafe import SECRETS
from bot.rest.errors import advice


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autojoin", description="Put Bitrix24 people in the right chats, by rules."
    )
    parser.add_argument("--version", action="version", version=f"autojoin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.register(sub)
    check.register(sub)
    chats.register(sub)
    plan.register(sub)
    ops.register(sub)
    demo.register(sub)
    schema.register(sub)
    botreg.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except RulesError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return exc.exit_code
    except PortalError as exc:  # the same hint /healthz gives, on the same line
        print(f"autojoin: {SECRETS.mask(f'{exc}; {advice(exc)}')}", file=sys.stderr)
        return exc.exit_code
    except AutojoinError as exc:
        print(f"autojoin: {SECRETS.mask(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the machine refused (disk, permissions): its words, one line
        print(f"autojoin: {SECRETS.mask(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
