"""`builder pull --since-last` gives byte for byte what a full pull gives, on a real Label Studio.

A property test: random sequences of creating, updating, cancelling, starring and deleting
annotations, importing and deleting tasks, adding and bulk-deleting predictions (through the API
and through the Data Manager's bulk actions, which bypass `updated_at`), interleaved with
incremental pulls, each compared with a full pull made at the same moment.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.labelstudio import pull as pull_module
from builder.labelstudio import pull_state
from builder.labelstudio.pull import pull
from builder.labelstudio.push import push_sentences
from builder.labelstudio.users import annotator_connection

from .conftest import cli_env, make_project, run_cli
from .test_labelstudio import synthetic_sentences

OPERATIONS = st.sampled_from(
    [
        "annotate",
        "annotate",
        "annotate_as_annotator",
        "update",
        "delete_annotation",
        "cancel",
        "star",
        "bulk_delete_annotations",
        "delete_task",
        "bulk_delete_tasks",
        "predict",
        "bulk_delete_predictions",
        "import",
        "pull",
        "pull",
    ]
)
STEPS = st.lists(
    st.tuples(OPERATIONS, st.integers(0, 1000), st.sampled_from(["favor", "against", "neutral"])),
    min_size=4,
    max_size=14,
)

# An e-mail of its own: another module's test may have made ann@example.org on the session's server
ANNOTATOR = f"ann-{uuid.uuid4().hex[:8]}@example.org"


class Playground:
    """One Label Studio project and the moves the property test makes on it."""

    def __init__(self, ls, folder, title: str) -> None:
        self.ls, self.folder = ls, folder
        self.project = make_project(folder, title)
        self.imported = 0
        self.project_id = push_sentences(ls, self.project, self.sentences(6)).project_id
        self.annotator = None

    def sentences(self, n: int) -> list[dict]:
        batch = synthetic_sentences(self.imported + n, "q")[self.imported :]
        self.imported += n
        return batch

    def tasks(self) -> list[int]:
        return sorted(t.id for t in self.ls.client().tasks.list(project=self.project_id))

    def annotations(self) -> list[int]:
        found = []
        for task in self.tasks():
            found += [a.id for a in self.ls.client().annotations.list(id=task)]
        return sorted(found)

    def action(self, name: str, task_ids: list[int]) -> None:
        response = self.ls.http().request(
            "api/dm/actions",
            method="POST",
            params={"id": name, "project": self.project_id},
            json={"selectedItems": {"all": False, "included": task_ids}},
        )
        assert response.status_code < 300, response.text

    @staticmethod
    def result(stance: str, text: str = "") -> list[dict]:
        items = [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}}]
        if "Moscow" in text:
            start = text.index("Moscow")
            items.append(
                {
                    "from_name": "entities",
                    "to_name": "sentence",
                    "type": "labels",
                    "value": {"start": start, "end": start + 6, "text": "Moscow", "labels": ["LOC"]},
                }
            )
        return items

    def apply(self, operation: str, pick: int, stance: str) -> None:
        client = self.ls.client()
        tasks = self.tasks()
        task = tasks[pick % len(tasks)] if tasks else None
        if operation in ("annotate", "annotate_as_annotator", "cancel") and task is not None:
            who = self.ls
            if operation == "annotate_as_annotator":
                self.annotator = self.annotator or annotator_connection(self.ls, ANNOTATOR, "annotator-pass-1")
                who = self.annotator
            text = client.tasks.get(task).data["text"]
            cancelled = operation == "cancel"
            who.client().annotations.create(
                id=task, result=[] if cancelled else self.result(stance, text), was_cancelled=cancelled, lead_time=1.5
            )
        elif operation in ("update", "delete_annotation", "star"):
            annotations = self.annotations()
            if annotations:
                chosen = annotations[pick % len(annotations)]
                if operation == "update":
                    client.annotations.update(id=chosen, result=self.result(stance))
                elif operation == "star":
                    client.annotations.update(id=chosen, ground_truth=True)
                else:
                    client.annotations.delete(id=chosen)
        elif operation == "bulk_delete_annotations" and task is not None:
            self.action("delete_tasks_annotations", [task])
        elif operation == "delete_task" and task is not None:
            client.tasks.delete(id=task)
        elif operation == "bulk_delete_tasks" and task is not None and len(tasks) > 1:
            self.action("delete_tasks", [task])
        elif operation == "predict" and task is not None:
            client.predictions.create(task=task, result=self.result(stance), model_version=f"m{pick % 3}", score=0.5)
        elif operation == "bulk_delete_predictions" and task is not None:
            self.action("delete_tasks_predictions", [task])
        elif operation == "import":
            push_sentences(self.ls, self.project, self.sentences(1 + pick % 3))

    def pull_and_compare(self) -> pull_module.PullResult:
        incremental_path = self.folder / "annotations" / "snapshot.jsonl"
        full_path = self.folder / "full.jsonl"
        incremental = pull(self.ls, self.project, incremental_path, since_last=True)
        pull(self.ls, self.project, full_path)
        assert incremental_path.read_bytes() == full_path.read_bytes(), (incremental.why_full, incremental.reconciled)
        return incremental


@pytest.fixture
def no_margin(monkeypatch):
    """The safety margin re-fetches the last seconds' tasks; without it the incremental logic is tested hardest."""
    monkeypatch.setattr(pull_module, "SINCE_MARGIN", timedelta(0))


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(steps=STEPS)
def test_incremental_pull_equals_full_pull(ls, tmp_path_factory, no_margin, steps):
    folder = tmp_path_factory.mktemp("property")
    playground = Playground(ls, folder, f"property {folder.name}")
    playground.apply("annotate", 0, "neutral")
    playground.pull_and_compare()
    for operation, pick, stance in steps:
        if operation == "pull":
            playground.pull_and_compare()
        else:
            playground.apply(operation, pick, stance)
    last = playground.pull_and_compare()
    assert last.incremental, last.why_full


