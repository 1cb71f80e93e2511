"""Pulling annotated tasks from Label Studio into the snapshot under annotations/."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from builder.errors import LabelStudioError
from builder.jsonio import atomic_write
from builder.labelstudio.client import Connection, calling
from builder.labelstudio.push import require_project
from builder.labelstudio.views import upsert_view
from builder.scheme import Project
from builder.snapshot import merge, normalise_task, pseudonym, read_snapshot, write_snapshot

CHANGED_VIEW_TITLE = "builder: changed since last pull"
EXPORT_TIMEOUT_S = 600


@dataclass
class PullResult:
    path: Path
    fetched: int
    written: int
    unannotated: int
    incremental: bool


def _state_path(project: Project) -> Path:
    return project.root / ".builder" / "pull-state.json"


def _read_state(project: Project, connection: Connection, project_id: int) -> str | None:
    path = _state_path(project)
    if not path.is_file():
        return None
    state = json.loads(path.read_text(encoding="utf-8"))
    return state.get(f"{connection.url}#{project_id}")


def _write_state(project: Project, connection: Connection, project_id: int, since: str) -> None:
    path = _state_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    state[f"{connection.url}#{project_id}"] = since
    with atomic_write(path, "w") as handle:  # a full disk is one line, and the previous state is kept
        handle.write(json.dumps(state, indent=2, sort_keys=True))


def annotator_names(connection: Connection, dataset: str) -> dict[int, str]:
    """Label Studio user id -> pseudonym (ids and emails never leave this function)."""
    with calling(connection, "listing users"):
        users = list(connection.client().users.list())
    return {user.id: pseudonym(dataset, user.email or f"user-{user.id}") for user in users}


def _changed_view(connection: Connection, project_id: int, since: str) -> int:
    """A Data Manager view of the tasks updated after `since` (created or updated in place)."""
    filters = {
        "conjunction": "and",
        "items": [{"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": since}],
    }
    return upsert_view(connection, project_id, CHANGED_VIEW_TITLE, filters, "preparing the incremental pull")


def export_tasks(connection: Connection, project_id: int, view_id: int | None = None) -> list[dict]:
    """A snapshot export (with full predictions) of the project, or of a view's tasks."""
    client = connection.client()
    options = {"view": view_id} if view_id is not None else None
    with calling(connection, "creating the export"):
        export = client.projects.exports.create(
            project_id,
            title="builder pull",
            serialization_options={"predictions": {"only_id": False}, "annotations__completed_by": {"only_id": True}},
            **({"task_filter_options": options} if options else {}),
        )
    deadline = time.monotonic() + EXPORT_TIMEOUT_S
    with calling(connection, "waiting for the export"):
        while (status := client.projects.exports.get(project_id, export.id).status) not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise LabelStudioError(f"the export did not finish within {EXPORT_TIMEOUT_S} s; retry later")
            time.sleep(0.5)
    if status == "failed":
        raise LabelStudioError(f"Label Studio at {connection.url} could not build the export; see its log, then retry")
    with calling(connection, "downloading the export"):
        payload = b"".join(client.projects.exports.download(project_id, export.id, export_type="JSON"))
    with calling(connection, "removing the finished export"):
        client.projects.exports.delete(project_id, export.id)
    try:
        tasks = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise LabelStudioError(f"the export from {connection.url} is not valid JSON ({exc}); retry") from None
    if not isinstance(tasks, list):
        raise LabelStudioError(f"the export from {connection.url} is not a list of tasks; retry")
    return tasks


def pull(connection: Connection, project: Project, output: Path | None = None, since_last: bool = False) -> PullResult:
    """Fetch annotated tasks and write the snapshot atomically; `since_last` merges only what changed."""
    output = output or project.annotations_dir / "snapshot.jsonl"
    project_id = require_project(connection, project)
    since = _read_state(project, connection, project_id) if since_last else None
    incremental = since is not None and output.is_file()
    view_id = _changed_view(connection, project_id, since) if incremental else None
    tasks = export_tasks(connection, project_id, view_id)
    names = annotator_names(connection, project.name)
    newest = max((t.get("updated_at") or "" for t in tasks), default="") or since
    annotated = [normalise_task(t, names) for t in tasks if t.get("annotations")]
    unannotated = len(tasks) - len(annotated)
    if incremental:
        annotated = merge(read_snapshot(output), annotated)
    written = write_snapshot(output, annotated)
    if newest:
        _write_state(project, connection, project_id, newest)
    return PullResult(output, len(tasks), written, unannotated, incremental)
