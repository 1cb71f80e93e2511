"""`builder predict`: refresh the predictions of the tasks nobody has annotated yet with the current predictor.

A task with an annotation (submitted or cancelled) or an annotator's draft is left exactly as it is: its
annotators saw its predictions, and `builder quality` measures them against what they kept. Annotators
work while predict runs, so the tasks a page is about to change are read again right before its writes;
those annotated or drafted since the listing are left alone and counted with the annotated or drafted
ones (only an annotation made in the milliseconds between that reading and the writes can be missed).
On every other task, the predictions builder made (a `model_version` of the form `builder-...` or
`spacy/...`) by another version than the current predictor's are deleted, and the current predictor's
proposal is added; predictions builder did not make (an ML backend's, a hand import's) are never touched.
Tasks of the control arm (their data's `suggestion_arm` is "withheld", builder/records/steering.py) stay
without predictions. Re-running with the same model version changes nothing. Tasks are streamed a page at a time:
per page, one bulk delete (Label Studio's "delete predictions" action, for tasks holding only
builder's predictions), one DELETE per stale prediction on a task that also holds foreign ones, and
one bulk import of the new predictions. Deleting comes first, so an interruption leaves a task
with fewer predictions, never two versions, and a re-run completes it. Finally the project's
`model_version` setting is set to the current version, so the labeling interface shows it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from builder.errors import Interrupted, LabelStudioError
from builder.labelstudio.client import Connection, calling, check_response, task_pages, unexpected_answer
from builder.labelstudio.project_api import push_lock, require_project, set_model_version
from builder.model import prediction_for
from builder.preannotate import article_contexts, whole_articles
from builder.project import Project
from builder.records.steering import ARM_FIELD, WITHHELD, record_withheld, recorded_withheld, withheld_suggestions

# The model versions builder's predictors write (builder.preannotate, builder.learn): only these are replaced.
BUILDER_MADE = re.compile(r"(builder-[A-Za-z0-9_.-]+|spacy)/")
PAGE = 1000  # tasks per listing page; a run of whole articles (preannotate.whole_articles) holds up to twice as many
RECHECK_BATCH = 200  # task ids per request when reading again whether tasks were annotated (they go in the URL)


def builder_made(model_version: object) -> bool:
    """Whether a prediction of this `model_version` was made by one of builder's predictors."""
    return isinstance(model_version, str) and BUILDER_MADE.match(model_version) is not None


@dataclass
class PredictResult:
    project_id: int
    model_version: str
    tasks: int = 0  # tasks listed
    predicted: int = 0  # tasks given a prediction of this version
    cleared: int = 0  # tasks whose older predictions were deleted and that get none: nothing proposed now
    current: int = 0  # skipped: already hold this version's prediction
    nothing: int = 0  # skipped: no prediction of builder's before, none proposed now
    annotated: int = 0  # skipped: annotated (submitted or cancelled); never touched
    annotated_meanwhile: int = (
        0  # of `annotated` and `drafted`: annotated or drafted after the listing, while predict ran
    )
    drafted: int = 0  # skipped: an annotator's draft is saved on it (being annotated); never touched
    no_text: int = 0  # skipped: no `text` in the task's data (not a task builder pushed)
    withheld: int = 0  # skipped: in the control arm (`[annotation] suggestion_holdout`), pushed without suggestion
    deleted: int = 0  # older predictions deleted
    foreign: int = 0  # predictions builder did not make, on the tasks refreshed: kept
    version_set: bool = False  # the project's model_version now names this version
    previous_version: str = ""  # the project's model_version before

    @property
    def skipped(self) -> int:
        return self.current + self.nothing + self.annotated + self.drafted + self.no_text + self.withheld


def refresh_predictions(
    connection: Connection,
    project: Project,
    predictor,
    page_size: int = PAGE,
    on_page: Callable[[PredictResult], None] | None = None,
) -> PredictResult:
    """Give every task nobody has annotated the current predictor's prediction, replacing builder's older ones.

    Holds the project's push lock (a push and a predict never interleave). See the module's docstring."""
    if predictor is None:
        raise LabelStudioError("builder predict needs a predictor (--predictor none predicts nothing)")
    project_id = require_project(connection, project)
    result = PredictResult(project_id, predictor.model_version)
    with push_lock(connection, project):
        try:
            _refresh(connection, project_id, predictor, page_size, result, on_page, project)
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted: {result.predicted} tasks got new predictions before the interruption; "
                "re-run the same `builder predict` to complete it (tasks already done are skipped)"
            ) from None
        previous = set_model_version(connection, project_id, predictor.model_version)
        result.version_set, result.previous_version = previous is not None, previous or ""
    return result


