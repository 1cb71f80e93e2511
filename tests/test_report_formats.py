"""Issue 27 point 3: one look for every report. `stats`, `quality`, `annotators list`, `review`, `validate`
and `build` all take `--format table|json|csv`, rendered by builder.report: JSON alone on stdout, CSV with
a header row, tables as wide as their widest cell, and repeated problems one counted row per reason."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from builder.jsonio import read_jsonl
from builder.labelstudio.push import push_sentences
from builder.labelstudio.users import annotator_connection
from builder.report import Problem, problems_by_reason, render_table

from .conftest import ROOT, cli_env, make_project, run_cli
from .test_labelstudio import annotate, synthetic_sentences

SNAPSHOT = ROOT / "annotations" / "snapshot.jsonl"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def assert_aligned(text: str) -> list[str]:
    """The header is as wide as its rows: the columns (runs of positions not blank on some line) are exactly
    as many as the header's titles, each title in its own column. A cell wider than its title pushes the
    rest of its row over and merges two columns into one run."""
    lines = text.rstrip("\n").splitlines()
    width = max(len(line) for line in lines)
    used = [any(i < len(line) and line[i] != " " for line in lines) for i in range(width)]
    runs = []  # columns are two blanks apart; one blank is a space inside a cell
    for i, on in enumerate(used):
        if on and (not runs or i - runs[-1][1] >= 2):
            runs.append([i, i])
        if on:
            runs[-1][1] = i + 1
    titles = [m.span() for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    assert len(runs) == len(titles), (runs, titles, lines[:3])
    for (start, end), (low, high) in zip(titles, runs, strict=True):
        assert low <= start and end <= high, (lines[0], runs)
    return lines


def parsed_csv(text: str) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(rows[0].keys()) if rows else text.strip()
    return rows


def test_render_table_makes_the_header_as_wide_as_its_rows():
    columns = [("reason", "reason"), ("count", "count"), ("first", "first")]
    rows = [{"reason": "a very long reason indeed", "count": 12345678, "first": "task 1"}, {"reason": "x", "count": 1}]
    lines = render_table(columns, rows).splitlines()
    assert lines[0].index("count") + len("count") == lines[1].index("12345678") + len("12345678")  # right-aligned
    assert lines[0].index("first") == lines[1].index("task 1")
    assert lines[2].endswith("1  -")  # a missing cell reads "-"
    assert_aligned(render_table(columns, rows))


def test_problems_are_counted_by_reason_with_the_first_as_example():
    problems = [
        Problem("skipped task", f"task {i}", "all 1 annotation(s) were cancelled", error=False) for i in range(50)
    ]
    problems.append(Problem("schema", "task 99", "bad", {"field": "data.text"}))
    rows = problems_by_reason(problems)
    assert [(r["reason"], r["kind"], r["count"], r["first"]) for r in rows] == [
        ("schema", "error", 1, "task 99"),
        ("skipped task", "warning", 50, "task 0"),
    ]


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_stats_in_each_format(fmt):
    ran = run_cli("stats", "--format", fmt, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr
    assert "{'" not in ran.stdout and not EMAIL.search(ran.stdout + ran.stderr)  # no Python dict reprs, no e-mails
    if fmt == "json":
        figures = json.loads(ran.stdout)
        assert figures["records"] == 65 and figures["labels"]["stance"]["neutral"] == 60
    elif fmt == "csv":
        rows = parsed_csv(ran.stdout)
        assert {"section": "labels.stance", "key": "neutral", "value": "60"} in rows
        assert {"section": "dataset", "key": "records", "value": "65"} in rows
    else:
        lines = assert_aligned(ran.stdout)
        assert lines[0].split() == ["section", "key", "value"]
        assert any(line.split() == ["labels.stance", "neutral", "60"] for line in lines)
    if fmt == "json":
        assert json.loads(run_cli("stats", "--json", cwd=ROOT).stdout) == figures  # the older spelling still works


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_quality_in_each_format_keeps_its_json_keys(fmt):
    ran = run_cli("quality", "--format", fmt, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr
    assert not EMAIL.search(ran.stdout + ran.stderr)
    if fmt == "json":
        rows = json.loads(ran.stdout)
        assert len(rows) == 3 and {"annotator", "annotated", "gold_accuracy", "kappa", "flagged"} <= set(rows[0])
    elif fmt == "csv":
        assert len(parsed_csv(ran.stdout)) == 3
    else:
        assert_aligned(ran.stdout)


def many_skips_snapshot(tmp_path, skipped: int = 30):
    """The committed snapshot with every annotation of its first `skipped` tasks cancelled: ordinary skips."""
    tasks = list(read_jsonl(SNAPSHOT))
    for task in tasks[:skipped]:
        for annotation in task["annotations"]:
            annotation["was_cancelled"] = True
    path = tmp_path / "skips.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks), encoding="utf-8")
    return path, len(tasks)


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_validate_summary_in_each_format_counts_skips_by_reason(tmp_path, fmt):
    snapshot, n = many_skips_snapshot(tmp_path)
    out = ("-o", tmp_path / "r.jsonl", "--report", tmp_path / "report.json")
    ran = run_cli("validate", "--snapshot", snapshot, *out, "--format", fmt, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr
    assert f"validate: {n} tasks in = {n - 30} records + 30 quarantined" in ran.stderr
    if fmt == "json":
        summary = json.loads(ran.stdout)
        assert (summary["tasks_in"], summary["records"], summary["quarantined"]) == (n, n - 30, 30)
        [skips] = summary["problems"]
        assert (skips["reason"], skips["kind"], skips["count"]) == ("skipped task", "warning", 30)
        assert skips["first"].startswith("task ")
    elif fmt == "csv":
        [skips] = parsed_csv(ran.stdout)
        assert (skips["reason"], skips["count"]) == ("skipped task", "30")
    else:
        assert ran.stdout == ""  # the table is a message, on stderr
        table = ran.stderr.splitlines()[:2]
        assert table[0].startswith("reason") and table[1].split()[:4] == ["skipped", "task", "warning", "30"]
        assert_aligned("\n".join(table))
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert len(report["problems"]) == 30  # the report file still lists each one


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_build_prints_many_skips_of_one_reason_once_as_one_counted_row(tmp_path, fmt):
    snapshot, n = many_skips_snapshot(tmp_path)
    ran = run_cli("build", "--snapshot", snapshot, "-o", tmp_path / "dist", "--format", fmt, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr
    assert not EMAIL.search(ran.stdout + ran.stderr)
    both = ran.stdout + ran.stderr
    if fmt == "json":
        summary = json.loads(ran.stdout)
        assert sum(summary["splits"].values()) == n - 30
        assert [(p["reason"], p["count"]) for p in summary["validation"]["problems"]] == [("skipped task", 30)]
        assert ran.stderr.count("skipped task") == 1  # the accounting line only; the row is in the JSON
    else:
        rows = [line for line in both.splitlines() if line.startswith("skipped task")]
        assert len(rows) == 1 and rows[0].split()[:4] == ["skipped", "task", "warning", "30"], both
        assert both.count("validate: ") == 1
    if fmt == "csv":
        rows = parsed_csv(ran.stdout)
        assert [r["split"] for r in rows] == ["train", "validation", "test"]
        assert sum(int(r["records"]) for r in rows) == n - 30
    if fmt == "table":
        assert ran.stdout.startswith(f"built {tmp_path / 'dist'}: train ")


def test_annotators_list_and_review_in_each_format(ls, tmp_path):
    """On the real server: a stance tie and an entity conflict between two accounts, listed and reviewed
    in each format; e-mails masked in every format."""
    project = make_project(tmp_path, "report formats")
    sentences = synthetic_sentences(2, "fmt")
    from builder.sentences.segmenter import sentence_id

    sentences = [
        {**s, "id": sentence_id(s["article_id"], s["text"], 0), "occurrence": 0, "end": len(s["text"])}
        for s in sentences
    ]
    pushed = push_sentences(ls, project, sentences)
    tasks = {t.data["sentence_id"]: t.id for t in ls.client().tasks.list(project=pushed.project_id)}
    erin = annotator_connection(ls, "erin.fmt@example.org", "erin-secret-1")
    finn = annotator_connection(ls, "finn.fmt@example.org", "finn-secret-22")
    tie, conflict = sentences
    start = conflict["text"].index("Moscow")
    annotate(erin, tasks[tie["id"]], [], "neutral", 2.0)
    annotate(finn, tasks[tie["id"]], [], "against", 2.0)
    annotate(erin, tasks[conflict["id"]], [(start, start + 6, "Moscow", "LOC")], "neutral", 2.0)
    annotate(finn, tasks[conflict["id"]], [(start, start + 6, "Moscow", "ORG")], "neutral", 2.0)
    assert run_cli("pull", env=cli_env(ls), cwd=tmp_path).returncode == 0

    env = cli_env(ls)
    for fmt in ("table", "json", "csv"):
        listed = run_cli("annotators", "list", "--format", fmt, env=env, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "fmt@example.org" not in listed.stdout + listed.stderr and ls.api_key not in listed.stdout
        if fmt == "json":
            accounts = {a["email"]: a for a in json.loads(listed.stdout)["annotators"]}
            assert accounts["e•••@example.org"]["annotated"] == 2
        elif fmt == "csv":
            rows = {r["email"]: r for r in parsed_csv(listed.stdout)}
            assert rows["f•••@example.org"]["annotated"] == "2"
            assert "project 'report formats'" in listed.stderr
        else:
            lines = listed.stdout.splitlines()
            assert lines[0].startswith("project 'report formats'")
            assert_aligned("\n".join(lines[1:]))

        reviewed = run_cli("review", "--format", fmt, env=env, cwd=tmp_path)
        assert reviewed.returncode == 0, reviewed.stderr
        if fmt == "json":
            data = json.loads(reviewed.stdout)
            [ties] = data["stance_ties"]
            assert ties["id"] == tie["id"] and sorted(ties["stances"].values()) == ["against", "neutral"]
            [conflicts] = data["entity_conflicts"]
            assert [s["label"] for s in conflicts["unresolved"]] == ["LOC", "ORG"]
            assert set(data["views"]) == {"stance_ties", "entity_conflicts"}
            assert "review them in Label Studio" in reviewed.stderr
        elif fmt == "csv":
            rows = parsed_csv(reviewed.stdout)
            assert [(r["kind"], r["id"]) for r in rows] == [
                ("stance tie", tie["id"]),
                ("entity conflict", conflict["id"]),
            ]
        else:
            lines = reviewed.stdout.splitlines()
            assert lines[0] == "stance ties (1 sentence(s)):"
            assert_aligned("\n".join(lines[1:3]))
            assert "1 unresolved; review them in Label Studio:" in reviewed.stdout
