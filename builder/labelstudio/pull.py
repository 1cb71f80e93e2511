"""Pulling annotated tasks from Label Studio into the snapshot under annotations/.

A full pull exports every task and keeps the annotated ones. An incremental pull (`--since-last`)
must give, byte for byte, what a full pull would give at the same moment, without exporting every
task:

1. it exports only the tasks updated since the previous pull into the same file (Label Studio
   bumps a task's `updated_at` when its data, an annotation or a prediction is saved or deleted
   one at a time, and when the Data Manager deletes annotations in bulk), and merges them: a
   changed task replaces the old one, or leaves the snapshot when it has no annotation any more;
2. what can change a task without bumping it is a deletion (a whole task, or predictions and
   annotations deleted in bulk), and a deletion lowers a count: so the merged snapshot's counts
   (tasks, annotations, cancelled annotations, predictions) are compared with the server's for the
   same population (tasks with any annotation), a few cheap requests;
3. only when a count differs, the population is listed with each task's counts (no export), and the
   tasks that differ are dropped or exported again by id.

Its state (`.builder/pull-state.json`) is kept per server (its organization, whatever the URL),
project *and output file*, with the sha256 of the snapshot it wrote: an output changed since (edited,
checked out, written by another pull) or a state that cannot be read makes the pull a full one, and
says why. Annotators' names do not depend on it (see `annotator_names`).

This module orchestrates; the parts live beside it: the state file (pull_state.py), annotators' names
(annotator_names.py), Label Studio's exports and counts (task_exports.py), and the byte-level merge of
sorted snapshots (builder/records/snapshot.py).
"""

from __future__ import annotations

import os
import shutil
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

from builder.jsonio import state_dir
from builder.labelstudio.annotator_names import (
    AccountNames,
    RenameCheck,
    annotator_names,
    pseudonymizer_for,
    remember_names,
)
from builder.labelstudio.client import Connection, calling
from builder.labelstudio.drift import DriftWatch, observed
from builder.labelstudio.project_api import project_settings, require_project
from builder.labelstudio.pull_state import (
    previous_since,
    read_pull_state,
    state_key,
    why_not_incremental,
    write_pull_state,
)
from builder.labelstudio.task_exports import (
    REFETCH_VIEW_TITLE,
    annotated_pages,
    counts_agree,
    remove_stale_exports,
    stream_export,
)
from builder.project import Project
from builder.records.snapshot import (
    Counts,
    InPlaceMerge,
    SnapshotChunks,
    TaskStore,
    file_lines,
    lines_counted,
    merge_rows,
    normalise_task,
    snapshot_rows,
    sorted_member,
)

# A task saved just before the previous pull's clock reading may be committed after its export
# read the database: look that far back again (re-fetching a task is harmless).
SINCE_MARGIN = timedelta(seconds=10)
REFETCH_LIMIT = 2000  # beyond this many tasks to fetch again, one export of the population is cheaper


@dataclass
class PullResult:
    path: Path
    fetched: int
    written: int
    unannotated: int
    incremental: bool
    why_full: str = ""
    removed: int = 0
    reconciled: bool = False
    duplicates: list[int] = field(default_factory=list)  # task ids the export held more than once (merged)


def server_time(connection: Connection) -> datetime | None:
    """Label Studio's clock (its HTTP Date header), so that no local clock skew enters `since`."""
    with calling(connection, "reading the server's clock"):
        response = connection.http().request("health", method="GET")
    try:
        return parsedate_to_datetime(response.headers["date"]).astimezone(UTC)
    except (KeyError, TypeError, ValueError):
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _SeenIds:
    """Task ids seen in one export: a bitmap (ids are sequential positive integers), a few MB for millions."""

    def __init__(self) -> None:
        self.bits = bytearray()
        self.others: set[int] = set()

    def add(self, task_id: int) -> bool:
        """Record `task_id`; True when it was seen before."""
        if task_id < 0 or task_id >= 1 << 27:  # beyond 16 MB of bitmap: a set
            seen = task_id in self.others
            self.others.add(task_id)
            return seen
        byte, bit = divmod(task_id, 8)
        if byte >= len(self.bits):
            self.bits.extend(bytes(max(byte + 1 - len(self.bits), len(self.bits))))
        seen = bool(self.bits[byte] & (1 << bit))
        self.bits[byte] |= 1 << bit
        return seen


