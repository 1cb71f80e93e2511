"""The control arm (`[annotation] suggestion_holdout`): a seeded share of the pushed tasks get no suggestion, and
`builder quality` and the card compare the two arms. Offline: the assignment, the config key, the push's tasks,
the report on a made-up snapshot, the card. On the real Label Studio: push with a model and a holdout share,
`builder predict` after a retrain, annotations through the API (some accepting the suggestion unchanged),
`builder pull`, `builder quality` and `builder build`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.errors import ConfigError
from builder.labelstudio.predictions import refresh_predictions
from builder.labelstudio.push import push_sentences, task_for
from builder.model import ENTITIES, STANCE
from builder.project import load_project
from builder.records.steering import (
    ARM_FIELD,
    SHOWN,
    WITHHELD,
    record_withheld,
    steering_lines,
    steering_summary,
    withheld,
    withheld_path,
)
from tests.conftest import ROOT, cli_env, make_project, run_cli
from tests.test_predict import (  # noqa: F401 (models: a fixture)
    SNAPSHOT,
    StandInModel,
    listed,
    models,
    read_with_articles,
    sentences,
)

PSEUDONYMS = ("annotator-00000001", "annotator-00000002")


# --- offline ------------------------------------------------------------------------------------------


def test_the_arm_is_a_seeded_hash_of_the_sentence_id_stable_and_near_its_share():
    ids = [f"s{i:05d}" for i in range(5000)]
    held = [sid for sid in ids if withheld(sid, 0.1, "news")]
    assert 400 < len(held) < 600  # about a tenth
    assert held == [sid for sid in reversed(ids) if withheld(sid, 0.1, "news")][::-1]  # order does not matter
    assert set(held) <= {sid for sid in ids if withheld(sid, 0.2, "news")}  # a larger share only adds tasks
    assert held != [sid for sid in ids if withheld(sid, 0.1, "other-dataset")]  # salted with the dataset name
    assert not any(withheld(sid, 0.0, "news") for sid in ids)


def test_the_config_key_defaults_to_a_tenth_and_is_checked(tmp_path):
    assert load_project(ROOT / "builder.toml").suggestion_holdout == 0.1
    assert make_project(tmp_path / "off", "Holdout off").suggestion_holdout == 0.0
    assert make_project(tmp_path / "on", "Holdout on", holdout=0.25).suggestion_holdout == 0.25
    text = (tmp_path / "on" / "builder.toml").read_text(encoding="utf-8")
    (tmp_path / "on" / "builder.toml").write_text(text.replace("= 0.25", "= 0.7"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path / "on" / "builder.toml")
    assert str(caught.value) == (
        f"{tmp_path / 'on' / 'builder.toml'}: annotation.suggestion_holdout: 0.7 is greater than the maximum of 0.5"
    )


def test_a_withheld_task_is_pushed_without_its_suggestion_and_says_its_arm(tmp_path):
    project = make_project(tmp_path, "Arms", holdout=0.3)
    model = StandInModel("1")
    tasks = [task_for(s, project, model) for s in sentences(60)]
    arms = [t["data"][ARM_FIELD] for t in tasks]
    assert set(arms) == {SHOWN, WITHHELD} and 8 <= arms.count(WITHHELD) <= 30
    for task in tasks:
        assert task["data"][ARM_FIELD] == (
            WITHHELD if withheld(task["data"]["sentence_id"], 0.3, project.name) else SHOWN
        )
        assert bool(task.get("predictions")) == (task["data"][ARM_FIELD] == SHOWN)  # the stand-in proposes on each
    assert all(ARM_FIELD not in task_for(s, project, None)["data"] for s in sentences(5))  # no suggestions: no arms
    off = make_project(tmp_path / "off", "Holdout off")
    assert all(ARM_FIELD not in t["data"] and t["predictions"] for t in (task_for(s, off, model) for s in sentences(5)))


def stance_item(label: str) -> dict:
    return {"from_name": STANCE, "to_name": "sentence", "type": "choices", "value": {"choices": [label]}}


def span_item(start: int, end: int, label: str) -> dict:
    return {"from_name": ENTITIES, "to_name": "sentence", "type": "labels",
            "value": {"start": start, "end": end, "labels": [label]}}  # fmt: skip


def made_up_snapshot(path: Path, per_arm: int, steered: bool) -> Path:
    """`per_arm` tasks in each arm, two answers each. Suggested tasks suggest "favor" and a span; with `steered`
    both annotators take the suggestion (stance and span) on every suggested task, while the control arm answers
    like an unsteered crowd (mostly neutral)."""
    tasks = []
    for n in range(2 * per_arm):
        arm = SHOWN if n % 2 == 0 else WITHHELD
        data = {"sentence_id": f"s{n:04d}", "article_id": f"a{n // 10}", "sentence_index": n % 10,
                "text": "Moscow welcomed Kim.", ARM_FIELD: arm}  # fmt: skip
        predictions = []
        if arm == SHOWN:
            predictions = [{"model_version": "builder-crf/2+x", "score": 0.9,
                            "result": [stance_item("favor"), span_item(0, 6, "LOC")]}]  # fmt: skip
        annotations = []
        for k, who in enumerate(PSEUDONYMS):
            if arm == SHOWN and (steered or (n + k) % 3 == 0):
                result = [stance_item("favor"), span_item(0, 6, "LOC")]
            else:
                result = [stance_item(("neutral", "against", "favor", "neutral")[(n + k) % 4])]
            annotations.append({"id": 2 * n + k, "annotator": who, "result": result, "was_cancelled": False,
                                "ground_truth": False, "lead_time": 3.0})  # fmt: skip
        tasks.append({"task_id": n + 1, "data": data, "annotations": annotations, "predictions": predictions})
    path.write_text("".join(json.dumps(t, sort_keys=True) + "\n" for t in tasks), encoding="utf-8")
    return path


def test_the_report_compares_the_arms_and_says_when_it_cannot_tell(tmp_path):
    project = make_project(tmp_path / "p", "Report", holdout=0.5)
    steered = steering_summary(made_up_snapshot(tmp_path / "steered.jsonl", 60, True), project, {})
    shown, held = steered["arms"][SHOWN], steered["arms"][WITHHELD]
    assert (shown["tasks"], held["tasks"], shown["answers"], held["answers"]) == (60, 60, 120, 120)
    assert shown["labels"] == {"favor": 120, "against": 0, "neutral": 0}
    assert held["labels"] == {"favor": 30, "against": 30, "neutral": 60}
    assert (shown["stance_accepted"], shown["stance_suggested"], shown["stance_accepted_rate"]) == (120, 120, 1.0)
    assert (shown["spans_accepted"], shown["spans_suggested"], shown["spans_accepted_rate"]) == (120, 120, 1.0)
    assert held["stance_suggested"] == 0  # no withheld suggestion recorded: nothing to compare with
    assert steered["stance_test"] is None
    assert shown["krippendorff_alpha"] == 1.0
    assert steered["labels_test"]["verdict"] == "the arms differ" and steered["labels_test"]["p"] < 0.001
    lines = steering_lines(steered)
    assert lines[0].endswith("60 tasks with suggestions, 60 without.")
    assert "Suggestions accepted unchanged: stance 1.000 (120 of 120 answers shown a stance)" in lines[3]
    assert lines[4] == "Without suggestions: no withheld suggestion recorded to compare with."
    assert "p < 0.0001: the arms differ." in lines[5]

    # what the model would have suggested on the withheld tasks, recorded at push: the cleanest measure
    would_be = [stance_item("favor"), span_item(0, 6, "LOC")]
    rows = [
        {"sentence_id": f"s{n:04d}", "model_version": "builder-crf/2+x", "result": would_be} for n in range(1, 120, 2)
    ]
    record_withheld(project, rows)
    with withheld_path(project).open("ab") as handle:
        handle.write(b'{"sentence_id": "s0001", "resu')  # a line cut short by a crash is skipped
    steered = steering_summary(tmp_path / "steered.jsonl", project, {})
    held = steered["arms"][WITHHELD]
    assert (held["stance_accepted"], held["stance_suggested"], held["stance_accepted_rate"]) == (30, 120, 0.25)
    assert (held["spans_accepted"], held["spans_suggested"]) == (0, 120)
    assert steered["stance_test"]["verdict"] == "the arms differ"
    lines = steering_lines(steered)
    assert "Without suggestions, answers matching the withheld one: stance 0.250 (30 of 120 answers)" in lines[4]
    assert "Giving the model's stance, with against without suggestions: Fisher's exact test p < 0.0001" in lines[6]

    few = steering_summary(made_up_snapshot(tmp_path / "few.jsonl", 3, False), project, {})
    assert few["labels_test"]["verdict"].startswith("too few answers to tell")
    assert 0 < few["arms"][SHOWN]["stance_accepted_rate"] < 1
    assert steering_summary(SNAPSHOT, project, {}) is None  # no task carries an arm: nothing to compare


def test_quality_and_the_card_show_both_arms(tmp_path):
    from builder.dataset.build import build_dataset
    from builder.records.quality import quality_report

    tasks = [json.loads(line) for line in SNAPSHOT.read_text(encoding="utf-8").splitlines()]
    for task in tasks:  # the sample, as if pushed with a model and a holdout share of 0.3
        arm = WITHHELD if withheld(task["data"]["sentence_id"], 0.3, "x") else SHOWN
        task["data"][ARM_FIELD] = arm
        if arm == SHOWN:
            task["predictions"] = [
                {"model_version": "builder-crf/2+x", "score": 0.9, "result": [stance_item("neutral")]}
            ]
    snapshot = tmp_path / "snapshot.jsonl"
    snapshot.write_text("".join(json.dumps(t, sort_keys=True) + "\n" for t in tasks), encoding="utf-8")
    project = make_project(tmp_path / "p", "Card arms", snapshot=snapshot, holdout=0.3)
    result = quality_report(project)
    assert "Suggestions and the control arm:" in result.text
    assert "  with suggestions: " in result.text and "  without suggestions: " in result.text
    assert result.steering["arms"][SHOWN]["tasks"] + result.steering["arms"][WITHHELD]["tasks"] == 65
    assert (
        quality_report(project, fmt="json").text
        == quality_report(make_project(tmp_path / "q", "No arms", SNAPSHOT), fmt="json").text
    )
    facts = build_dataset(project, project.snapshot_path, tmp_path / "built")
    card = (tmp_path / "built" / "README.md").read_text(encoding="utf-8")
    assert facts.quality["suggestion_arms"] == result.steering
    assert (
        "- Suggestions withheld from a seeded share of the tasks (the control arm; suggestion_holdout is now 0.3)"
        in card
    )
    assert "- With suggestions: " in card and "- Without suggestions: " in card
    assert "- Label distribution, with against without suggestions: " in card


def recorded(folder: Path, model) -> set[str]:
    """The sentence ids annotations/withheld-suggestions.jsonl holds a would-be suggestion of `model` for."""
    lines = (folder / "annotations" / "withheld-suggestions.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["sentence_id"] for row in map(json.loads, lines) if row["model_version"] == model.model_version}


def _suggested_stance(task: dict) -> str | None:
    return next((i["value"]["choices"][0] for i in task["predictions"][0]["result"] if i["from_name"] == STANCE), None)


# --- on the real Label Studio ---------------------------------------------------------------------------


def test_the_control_arm_on_label_studio_from_push_to_card(ls, tmp_path, models):  # noqa: F811 (the fixture)
    old, new = models
    folder = tmp_path / "p"
    project = make_project(folder, "Control arm", holdout=0.3)
    pushed = push_sentences(ls, project, sentences(40), old)
    tasks = listed(ls, pushed.project_id)
    arms = {t["id"]: t["data"][ARM_FIELD] for t in tasks}
    assert pushed.withheld == list(arms.values()).count(WITHHELD) > 0 and SHOWN in arms.values()
    for task in tasks:
        expected = WITHHELD if withheld(task["data"]["sentence_id"], 0.3, project.name) else SHOWN
        assert task["data"][ARM_FIELD] == expected
        if expected == WITHHELD:
            assert task["predictions"] == []
    assert any(t["predictions"] for t in tasks if arms[t["id"]] == SHOWN)
    # what the model would have suggested there is recorded beside the snapshot, never in Label Studio
    held_out = [t for t in tasks if arms[t["id"]] == WITHHELD]
    assert recorded(folder, old) == {t["data"]["sentence_id"] for t in held_out if read_with_articles(old, tasks)[0](t)}
    # a retrain: predict refreshes the suggested tasks and leaves the control arm without any
    refreshed = refresh_predictions(ls, project, new)
    assert refreshed.withheld == pushed.withheld
    tasks = listed(ls, pushed.project_id)
    assert recorded(folder, new) == {t["data"]["sentence_id"] for t in held_out if read_with_articles(new, tasks)[0](t)}
    assert refresh_predictions(ls, project, new).withheld == pushed.withheld and len(recorded(folder, new)) == len(
        [
            line
            for line in (folder / "annotations" / "withheld-suggestions.jsonl").read_text().splitlines()
            if new.model_version in line
        ]
    )  # a re-run records nothing twice
    assert all(not t["predictions"] for t in tasks if arms[t["id"]] == WITHHELD)
    suggested = [t for t in tasks if t["predictions"]]
    assert suggested and all(t["predictions"][0]["model_version"] == new.model_version for t in suggested)
    # annotate: every other suggested task takes the suggestion as it is; the rest answer neutral, no spans
    taken = set()
    for n, task in enumerate(suggested):
        if n % 2 == 0:
            taken.add(task["id"])
    for task in tasks:
        if task["id"] in taken:
            result = [{k: item[k] for k in ("from_name", "to_name", "type", "value")}
                      for item in task["predictions"][0]["result"]]  # fmt: skip
        else:
            result = [stance_item("neutral")]
        response = ls.http().request(f"api/tasks/{task['id']}/annotations/", method="POST", json={"result": result})
        assert response.status_code == 201, response.text
    pulled = run_cli("pull", env=cli_env(ls), cwd=folder)
    assert pulled.returncode == 0, pulled.stderr
    quality = run_cli("quality", env=cli_env(ls), cwd=folder)
    assert quality.returncode == 0, quality.stderr
    assert "Suggestions and the control arm:" in quality.stdout
    shown_tasks = list(arms.values()).count(SHOWN)
    assert f"{shown_tasks} tasks with suggestions, {pushed.withheld} without." in quality.stdout
    assert "  without suggestions: " in quality.stdout and "Suggestions accepted unchanged: stance" in quality.stdout
    summary = steering_summary(folder / "annotations" / "snapshot.jsonl", load_project(folder / "builder.toml"), {})
    shown, held = summary["arms"][SHOWN], summary["arms"][WITHHELD]
    assert (shown["tasks"], held["tasks"]) == (shown_tasks, pushed.withheld)
    assert held["answers"] == held["labels"]["neutral"] == pushed.withheld
    with_stance = [t for t in suggested if any(i["from_name"] == STANCE for i in t["predictions"][0]["result"])]
    with_spans = [t for t in suggested if any(i["from_name"] == ENTITIES for i in t["predictions"][0]["result"])]
    assert shown["stance_suggested"] == len(with_stance) and shown["spans_suggested"] == len(with_spans)
    # a span suggestion taken whole is accepted unchanged; a neutral answer without spans never is
    assert shown["spans_accepted"] == sum(1 for t in with_spans if t["id"] in taken)
    neutral = [t for t in with_stance if t["id"] not in taken and _suggested_stance(t) == "neutral"]
    assert shown["stance_accepted"] == sum(1 for t in with_stance if t["id"] in taken) + len(neutral)
    built = run_cli("build", "-o", tmp_path / "built", env=cli_env(ls), cwd=folder)
    assert built.returncode == 0, built.stderr
    card = (tmp_path / "built" / "README.md").read_text(encoding="utf-8")
    assert (
        "- Suggestions withheld from a seeded share of the tasks (the control arm; suggestion_holdout is now 0.3)"
        in card
    )
    assert "- With suggestions: " in card and "- Without suggestions: " in card
