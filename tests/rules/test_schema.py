"""The JSON Schema and the validator must agree, because both come from `spec`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.rules import spec
from bot.rules.loader import check_rules, check_rules_text
from bot.rules.schema import rules_json_schema, schema_text

ROOT = Path(__file__).parents[2]
CORPUS = sorted(Path(__file__).parent.glob("corpus/*/*.yaml"))
VALIDATOR = jsonschema.Draft202012Validator(rules_json_schema())

HEAD = "version: 1\ndefaults:\n  hide_history: false\nrules:\n"
RULE = "  - name: a\n    departments: [2]\n    chats: [101]\n"

# Where the two legitimately differ, with the validator's verdict (True = valid). Each is listed
# in `spec.VALIDATOR_ONLY`, and so in the schema's description.
VALIDATOR_ONLY = {
    "duplicate rule names": (HEAD + RULE + RULE, False),
    "duplicate mapping key": (HEAD + RULE + "    chats: [102]\n", False),
    "keyword of non-ASCII punctuation only": (
        HEAD + '  - name: k\n    keywords: ["—«»"]\n    chats: [1]\n',
        False,
    ),
    "YAML 1.1 boolean yes": (HEAD + RULE + "    hide_history: yes\n", False),
    "octal-looking integer": (
        HEAD + "  - name: a\n    departments: [017]\n    chats: [1]\n",
        False,
    ),
    "float that is an integer": (
        HEAD + "  - name: a\n    departments: [2]\n    chats: [1.0]\n",
        False,
    ),
    "merge key": (HEAD + "  - name: a\n    <<: {departments: [2]}\n    chats: [1]\n", False),
    "YAML 1.1 date is a YAML 1.2 string": (HEAD + RULE + "    description: 2024-01-01\n", True),
    "YAML 1.1 boolean is a YAML 1.2 string": (HEAD + RULE + "    description: on\n", True),
}


def schema_accepts(text: str) -> bool:
    document: Any = yaml.safe_load(text)
    return bool(VALIDATOR.is_valid(document))


def validator_accepts(text: str) -> bool:
    ruleset, _ = check_rules_text(text)
    return ruleset is not None


def test_the_schema_is_valid_draft_2020_12() -> None:
    schema = rules_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_repo_schema_file_is_the_generator_output() -> None:
    """Regenerate with: python -m bot.rules.schema > rules.schema.json"""
    stored = (ROOT / "rules.schema.json").read_text(encoding="utf-8")
    assert stored == schema_text()
    assert json.loads(stored) == rules_json_schema()


def test_the_example_rules_file_points_at_the_schema_and_passes_it() -> None:
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "# yaml-language-server: $schema=./rules.schema.json"
    assert schema_accepts(text)
    assert validator_accepts(text)


def test_every_key_in_spec_is_described_in_the_schema() -> None:
    schema = rules_json_schema()
    sections = {
        "rules file": schema["properties"],
        "defaults": schema["$defs"]["defaults"]["properties"],
        "rule": schema["$defs"]["rule"]["properties"],
    }
    for section in (spec.TOP, spec.DEFAULTS, spec.RULE):
        properties = sections[section.label]
        assert list(properties) == [k.name for k in section.keys]
        assert all(properties[k.name]["description"] == k.description for k in section.keys)


def test_cross_field_rules_are_in_the_schema() -> None:
    rule = rules_json_schema()["$defs"]["rule"]
    assert rule["oneOf"] == [{"required": ["departments"]}, {"required": ["keywords"]}]
    assert rule["dependentSchemas"] == {
        "include_subdepartments": {"required": ["departments"]},
        "only_departments": {"required": ["keywords"]},
        "reply": {"required": ["keywords"]},
    }
    assert rule["additionalProperties"] is False


def test_the_description_lists_what_only_the_validator_checks() -> None:
    description = rules_json_schema()["description"]
    assert all(item in description for item in spec.VALIDATOR_ONLY)


def test_the_corpus_is_large_and_has_both_verdicts() -> None:
    verdicts = [path.parent.name for path in CORPUS]
    assert len(CORPUS) >= 25
    assert {"valid", "invalid"} == set(verdicts)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_schema_and_validator_give_the_corpus_verdict(path: Path) -> None:
    expected = path.parent.name == "valid"
    ruleset, problems = check_rules(path)
    assert (ruleset is not None) is expected, [str(p) for p in problems]
    assert schema_accepts(path.read_text(encoding="utf-8")) is expected


@pytest.mark.parametrize("case", sorted(VALIDATOR_ONLY))
def test_documented_validator_only_cases_really_differ(case: str) -> None:
    """If one of these starts to agree, it belongs in the corpus instead."""
    text, validator_verdict = VALIDATOR_ONLY[case]
    assert validator_accepts(text) is validator_verdict
    assert schema_accepts(text) is not validator_verdict


def test_autojoin_schema_prints_the_shipped_schema(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["schema"]) == 0
    shipped = (Path(__file__).resolve().parents[2] / "rules.schema.json").read_text("utf-8")
    assert capsys.readouterr().out == shipped
