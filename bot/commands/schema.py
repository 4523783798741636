"""`autojoin schema`: the JSON Schema of rules.yaml, for editors and CI."""

from __future__ import annotations

import argparse
from typing import Any

from bot.rules.schema import schema_text


def register(sub: Any) -> None:
    schema = sub.add_parser("schema", help="print the JSON Schema of rules.yaml")
    schema.set_defaults(func=cmd_schema)


def cmd_schema(args: argparse.Namespace) -> int:
    print(schema_text(), end="")
    return 0