def _article_of(data: dict) -> str:
    article = data.get("article_id")
    return article if isinstance(article, str) else ""


def _article_of_task(task) -> str:
    data = task.get("data") if isinstance(task, dict) else None
    return _article_of(data) if isinstance(data, dict) else ""


def _texts_by_article(tasks: list) -> list[tuple[str, str]]:
    """(article id, text) of each task of a page with a text (malformed ones are counted by the caller)."""
    pairs = []
    for task in tasks:
        data = task.get("data") if isinstance(task, dict) else None
        if isinstance(data, dict) and isinstance(data.get("text"), str):
            pairs.append((_article_of(data), data["text"]))
    return pairs


@dataclass
class _Change:
    """What one page does to one task: written only if the task is still untouched right before the writes."""

    task_id: int
    bulk: bool  # its predictions (all builder's, none current) go in the page's one bulk delete
    single: list[int]  # stale predictions deleted one by one (the task also holds foreign ones)
    foreign: int
    deleted: int
    prediction: dict | None  # None: nothing proposed now (its older ones are only deleted)
    add: bool  # import `prediction` (False: a current one is kept)


def _refresh(connection, project_id, predictor, page_size, result, on_page, project=None) -> None:
    doing = "listing the project's tasks with their predictions"
    params = {"fields": "all", "include": "id,data,predictions,total_annotations,cancelled_annotations,draft_exists"}
    version = predictor.model_version
    pages = task_pages(connection, project_id, params, doing, page_size)
    recorded = recorded_withheld(project) if project is not None else {}  # the control arm's withheld suggestions
    # Each task is read with its article's other tasks: a page's last article waits for the next page.
    for tasks in whole_articles(pages, _article_of_task, 2 * page_size):
        contexts = article_contexts(predictor, _texts_by_article(tasks)) or {}
        changes: list[_Change] = []
        unrecorded: list[dict] = []  # withheld tasks whose would-be suggestion of this version is not recorded yet
        for task in tasks:
            try:
                task_id, predictions = task["id"], task.get("predictions") or []
                annotated = int(task.get("total_annotations") or 0) + int(task.get("cancelled_annotations") or 0)
                drafted = bool(task.get("draft_exists"))
                ours = [p for p in predictions if builder_made(p.get("model_version"))]
                foreign = len(predictions) - len(ours)
                data = task.get("data")
            except (KeyError, TypeError, ValueError, AttributeError):
                raise unexpected_answer(
                    connection, doing, "tasks with their predictions and annotation counts"
                ) from None
            result.tasks += 1
            if annotated:
                result.annotated += 1
                continue
            if drafted:
                result.drafted += 1
                continue
            text = data.get("text") if isinstance(data, dict) else None
            if not isinstance(text, str):
                result.no_text += 1
                continue
            if data.get(ARM_FIELD) == WITHHELD:  # the control arm: never given a suggestion
                result.withheld += 1
                if (recorded.get(data.get("sentence_id")) or {}).get("model_version") != version:
                    unrecorded.append(task)
                continue
            current = [p for p in ours if p.get("model_version") == version]
            if len(ours) == 1 and current:
                result.current += 1
                continue
            prediction = prediction_for(predictor, text, contexts.get(_article_of(data)), data.get("target") or None)
            if not ours and prediction is None:
                result.nothing += 1
                continue
            keep = None  # one prediction of this version kept on a task that also holds foreign ones
            single: list[int] = []
            if foreign:
                keep = current[0]["id"] if current and prediction is not None else None
                single = [p["id"] for p in ours if p["id"] != keep]
            deleted = len(ours) - (keep is not None)
            changes.append(
                _Change(task_id, bool(ours) and not foreign, single, foreign, deleted, prediction, keep is None)
            )
        _write(connection, project_id, changes, result)
        if project is not None and unrecorded:  # what this version would suggest, kept out of Label Studio
            would_be = withheld_suggestions(unrecorded, lambda i: _would_be(predictor, unrecorded[i], contexts))
            record_withheld(project, would_be)
        if on_page is not None:
            on_page(result)


