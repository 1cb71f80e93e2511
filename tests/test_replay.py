"""Replaying annotations as their annotators (`builder run`): every annotation not submitted is reported."""

from __future__ import annotations

from builder.labelstudio.push import push_sentences
from builder.labelstudio.replay import (
    ALREADY_THERE,
    MALFORMED,
    NO_ACCOUNT,
    NO_SENTENCE_ID,
    TASK_NOT_FOUND,
    replay,
)
from builder.labelstudio.task_exports import export_tasks
from builder.pseudonyms import legacy_pseudonym

from .conftest import make_project
from .test_labelstudio import synthetic_sentences

ACCOUNTS = {"replayer@example.org": "replayer-secret-1"}


def stance(choice: str) -> list[dict]:
    return [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [choice]}}]


def snapshot_task(task_id: int, sentence_id: str | None, *annotations: dict) -> dict:
    data = {"sentence_id": sentence_id} if sentence_id is not None else {"text": "no id"}
    return {"task_id": task_id, "data": data, "annotations": list(annotations)}


def annotation(annotation_id: int, annotator: str, choice: str = "neutral", **extra) -> dict:
    return {"id": annotation_id, "annotator": annotator, "result": stance(choice), "lead_time": 2.0, **extra}


def test_replay_reports_each_annotation_it_does_not_submit(ls, tmp_path):
    project = make_project(tmp_path, "replay skips")
    sentences = synthetic_sentences(2, "rp")
    pushed = push_sentences(ls, project, sentences, None)
    known = legacy_pseudonym(project.name, "replayer@example.org")
    tasks = [
        snapshot_task(1, sentences[0]["id"], annotation(11, known, "favor"), annotation(12, "annotator-nobody0")),
        snapshot_task(2, sentences[1]["id"], annotation(21, known, was_cancelled=True), {"id": 22, "annotator": known}),
        snapshot_task(3, "not-pushed", annotation(31, known), annotation(32, known)),
        snapshot_task(4, None, annotation(41, known)),
        ["not", "a", "task"],
    ]

    first = replay(ls, pushed.project_id, project.name, tasks, ACCOUNTS)
    assert first.created == 2 and first.report.kept["created"] == 2
    problems = {(p.reason, p.fields.get("annotation_id")): p for p in first.report.problems}
    assert len(problems) == len(first.report.problems) == 6
    assert set(problems) == {
        (NO_ACCOUNT, 12),
        (MALFORMED, 22),
        (TASK_NOT_FOUND, 31),
        (TASK_NOT_FOUND, 32),
        (NO_SENTENCE_ID, 41),
        (MALFORMED, None),
    }
    assert all(p.error for p in first.report.problems)
    missing = problems[(TASK_NOT_FOUND, 31)]
    assert (
        missing.where == "task 3 annotation 31"
        and missing.fields["sentence_id"] == "not-pushed"
        and missing.fields["annotator"]
    )
    assert "annotator-nobody0 has no account" in problems[(NO_ACCOUNT, 12)].detail
    assert first.summary() == (
        "created 2, already there 0; not replayed: annotator without account 1, malformed annotation 2, "
        "task not in the project 2, task without sentence id 1"
    )

    # what was submitted is in Label Studio as it was in the input, the cancelled one cancelled
    exported = {t["data"]["sentence_id"]: t["annotations"] for t in export_tasks(ls, pushed.project_id)}
    assert [a["result"][0]["value"]["choices"] for a in exported[sentences[0]["id"]]] == [["favor"]]
    assert [a["was_cancelled"] for a in exported[sentences[1]["id"]]] == [True]

    # a re-run submits nothing again, and says so for each annotation
    second = replay(ls, pushed.project_id, project.name, tasks, ACCOUNTS)
    assert second.created == 0 and second.already_there == 2
    assert {p.fields["annotation_id"] for p in second.report.by_reason(ALREADY_THERE)} == {11, 21}
    assert not any(p.error for p in second.report.by_reason(ALREADY_THERE))
    assert second.summary().startswith("created 0, already there 2; not replayed: annotator without account 1")
