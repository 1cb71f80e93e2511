"""A blind push's fast path (issue 26 point 8): each copy's tasks made by the local server's guard, as Label Studio's
import would make them (builder/labelstudio/blind_import.py, `add_tasks` in builder/labelstudio/in_server/
builder_guard_settings.py). Real Label Studio: what the guard makes must be what Label Studio's import of the same
tasks makes, as the API and the labelling stream show it, and what the import refuses the guard refuses too."""

from __future__ import annotations

import uuid

import pytest

from builder.errors import LabelStudioError
from builder.labelstudio.blind_import import (
    ADD_PATH,
    STAGING_TITLE,
    GuardImport,
    adds_tasks,
    delete_staging_leftovers,
)
from builder.labelstudio.project_api import project_settings
from builder.labelstudio.push import import_tasks, task_for
from builder.learn.gazetteer import GazetteerPredictor

from .conftest import make_project
from .test_blind import call, two_blind_annotators  # noqa: F401 -- a fixture
from .test_labelstudio import synthetic_sentences

VOLATILE = {"id", "created_at", "updated_at", "project", "task", "inner_id"}


def _project(ls, settings: dict, title: str) -> int:
    status, made = call(ls.url, ls.api_key, "POST", "/api/projects", {**settings, "title": title})
    assert status == 201, made
    return made["id"]


def _shown(ls, project_id: int) -> dict:
    """Everything the API shows of the project's tasks and counters, without ids and times."""
    status, page = call(ls.url, ls.api_key, "GET", f"/api/tasks?project={project_id}&fields=all&page_size=1000")
    assert status == 200
    tasks = []
    for task in sorted(page["tasks"], key=lambda t: t["inner_id"]):
        status, predictions = call(ls.url, ls.api_key, "GET", f"/api/predictions?task={task['id']}")
        assert status == 200
        strip = {k: v for k, v in task.items() if k not in VOLATILE}
        strip["predictions"] = [{k: v for k, v in p.items() if k not in VOLATILE} for p in predictions]
        strip["inner_id"] = task["inner_id"]
        tasks.append(strip)
    status, project = call(ls.url, ls.api_key, "GET", f"/api/projects/{project_id}")
    counters = {
        k: project[k]
        for k in (
            "task_number",
            "total_predictions_number",
            "total_annotations_number",
            "model_version",
            "num_tasks_with_annotations",
        )
    }
    status, summary = call(ls.url, ls.api_key, "GET", f"/api/projects/{project_id}/summary/")
    assert status == 200, summary
    counters["columns"] = (summary["all_data_columns"], summary["common_data_columns"])
    status, following = call(ls.url, ls.api_key, "GET", f"/api/projects/{project_id}/next")
    assert status == 200, following
    counters["next"] = (following["data"], [p["result"] for p in following["predictions"]])
    return {"tasks": tasks, "project": counters}


def test_tasks_the_guard_makes_are_what_the_import_makes(ls, tmp_path):
    project = make_project(tmp_path, f"Guard stance {uuid.uuid4().hex[:6]}")
    predictor = GazetteerPredictor({"Moscow": "LOC", "Pyongyang": "LOC"})
    sentences = synthetic_sentences(12, "guard")
    tasks = [task_for(s, project, predictor if i % 3 else None) for i, s in enumerate(sentences)]
    assert any("predictions" in t for t in tasks) and any("predictions" not in t for t in tasks)
    settings = {**project_settings(project), "maximum_annotations": 1}
    imported = _project(ls, settings, f"imported {uuid.uuid4().hex[:8]}")
    made = _project(ls, settings, f"made {uuid.uuid4().hex[:8]}")
    assert adds_tasks(ls)
    # two batches, as a push sends them: inner ids go on after the project's last task
    guard = GuardImport(ls)
    for batch in (tasks[:7], tasks[7:]):
        import_tasks(ls, imported, batch, "importing")
        guard(ls, made, batch, "making")
    assert not guard.refused
    shown = _shown(ls, imported)
    assert sum(bool(t["predictions"]) for t in shown["tasks"]) == sum("predictions" in t for t in tasks) == 8
    assert [t["inner_id"] for t in shown["tasks"]] == list(range(1, 13))
    assert _shown(ls, made) == shown


def test_what_the_import_refuses_the_guard_refuses(ls, tmp_path):
    """Label Studio's own serializer checks what the guard makes: a task whose data the labeling config cannot
    show is refused by both, and neither makes anything."""
    project = make_project(tmp_path, f"Guard refuses {uuid.uuid4().hex[:6]}")
    good = [task_for(s, project, None) for s in synthetic_sentences(2, "refused")]
    bad = {"data": {"sentence_id": "x"}}  # no text for the labeling config's <Text value="$text">
    settings = {**project_settings(project), "maximum_annotations": 1}
    for how in ("import", "guard"):
        target = _project(ls, settings, f"{how} {uuid.uuid4().hex[:8]}")
        with pytest.raises(LabelStudioError):
            if how == "import":
                import_tasks(ls, target, [*good, bad], "importing")
            else:
                GuardImport(ls)(ls, target, [*good, bad], "making")
        status, page = call(ls.url, ls.api_key, "GET", f"/api/tasks?project={target}")
        assert status == 200 and page["tasks"] == []


def test_a_staging_project_an_older_push_left_is_deleted(ls, tmp_path):
    project = make_project(tmp_path, f"Guard leftover {uuid.uuid4().hex[:6]}")
    leftover = _project(ls, {**project_settings(project), "maximum_annotations": 1}, "leftover staging")
    status, _ = call(ls.url, ls.api_key, "PATCH", f"/api/projects/{leftover}", {"title": STAGING_TITLE})
    assert status == 200
    delete_staging_leftovers(ls)
    status, _ = call(ls.url, ls.api_key, "GET", f"/api/projects/{leftover}")
    assert status == 404


TASK = {"data": {"text": "A sentence.", "sentence_id": "s1"}}


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"project": 1}, 400),
        ({"project": 1, "tasks": []}, 400),
        ({"project": 1, "tasks": [1]}, 400),
        ({"project": True, "tasks": [TASK]}, 400),
        ({"project": 1, "tasks": [{**TASK, "annotations": []}]}, 400),  # annotations are never made here
        ({"project": 1, "tasks": [{**TASK, "predictions": [{"result": [], "completed_by": 1}]}]}, 400),
        ({"project": 1, "tasks": [{"data": "text"}]}, 400),
        ({"project": 10**9, "tasks": [TASK]}, 404),
    ],
)
def test_the_guard_makes_well_formed_requests_only(ls, body, expected):
    status, answer = call(ls.url, ls.api_key, "POST", f"/{ADD_PATH}", body)
    assert status == expected, answer


def test_only_builders_admin_may_make_tasks(ls, ls_server, two_blind_annotators):  # noqa: F811
    """An annotator, or an organization's admin, cannot make tasks in a copy through the guard."""
    ann = two_blind_annotators["ann"]
    for token in (ann["me"].api_key, ann["org"].token):
        status, answer = call(ls.url, token, "POST", f"/{ADD_PATH}", {"project": ann["project"], "tasks": [TASK]})
        assert status == 403, answer
    status, page = call(ls.url, ann["org"].token, "GET", f"/api/tasks?project={ann['project']}")
    assert len(page["tasks"]) == 2  # nothing made
