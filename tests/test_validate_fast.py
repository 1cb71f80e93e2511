"""The one-pass fast path of validation: it accepts a task only where the full path (JSON Schema, then every
check) would keep it whole with nothing to report, and then makes exactly `task_to_record`'s record."""

from __future__ import annotations

import copy
import dataclasses
import random

import jsonschema
import orjson
import pytest

from builder.jsonio import read_jsonl, write_jsonl
from builder.model import task_schema
from builder.records.aggregate import task_to_record
from builder.records.from_snapshot import validate_snapshot
from builder.records.validate import TaskValidator
from builder.report import Report
from builder.sentences.segmenter import sentence_id

from .conftest import ROOT
from .test_validate import CASES

SNAPSHOT = ROOT / "annotations" / "snapshot.jsonl"


def full_path(project, task):
    """What the full path makes of a task: (clean task or None, problems), the fast path switched off."""
    report = Report("validate")
    validator = TaskValidator(project, report)
    validator.__dict__["_plain_record"] = lambda task: None
    clean = validator.validate_task(copy.deepcopy(task))
    return clean, report.problems


def fast_path(project, task):
    """The fast path's record of a task, given as the JSON line a snapshot holds."""
    return TaskValidator(project, Report("validate"))._plain_record(orjson.dumps(task))


def with_text(task, text):
    task["data"]["text"] = text
    task["data"]["sentence_id"] = sentence_id(task["data"]["article_id"], text, task["data"].get("occurrence") or 0)


def varied_tasks(project):
    """The committed snapshot's tasks plus shapes it lacks: three annotators, spans out of order, a tie,
    an occurrence, an item id and origin, integer lead times, no target."""
    tasks = list(read_jsonl(SNAPSHOT))
    two = next(t for t in tasks if len(t["annotations"]) == 2 and len(t["annotations"][0]["result"]) >= 3)
    three = copy.deepcopy(two)
    third = copy.deepcopy(three["annotations"][0])
    third.update(id=999, annotator="annotator-00000000aaaa")
    three["annotations"].append(third)
    reversed_spans = copy.deepcopy(two)
    for annotation in reversed_spans["annotations"]:
        annotation["result"].reverse()
        annotation["lead_time"] = 7
    tie = copy.deepcopy(two)
    for annotation, label in zip(tie["annotations"], ("favor", "against")):
        next(i for i in annotation["result"] if i["from_name"] == "stance")["value"]["choices"] = [label]
    occurrence = copy.deepcopy(two)
    occurrence["data"]["occurrence"] = 2
    with_text(occurrence, occurrence["data"]["text"])
    ids = copy.deepcopy(two)
    for n, item in enumerate(ids["annotations"][0]["result"]):
        item["id"] = f"r{n}"
        if n % 2:
            item["origin"] = "manual"
    ids["data"].pop("target")
    return [*tasks, three, reversed_spans, tie, occurrence, ids]


def test_fast_path_takes_every_valid_task_and_makes_the_same_record(project):
    for task in varied_tasks(project):
        clean, problems = full_path(project, task)
        if clean is None or problems:
            continue
        record = fast_path(project, task)
        assert record is not None, task["task_id"]
        assert record == task_to_record(clean, project)


MUTANTS = [None, True, False, 0, 1, -1, 1.0, 0.5, 2**31, "", " ", "x", "favor", "PER", [], ["PER"], [1], {}, {"a": 1}]
NAMES = ["annotator-0123abcd\n", "annotator-0123ABCD", "annotator-0123abcd"]


def paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from paths(inner, (*path, index))


def mutated(task, path, replacement):
    task = copy.deepcopy(task)
    *parent_path, last = path
    parent = task
    for key in parent_path:
        parent = parent[key]
    if replacement is KeyError:
        del parent[last]
    else:
        parent[last] = replacement
    return task


def test_fast_path_never_accepts_what_the_full_path_reports(project):
    """Every value of every path of real tasks replaced by odd values, or removed: where the fast path gives a
    record, the task is schema-valid, the full path keeps it whole without a word, and the records agree."""
    schema = jsonschema.Draft202012Validator(task_schema(project))
    rng = random.Random(16)
    accepted = checked = 0
    for task in varied_tasks(project)[-6:]:
        for path in list(paths(task))[1:]:
            for replacement in [KeyError, *rng.sample(MUTANTS, 6), *(NAMES if path[-1] == "annotator" else ())]:
                if replacement is KeyError and isinstance(path[-1], int):
                    continue
                variant = mutated(task, path, replacement)
                record = fast_path(project, variant)
                checked += 1
                if record is None:
                    continue
                accepted += 1
                assert schema.is_valid(variant), (path, replacement)
                clean, problems = full_path(project, variant)
                assert clean is not None and not problems, (path, replacement, problems)
                assert record == task_to_record(clean, project), (path, replacement)
    assert checked > 1000 and accepted > 50  # harmless changes (a title, a lead time) stay on the fast path


