"""Blind pull: every annotator's copy pulled, merged into ONE snapshot shaped like a shared project's.

Each copy is pulled with the ordinary pull (builder/labelstudio/pull.py: full or incremental, its state kept per
copy) into its own file under `.builder/blind-pull/` (0600, git-ignored). The copies' snapshots are then merged by
sentence: one task per sentence, with every annotator's annotation (annotation ids are one sequence across the
whole server, so they never collide), the copies' identical predictions once, and a gold question's ground-truth
answer once. `builder quality`, agreement and Dawid-Skene read it as they read a shared project's. The merge is a
function of the copies' snapshots alone, and an incremental pull of a copy gives the bytes a full one would: so
an incremental blind pull gives the bytes of a full one too.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from builder.jsonio import STATE_DIR, dumps_line, private_dir
from builder.labelstudio.blind_export import GuardExport, exports_tasks
from builder.labelstudio.blind_push import copy_project
from builder.labelstudio.client import Connection
from builder.labelstudio.isolation import read_blind_marker, read_organizations
from builder.labelstudio.pull import PullResult, pull
from builder.project import Project
from builder.records.snapshot import file_lines, sort_key_bytes, write_snapshot_lines

COPIES_DIR = "blind-pull"
SHARED_PART = "shared.jsonl"  # the shared project a project made blind keeps


def merge_sentence(tasks: list[dict]) -> dict:
    """One snapshot task from the copies' tasks of one sentence (in copy order)."""
    annotations, seen_truth, predictions = [], set(), []
    for task in tasks:  # repeats are dropped across copies only: one copy's task stays exactly as pulled
        truths = set()
        for annotation in task["annotations"]:
            if annotation.get("ground_truth"):  # a gold question's answer, pushed into every copy that has it
                answer = orjson.dumps(annotation.get("result"), option=orjson.OPT_SORT_KEYS)
                if answer in seen_truth:
                    continue
                truths.add(answer)
            annotations.append(annotation)
        seen_truth |= truths
        earlier = list(predictions)
        predictions += [p for p in task["predictions"] if p not in earlier]
    return {
        "task_id": min(task["task_id"] for task in tasks),
        "data": tasks[0]["data"],
        "annotations": sorted(annotations, key=lambda a: (a["id"] is None, a["id"] or 0)),
        "predictions": sorted(predictions, key=lambda p: p["model_version"]),
    }


def merged_lines(copies: list[Path]) -> Iterator[bytes]:
    """The merged snapshot's lines, streamed from the copies' sorted snapshots (one sentence in memory at a time)."""

    def keyed(path: Path) -> Iterator[tuple[bytes, int, dict]]:
        for line in file_lines(path):
            task = orjson.loads(line)
            yield sort_key_bytes(task), task["task_id"] or 0, task

    streams = [keyed(path) for path in copies if path.is_file()]
    ordered = heapq.merge(*streams, key=lambda row: (row[0], row[1]))
    for _sentence, group in itertools.groupby(ordered, key=lambda row: row[0]):
        yield dumps_line(merge_sentence([task for _key, _id, task in group]))


def copy_output(project: Project, email: str) -> Path:
    name = hashlib.sha256(f"{project.name}\x00{email}".encode()).hexdigest()[:16]
    return project.root / STATE_DIR / COPIES_DIR / f"{name}.jsonl"


def pull_blind(
    connection: Connection,
    project: Project,
    output: Path | None = None,
    since_last: bool = False,
    log: Callable[[str], None] = lambda message: None,
    rename_annotators: bool = False,
    accept_changes: bool = False,
) -> PullResult:
    """Pull every annotator's copy (each `since_last` when asked), and the shared project a project made blind
    keeps (`builder annotators blind`), and write their merge to `output` atomically.

    Takes `pull`'s options (`builder pull` hands either function the same ones): `accept_changes` pulls a copy
    whose settings, task data or annotations changed behind builder's back (builder/labelstudio/drift.py)."""
    output = Path(output or project.snapshot_path)
    copy = copy_project(project)
    private_dir(project.root / STATE_DIR / COPIES_DIR)
    paths, total = [], PullResult(output, 0, 0, 0, since_last)
    parts = []  # (connection, project as pulled there, where its snapshot is kept)
    if read_blind_marker(project.root) is not None:
        parts.append((connection, project, project.root / STATE_DIR / COPIES_DIR / SHARED_PART))
    for email, organization in sorted(read_organizations(project.root).items()):
        parts.append((organization.connection(connection.url), copy, copy_output(project, email)))
    # the copies' full pulls read through the guard (builder/labelstudio/blind_export.py), where it answers
    exporter = GuardExport(connection) if exports_tasks(connection) else None
    for reached, pulled, path in parts:
        part = pull(
            reached,
            pulled,
            path,
            since_last,
            log,
            rename_annotators,
            accept_changes=accept_changes,
            exporter=exporter if pulled is copy else None,
        )
        paths.append(path)
        total.fetched += part.fetched
        total.unannotated += part.unannotated
        total.removed += part.removed
        total.incremental = total.incremental and part.incremental
        total.why_full = total.why_full or part.why_full
    total.written = write_snapshot_lines(output, merged_lines(paths))
    return total