def _merge_copies(first: dict, again: dict) -> dict:
    """One snapshot task from two copies of it in an export: every annotation (by id) and prediction of both."""
    annotations = {(a["id"] if a["id"] is not None else ("none", i)): a for i, a in enumerate(first["annotations"])}
    for i, annotation in enumerate(again["annotations"]):
        annotations.setdefault(annotation["id"] if annotation["id"] is not None else ("again", i), annotation)
    predictions = list(first["predictions"])
    predictions += [p for p in again["predictions"] if p not in predictions]
    return {
        **first,
        "annotations": sorted(annotations.values(), key=lambda a: (a["id"] is None, a["id"] or 0)),
        "predictions": sorted(predictions, key=lambda p: p["model_version"]),
    }


def _store_annotated(tasks: Iterable[dict], store: TaskStore, name: AccountNames, seen: array | None = None) -> int:
    """Put the annotated tasks into `store`, normalised; returns how many tasks were read (ids into `seen`).

    A task id the export holds twice is read once: its copies' annotations are merged, never one copy
    replacing the other, and its id goes into `store.duplicates` for the pull's report."""
    read = 0
    ids = _SeenIds()
    for task in observed(tasks):  # checked against what builder set (drift.py) while a pull watches
        if ids.add(task["id"]):
            store.duplicates.append(task["id"])
            if task.get("annotations"):
                again = normalise_task(task, name)
                first = store.get(task["id"])
                store.add(again if first is None else _merge_copies(first, again))
            continue
        read += 1
        if seen is not None:
            seen.append(task["id"])
        if task.get("annotations"):
            store.add(normalise_task(task, name))
    return read


def pull(
    connection: Connection,
    project: Project,
    output: Path | None = None,
    since_last: bool = False,
    log: Callable[[str], None] = lambda message: None,
    rename_annotators: bool = False,
    part_size: int | None = None,
    accept_changes: bool = False,
    exporter: Callable[..., Iterator[dict]] | None = None,
) -> PullResult:
    """Fetch annotated tasks and write the snapshot atomically; `since_last` fetches only what changed.

    Streams: exports are downloaded to private temporary files under .builder/ and parsed task by
    task, the snapshot is sorted on disk, so memory does not grow with the project. More than
    `part_size` tasks (default EXPORT_PART_TASKS) are exported in parts.
    Refuses to rename the annotators of an existing output (another pseudonym key) unless
    `rename_annotators`, and to pull what annotators changed in the project's settings, its tasks' data
    or each other's annotations (builder/labelstudio/drift.py) unless `accept_changes`. `exporter(connection,
    project_id, work_folder, part_size=...)` streams a full pull's tasks (default: Label Studio's export,
    `stream_export`; a blind copy on the local server: builder/labelstudio/blind_export.py)."""
    from builder.labelstudio.registry import server_identity
    from builder.locks import exclusive, lock_path, snapshot_lock

    output = Path(output or project.snapshot_path)
    project_id = require_project(connection, project)
    # One pull of a project at a time: the exports and views a pull makes are its own until it ends.
    waiting = lambda pid: log(f"waiting for another pull of '{project.project_title}' on {connection.url} (pid {pid})")  # noqa: E731
    # And no release reads the output while this pull reads and replaces it (nor pulls from another project).
    releasing = lambda pid: log(f"waiting for a builder release or pull that is reading {output} (pid {pid})")  # noqa: E731
    with (
        exclusive(lock_path("pull", server_identity(connection), str(project_id)), on_wait=waiting),
        snapshot_lock(output, on_wait=releasing),
    ):
        return _pull_locked(
            connection,
            project,
            project_id,
            output,
            since_last,
            log,
            rename_annotators,
            part_size,
            accept_changes,
            exporter or stream_export,
        )


