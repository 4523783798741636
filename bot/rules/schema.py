"""JSON Schema (draft 2020-12) for rules.yaml, generated from `spec` so that it cannot drift.

Editors (yaml-language-server via the modeline in rules.yaml) use it for completion and
squiggles. The repository's `rules.schema.json` is this module's output; regenerate it with

    python -m bot.rules.schema > rules.schema.json

and a test fails if the two differ.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bot.rules import spec

DRAFT = "https://json-schema.org/draft/2020-12/schema"
Schema = dict[str, Any]


def _scalar(shape: spec.Scalar) -> Schema:
    out: Schema = {"type": shape.types[0] if len(shape.types) == 1 else list(shape.types)}
    if shape.enum:
        out["enum"] = list(shape.enum)
    if shape.const is not None:
        out["const"] = shape.const
    if shape.minimum is not None:
        out["minimum"] = shape.minimum
    if shape.pattern is not None:
        out["pattern"] = shape.pattern
    return out


def _shape(shape: spec.Scalar | spec.ListOf | spec.Section, defs: dict[str, Schema]) -> Schema:
    if isinstance(shape, spec.Scalar):
        return _scalar(shape)
    if isinstance(shape, spec.ListOf):
        out: Schema = {"type": "array", "items": _shape(shape.item, defs)}
        if shape.min_items:
            out["minItems"] = shape.min_items
        return out
    defs[shape.label] = _section(shape, defs)
    return {"$ref": f"#/$defs/{shape.label}"}


def _section(section: spec.Section, defs: dict[str, Schema]) -> Schema:
    properties: Schema = {}
    for key in section.keys:
        prop: Schema = {"description": key.description, **_shape(key.shape, defs)}
        if key.default is not None:
            prop["default"] = key.default
        properties[key.name] = prop
    out: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    required = [k.name for k in section.keys if k.required and not k.inherits]
    if required:
        out["required"] = required
    restricted = [k for k in section.keys if k.kinds != spec.KINDS]
    if restricted:
        # A tagged union: exactly one kind key, and kind-specific keys need their kind's key.
        out["oneOf"] = [{"required": [kind]} for kind in spec.KINDS]
        out["dependentSchemas"] = {
            k.name: {"required": [k.kinds[0]]} for k in restricted if k.name not in spec.KINDS
        }
    return out


def _inherited() -> list[Schema]:
    """A rule key that falls back to `defaults` is required in every rule only if it does not."""
    return [
        {
            "if": {"required": ["defaults"], "properties": {"defaults": {"required": [key.name]}}},
            "else": {"properties": {"rules": {"items": {"required": [key.name]}}}},
        }
        for key in spec.RULE.keys
        if key.required and key.inherits
    ]


def rules_json_schema() -> Schema:
    """The schema as a dict, keys in `spec` order."""
    defs: dict[str, Schema] = {}
    top = _section(spec.TOP, defs)
    checked_elsewhere = "; ".join(spec.VALIDATOR_ONLY)
    return {
        "$schema": DRAFT,
        "title": "autojoin rules",
        "description": (
            "Which Bitrix24 users join which chats. `autojoin check` also verifies what a "
            f"schema cannot: {checked_elsewhere}."
        ),
        **top,
        "allOf": _inherited(),
        "$defs": defs,
    }


def schema_text() -> str:
    """The schema as the repository stores it: two-space indent, UTF-8, final newline."""
    return json.dumps(rules_json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema_text())
