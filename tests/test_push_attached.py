"""Issue 27 point 6: `builder push` says what it attached. Tasks with proposals, entity spans proposed and
stance suggestions, counted from what reached the real Label Studio; and, for a kind attached to no task,
why: an empty gazetteer on a first push, no model trained yet, a model that could promise nothing of a kind
(`metrics.promised`), the control arm, `--predictor none`."""

from __future__ import annotations

import json
import re

from builder.learn.train import train_model
from builder.learn.trained import load_model
from builder.records.steering import withheld

from .conftest import ROOT, cli_env, make_project, run_cli
from .test_predict import listed, sentences

SNAPSHOT = ROOT / "annotations" / "snapshot.jsonl"
COUNTS = re.compile(
    r"push: pre-annotations.*?: (\d+) of (\d+) new tasks with proposals, (\d+) entity spans proposed, "
    r"(\d+) stance suggestions"
)


def pushed(ls, folder, stream, *args):
    path = folder / "sentences.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in stream), encoding="utf-8")
    done = run_cli("push", path, *args, env=cli_env(ls), cwd=folder)
    assert done.returncode == 0, done.stderr
    project_id = int(done.stdout.split("(id ")[1].split(")")[0])
    return done.stdout, listed(ls, project_id)


def attached(tasks: list[dict]) -> tuple[int, int, int]:
    """(tasks with a prediction, entity spans, stance suggestions) as Label Studio holds them."""
    items = [item for task in tasks for prediction in task["predictions"] for item in prediction["result"]]
    return (
        sum(1 for task in tasks if task["predictions"]),
        sum(1 for item in items if item["type"] == "labels"),
        sum(1 for item in items if item["type"] == "choices"),
    )


def counts(stdout: str) -> tuple[int, ...]:
    [found] = COUNTS.findall(stdout)
    return tuple(map(int, found))


def test_a_first_push_says_why_nothing_was_attached(ls, tmp_path):
    """No snapshot yet: the gazetteer is empty and no model is trained: 0 everywhere, and the reasons."""
    make_project(tmp_path, "attached: first push")
    stdout, tasks = pushed(ls, tmp_path, sentences(8, prefix="first"))
    assert attached(tasks) == (0, 0, 0)
    assert counts(stdout) == (0, 8, 0, 0)
    assert "push: no entity spans proposed: the gazetteer is empty" in stdout
    assert "push: no stance suggested: the gazetteer proposes entity spans only; no model trained yet" in stdout


def test_counts_are_what_label_studio_holds_and_the_control_arm_is_named(ls, tmp_path):
    """The gazetteer of the sample's annotations (Moscow, Pyongyang...), a control arm of about a third."""
    make_project(tmp_path, "attached: gazetteer", snapshot=SNAPSHOT, holdout=0.3)
    stdout, tasks = pushed(ls, tmp_path, sentences(30, prefix="gaz"))
    with_predictions, spans, stances = attached(tasks)
    assert with_predictions > 0 and spans >= with_predictions and stances == 0
    assert counts(stdout) == (with_predictions, 30, spans, 0)
    withheld = sum(1 for t in tasks if t["data"].get("suggestion_arm") == "withheld")
    assert withheld and with_predictions == 30 - withheld  # every sentence names a known place
    assert f"push: {withheld} tasks imported without a suggestion: the control arm" in stdout
    assert "push: no stance suggested: the gazetteer proposes entity spans only" in stdout
    assert "no entity spans proposed" not in stdout

    again, _ = pushed(ls, tmp_path, sentences(30, prefix="gaz"))
    assert "push: pre-annotations: no new task, nothing attached" in again


def test_predictor_none_and_an_all_withheld_push_say_so(ls, tmp_path):
    make_project(tmp_path / "none", "attached: none", snapshot=SNAPSHOT)
    stdout, tasks = pushed(ls, tmp_path / "none", sentences(5, prefix="none"), "--predictor", "none")
    assert attached(tasks) == (0, 0, 0) and counts(stdout) == (0, 5, 0, 0)
    assert "push: no entity spans proposed: --predictor none" in stdout
    assert "push: no stance suggested: --predictor none" in stdout

    project = make_project(tmp_path / "arm", "attached: all withheld", snapshot=SNAPSHOT, holdout=0.5)
    in_the_arm = [s for s in sentences(40, prefix="arm") if withheld(s["id"], 0.5, project.name)][:5]
    stdout, tasks = pushed(ls, tmp_path / "arm", in_the_arm)
    assert len(in_the_arm) == 5 and attached(tasks) == (0, 0, 0)
    assert "push: no entity spans proposed: every new task is in the control arm (5 withheld)" in stdout


def test_a_model_that_promises_no_kind_says_which_and_why(ls, tmp_path):
    """Trained on the 65-sentence sample, the model cannot promise a precision for at least one kind
    (`metrics.promised` null): push names the kind and the training's note on it."""
    project = make_project(tmp_path, "attached: model", snapshot=SNAPSHOT)
    trained = train_model(project, project.snapshot_path, tmp_path / "model", seed=0)
    model = load_model(getattr(trained, "folder", tmp_path / "model"))
    promised = model.manifest["metrics"]["promised"]
    notes = model.manifest["metrics"]["threshold_notes"]
    assert None in (promised["span"], promised["stance"])  # what this test is about
    stdout, tasks = pushed(ls, tmp_path, sentences(10, prefix="model"), "--predictor", f"model:{tmp_path / 'model'}")
    with_predictions, spans, stances = attached(tasks)
    assert counts(stdout) == (with_predictions, 10, spans, stances)
    if promised["span"] is None:
        assert (
            spans == 0
            and f"push: no entity spans proposed: the model promises no entity spans ({notes['span']})" in stdout
        )
    if promised["stance"] is None:
        assert stances == 0 and f"push: no stance suggested: the model promises no stance ({notes['stance']})" in stdout