def test_incremental_pull_fetches_only_changed_tasks(ls, tmp_path, no_margin):
    playground = Playground(ls, tmp_path, "only changed")
    for pick in range(6):
        playground.apply("annotate", pick, "neutral")
    time.sleep(1.1)  # the server's clock has whole seconds: nothing above changed in the pull's second
    first = playground.pull_and_compare()
    assert not first.incremental and first.fetched == 6
    time.sleep(1.1)  # the server's clock has whole seconds
    playground.apply("update", 2, "against")
    second = playground.pull_and_compare()
    assert second.incremental and second.fetched == 1 and not second.reconciled
    playground.apply("delete_task", 4, "neutral")  # a deletion does not bump any task: counts catch it
    third = playground.pull_and_compare()
    assert third.incremental and third.reconciled and third.removed == 1


def test_state_is_per_output_and_survives_corruption(ls, tmp_path):
    playground = Playground(ls, tmp_path, "state per output")
    playground.apply("annotate", 0, "favor")
    env, a, b = cli_env(ls), tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert run_cli("pull", "-o", a, env=env, cwd=tmp_path).returncode == 0
    assert run_cli("pull", "-o", b, env=env, cwd=tmp_path).returncode == 0
    playground.apply("annotate", 1, "against")
    playground.apply("delete_task", 0, "neutral")
    again = run_cli("pull", "--since-last", "-o", a, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert run_cli("pull", "-o", b, env=env, cwd=tmp_path).returncode == 0
    assert a.read_bytes() == b.read_bytes()

    state = tmp_path / ".builder" / "pull-state.json"
    state.write_text("{not json", encoding="utf-8")
    corrupt = run_cli("pull", "--since-last", "-o", a, env=env, cwd=tmp_path)
    assert corrupt.returncode == 0 and "Traceback" not in corrupt.stderr
    assert "full pull:" in corrupt.stderr and "unreadable" in corrupt.stderr
    assert json.loads(state.read_text(encoding="utf-8"))["format"] == pull_state.STATE_FORMAT
    a.write_bytes(a.read_bytes() + b"\n")  # the output changed since: a full pull, said so
    edited = run_cli("pull", "--since-last", "-o", a, env=env, cwd=tmp_path)
    assert "changed since the last pull" in edited.stderr and a.read_bytes() == b.read_bytes()
    assert not list(tmp_path.glob(".builder/.*.tmp"))


# --- exports of an odd shape (through a proxy that rewrites the real server's answers) -----------------


def _export_rewritten(change):
    """A `rewrite` for FailingProxy: the downloaded export's list of tasks passed through `change`."""

    def rewrite(method, path, content):
        if method != "GET" or "/download" not in path:
            return None
        return json.dumps(change(json.loads(content))).encode()

    return rewrite


def _three_annotations(ls, tmp_path, title: str):
    from builder.model import STANCE

    project = make_project(tmp_path, title)
    pushed = push_sentences(ls, project, synthetic_sentences(2, title.split()[0]))
    first, second = sorted(t.id for t in ls.client().tasks.list(project=pushed.project_id))
    result = [{"from_name": STANCE, "to_name": "sentence", "type": "choices", "value": {"choices": ["neutral"]}}]
    made = [ls.client().annotations.create(id=first, result=result).id for _ in range(3)]
    return project, first, second, made


def test_an_annotation_id_that_is_not_an_integer_is_one_line_naming_the_task(ls, tmp_path):
    """On main: a traceback (TypeError: '<' between str and int) while sorting the task's annotations."""
    from .proxy import FailingProxy

    _, first, _, made = _three_annotations(ls, tmp_path, "stringid pull")

    def change(tasks):
        for task in tasks:
            if task["id"] == first:
                task["annotations"][1]["id"] = str(task["annotations"][1]["id"])
        return tasks

    with FailingProxy(ls.url, lambda m, p, c: False, rewrite=_export_rewritten(change)) as proxy:
        result = run_cli("pull", env={**cli_env(ls), "LABEL_STUDIO_URL": proxy.url}, cwd=tmp_path)
        assert proxy.rewritten == 1
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    error = result.stderr.splitlines()[-1]  # after the note that the first pull made a pseudonym key
    assert error.startswith("error: ") and result.stderr.count("error") == 1
    assert f"task {first}" in error and "annotations[].id" in error and any(f"'{m}'" in error for m in made)
    assert not (tmp_path / "annotations" / "snapshot.jsonl").exists()  # no snapshot written


def test_a_task_twice_in_the_export_is_reported_as_a_duplicate_with_all_its_annotations(ls, tmp_path):
    """On main: the copy read last replaced the first (annotations lost), and the task was counted among
    the tasks without annotations."""
    from builder.jsonio import read_jsonl

    from .proxy import FailingProxy

    _, first, second, made = _three_annotations(ls, tmp_path, "duplicate pull")

    def change(tasks):
        [task] = [t for t in tasks if t["id"] == first]
        annotations = task["annotations"]
        copies = [{**task, "annotations": a} for a in (annotations[:2], annotations[2:], [])]
        return [t for t in tasks if t["id"] != first] + copies  # three copies: two annotations, one, none

    with FailingProxy(ls.url, lambda m, p, c: False, rewrite=_export_rewritten(change)) as proxy:
        result = run_cli("pull", env={**cli_env(ls), "LABEL_STUDIO_URL": proxy.url}, cwd=tmp_path)
        assert proxy.rewritten == 1
    assert result.returncode == 0, result.stderr
    assert "fetched 2 tasks, 1 without annotations left out" in result.stdout  # the second task, not the copies
    assert f"more than once (tasks {first})" in result.stderr
    [pulled] = list(read_jsonl(tmp_path / "annotations" / "snapshot.jsonl"))
    assert pulled["task_id"] == first and [a["id"] for a in pulled["annotations"]] == sorted(made)
