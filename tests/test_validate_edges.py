"""Edges of validation's promise (docs/maintainers.md, "Validation rules"): records and the report are the same with or
without the fast path, for JSON lines read oddly and for the library API's dicts holding what JSON cannot."""

from __future__ import annotations

import copy
import datetime
import enum

import orjson
import pytest

from builder.pseudonyms import is_pseudonym
from builder.records.aggregate import task_to_record
from builder.records.validate import TaskValidator, validate_tasks, validated_records
from builder.report import Report

from .test_validate_fast import full_path_of_line, varied_tasks


class Count(enum.IntEnum):
    FIVE = 5


class Number(int):
    pass


class Name(str):
    pass


def two_annotator_task(project):
    return copy.deepcopy(next(t for t in varied_tasks(project) if len(t["annotations"]) == 2))


def changed(task, path, value):
    """`task` with the value at `path` (keys and indexes) replaced."""
    task = copy.deepcopy(task)
    parent = task
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value(parent[path[-1]]) if callable(value) else value
    return task


LEAD_TIME = ("annotations", 0, "lead_time")
# Values a dict may hold that a JSON line cannot (or reads back as something else): (name, path, value).
NOT_JSON = [
    ("NaN lead time", LEAD_TIME, float("nan")),
    ("infinite lead time", LEAD_TIME, float("inf")),
    ("negative infinite lead time", LEAD_TIME, float("-inf")),
    ("annotations as a tuple", ("annotations",), tuple),
    ("result as a tuple", ("annotations", 0, "result"), tuple),
    ("task id an IntEnum", ("task_id",), Count.FIVE),
    ("task id an int subclass", ("task_id",), Number(5)),
    ("annotation id an int subclass", ("annotations", 0, "id"), Number(63)),
    ("sentence index an int subclass", ("data", "sentence_index"), Number),
    ("span start an int subclass", ("annotations", 0, "result", 0, "value", "start"), Number),
    ("annotator a str subclass", ("annotations", 0, "annotator"), Name),
    ("text a str subclass", ("data", "text"), Name),
    ("title a date", ("data", "article_title"), datetime.date(2026, 1, 1)),
    ("title bytes", ("data", "article_title"), b"title"),
    ("title a lone surrogate", ("data", "article_title"), "\ud800"),
    ("text with a lone surrogate", ("data", "text"), lambda text: text + "\ud800"),
    ("task id past 64 bits", ("task_id",), 2**70),
]


def run(tasks, project, stage, fast: bool):
    """(what `stage` yields, the report's problems), with or without the fast path; never raises."""
    report = Report("validate")
    validator_class = TaskValidator
    original = validator_class._plain_record
    if not fast:
        validator_class._plain_record = property(lambda self: lambda line: None)
    try:
        out = list(stage(copy.deepcopy(tasks), project, report))
    finally:
        validator_class._plain_record = original
    problems = sorted((p.reason, p.where, p.detail, str(p.fields)) for p in report.problems)
    return out, problems, dict(report.kept)


@pytest.mark.parametrize("stage", [validated_records, validate_tasks], ids=["validated_records", "validate_tasks"])
@pytest.mark.parametrize("name,path,value", NOT_JSON, ids=[c[0] for c in NOT_JSON])
def test_library_dicts_json_cannot_hold_give_the_same_with_and_without_fast_path(project, stage, name, path, value):
    """The fast path reads a dict through its JSON encoding, which loses NaN, tuples, subclasses and enums: such a
    dict takes the full path, so records (or validated tasks) and the report are the same either way; nothing
    raises."""
    task = changed(two_annotator_task(project), path, value)
    fast = run([task], project, stage, fast=True)
    full = run([task], project, stage, fast=False)
    assert repr(fast) == repr(full)  # repr: NaN != NaN, and a tuple must stay a tuple (or a list a list)


