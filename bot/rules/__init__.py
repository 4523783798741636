"""rules.yaml: the model, the positioned loader, the compiled index and the JSON Schema.

ruleset = load_rules("rules.yaml")                  # raises RulesError listing every problem
compiled = CompiledRules.build(ruleset, tree)       # tree: bot.departments.DepartmentTree
compiled.grants_for_departments([4])                # -> [ChatGrant(chat_id=101, ...), ...]
compiled.keyword_rules_for("join marketing")        # then compiled.allowed(rule, dept_ids)
"""

from __future__ import annotations

from bot.rules.index import ChatGrant, CompiledRules
from bot.rules.keywords import MAX_TEXT_CHARS
from bot.rules.loader import check_rules, check_rules_text, load_rules, parse_rules
from bot.rules.model import DepartmentRef, Rule, RuleSet, diff_rulesets
from bot.rules.spec import RuleKind

__all__ = [
    "MAX_TEXT_CHARS",
    "ChatGrant",
    "CompiledRules",
    "DepartmentRef",
    "Rule",
    "RuleKind",
    "RuleSet",
    "check_rules",
    "check_rules_text",
    "diff_rulesets",
    "load_rules",
    "parse_rules",
]