def _would_be(predictor, task: dict, contexts: dict) -> dict | None:
    """What `predictor` would suggest on a task of the control arm (read with its article, as on push)."""
    data = task["data"]
    return prediction_for(predictor, data["text"], contexts.get(_article_of(data)), data.get("target") or None)


def _write(connection: Connection, project_id: int, changes: list[_Change], result: PredictResult) -> None:
    """Apply a page's changes to the tasks nobody annotated or drafted since the listing (read again now)."""
    touched = _touched(connection, project_id, [change.task_id for change in changes])
    bulk: list[int] = []  # tasks whose predictions (all builder's, none current) go in one request
    single: list[int] = []  # stale predictions on tasks that also hold foreign ones
    new: list[dict] = []
    predicted = 0  # counted into the result once imported: an interruption names only what arrived
    for change in changes:
        state = touched.get(change.task_id)
        if state == "gone":  # no longer a task of the project: not counted among those listed
            result.tasks -= 1
            continue
        if state is not None:
            result.annotated_meanwhile += 1
            if state == "annotated":
                result.annotated += 1
            else:
                result.drafted += 1
            continue
        result.foreign += change.foreign
        result.deleted += change.deleted
        if change.bulk:
            bulk.append(change.task_id)
        single += change.single
        if change.prediction is None:
            result.cleared += 1
            continue
        predicted += 1
        if change.add:
            new.append({"task": change.task_id, **change.prediction})
    _delete(connection, project_id, bulk, single)
    _import(connection, project_id, new)
    result.predicted += predicted


def _touched(connection: Connection, project_id: int, task_ids: list[int]) -> dict[int, str]:
    """Which of `task_ids` now hold an annotation ("annotated") or an annotator's draft ("drafted"), or are
    gone (deleted meanwhile)."""
    if not task_ids:
        return {}
    doing = "reading again whether the tasks about to change were annotated meanwhile"
    # `fields=all` makes Label Studio compute draft_exists (it is not a column of the task table)
    params = {"fields": "all", "include": "id,total_annotations,cancelled_annotations,draft_exists"}
    touched: dict[int, str] = {}
    seen: set[int] = set()
    for start in range(0, len(task_ids), RECHECK_BATCH):
        batch = task_ids[start : start + RECHECK_BATCH]
        params["query"] = orjson.dumps({"selectedItems": {"all": False, "included": batch}}).decode()
        for task in (task for tasks in task_pages(connection, project_id, params, doing, PAGE) for task in tasks):
            try:
                task_id = int(task["id"])
                annotated = int(task.get("total_annotations") or 0) + int(task.get("cancelled_annotations") or 0)
                drafted = bool(task.get("draft_exists"))
            except (KeyError, TypeError, ValueError, AttributeError):
                raise unexpected_answer(connection, doing, "tasks with their annotation counts") from None
            seen.add(task_id)
            if annotated:
                touched[task_id] = "annotated"
            elif drafted:
                touched[task_id] = "drafted"
    for task_id in set(task_ids) - seen:  # deleted meanwhile: nothing to write to
        touched[task_id] = "gone"
    return touched


def _delete(connection: Connection, project_id: int, tasks: list[int], predictions: list[int]) -> None:
    http = connection.http()
    if tasks:
        doing = f"deleting the older predictions of {len(tasks)} tasks"
        with calling(connection, doing):
            response = http.request(
                "api/dm/actions",
                method="POST",
                params={"id": "delete_tasks_predictions", "project": project_id},
                content=orjson.dumps({"selectedItems": {"all": False, "included": tasks}}),
                headers={"Content-Type": "application/json"},
            )
        check_response(connection, response, doing)
    for prediction_id in predictions:
        doing = f"deleting the older prediction {prediction_id}"
        with calling(connection, doing):
            response = http.request(f"api/predictions/{prediction_id}/", method="DELETE")
        if response.status_code != 404:  # already gone is what was wanted
            check_response(connection, response, doing)


def _import(connection: Connection, project_id: int, predictions: list[dict]) -> None:
    if not predictions:
        return
    doing = f"importing {len(predictions)} predictions (re-run to resume)"
    with calling(connection, doing):
        response = connection.http().request(
            f"api/projects/{project_id}/import/predictions",
            method="POST",
            content=orjson.dumps(predictions),
            headers={"Content-Type": "application/json"},
            request_options={"max_retries": 0},  # a retried import that had arrived would duplicate them
        )
    check_response(connection, response, doing)
