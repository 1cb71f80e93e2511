"""Counting what each stage keeps and drops, with reasons (nothing is lost silently)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Problem:
    """One dropped or rejected item: where it came from, what field, and why."""

    reason: str
    where: str
    detail: str = ""
    fields: dict = field(default_factory=dict)
    error: bool = True

    def line(self) -> str:
        return f"{self.where}: {self.detail or self.reason}"

    def as_dict(self) -> dict:
        return {"reason": self.reason, "where": self.where, "detail": self.detail, "error": self.error, **self.fields}


@dataclass
class Report:
    """Counts of kept items and a list of problems, by stage."""

    stage: str
    kept: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)

    def keep(self, what: str, n: int = 1) -> None:
        self.kept[what] += n

    def drop(self, reason: str, where: str, detail: str = "", *, error: bool = True, **fields) -> Problem:
        """Record a dropped item; `error=False` for expected removals (such as boilerplate lines)."""
        problem = Problem(reason, where, detail, fields, error)
        self.problems.append(problem)
        return problem

    def dropped(self) -> Counter:
        """Dropped items by reason; a problem standing for several (`records=N`, one line for a file) counts N."""
        counts: Counter = Counter()
        for problem in self.problems:
            counts[problem.reason] += problem.fields.get("records", 1)
        return counts

    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.error]

    def by_reason(self, reason: str) -> list[Problem]:
        return [problem for problem in self.problems if problem.reason == reason]

    def as_dict(self) -> dict:
        return {
            "stage": self.stage,
            "kept": dict(sorted(self.kept.items())),
            "dropped": dict(sorted(self.dropped().items())),
            "problems": [problem.as_dict() for problem in self.problems],
        }
