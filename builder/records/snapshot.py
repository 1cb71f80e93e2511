"""The annotation snapshot: what `builder pull` writes under annotations/ and a release is built from.

One task per line, sorted by sentence id, keys sorted, no timestamps and no user identities:
annotators appear as stable pseudonyms (builder/pseudonyms.py). Shape (schema/task.schema.json):

    {"task_id": 12, "data": {"sentence_id": ..., "text": ..., ...},
     "annotations": [{"id": 3, "annotator": "annotator-1a2b3c4d", "result": [...],
                      "was_cancelled": false, "ground_truth": false, "lead_time": 4.2}],
     "predictions": [{"model_version": "builder-gazetteer/1+...", "result": [...]}]}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from builder.jsonio import read_jsonl, write_jsonl

RESULT_KEYS = ("id", "from_name", "to_name", "type", "value", "origin")


def _user_id(completed_by) -> int | None:
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return completed_by if type(completed_by) is int else None


def _result(items) -> list:
    if not isinstance(items, list):
        return items  # kept as is: validation reports it
    return [{k: item[k] for k in RESULT_KEYS if k in item} if isinstance(item, dict) else item for item in items]


def normalise_task(task: dict, annotator_name: Callable[[int | None], str]) -> dict:
    """A Label Studio export task in the snapshot's shape; `annotator_name` maps a user id to a pseudonym."""
    annotations = []
    for annotation in task.get("annotations") or []:
        if not isinstance(annotation, dict):
            annotation = {"result": annotation}  # kept: validation reports it
        user = _user_id(annotation.get("completed_by"))
        annotations.append(
            {
                "id": annotation.get("id"),
                "annotator": annotator_name(user),
                "result": _result(annotation.get("result", [])),
                "was_cancelled": bool(annotation.get("was_cancelled", False)),
                "ground_truth": bool(annotation.get("ground_truth", False)),
                "lead_time": annotation.get("lead_time"),
            }
        )
    predictions = [
        {"model_version": p.get("model_version") or "", "score": p.get("score"), "result": _result(p.get("result", []))}
        for p in task.get("predictions") or []
        if isinstance(p, dict)
    ]
    return {
        "task_id": task.get("id"),
        "data": task.get("data", {}),
        "annotations": sorted(annotations, key=lambda a: (a["id"] is None, a["id"] or 0)),
        "predictions": sorted(predictions, key=lambda p: p["model_version"]),
    }


def sort_key(task: dict):
    data = task.get("data") if isinstance(task.get("data"), dict) else {}
    return (str(data.get("sentence_id", "")), task.get("task_id") or 0)


def write_snapshot(path: Path, tasks: Iterable[dict]) -> int:
    """Write tasks sorted by sentence id, atomically (a failed write leaves the old snapshot)."""
    return write_jsonl(path, sorted(tasks, key=sort_key))


def read_snapshot(path: Path) -> Iterator[dict]:
    return read_jsonl(path)
