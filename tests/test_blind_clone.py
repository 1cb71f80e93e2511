"""A blind push's fast path (issue 26 point 8): each task imported once, into a staging project, and copied by the
local server's guard into the copies that hold it (builder/labelstudio/blind_clone.py, `clone_tasks` in
builder/labelstudio/in_server/builder_guard_settings.py). Real Label Studio: a copy made by the guard must be what
Label Studio's import of the same tasks makes, as the API and the labelling stream show it."""

from __future__ import annotations

import uuid

import pytest

from builder.labelstudio.blind_clone import CLONE_PATH, STAGING_TITLE, TaskClones, clones_tasks
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


def test_a_copy_the_guard_makes_is_what_the_import_makes(ls, tmp_path):
    project = make_project(tmp_path, f"Clone stance {uuid.uuid4().hex[:6]}")
    predictor = GazetteerPredictor({"Moscow": "LOC", "Pyongyang": "LOC"})
    sentences = synthetic_sentences(12, "clone")
    tasks = [task_for(s, project, predictor if i % 3 else None) for i, s in enumerate(sentences)]
    assert any("predictions" in t for t in tasks) and any("predictions" not in t for t in tasks)
    settings = {**project_settings(project), "maximum_annotations": 1}
    imported = _project(ls, settings, f"imported {uuid.uuid4().hex[:8]}")
    cloned = _project(ls, settings, f"cloned {uuid.uuid4().hex[:8]}")
    assert clones_tasks(ls)
    # two batches, as a push sends them: inner ids go on after the project's last task
    with TaskClones(ls, project) as clones:
        for batch in (tasks[:7], tasks[7:]):
            import_tasks(ls, imported, batch, "importing")
            clones(ls, cloned, batch, "cloning")
        assert clones.staging is not None and not clones.refused
        assert len(clones.staged) == len(tasks)
        staging = clones.staging
    shown = _shown(ls, imported)
    assert sum(bool(t["predictions"]) for t in shown["tasks"]) == sum("predictions" in t for t in tasks) == 8
    assert [t["inner_id"] for t in shown["tasks"]] == list(range(1, 13))
    assert _shown(ls, cloned) == shown
    # the staging project is gone once the push ends
    status, _ = call(ls.url, ls.api_key, "GET", f"/api/projects/{staging}")
    assert status == 404


def test_a_task_given_to_two_copies_is_imported_once(ls, tmp_path):
    project = make_project(tmp_path, f"Clone twice {uuid.uuid4().hex[:6]}")
    tasks = [task_for(s, project, None) for s in synthetic_sentences(6, "twice")]
    settings = {**project_settings(project), "maximum_annotations": 1}
    first, second = (_project(ls, settings, f"copy {n} {uuid.uuid4().hex[:8]}") for n in (1, 2))
    with TaskClones(ls, project) as clones:
        clones(ls, first, tasks[:4], "cloning")
        clones(ls, second, tasks[2:], "cloning")
        assert len(clones.staged) == 6  # tasks 2 and 3 staged once, copied into both
        status, staged = call(ls.url, ls.api_key, "GET", f"/api/projects/{clones.staging}")
        assert staged["task_number"] == 6
    for copy, expected in ((first, tasks[:4]), (second, tasks[2:])):
        status, page = call(ls.url, ls.api_key, "GET", f"/api/tasks?project={copy}")
        assert [t["data"] for t in sorted(page["tasks"], key=lambda t: t["inner_id"])] == [t["data"] for t in expected]


def test_a_staging_project_an_interrupted_push_left_is_deleted_by_the_next(ls, tmp_path):
    project = make_project(tmp_path, f"Clone leftover {uuid.uuid4().hex[:6]}")
    leftover = _project(ls, {**project_settings(project), "maximum_annotations": 1}, "leftover staging")
    status, _ = call(ls.url, ls.api_key, "PATCH", f"/api/projects/{leftover}", {"title": STAGING_TITLE})
    assert status == 200
    with TaskClones(ls, project):
        status, _ = call(ls.url, ls.api_key, "GET", f"/api/projects/{leftover}")
        assert status == 404


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"project": 1}, 400),
        ({"project": 1, "tasks": []}, 400),
        ({"project": 1, "tasks": ["1"]}, 400),
        ({"project": 10**9, "tasks": [1]}, 404),
    ],
)
def test_the_guard_copies_well_formed_requests_only(ls, body, expected):
    status, answer = call(ls.url, ls.api_key, "POST", f"/{CLONE_PATH}", body)
    assert status == expected, answer


def test_only_builders_admin_may_copy_tasks(ls, ls_server, two_blind_annotators):  # noqa: F811
    """An annotator, or an organization's admin, cannot copy another copy's tasks into their own project."""
    ann, bob = two_blind_annotators["ann"], two_blind_annotators["bob"]
    for token in (ann["me"].api_key, ann["org"].token):
        status, answer = call(
            ls.url, token, "POST", f"/{CLONE_PATH}", {"project": ann["project"], "tasks": bob["tasks"]}
        )
        assert status == 403, answer
    status, page = call(ls.url, ann["org"].token, "GET", f"/api/tasks?project={ann['project']}")
    assert len(page["tasks"]) == 2  # nothing copied
    # a task that does not exist: refused, nothing made
    status, answer = call(
        ls.url, ls_server.token, "POST", f"/{CLONE_PATH}", {"project": ann["project"], "tasks": [10**9]}
    )
    assert status == 409, answer
    status, page = call(ls.url, ann["org"].token, "GET", f"/api/tasks?project={ann['project']}")
    assert len(page["tasks"]) == 2


def test_the_guard_empties_only_a_staging_project(ls, tmp_path):
    """{"empty": id} deletes the tasks of the blind push's staging project only, for builder's admin only."""
    project = make_project(tmp_path, f"Clone empty {uuid.uuid4().hex[:6]}")
    tasks = [task_for(s, project, None) for s in synthetic_sentences(3, "empty")]
    settings = {**project_settings(project), "maximum_annotations": 1}
    ordinary = _project(ls, settings, f"ordinary {uuid.uuid4().hex[:8]}")
    import_tasks(ls, ordinary, tasks, "importing")
    status, answer = call(ls.url, ls.api_key, "POST", f"/{CLONE_PATH}", {"empty": ordinary})
    assert status == 404, answer
    with TaskClones(ls, project) as clones:
        clones(ls, ordinary, tasks, "cloning")
        staging = clones.staging
        status, answer = call(ls.url, ls.api_key, "POST", f"/{CLONE_PATH}", {"empty": staging})
        assert (status, answer) == (200, {"deleted": 3})
    status, page = call(ls.url, ls.api_key, "GET", f"/api/tasks?project={ordinary}")
    assert len(page["tasks"]) == 6  # its own 3 and the 3 copies, untouched