@pytest.mark.parametrize("name,mutate,reason,kept", CASES, ids=[c[0] for c in CASES])
def test_fast_path_leaves_each_malformed_case_to_the_full_path(project, name, mutate, reason, kept):
    task = next(t for t in varied_tasks(project) if len(t["annotations"]) == 2)
    variant = copy.deepcopy(task)
    mutate(variant)
    record = fast_path(project, variant)
    clean, problems = full_path(project, variant)
    if problems or clean is None:  # a problem to report (a warning included): left to the full path
        assert record is None, name
    else:
        assert record is not None, name
        assert record == task_to_record(clean, project)


def test_snapshot_of_mixed_tasks_reports_the_same_with_and_without_fast_path(project, tmp_path, monkeypatch):
    """A snapshot of good, broken, duplicate and unsorted tasks: same records, same report, either way."""
    tasks = varied_tasks(project)
    rng = random.Random(5)
    lines = []
    for n, task in enumerate(tasks * 3):
        task = copy.deepcopy(task)
        task["task_id"] = n
        if n % 4 == 1:
            path = rng.choice(list(paths(task))[1:])
            task = mutated(task, path, rng.choice(MUTANTS))
        lines.append(task)
    snapshot = tmp_path / "snapshot.jsonl"
    write_jsonl(snapshot, lines)  # unsorted, with duplicates: validated again remembering every id

    fast = validate_snapshot(project, snapshot, tmp_path / "fast.jsonl")
    monkeypatch.setattr(TaskValidator, "_plain_record", property(lambda self: lambda task: None))
    slow = validate_snapshot(project, snapshot, tmp_path / "slow.jsonl")
    assert (tmp_path / "fast.jsonl").read_bytes() == (tmp_path / "slow.jsonl").read_bytes()
    assert fast.report.as_dict() == slow.report.as_dict()
    assert (fast.tasks_in, fast.records, fast.quarantined) == (slow.tasks_in, slow.records, slow.quarantined)
    assert fast.quarantined > 5 and fast.records > 50


@pytest.mark.parametrize("share", [0.0, 0.34, 1.0, 1.5])
def test_fast_record_follows_the_entity_agreement_share(project, share):
    shared = dataclasses.replace(project, entity_agreement=share)
    for task in varied_tasks(shared):
        clean, problems = full_path(shared, task)
        if clean is not None and not problems:
            assert fast_path(shared, task) == task_to_record(clean, shared)


def full_path_of_line(project, line):
    """What the full path makes of a JSON line: orjson's reading (None when it cannot), then `full_path`."""
    try:
        task = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, ["unreadable"]
    return full_path(project, task)


def test_fast_path_reads_no_line_that_orjson_would_not(project):
    """Bytes of real lines cut, doubled or replaced (quotes, brackets, escapes, bad UTF-8, huge numbers): where
    the fast path gives a record, orjson reads the line to the same task and the full path keeps it whole."""
    rng = random.Random(7)
    pieces = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"1e999", b"99999999999999999999", b"\xff",
              b"\xed\xa0\x80", b"-0", b"0.0", b"null", b"true", b" ", b"\x01", b'\\ud800', b"1"]  # fmt: skip
    accepted = checked = 0
    for task in varied_tasks(project)[-6:]:
        line = orjson.dumps(task)
        for _ in range(400):
            at = rng.randrange(len(line))
            change = rng.choice(("cut", "double", "replace"))
            if change == "cut":
                variant = line[:at] + line[at + rng.randint(1, 4) :]
            elif change == "double":
                variant = line[:at] + line[at : at + rng.randint(1, 12)] * 2 + line[at:]
            else:
                variant = line[:at] + rng.choice(pieces) + line[at + rng.randint(0, 3) :]
            record = TaskValidator(project, Report("validate"))._plain_record(variant)
            checked += 1
            if record is None:
                continue
            accepted += 1
            clean, problems = full_path_of_line(project, variant)
            assert clean is not None and not problems, (variant, problems)
            assert record == task_to_record(clean, project), variant
    assert checked == 2400 and accepted > 20


