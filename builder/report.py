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


# --- one look for every report: table, JSON, CSV ------------------------------------------------------------
#
# Every report command (`stats`, `quality`, `annotators list`, `review`, `validate`, `build`) renders through
# these functions, so their tables line up the same way and `--format json|csv` means the same everywhere:
# JSON is one document on stdout, CSV has a header row, and messages go to stderr.

FORMATS = ("table", "json", "csv")


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.3g}"
    return str(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def render_table(columns: list[tuple[str, str]], rows: list[dict], indent: str = "", right=None) -> str:
    """An aligned text table: `columns` are (key, header); each column is as wide as its widest cell or
    header; numbers (or the columns named in `right`) right-aligned; trailing blanks cut. No rows: the
    header alone."""
    cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max([len(header), *(len(line[i]) for line in cells)]) for i, (_, header) in enumerate(columns)]
    if right is None:
        numeric = [any(_is_number(row.get(key)) for row in rows) for key, _ in columns]
    else:
        numeric = [key in right for key, _ in columns]

    def line(values: list[str]) -> str:
        padded = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return (indent + "  ".join(padded)).rstrip()

    return "\n".join([line([header for _, header in columns]), *(line(values) for values in cells)]) + "\n"


def render_csv(columns: list[tuple[str, str]], rows: list[dict]) -> str:
    """CSV with a header row of the column keys; None as an empty cell."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([key for key, _ in columns])
    for row in rows:
        writer.writerow(["" if row.get(key) is None else row.get(key) for key, _ in columns])
    return buffer.getvalue()


def render_json(data, sort_keys: bool = False) -> str:
    """One JSON document, keys in the order given, non-ASCII kept as is."""
    import json

    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=sort_keys) + "\n"


def render(fmt: str, columns: list[tuple[str, str]], rows: list[dict], data=None) -> str:
    """`rows` as a table or CSV, or `data` (default: `rows`) as JSON."""
    if fmt == "json":
        return render_json(rows if data is None else data)
    if fmt == "csv":
        return render_csv(columns, rows)
    if fmt != "table":
        from builder.errors import InputError

        raise InputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return render_table(columns, rows)


PROBLEM_COLUMNS = [
    ("reason", "reason"),
    ("kind", "kind"),
    ("count", "count"),
    ("first", "first (example)"),
    ("field", "field"),
    ("detail", "detail of the first"),
]


def problems_by_reason(problems: list[Problem], detail_width: int = 100) -> list[dict]:
    """One row per reason (errors first, then warnings, each by falling count): how many, and the first
    item as the example. Fifty skips of one kind are one row reading 50, not fifty rows."""
    rows: dict[tuple[bool, str], dict] = {}
    for problem in problems:
        key = (problem.error, problem.reason)
        if key not in rows:
            rows[key] = {
                "reason": problem.reason,
                "kind": "error" if problem.error else "warning",
                "count": 0,
                "first": problem.where,
                "field": str(problem.fields.get("field", "")),
                "detail": problem.detail[:detail_width],
            }
        rows[key]["count"] += 1
    return sorted(rows.values(), key=lambda row: (row["kind"] != "error", -row["count"], row["reason"]))


def flat_rows(data: dict, section: str = "") -> list[dict]:
    """A nested dict of figures as (section, key, value) rows, for a table or CSV of `builder stats`:
    {"labels": {"stance": {"favor": 3}}} gives the row ("labels.stance", "favor", 3)."""
    rows = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows.extend(flat_rows(value, f"{section}.{key}" if section else str(key)))
        elif isinstance(value, (list, tuple)):
            rows.append({"section": section, "key": str(key), "value": ", ".join(_cell(v) for v in value)})
        else:
            rows.append({"section": section, "key": str(key), "value": value})
    return rows
