"""Label Studio's REST side of a pull: snapshot exports (whole, by filter, by id, in parts), the temporary
views they are cut by, and the counts the server gives for the annotated population.

Kept apart from the pull's orchestration (pull.py) because this is where Label Studio's ways live:
an export is built inside the request without a task queue (so it is cut into parts by task id), the
file of a deleted export stays on disk (so builder removes it), and the counts a pull trusts are the
ones the Data Manager's task listing reports.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from builder.errors import LabelStudioError
from builder.labelstudio.client import Connection, calling, check_response, task_pages, unexpected_answer
from builder.labelstudio.server import LABEL_STUDIO_VERSION
from builder.records.snapshot import Counts, task_counts

CHANGED_VIEW_TITLE = "builder: changed since last pull"
REFETCH_VIEW_TITLE = "builder: tasks to fetch again"
EXPORT_TITLE = "builder pull"
EXPORT_TIMEOUT_S = 600
EXPORT_PART_TASKS = 20_000  # tasks per export request; Label Studio without a task queue builds it in the request
ANNOTATED = {
    "conjunction": "or",
    "items": [
        {"filter": "filter:tasks:total_annotations", "operator": "greater", "type": "Number", "value": 0},
        {"filter": "filter:tasks:cancelled_annotations", "operator": "greater", "type": "Number", "value": 0},
    ],
}


def _export_file(connection: Connection, project_id: int, filename: str) -> Path | None:
    """The local server's file of an export downloaded under `filename` (None for a remote server)."""
    if connection.data_dir is None or not filename or "/" in filename or filename.startswith("."):
        return None
    return Path(connection.data_dir) / "media" / "export" / str(project_id) / filename


def _file_name(connection: Connection, project_id: int, export_id: int) -> str:
    """The name Label Studio stored an export under (one byte of it is downloaded to read the header)."""
    with calling(connection, "finding an unfinished pull's export"):
        response = connection.http().request(
            f"api/projects/{project_id}/exports/{export_id}/download",
            method="GET",
            params={"exportType": "JSON"},
            headers={"Range": "bytes=0-0"},
        )
    return response.headers.get("filename", "") if response.status_code < 300 else ""


def _delete_export(connection: Connection, project_id: int, export_id: int, filename: str = "") -> None:
    """Delete a builder export and, on the local server, its file (Label Studio 1.23 keeps the file)."""
    with calling(connection, "removing the finished export"):
        connection.client().projects.exports.delete(project_id, export_id)
    path = _export_file(connection, project_id, filename)
    if path is not None and path.is_file():
        path.unlink()


STALE_AFTER = timedelta(hours=1)  # an export this old titled "builder pull" belongs to no running pull


def remove_stale_exports(connection: Connection, project_id: int, now: datetime | None) -> int:
    """Exports builder made but did not remove (a killed pull); returns how many went.

    Only those older than STALE_AFTER: a younger one may belong to a pull running elsewhere.
    """
    if now is None:
        return 0
    client = connection.client()
    with calling(connection, "listing exports"):
        exports = list(client.projects.exports.list(project_id))
    stale = [
        e
        for e in exports
        if getattr(e, "title", None) == EXPORT_TITLE
        and isinstance(getattr(e, "created_at", None), datetime)
        and now - e.created_at.astimezone(UTC) > STALE_AFTER
    ]
    for export in stale:
        filename = (
            _file_name(connection, project_id, export.id)
            if connection.data_dir and export.status == "completed"
            else ""
        )
        _delete_export(connection, project_id, export.id, filename)
    return len(stale)