class _Work:
    """A private temporary folder under .builder/ for one pull, removed when the pull ends.

    Named with the pull's pid, so that a later pull removes the folder of one that was killed."""

    def __init__(self, root: Path) -> None:
        import tempfile

        base = state_dir(root)
        for stale in base.glob("pull-*-*"):
            pid = stale.name.split("-")[1]
            if stale.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        self.path = Path(tempfile.mkdtemp(prefix=f"pull-{os.getpid()}-", dir=base))
        self._stores: list = []

    def store(self, name: str) -> TaskStore:
        store = TaskStore(self.path / f"{name}.sqlite3")
        self._stores.append(store)
        return store

    def stores(self) -> list[TaskStore]:
        return list(self._stores)

    def close(self) -> None:
        for store in self._stores:
            store.close()
        shutil.rmtree(self.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _pull_locked(
    connection,
    project,
    project_id,
    output,
    since_last,
    log,
    rename_annotators,
    part_size,
    accept_changes=False,
    exporter=stream_export,
):
    pseudonymize = pseudonymizer_for(project, output, log)
    now = server_time(connection)
    remove_stale_exports(connection, project_id, now)
    name = annotator_names(connection, project, pseudonymize)
    watch = DriftWatch(connection, project, project_id, name.server, name)
    watch.check_settings(project_settings(project))
    key = state_key(name.server, project_id, output)
    why_full = ""
    previous = None
    if since_last:
        pulls, problem = read_pull_state(project)
        previous = pulls.get(key)
        why_full = problem or why_not_incremental(previous, output, pseudonymize, now)
        if why_full:
            previous = None
    renames = RenameCheck(name.unnamed) if output.is_file() and not rename_annotators else None
    work = _Work(project.root)
    stop_watching = watch.start()
    try:
        if previous is None:
            store = work.store("tasks")
            fetched = _store_annotated(exporter(connection, project_id, work.path, part_size=part_size), store, name)
            if renames is not None:
                renames.against(output, store)
            result = PullResult(output, fetched, 0, fetched - len(store), False, why_full)
            counts = Counts()
            written = SnapshotChunks(lines_counted(store.rows(), counts), counts)
        else:
            result, written = _incremental(connection, project_id, output, previous, work, name, renames, part_size)
        watch.verdict(accept_changes)  # before anything is written
        if renames is not None:
            renames.finish(output, log)
        digest = written.write(output)
        result.written = written.lines
        result.duplicates = sorted({task_id for store in work.stores() for task_id in store.duplicates})
    finally:
        stop_watching()
        work.close()
    entry = {
        "since": _iso(now - SINCE_MARGIN) if now else previous_since(previous),
        "snapshot_sha256": digest,
        "key_id": pseudonymize.key_id,
    }
    if written.counts is not None:
        entry["counts"] = written.counts.to_state()
    write_pull_state(project, key, entry)
    remember_names(project, name)  # committed: a second maintainer with the key gives the same names
    if watch.changes:
        watch.record_accepted()
        log(f"pull: accepted {len(watch.changes)} change(s) made in Label Studio: {watch.summary()}")
    return result


def _incremental(
    connection, project_id, output, previous, work, name, renames, part_size
) -> tuple[PullResult, SnapshotChunks]:
    filters = {
        "conjunction": "and",
        "items": [
            {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": previous["since"]}
        ],
    }
    fresh, changed = work.store("changed"), array("q")
    fetched = _store_annotated(
        stream_export(connection, project_id, work.path, filters=filters, part_size=part_size), fresh, name, changed
    )
    changed = array("q", sorted(changed))
    result = PullResult(output, fetched, 0, fetched - len(fresh), True)
    in_place = InPlaceMerge.prepare(output, fresh, changed, Counts.from_state(previous.get("counts")), renames)
    if in_place is not None:
        result.removed = in_place.removed
        if counts_agree(connection, project_id, in_place.counts):
            return result, in_place.written()
    merged, replaced = work.path / "merged.jsonl", array("q")
    compare = renames if in_place is None else None  # the in-place merge compared these tasks already
    counts, result.removed = merge_rows(snapshot_rows(output), fresh, sorted_member(changed), merged, compare, replaced)
    if in_place is None and counts_agree(connection, project_id, counts):
        return result, SnapshotChunks(file_lines(merged), counts)
    # A deletion that did not touch `updated_at`: compare task by task, fetch again what differs.
    result.reconciled = True
    return _reconcile(connection, project_id, output, work, name, renames, part_size, result, merged, changed, replaced)


def _reconcile(connection, project_id, output, work, name, renames, part_size, result, merged, changed, replaced):
    import sqlite3

    path = work.path / "reconcile.sqlite3"
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # private before SQLite opens it
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
            "CREATE TABLE server (task_id INTEGER PRIMARY KEY, a INTEGER, c INTEGER, p INTEGER);"
            "CREATE TABLE local (task_id INTEGER PRIMARY KEY, a INTEGER, c INTEGER, p INTEGER);"
        )
        for page in annotated_pages(connection, project_id):
            db.executemany("INSERT OR REPLACE INTO server VALUES (?, ?, ?, ?)", page)
        rows = ((row[1], *row[3]) for row in snapshot_rows(merged))
        db.executemany("INSERT OR REPLACE INTO local VALUES (?, ?, ?, ?)", rows)
        differing = [
            task_id
            for (task_id,) in db.execute(
                "SELECT s.task_id FROM server s LEFT JOIN local l ON l.task_id = s.task_id"
                " WHERE l.task_id IS NULL OR l.a != s.a OR l.c != s.c OR l.p != s.p ORDER BY s.task_id"
                f" LIMIT {REFETCH_LIMIT + 1}"
            )
        ]
        if len(differing) > REFETCH_LIMIT:  # one export of everything is cheaper than a huge selection
            store = work.store("everything")
            result.fetched += _store_annotated(
                stream_export(connection, project_id, work.path, part_size=part_size), store, name
            )
            if renames is not None:
                renames.against(output, store)
            result.removed = sum(1 for row in snapshot_rows(output) if store.get(row[1]) is None)
            counts = Counts()
            return result, SnapshotChunks(lines_counted(store.rows(), counts), counts)
        gone = array("q", (t for (t,) in db.execute("SELECT task_id FROM local EXCEPT SELECT task_id FROM server")))
    finally:
        db.close()
    refetched = None
    if differing:
        refetched = work.store("refetched")
        result.fetched += _store_annotated(
            stream_export(connection, project_id, work.path, selected=differing, title=REFETCH_VIEW_TITLE),
            refetched,
            name,
        )
    leave_out = array("q", sorted({*gone, *differing}))
    was_old, is_changed = sorted_member(array("q", sorted(replaced))), sorted_member(changed)
    removed_before = result.removed
    dropped_old = 0

    def rows() -> Iterator[tuple]:
        nonlocal dropped_old
        out_of = sorted_member(leave_out)
        for row in snapshot_rows(merged):
            if out_of(row[1]) and (refetched is None or refetched.get(row[1]) is None):
                if not is_changed(row[1]) or was_old(row[1]):
                    dropped_old += 1  # a task of the previous snapshot leaves it
            yield row

    final = work.path / "final.jsonl"
    counts, _ = merge_rows(rows(), refetched, sorted_member(leave_out), final, renames)
    result.removed = removed_before + dropped_old
    return result, SnapshotChunks(file_lines(final), counts)