def test_nan_lead_time_is_a_bad_lead_time(project):
    """NaN is no number of seconds (a dict from `json.loads` may hold it): set to null with a warning, labels kept,
    as for any lead time outside 0-LEAD_TIME_MAX."""
    task = changed(two_annotator_task(project), LEAD_TIME, float("nan"))
    for fast in (True, False):
        records, problems, _ = run([task], project, validated_records, fast)
        assert [p[0] for p in problems] == ["bad lead time"]
        assert [a["lead_time"] for a in records[0]["annotations"]].count(None) == 1


@pytest.mark.parametrize(
    "name,path,value,reason",
    [
        ("bytes", ("data", "article_title"), b"title", "schema"),
        ("a date", ("data", "article_title"), datetime.date(2026, 1, 1), "schema"),
        ("an int subclass", ("task_id",), Number(5), "not an integer"),
        ("a lone surrogate", ("data", "text"), lambda text: text + "\ud800", "changed sentence text"),
    ],
)
def test_full_path_reports_values_json_cannot_hold(project, name, path, value, reason):
    """Values jsonschema-rs refuses to look at, and text that is not UTF-8, are reported as the task's problem,
    never raised (the library API's promise: a value JSON cannot hold is reported as the task it is)."""
    task = changed(two_annotator_task(project), path, value)
    records, problems, _ = run([task], project, validated_records, fast=False)
    assert records == [] and [p[0] for p in problems] == [reason]


def test_a_name_with_a_trailing_newline_is_no_pseudonym_and_never_echoed(project):
    """`$` matches before a final newline in Python: `annotator-0123abcd\\n` is not a pseudonym, and the report's
    `where` (one line) does not echo it."""
    assert not is_pseudonym("annotator-0123abcd\n") and is_pseudonym("annotator-0123abcd")
    task = changed(two_annotator_task(project), ("annotations", 0, "annotator"), "annotator-0123abcd\n")
    _, problems, _ = run([task], project, validated_records, fast=True)
    assert [p[0] for p in problems] == ["not a pseudonym"]
    assert all("\n" not in part for problem in problems for part in problem)