def odd_lines(task):
    """Lines the typed decoder must leave to orjson and the full path: (name, line)."""
    line = orjson.dumps(task)
    body = line[1:]
    deep = b'"predictions":[{"model_version":"m","result":' + b"[" * 1100 + b"]" * 1100 + b"}]"
    infinite = b'"predictions":[{"model_version":"m","result":[],"score":1e999}]'
    return [
        ("unknown task field", b'{"extra":{"a":[1,2]},' + body),
        ("unknown data field", line.replace(b'"data":{', b'"data":{"source":"wire",', 1)),
        ("unknown annotation field", line.replace(b'"annotator":', b'"completed_by":7,"annotator":', 1)),
        ("unknown value field", line.replace(b'"value":{', b'"value":{"hidden":false,', 1)),
        ("nesting past orjson's limit", line.replace(b'"predictions":[]', deep, 1)),
        ("infinite score", line.replace(b'"predictions":[]', infinite, 1)),
        ("bad UTF-8 in an unknown field", b'{"extra":"\xed\xa0\x80",' + body),
        ("task id past int64", line.replace(b'"task_id":', b'"task_id":99999999999999999999,"x":', 1)),
        ("an integer as a float", line.replace(b'"sentence_index":', b'"sentence_index":1.0,"y":', 1)),
        ("a duplicate key", line.replace(b'"was_cancelled":false', b'"was_cancelled":false,"was_cancelled":true', 1)),
    ]  # fmt: skip


def test_lines_the_typed_decoder_cannot_vouch_for_take_the_full_path(project, tmp_path, monkeypatch):
    """Unknown fields, deep nesting, numbers orjson reads otherwise: no record from the fast path, and the same
    records and report as without it (kept when the full path keeps them, reported when it reports them)."""
    task = next(t for t in varied_tasks(project) if len(t["annotations"]) == 2)
    for name, line in odd_lines(task):
        assert TaskValidator(project, Report("validate"))._plain_record(line) is None, name
    snapshot = tmp_path / "snapshot.jsonl"
    snapshot.write_bytes(b"\n".join(line for _, line in odd_lines(task)) + b"\n")
    fast = validate_snapshot(project, snapshot, tmp_path / "fast.jsonl")
    monkeypatch.setattr(TaskValidator, "_plain_record", property(lambda self: lambda line: None))
    slow = validate_snapshot(project, snapshot, tmp_path / "slow.jsonl")
    assert (tmp_path / "fast.jsonl").read_bytes() == (tmp_path / "slow.jsonl").read_bytes()
    assert fast.report.as_dict() == slow.report.as_dict()
    reasons = {p.reason for p in fast.report.problems}
    assert {"unreadable line", "not an integer"} <= reasons
    assert fast.records >= 1  # the first line with an unknown field is kept (the others repeat its sentence)


def test_library_stage_takes_tasks_as_dicts_too(project):
    """`validated_records` over dicts (the library API) gives the records the snapshot path gives; a value JSON
    cannot hold is reported as the task it is, not raised."""
    from builder.records.validate import validated_records

    tasks = list(read_jsonl(SNAPSHOT))
    report = Report("validate")
    records = list(validated_records([*tasks, {"task_id": 1, "data": {1, 2}}, 5], project, report))
    assert [r["id"] for r in records] == [task_to_record(t, project)["id"] for t in tasks]
    assert sorted(p.reason for p in report.problems) == ["not a task", "schema"]


def test_a_nul_in_the_text_never_lets_a_task_borrow_another_sentences_id(project):
    """The repeat (occurrence 1) of a text and the text followed by NUL "1" once hashed alike: a task claiming
    the latter under the former's id passed the fast path. Now both paths check the key of its own text."""
    task = next(t for t in read_jsonl(SNAPSHOT) if t["data"]["sentence_index"] >= 2)
    task["data"].pop("occurrence", None)
    article_id, text = task["data"]["article_id"], task["data"]["text"]
    repeat = copy.deepcopy(task)
    repeat["data"]["sentence_id"] = sentence_id(article_id, text, 1)
    nul = copy.deepcopy(task)
    with_text(nul, text + "\x001")
    forged = copy.deepcopy(nul)
    forged["data"]["sentence_id"] = repeat["data"]["sentence_id"]
    assert nul["data"]["sentence_id"] != repeat["data"]["sentence_id"]
    for good in (repeat, nul):
        clean, problems = full_path(project, good)
        assert clean is not None and not problems
        assert fast_path(project, good) == task_to_record(clean, project)
    assert fast_path(project, forged) is None
    clean, problems = full_path(project, forged)
    assert clean is None and [p.reason for p in problems] == ["changed sentence text"]
