"""Replaying annotations into a Label Studio project, as the annotators who made them.

Used to rebuild the bundled sample's annotations on a fresh server (`builder run`): each
annotator account signs up through the invite link and submits its own annotations. Re-running
is safe: an annotator's existing annotation on a task is left alone. Every annotation that is not
replayed is in the result's report, with the task, the sentence and the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from builder.labelstudio.client import Connection, calling
from builder.labelstudio.task_exports import export_tasks
from builder.labelstudio.users import annotator_connection
from builder.pseudonyms import Pseudonymizer, legacy_pseudonym
from builder.report import Report

# Reasons an annotation is not replayed; only ALREADY_THERE is expected (a re-run).
ALREADY_THERE = "already there"
TASK_NOT_FOUND = "task not in the project"
NO_ACCOUNT = "annotator without account"
NO_SENTENCE_ID = "task without sentence id"
MALFORMED = "malformed annotation"


@dataclass
class ReplayResult:
    created: int
    report: Report  # kept: "created"; problems: every annotation not replayed, by reason

    @property
    def already_there(self) -> int:
        return len(self.report.by_reason(ALREADY_THERE))

    def summary(self) -> str:
        """One line: created, already there, and the annotations not replayed by reason."""
        lost = self.report.dropped()
        lost.pop(ALREADY_THERE, None)
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(lost.items())) or "none"
        return f"created {self.created}, already there {self.already_there}; not replayed: {reasons}"


def replay(
    connection: Connection,
    project_id: int,
    dataset: str,
    tasks: Iterable[dict],
    accounts: dict[str, str],
    pseudonymize: Pseudonymizer | None = None,
    names: dict[str, str] | None = None,
) -> ReplayResult:
    """Submit each annotation of `tasks` (snapshot shape) as its annotator; report each one not submitted.

    `accounts` maps e-mail to password; an annotation's pseudonym must belong to one of them, else it is
    reported, not replayed: the name `names` gives the account (e-mail -> pseudonym, for a snapshot pulled
    with a key the replaying machine does not have), its name keyed with `pseudonymize`, or its name of the
    unkeyed scheme of release 1.0.0.
    """
    by_pseudonym = {legacy_pseudonym(dataset, email): (email, password) for email, password in accounts.items()}
    if pseudonymize is not None:
        by_pseudonym.update({pseudonymize(email): (email, password) for email, password in accounts.items()})
    by_pseudonym.update({name: (email, accounts[email]) for email, name in (names or {}).items() if email in accounts})
    sessions: dict[str, Connection] = {}
    existing = {}
    for task in export_tasks(connection, project_id):
        users = {a.get("completed_by") for a in task.get("annotations", [])}
        existing[task["data"].get("sentence_id")] = (task["id"], users)
    user_ids: dict[str, int] = {}
    report = Report("replay")
    created = 0
    for task in tasks:
        if not isinstance(task, dict):
            report.drop(MALFORMED, "a task", f"not a JSON object: {str(task)[:60]}")
            continue
        data = task.get("data") if isinstance(task.get("data"), dict) else {}
        sentence_id = data.get("sentence_id")
        for annotation in task.get("annotations") or []:
            names = _names(annotation) | ({"sentence_id": sentence_id} if sentence_id is not None else {})
            where = f"task {task.get('task_id')}" + (
                f" annotation {names['annotation_id']}" if "annotation_id" in names else ""
            )
            name = names.get("annotator")
            if sentence_id is None:
                report.drop(NO_SENTENCE_ID, where, "the task's data has no sentence_id", **names)
            elif sentence_id not in existing:
                detail = f"sentence {sentence_id} is not in Label Studio project {project_id}"
                report.drop(TASK_NOT_FOUND, where, detail, **names)
            elif not isinstance(name, str) or "result" not in annotation:
                report.drop(MALFORMED, where, "an annotation needs an annotator and a result", **names)
            elif name not in by_pseudonym:
                report.drop(NO_ACCOUNT, where, f"{name} has no account to replay as", **names)
            else:
                task_id, done_by = existing[sentence_id]
                if name not in sessions:
                    sessions[name] = annotator_connection(connection, *by_pseudonym[name])
                    with calling(connection, "identifying an annotator"):
                        user_ids[name] = sessions[name].client().users.whoami().id
                if user_ids[name] in done_by:
                    detail = f"{name} already annotated Label Studio task {task_id}"
                    report.drop(ALREADY_THERE, where, detail, error=False, **names)
                    continue
                with calling(connection, f"replaying an annotation on task {task_id}"):
                    sessions[name].client().annotations.create(
                        id=task_id,
                        result=annotation["result"],
                        was_cancelled=annotation.get("was_cancelled", False),
                        ground_truth=annotation.get("ground_truth", False),
                        lead_time=annotation.get("lead_time"),
                    )
                report.keep("created")
                created += 1
    return ReplayResult(created, report)


def _names(annotation) -> dict:
    """The fields that name an annotation in a report: its id and annotator, where it has them."""
    if not isinstance(annotation, dict):
        return {}
    named = {"annotation_id": annotation.get("id"), "annotator": annotation.get("annotator")}
    return {key: value for key, value in named.items() if value is not None}
