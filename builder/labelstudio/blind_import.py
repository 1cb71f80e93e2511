"""A blind push's tasks, made by the local server's guard (issue 26): the fast path on builder's local server.

A blind push gives each sentence to `annotators_per_sentence` copies of the project, so it makes that many tasks
per sentence. Label Studio's import builds and compiles a Django object per task and per prediction, which is most
of what a push costs. On builder's local server, whose guard answers ADD_PATH (builder/labelstudio/in_server/
builder_guard_settings.py, `add_tasks`, for builder's admin token only), each batch a copy's push would import is
sent to the guard instead, which validates it with Label Studio's own import serializer and makes the same rows
with a few multi-row INSERTs, with the same counters, data columns and model version. Everything else a push does
(its ledger, the drift record, gold questions, pre-annotations) is the ordinary push's, copy by copy.

A guard without ADD_PATH (a server an older builder started), or one that refuses the Label Studio it runs in
(other columns than 1.23.2's), leaves Label Studio's import.
"""

from __future__ import annotations

from builder.labelstudio.client import (
    Connection,
    calling,
    check_response,
    guard_answers,
    post_json,
    unexpected_answer,
)
from builder.labelstudio.push import import_tasks

ADD_PATH = "builder-guard/add-tasks/"  # the guard's request (in_server/builder_guard_settings.py)
ADD_HEADER = "X-Builder-Add"  # on the guard's every answer to it
# an older builder staged a blind push's tasks in a project of this title: one an interrupted push left is deleted
STAGING_TITLE = "builder staging: blind push in progress"


def adds_tasks(connection: Connection) -> bool:
    """Whether the server's guard answers ADD_PATH."""
    return guard_answers(connection, ADD_PATH, ADD_HEADER)


def delete_staging_leftovers(connection: Connection) -> None:
    """Delete the staging projects an older builder's interrupted blind push left (STAGING_TITLE)."""
    doing = "looking up an older blind push's staging project"
    with calling(connection, doing):
        response = connection.http().request(
            "api/projects/", method="GET", params={"include": "id,title", "page_size": 1000, "title": STAGING_TITLE}
        )
    answer = check_response(connection, response, doing)
    results = answer.get("results", []) if isinstance(answer, dict) else answer
    for leftover in [p["id"] for p in results or [] if isinstance(p, dict) and p.get("title") == STAGING_TITLE]:
        with calling(connection, "deleting an older blind push's staging project"):
            connection.client().projects.delete(leftover)


class GuardImport:
    """The `importer` of each copy's push (builder/labelstudio/push.py): each batch made by the guard, through
    builder's admin (`connection`, the API key's); Label Studio's import from the first refusal on."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.refused = False  # the guard would not make them (another Label Studio): the ordinary import from then on

    def __call__(self, connection: Connection, project_id: int, batch: list[dict], doing: str) -> None:
        if not self.refused:
            response = post_json(self.connection, ADD_PATH, {"project": project_id, "tasks": batch}, doing)
            if response.headers.get(ADD_HEADER) == "1" and response.status_code != 501:
                answer = check_response(self.connection, response, doing)
                made = answer.get("tasks") if isinstance(answer, dict) else None
                if not isinstance(made, list) or len(made) != len(batch):
                    raise unexpected_answer(self.connection, doing, f"the ids of {len(batch)} new tasks")
                return
            self.refused = True  # not the guard's answer, or a Label Studio it does not know: import instead
        import_tasks(connection, project_id, batch, doing)
