"""`builder pull` notices what annotators changed in what they label against (real Label Studio, never mocked).

In Label Studio Community any account may edit the labeling config, the project's settings, a task's data
and another account's annotation. Each kind of change makes `pull` refuse in one line, writing nothing;
`--accept-changes` pulls anyway and the same change is not reported again; ordinary work never trips it.
"""

from __future__ import annotations

import json
import time

from builder.jsonio import read_jsonl
from builder.labelstudio.push import push_sentences
from builder.labelstudio.users import annotator_connection
from builder.pseudonyms import Pseudonymizer, load_key

from .conftest import cli_env, make_project, run_cli
from .test_labelstudio import annotate, synthetic_sentences

PASSWORD = "drift-pass-1"


def _patch(connection, path: str, body: dict) -> None:
    response = connection.http().request(
        path, method="PATCH", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text


def _get(connection, path: str) -> dict:
    return connection.http().request(path, method="GET").json()


class Setup:
    """A pushed project, one annotation by alice, and a first pull; bob is the curious annotator."""

    def __init__(self, ls, tmp_path, tag: str) -> None:
        self.ls, self.root = ls, tmp_path
        self.project = make_project(tmp_path, f"drift: {tag}")
        self.alice_email, self.bob_email = f"alice.{tag}@example.org", f"bob.{tag}@example.org"
        pushed = push_sentences(ls, self.project, synthetic_sentences(3, f"d{tag}"))
        self.project_id = pushed.project_id
        self.tasks = sorted(t.id for t in ls.client().tasks.list(project=self.project_id))
        self.alice = annotator_connection(ls, self.alice_email, PASSWORD)
        self.bob = annotator_connection(ls, self.bob_email, PASSWORD)
        self.alices = annotate(self.alice, self.tasks[0], [], "favor", 2.0)
        first = self.pull()
        assert first.returncode == 0, first.stderr
        self.snapshot = tmp_path / "annotations" / "snapshot.jsonl"
        self.state = tmp_path / ".builder" / "pull-state.json"
        self.name = Pseudonymizer(load_key(tmp_path), self.project.name)

    def pull(self, *args):
        result = run_cli("pull", *args, env=cli_env(self.ls), cwd=self.root)
        for secret in (self.alice_email, self.bob_email, self.ls.api_key, PASSWORD):
            assert secret not in result.stdout + result.stderr
        return result

    def refused(self, *expected: str) -> str:
        """Both a full and an incremental pull refuse in one line naming `expected`, writing nothing;
        then --accept-changes pulls, says what it accepted, and the next pull passes."""
        before = self.snapshot.read_bytes(), self.state.read_bytes()
        for args in ((), ("--since-last",)):
            refused = self.pull(*args)
            assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
            [line] = refused.stderr.strip().splitlines()
            assert "pull refused, nothing written" in line and "--accept-changes" in line, line
            for phrase in expected:
                assert phrase in line, line
            assert (self.snapshot.read_bytes(), self.state.read_bytes()) == before
        accepted = self.pull("--since-last", "--accept-changes")
        assert accepted.returncode == 0, accepted.stderr
        assert "pull: accepted 1 change(s) made in Label Studio" in accepted.stderr
        for phrase in expected:
            assert phrase in accepted.stderr
        again = self.pull()
        assert again.returncode == 0 and "accepted" not in again.stderr, again.stderr
        return line


def test_ordinary_work_never_trips_the_check(ls, tmp_path):
    """An annotator editing their own annotation, a second annotator, the maintainer starring ground truth,
    builder's own predictions and re-pushes, and builder.toml edited but not pushed yet: every pull passes."""
    s = Setup(ls, tmp_path, "ordinary")
    time.sleep(1.1)
    s.alice.client().annotations.update(
        id=s.alices.id,
        result=[{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": ["against"]}}],
    )
    annotate(s.bob, s.tasks[0], [], "favor", 1.0)
    ls.client().annotations.update(id=s.alices.id, ground_truth=True)  # builder's own account adjudicates
    push_sentences(ls, s.project, synthetic_sentences(5, "dordinary"))  # re-push: settings set again, two new tasks
    for args in (("--since-last",), ()):
        result = s.pull(*args)
        assert result.returncode == 0 and "refused" not in result.stderr and "accepted" not in result.stderr
    toml = tmp_path / "builder.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace("annotators_per_sentence = 2", "annotators_per_sentence = 3")
    )
    assert s.pull().returncode == 0  # builder.toml edited, not pushed: Label Studio still has what builder pushed
    assert len(list(read_jsonl(s.snapshot))) == 1


def test_an_edited_labeling_config_stops_the_pull(ls, tmp_path):
    s = Setup(ls, tmp_path, "config")
    config = _get(s.bob, f"api/projects/{s.project_id}")["label_config"]
    at = config.rindex("</View>")
    _patch(s.bob, f"api/projects/{s.project_id}", {"label_config": config[:at] + '<Header value="x"/>' + config[at:]})
    s.refused("the labeling config", "Label Studio records no author")


def test_edited_instructions_or_settings_stop_the_pull(ls, tmp_path):
    s = Setup(ls, tmp_path, "settings")
    _patch(s.bob, f"api/projects/{s.project_id}", {"expert_instruction": "<p>label everything favor</p>"})
    s.refused("the instructions")
    _patch(s.bob, f"api/projects/{s.project_id}", {"show_skip_button": False, "maximum_annotations": 1})
    s.refused("setting maximum_annotations", "setting show_skip_button")


def test_edited_task_data_stops_the_pull(ls, tmp_path):
    s = Setup(ls, tmp_path, "data")
    time.sleep(1.1)
    task = _get(s.bob, f"api/tasks/{s.tasks[1]}")
    sentence_id = task["data"]["sentence_id"]
    _patch(s.bob, f"api/tasks/{s.tasks[1]}", {"data": {**task["data"], "text": "Something else entirely."}})
    s.refused(f"task {s.tasks[1]}'s data (sentence {sentence_id}: text;")


def test_an_annotation_edited_by_another_annotator_stops_the_pull_naming_both_pseudonyms(ls, tmp_path):
    s = Setup(ls, tmp_path, "edit")
    time.sleep(1.1)
    result = [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": ["against"]}}]
    _patch(s.bob, f"api/annotations/{s.alices.id}/", {"result": result})
    line = s.refused(
        f"annotation {s.alices.id} on task {s.tasks[0]} (by {s.name(s.alice_email)}) edited by {s.name(s.bob_email)}"
    )
    assert "@" not in line
    [task] = list(read_jsonl(s.snapshot))
    assert task["annotations"][0]["result"] == result  # accepted: pulled as it now is
