"""The one-pass fast path of validation: it accepts a task only where the full path (JSON Schema, then every
check) would keep it whole with nothing to report, and then makes exactly `task_to_record`'s record."""

from __future__ import annotations

import copy
import dataclasses
import random

import jsonschema
import pytest

from builder.jsonio import read_jsonl, write_jsonl
from builder.model import task_schema
from builder.records.aggregate import task_to_record
from builder.records.stage import validate_snapshot
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
    return TaskValidator(project, Report("validate"))._plain_record(copy.deepcopy(task))


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
