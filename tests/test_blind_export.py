"""A blind copy's full pull read through the local server's guard (issue 26 point 8, builder/labelstudio/
blind_export.py, `export_tasks` in builder/labelstudio/in_server/builder_guard_settings.py). Real Label Studio: the
snapshot a full pull writes from the guard's pages must be, byte for byte, the one Label Studio's export gives,
on a copy holding predictions, skipped, ground-truth and relabelled annotations; an edit by another account is
refused the same way; only builder's admin token may read the pages."""

from __future__ import annotations

import pytest

from builder.errors import BuilderError
from builder.labelstudio.blind_export import EXPORT_PATH, GuardExport, exports_tasks
from builder.labelstudio.blind_push import copy_project, push_blind
from builder.labelstudio.isolation import read_organizations
from builder.labelstudio.project_api import find_project
from builder.labelstudio.pull import pull
from builder.labelstudio.task_exports import stream_export
from builder.learn.gazetteer import GazetteerPredictor

from .test_blind import _blind_project, _label, _tasks_of, blind_server, call  # noqa: F401 -- a fixture
from .test_labelstudio import synthetic_sentences


def _both(admin, reached, copy, tmp_path, name: str, **options) -> tuple:
    """(Label Studio's export, the guard's pages): each a full pull's snapshot bytes, or its refusal."""
    made = []
    for how, exporter in (("export", None), ("guard", GuardExport(admin))):
        output = tmp_path / f"{name}-{how}.jsonl"
        try:
            pull(reached, copy, output, exporter=exporter, **options)
            made.append(output.read_bytes())
        except BuilderError as refused:
            made.append(str(refused).replace(str(output), "OUTPUT"))
    return tuple(made)


def test_a_copys_full_pull_through_the_guard_is_the_one_the_export_gives(blind_server, tmp_path):  # noqa: F811
    root, state, admin, people = blind_server
    project = _blind_project(root)
    predictor = GazetteerPredictor({"Moscow": "LOC", "Pyongyang": "LOC", "Kim": "PER"})
    push_blind(admin, project, synthetic_sentences(12, "export"), predictor)
    assert exports_tasks(admin)
    copy = copy_project(project)
    email = "ann@example.org"
    organization = read_organizations(root)[email]
    reached = organization.connection(admin.url)
    project_id = find_project(reached, copy)
    token = people[email].api_key
    tasks = sorted(_tasks_of(admin.url, token, project_id).items())
    assert len(tasks) >= 6
    # labelled, relabelled (two annotations), skipped, ground truth, with lead times; some left unlabelled
    stances = [label.value for label in project.stance_labels]
    for i, (sentence_id, task_id) in enumerate(tasks[:5]):
        _label(admin.url, token, task_id, stances[i % len(stances)])
    _label(admin.url, token, tasks[0][1], stances[-1])
    status, skipped = call(
        admin.url, token, "POST", f"/api/tasks/{tasks[5][1]}/annotations", {"result": [], "was_cancelled": True}
    )
    assert status == 201, skipped
    status, page = call(admin.url, token, "GET", f"/api/tasks/{tasks[1][1]}/annotations")
    status, truth = call(
        admin.url, token, "PATCH", f"/api/annotations/{page[0]['id']}", {"ground_truth": True, "lead_time": 12.5}
    )
    assert status == 200, truth
    export, guard = _both(admin, reached, copy, tmp_path, "labelled")
    assert isinstance(export, bytes) and export.count(b"\n") == 6
    assert b'"predictions":[{' in export and b'"was_cancelled":true' in export and b'"ground_truth":true' in export
    assert guard == export
    # the organization's admin edits the annotator's annotation: every field a pull reads of each task (its drift
    # check too: the editor and the time of the edit) is what Label Studio's export gives
    status, edited = call(
        admin.url, organization.token, "PATCH", f"/api/annotations/{page[0]['id']}", {"lead_time": 3.25}
    )
    assert status == 200, edited
    assert _both(admin, reached, copy, tmp_path, "edited")[1] == _both(admin, reached, copy, tmp_path, "again")[0]
    annotation_fields = ("id", "completed_by", "result", "was_cancelled", "ground_truth", "lead_time", "updated_by")

    def read(tasks) -> list:
        return [
            (
                task["id"],
                task["data"],
                [{k: a[k] for k in (*annotation_fields, "updated_at")} for a in task["annotations"]],
                [{k: p[k] for k in ("model_version", "score", "result")} for p in task["predictions"]],
            )
            for task in sorted(tasks, key=lambda t: t["id"])
        ]

    work = tmp_path / "work"
    work.mkdir()
    exported = read(stream_export(reached, project_id, work))
    assert read(GuardExport(admin)(reached, project_id, work)) == exported
    assert any(a["updated_by"] not in (None, a["completed_by"]) for t in exported for a in t[2])
    # a page starts after the task id it is given (a full pull reads the pages until one is empty)
    ids = [task[0] for task in exported]
    status, page = call(admin.url, admin.api_key, "POST", f"/{EXPORT_PATH}", {"project": project_id, "after": ids[2]})
    assert status == 200 and [task["id"] for task in page["tasks"]] == ids[3:]
    status, page = call(admin.url, admin.api_key, "POST", f"/{EXPORT_PATH}", {"project": project_id, "after": ids[-1]})
    assert status == 200 and page["tasks"] == []


@pytest.mark.parametrize(
    "body, expected",
    [({}, 400), ({"project": 1}, 400), ({"project": -1, "after": 0}, 400), ({"project": 10**9, "after": 0}, 404)],
)
def test_the_guard_exports_for_well_formed_requests_only(blind_server, body, expected):  # noqa: F811
    root, state, admin, people = blind_server
    status, answer = call(admin.url, admin.api_key, "POST", f"/{EXPORT_PATH}", body)
    assert status == expected, answer


def test_only_builders_admin_may_read_a_copys_pages(blind_server):  # noqa: F811
    """An annotator, or their organization's admin, cannot read a copy's tasks through the guard, not even
    their own copy's (no annotator reads another's annotations this way)."""
    root, state, admin, people = blind_server
    email = "bob@example.org"
    organization = read_organizations(root)[email] if email in read_organizations(root) else None
    tokens = [people[email].api_key] + ([organization.token] if organization else [])
    for token in tokens:
        status, answer = call(admin.url, token, "POST", f"/{EXPORT_PATH}", {"project": 1, "after": 0})
        assert status == 403, answer
