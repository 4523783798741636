"""The rules in force, and hot reload of rules.yaml on change or SIGHUP.

A valid edit is swapped in atomically (one attribute assignment; readers take the current
object once per event) and logged with what changed. An invalid edit keeps the last good
rules, logs every error with its position and marks the service degraded until fixed.
Jobs already queued carry their chat and history settings, so a reload never touches them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from bot.errors import Problem
from bot.rules import RuleSet, check_rules, diff_rulesets

log = logging.getLogger("autojoin.rules")


class RulesHolder:
    def __init__(
        self,
        rules: RuleSet,
        path: Path | None = None,
        on_swap: Callable[[RuleSet], None] | None = None,
    ) -> None:
        self.current = rules
        self.path = path
        self.on_swap = on_swap
        self.problems: tuple[Problem, ...] = ()
        self._seen = self._fingerprint()

    def _fingerprint(self) -> str | None:
        if self.path is None:
            return None
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def changed(self) -> bool:
        """True when the file's bytes differ from what was last looked at."""
        fingerprint = self._fingerprint()
        if fingerprint == self._seen:
            return False
        self._seen = fingerprint
        return True

    def reload(self) -> bool:
        """Check the file and swap it in if valid; True when the rules in force changed."""
        if self.path is None:
            return False
        self._seen = self._fingerprint()
        ruleset, problems = check_rules(self.path)
        errors = tuple(p for p in problems if p.severity == "error")
        if ruleset is None or errors:
            self.problems = errors or (Problem(str(self.path), 1, 1, "rules could not be read"),)
            for problem in self.problems:
                log.error("rules reload refused, keeping the last good rules: %s", problem)
            return False
        self.problems = ()
        old = self.current
        if ruleset.digest == old.digest:
            return False
        added, removed, edited = diff_rulesets(old, ruleset)
        self.current = ruleset
        log.info(  # a wanted change, not a problem: warnings stay for what needs a look
            "rules reloaded (%s): added %s; removed %s; edited %s",
            ruleset.digest[:12],
            ", ".join(added) or "-",
            ", ".join(removed) or "-",
            ", ".join(edited) or "-",
        )
        for warning in problems:
            log.warning("%s", warning)
        if self.on_swap is not None:
            self.on_swap(ruleset)
        return True

    def health(self) -> list[dict[str, object]]:
        if not self.problems:
            return []
        return [
            {
                "check": "rules",
                "message": "an invalid edit of the rules file was refused; the last good rules "
                "stay in force",
                "errors": [str(p) for p in self.problems],
            }
        ]
