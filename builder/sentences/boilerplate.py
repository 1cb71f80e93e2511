"""Line rules that remove text which is not part of the article (donation appeals, share lines).

A rule is a name and a regular expression searched case-insensitively in each line. Add rules in
builder.toml under `[[ingest.boilerplate]]`; every removed line is reported with its rule's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.project import BoilerplateRule

DEFAULT_RULES: tuple[BoilerplateRule, ...] = (
    BoilerplateRule(
        "appeal-heading",
        r"^\s*(help )?(keep|support|save) (independent|quality|free|local) (journalism|news|reporting)\b",
    ),
    BoilerplateRule("donation-appeal", r"\b(please )?consider (making |a )?(a )?(donation|donating|supporting us)\b"),
    BoilerplateRule("support-us", r"^\s*support (us|our (work|journalism|reporting))\b"),
    BoilerplateRule("subscribe", r"^\s*(subscribe|sign up)\b.{0,80}\b(newsletter|subscription|updates|today|now)\b"),
    BoilerplateRule("share-follow", r"^\s*(share (this|on|via)|follow us on|click here to)\b"),
)


@dataclass(frozen=True)
class RemovedLine:
    line_number: int
    rule: str
    text: str


class BoilerplateFilter:
    """Removes whole lines that match any rule."""

    def __init__(self, rules: tuple[BoilerplateRule, ...] = DEFAULT_RULES) -> None:
        self.rules = [(rule.name, re.compile(rule.pattern, re.IGNORECASE)) for rule in rules]

    def rule_for(self, line: str) -> str | None:
        for name, pattern in self.rules:
            if pattern.search(line):
                return name
        return None

    def clean(self, text: str) -> tuple[str, list[RemovedLine]]:
        """The text without boilerplate lines, and the removed lines with 1-based line numbers."""
        kept: list[str] = []
        removed: list[RemovedLine] = []
        for number, line in enumerate(text.split("\n"), 1):
            rule = self.rule_for(line) if line.strip() else None
            if rule is None:
                kept.append(line)
            else:
                removed.append(RemovedLine(number, rule, line))
        return "\n".join(kept), removed