def export_to_file(connection: Connection, project_id: int, destination: Path, view_id: int | None = None) -> None:
    """A snapshot export (with full predictions) of the project, or of a view's tasks, streamed into
    `destination`; the export is removed from Label Studio afterwards."""
    client = connection.client()
    options = {"view": view_id} if view_id is not None else None
    with calling(connection, "creating the export"):
        # Label Studio without a task queue builds the export inside this request: give it time.
        export = client.projects.exports.create(
            project_id,
            title=EXPORT_TITLE,
            serialization_options={"predictions": {"only_id": False}, "annotations__completed_by": {"only_id": True}},
            **({"task_filter_options": options} if options else {}),
            request_options={"timeout_in_seconds": EXPORT_TIMEOUT_S},
        )
    filename = ""
    try:
        deadline = time.monotonic() + EXPORT_TIMEOUT_S
        with calling(connection, "waiting for the export"):
            while (status := client.projects.exports.get(project_id, export.id).status) not in ("completed", "failed"):
                if time.monotonic() > deadline:
                    raise LabelStudioError(f"the export did not finish within {EXPORT_TIMEOUT_S} s; retry later")
                time.sleep(0.2)
        if status == "failed":
            raise LabelStudioError(
                f"Label Studio at {connection.url} could not build the export; see its log, then retry"
            )
        doing = "downloading the export"
        with calling(connection, doing):
            with connection.http().stream(
                f"api/projects/{project_id}/exports/{export.id}/download",
                method="GET",
                params={"exportType": "JSON"},
                request_options={"timeout_in_seconds": EXPORT_TIMEOUT_S},
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    check_response(connection, response, doing)
                filename = response.headers.get("filename", "")
                with open(destination, "wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
    finally:
        _delete_export(connection, project_id, export.id, filename)


def read_export(connection: Connection, path: Path) -> Iterator[dict]:
    """Stream the tasks of a downloaded JSON export (a list of tasks, each with an integer id)."""
    import ijson

    doing = "reading the export"
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip()
        if not head.startswith(b"["):
            raise unexpected_answer(connection, doing, "a list of tasks, each with an integer id")
        handle.seek(0)
        try:
            for task in ijson.items(handle, "item", use_float=True):
                if not isinstance(task, dict) or type(task.get("id")) is not int:
                    raise unexpected_answer(connection, doing, "a list of tasks, each with an integer id")
                check_annotation_ids(connection, task)
                yield task
        except ijson.JSONError as exc:
            raise LabelStudioError(
                f"the export from {connection.url} is not valid JSON ({str(exc)[:120]}); retry"
            ) from None


def check_annotation_ids(connection: Connection, task: dict) -> None:
    """An annotation's id is what the snapshot sorts and merges by: one that is not an integer is a one-line
    error naming the task and the id (no snapshot is written), never a traceback further on."""
    annotations = task.get("annotations")
    for annotation in annotations if isinstance(annotations, list) else []:
        if isinstance(annotation, dict) and annotation.get("id") is not None and type(annotation["id"]) is not int:
            raise LabelStudioError(
                f"the export from {connection.url} gives task {task['id']} an annotation whose id is "
                f"{str(annotation['id'])[:40]!r}, not an integer (field annotations[].id); no snapshot was written: "
                f"is it Label Studio {LABEL_STUDIO_VERSION}? retry, and see the server's log if it persists"
            )


def export_tasks(connection: Connection, project_id: int, view_id: int | None = None) -> list[dict]:
    """A snapshot export of the project (or a view), as a list: for small projects; pulls stream."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="builder-export-") as folder:
        path = Path(folder) / "export.json"
        export_to_file(connection, project_id, path, view_id)
        return list(read_export(connection, path))


def _id_range(filters: dict | None, low: int | None, high: int | None) -> dict:
    """`filters` (None or an "and" of items) restricted to task ids in [low, high)."""
    items = list((filters or {}).get("items", []))
    if low is not None:
        items.append({"filter": "filter:tasks:id", "operator": "greater_or_equal", "type": "Number", "value": low})
    if high is not None:
        items.append({"filter": "filter:tasks:id", "operator": "less", "type": "Number", "value": high})
    return {"conjunction": "and", "items": items}


def _task_at(connection: Connection, project_id: int, filters: dict, offset: int) -> int | None:
    """The id of the task at `offset` (0-based) in id order among those matching `filters`."""
    doing = "splitting the export into parts"
    with calling(connection, doing):
        response = connection.http().request(
            "api/tasks/",
            method="GET",
            params={
                "project": project_id,
                "page": offset + 1,
                "page_size": 1,
                "fields": "task_only",
                "include": "id",
                "query": json.dumps({"filters": filters, "ordering": ["tasks:id"]}),
            },
        )
    if response.status_code == 404:
        return None
    body = check_response(connection, response, doing)
    tasks = body.get("tasks") if isinstance(body, dict) else None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and type(t.get("id")) is int for t in tasks):
        raise unexpected_answer(connection, doing, "tasks with ids")
    return tasks[0]["id"] if tasks else None


def stream_export(
    connection: Connection,
    project_id: int,
    work: Path,
    filters: dict | None = None,
    selected: list[int] | None = None,
    title: str = CHANGED_VIEW_TITLE,
    part_size: int | None = None,
) -> Iterator[dict]:
    """The tasks of the project (or those matching an "and" of `filters`, or the `selected` ids), streamed.

    More than `part_size` tasks (default EXPORT_PART_TASKS) are exported in parts, each a range of
    task ids bounded by the ids found at every `part_size`-th position: no part is bigger than what
    Label Studio exports comfortably in one request, and a task added meanwhile still falls in a part.
    """
    part_size = part_size or EXPORT_PART_TASKS
    path = work / "export.json"
    if selected is not None:
        with temporary_view(connection, project_id, title, selected=selected) as view_id:
            export_to_file(connection, project_id, path, view_id)
        yield from read_export(connection, path)
        return
    everything = _id_range(filters, None, None)
    bounds = []
    if _count(connection, project_id, everything)[0] > part_size:
        while (bound := _task_at(connection, project_id, everything, part_size * (len(bounds) + 1))) is not None:
            bounds.append(bound)
    if not bounds:
        if filters is None:
            export_to_file(connection, project_id, path)
        else:
            with temporary_view(connection, project_id, title, filters=filters) as view_id:
                export_to_file(connection, project_id, path, view_id)
        yield from read_export(connection, path)
        return
    edges = [None, *bounds, None]
    for low, high in zip(edges, edges[1:], strict=False):
        with temporary_view(connection, project_id, title, filters=_id_range(filters, low, high)) as view_id:
            export_to_file(connection, project_id, path, view_id)
        yield from read_export(connection, path)


@contextlib.contextmanager
def temporary_view(
    connection: Connection, project_id: int, title: str, filters: dict | None = None, selected: list[int] | None = None
):
    """A Data Manager view of this pull's own (filtered or selected tasks), deleted when the block ends."""
    doing = "preparing the tasks to fetch"
    body: dict = {"project": project_id, "data": {"title": title, **({"filters": filters} if filters else {})}}
    if selected is not None:
        body["selected_items"] = {"all": False, "included": sorted(selected)}
    with calling(connection, doing):
        response = connection.http().request("api/dm/views/", method="POST", json=body)
    created = check_response(connection, response, doing)
    if not isinstance(created, dict) or type(created.get("id")) is not int:
        raise unexpected_answer(connection, doing, "the new view")
    try:
        yield created["id"]
    finally:
        with calling(connection, "removing a view builder made"):
            connection.client().views.delete(str(created["id"]))


def _count(connection: Connection, project_id: int, filters: dict) -> tuple[int, int, int]:
    """(tasks, non-cancelled annotations, predictions) of the tasks matching `filters`."""
    doing = "counting annotated tasks"
    with calling(connection, doing):
        response = connection.http().request(
            "api/tasks/",
            method="GET",
            params={
                "project": project_id,
                "page_size": 1,
                "fields": "task_only",
                "include": "id",
                "query": json.dumps({"filters": filters}),
            },
        )
    body = check_response(connection, response, doing)
    try:
        return int(body["total"]), int(body["total_annotations"]), int(body["total_predictions"])
    except (KeyError, TypeError, ValueError):
        raise unexpected_answer(connection, doing, "task counts") from None


def _with_cancelled_at_least(k: int) -> dict:
    item = {"filter": "filter:tasks:cancelled_annotations", "operator": "greater", "type": "Number", "value": k - 1}
    return {"conjunction": "and", "items": [item]}


def counts_agree(connection: Connection, project_id: int, tasks: Iterable[dict] | Counts) -> bool:
    """True when the snapshot's counts equal the server's for the tasks that have annotations."""
    if not isinstance(tasks, Counts):
        counted = Counts()
        for task in tasks:
            counted.add(task_counts(task))
        tasks = counted
    if _count(connection, project_id, ANNOTATED) != (tasks.tasks, tasks.annotations, tasks.predictions):
        return False
    highest = max(tasks.cancelled, default=0)
    for k in range(1, highest + 2):  # tasks with at least k cancelled annotations, up to one past the highest
        expected = sum(n for c, n in tasks.cancelled.items() if c >= k)
        if _count(connection, project_id, _with_cancelled_at_least(k))[0] != expected:
            return False
    return True


def annotated_pages(connection: Connection, project_id: int) -> Iterator[list[tuple[int, int, int, int]]]:
    """(task id, annotations, cancelled annotations, predictions) of every task with an annotation, a page at a time."""
    doing = "listing annotated tasks"
    params = {
        "fields": "task_only",
        "include": "id,total_annotations,cancelled_annotations,total_predictions",
        "query": json.dumps({"filters": ANNOTATED, "ordering": ["tasks:id"]}),
    }
    for tasks in task_pages(connection, project_id, params, doing):
        try:
            yield [
                (
                    int(task["id"]),
                    int(task["total_annotations"]),
                    int(task["cancelled_annotations"]),
                    int(task["total_predictions"]),
                )
                for task in tasks
            ]
        except (KeyError, TypeError, ValueError):
            raise unexpected_answer(connection, doing, "tasks with their counts") from None