def odd_but_readable_lines(task):
    """JSON lines that msgspec and orjson could read differently: (name, line)."""
    line = orjson.dumps(task)

    def swap(old: bytes, new: bytes) -> bytes:
        assert old in line, old
        return line.replace(old, new, 1)

    return [
        ("escaped key", swap(b'"text":"', b'"te\\u0078t":"')),
        ("escaped key after the key it repeats", swap(b'"sentence_index":', b'"te\\u0078t":"X","sentence_index":')),
        ("duplicate text, the first odd", swap(b'"text":"', b'"text":"X","text":"')),
        ("duplicate start", swap(b'"start":0', b'"start":1,"start":0')),
        ("duplicate start, the last out of place", swap(b'"start":0', b'"start":0,"start":1')),
        ("duplicate label, the first unknown", swap(b'"labels":["MISC"]', b'"labels":["FOO"],"labels":["MISC"]')),
        ("duplicate annotations", b'{"annotations":[],' + line[1:]),
        ("duplicate annotations, the last empty", line[:-1] + b',"annotations":[]}'),
        ("duplicate from_name", swap(b'"from_name":"stance"', b'"from_name":"entities","from_name":"stance"')),
        ("duplicate annotator, the last not a pseudonym", swap(b'"annotator":"annotator-6d0e0fc451c0', b'"annotator":"x","annotator":"annotator-6d0e0fc451c0')),  # noqa: E501
        ("escaped label and choice", swap(b'"labels":["MISC"]', b'"labels":["MI\\u0053C"]')),
        ("escaped control name", swap(b'"from_name":"stance"', b'"from_name":"st\\u0061nce"')),
        ("annotator with an escaped newline", swap(b'"annotator":"annotator-6d0e0fc451c0"', b'"annotator":"annotator-6d0e0fc451c0\\n"')),  # noqa: E501
        ("annotator with an Arabic-Indic digit", swap(b'"annotator":"annotator-6d0e0fc451c0"', "\"annotator\":\"annotator-6d0e0fc451c\u0663\"".encode())),  # noqa: E501
        ("lead time -0", swap(b'"lead_time":9.2', b'"lead_time":-0')),
        ("lead time -0.0", swap(b'"lead_time":9.2', b'"lead_time":-0.0')),
        ("lead time 1E6", swap(b'"lead_time":9.2', b'"lead_time":1E6')),
        ("lead time just past the maximum", swap(b'"lead_time":9.2', b'"lead_time":1000000.0000001')),
        ("lead time rounding to the maximum", swap(b'"lead_time":9.2', b'"lead_time":1000000.00000000001')),
        ("lead time 1E400", swap(b'"lead_time":9.2', b'"lead_time":1E400')),
        ("lead time 1E-400", swap(b'"lead_time":9.2', b'"lead_time":1E-400')),
        ("lead time 2^64", swap(b'"lead_time":9.2', b'"lead_time":18446744073709551616')),
        ("annotation id int64 max", swap(b'"id":63', b'"id":9223372036854775807')),
        ("annotation id int64 min", swap(b'"id":63', b'"id":-9223372036854775808')),
        ("annotation id past int64", swap(b'"id":63', b'"id":9223372036854775808')),
        ("annotation id below int64", swap(b'"id":63', b'"id":-9223372036854775809')),
        ("span start at INT32_MAX", swap(b'"start":0', b'"start":2147483647')),
        ("prediction of a huge integer", swap(b'"predictions":[]', b'"predictions":[{"model_version":"m","result":[18446744073709551616]}]')),  # noqa: E501
        ("prediction of 1e999", swap(b'"predictions":[]', b'"predictions":[{"model_version":"m","result":[1e999]}]')),  # noqa: E501
        ("prediction of a lone surrogate", swap(b'"predictions":[]', b'"predictions":[{"model_version":"m","result":["\\ud800"]}]')),  # noqa: E501
        ("title of a lone surrogate", swap(b'"article_title":"', b'"article_title":"\\udc00')),
        ("title of an overlong NUL", swap(b'"article_title":"', b'"article_title":"\xc0\x80')),
        ("title of a raw DEL", swap(b'"article_title":"', b'"article_title":"\x7f')),
        ("title of a raw tab", swap(b'"article_title":"', b'"article_title":"\t')),
        ("byte order mark", b"\xef\xbb\xbf" + line),
        ("form feed before", b"\x0c" + line),
        ("NUL after", line + b"\x00"),
        ("CRLF after", line + b"\r\n"),
    ]  # fmt: skip


def test_odd_lines_give_the_full_paths_answer(project):
    """Escapes, duplicate keys at each level, numbers at the int64 and float edges, bad UTF-8 and stray bytes:
    where the fast path gives a record, orjson reads the line and the full path keeps it whole with that record."""
    task = two_annotator_task(project)
    accepted = 0
    for name, line in odd_but_readable_lines(task):
        record = TaskValidator(project, Report("validate"))._plain_record(line)
        if record is None:
            continue
        accepted += 1
        clean, problems = full_path_of_line(project, line)
        assert clean is not None and not problems, name
        assert record == task_to_record(clean, project), name
    assert accepted >= 10


def test_json_lines_count_each_pass_on_its_own(tmp_path):
    """A JsonLines read twice (a caller starting again, as validate does on an unsorted snapshot) tells `on_end`
    each pass's own count of readable lines."""
    from builder.jsonio import JsonLines

    path = tmp_path / "snapshot.jsonl"
    path.write_bytes(b'{"task_id": 1}\n{"task_id": \n\n[]\n')
    bad, counts = [], []
    lines = JsonLines(path, lambda where, detail: bad.append(where), counts.append)
    for _ in range(2):
        assert [lines.loads(line) for line in lines][::2] == [{"task_id": 1}, []]
    assert counts == [2, 2] and bad == [f"{path}:2", f"{path}:2"]
