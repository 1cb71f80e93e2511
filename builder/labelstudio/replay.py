"""Replaying annotations into a Label Studio project, as the annotators who made them.

Used to rebuild the bundled sample's annotations on a fresh server (`builder run`): each
annotator account signs up through the invite link and submits its own annotations. Re-running
is safe: an annotator's existing annotation on a task is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from builder.errors import LabelStudioError
from builder.labelstudio.client import Connection, calling
from builder.labelstudio.pull import export_tasks
from builder.labelstudio.users import annotator_connection
from builder.pseudonyms import Pseudonymizer, legacy_pseudonym


@dataclass
class ReplayResult:
    created: int
    already_there: int
    missing_tasks: int


def replay(
    connection: Connection,
    project_id: int,
    dataset: str,
    tasks: Iterable[dict],
    accounts: dict[str, str],
    pseudonymize: Pseudonymizer | None = None,
) -> ReplayResult:
    """Submit each annotation of `tasks` (snapshot shape) as its annotator.

    `accounts` maps e-mail to password; an annotation's pseudonym (keyed with `pseudonymize`, or of
    the unkeyed scheme of release 1.0.0) must belong to one of them.
    """
    by_pseudonym = {legacy_pseudonym(dataset, email): (email, password) for email, password in accounts.items()}
    if pseudonymize is not None:
        by_pseudonym.update({pseudonymize(email): (email, password) for email, password in accounts.items()})
    sessions: dict[str, Connection] = {}
    existing = {}
    for task in export_tasks(connection, project_id):
        users = {a.get("completed_by") for a in task.get("annotations", [])}
        existing[task["data"].get("sentence_id")] = (task["id"], users)
    user_ids: dict[str, int] = {}
    created = already = missing = 0
    for task in tasks:
        sentence_id = task["data"]["sentence_id"]
        if sentence_id not in existing:
            missing += 1
            continue
        task_id, done_by = existing[sentence_id]
        for annotation in task["annotations"]:
            name = annotation["annotator"]
            if name not in by_pseudonym:
                raise LabelStudioError(f"task {task.get('task_id')}: annotator {name} has no account to replay as")
            if name not in sessions:
                sessions[name] = annotator_connection(connection, *by_pseudonym[name])
                with calling(connection, "identifying an annotator"):
                    user_ids[name] = sessions[name].client().users.whoami().id
            if user_ids[name] in done_by:
                already += 1
                continue
            with calling(connection, f"replaying an annotation on task {task_id}"):
                sessions[name].client().annotations.create(
                    id=task_id,
                    result=annotation["result"],
                    was_cancelled=annotation.get("was_cancelled", False),
                    ground_truth=annotation.get("ground_truth", False),
                    lead_time=annotation.get("lead_time"),
                )
            created += 1
    return ReplayResult(created, already, missing)
