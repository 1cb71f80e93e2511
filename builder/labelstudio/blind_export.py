"""A blind copy's full pull, read through the local server's guard (issue 26 point 8).

A full pull exports every task of the project (builder/labelstudio/task_exports.py). A blind project's copies
hold each sentence once per annotator, so a full pull of them made Label Studio serialize twice the tasks a
shared project's does, every field of every task, annotation and prediction, with a query per task for its
predictions: that export was most of what a blind pull cost. On builder's local server, whose guard answers
EXPORT_PATH (`export_tasks` in builder/labelstudio/in_server/builder_guard_settings.py, builder's admin token
only), a copy's full pull reads its tasks from the guard instead, a page of task ids at a time, with what the pull
reads of Label Studio's export valued as that export values it: the same snapshot, byte for byte
(tests/test_blind_export.py). Incremental pulls, and every pull elsewhere, use Label Studio's export.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from builder.labelstudio.client import Connection, check_response, guard_answers, post_json, unexpected_answer
from builder.labelstudio.task_exports import check_annotation_ids

EXPORT_PATH = "builder-guard/export-tasks/"  # the guard's request (in_server/builder_guard_settings.py)
EXPORT_HEADER = "X-Builder-Export"  # on the guard's every answer to it


def exports_tasks(connection: Connection) -> bool:
    """Whether the server's guard answers EXPORT_PATH."""
    return guard_answers(connection, EXPORT_PATH, EXPORT_HEADER)


class GuardExport:
    """A full pull's `exporter` (builder/labelstudio/pull.py) for a blind copy: its tasks, a page at a time, read
    by builder's admin (`admin`, the API key's connection)."""

    def __init__(self, admin: Connection):
        self.admin = admin

    def __call__(
        self, connection: Connection, project_id: int, work: Path, part_size: int | None = None
    ) -> Iterator[dict]:
        doing, after = "reading the copy's tasks", 0
        while True:
            response = post_json(self.admin, EXPORT_PATH, {"project": project_id, "after": after}, doing)
            if response.headers.get(EXPORT_HEADER) != "1":
                raise unexpected_answer(self.admin, doing, "the guard's page of tasks")
            answer = check_response(self.admin, response, doing)
            tasks = answer.get("tasks") if isinstance(answer, dict) else None
            if not isinstance(tasks, list):
                raise unexpected_answer(self.admin, doing, "a page of tasks")
            if not tasks:
                return
            for task in tasks:
                if not isinstance(task, dict) or type(task.get("id")) is not int or task["id"] <= after:
                    raise unexpected_answer(self.admin, doing, "tasks with increasing integer ids")
                check_annotation_ids(self.admin, task)
                after = task["id"]
                yield task
