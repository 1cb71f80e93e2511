"""Stance suggestions are made only for targets the model learned (issue 29 point 4, issue 30 point 2): a
target never labelled, or labelled too rarely, gets no suggestion rather than a wrong one; `prediction_for`
(what push, predict and `--refresh-predictions` attach) passes each sentence's own target."""

from __future__ import annotations

import json
import random

from builder.learn.train import SETTINGS, Example, fit_model
from builder.learn.trained import load_model
from builder.model import prediction_for

MOTIONS = ("ban violent video games", "subsidise public transport", "abolish the monarchy")
FOR = ("strongly support", "rightly back", "welcome", "praise")
AGAINST = ("firmly oppose", "reject", "condemn", "criticise")
WHO = ("Doctors", "Parents", "Economists", "Voters", "Teachers", "Scientists")


def claims(motions, per_motion: int = 60, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for m, motion in enumerate(motions):
        for i in range(per_motion):
            stance = "favor" if i % 2 else "against"
            verb = rng.choice(FOR if stance == "favor" else AGAINST)
            text = f"{rng.choice(WHO)} {verb} the plan to {motion}, says report {i}."
            out.append(Example(f"c{m}-{i}", f"claim-{m}-{i}", text, (), stance, motion))
    return out


def test_no_stance_is_suggested_for_a_target_never_labelled(tmp_path):
    seen, unseen = MOTIONS[:2], MOTIONS[2]
    result = fit_model(claims(seen), tmp_path, entity_labels=[])
    assert result.thresholds["stance"] is not None  # it suggests stances on the motions it learned
    model = load_model(tmp_path)
    stances = json.loads((tmp_path / "stance.json").read_text())
    assert sorted(stances["targets"].values()) == [60, 60]  # labelled stances per target, as target keys
    assert model.knows_target(seen[0]) and not model.knows_target(unseen)
    text = f"Doctors strongly support the plan to {unseen}, says report 1."
    assert prediction_for(model, text, target=seen[0]) is not None  # the same words, a learned target
    assert prediction_for(model, text, target=unseen) is None  # never labelled: nothing, not a guess
    assert all(r["type"] != "choices" for r in model.predict(text, target=unseen))
    assert model.stance_probabilities(text, unseen)  # it could guess; it holds back


def test_a_target_labelled_too_rarely_gets_no_suggestion(tmp_path):
    rare = [e for e in claims(MOTIONS[2:], per_motion=SETTINGS["min_target_stances"] - 1, seed=1)]
    fit_model(claims(MOTIONS[:2]) + rare, tmp_path, entity_labels=[])
    model = load_model(tmp_path)
    assert model.knows_target(MOTIONS[0]) and not model.knows_target(MOTIONS[2])
    assert all(prediction_for(model, e.text, target=e.target) is None for e in rare)


def test_a_model_without_target_counts_still_suggests(tmp_path):
    """A model folder from before target counts (no `targets` in stance.json) suggests as it did."""
    fit_model(claims(MOTIONS[:2]), tmp_path, entity_labels=[])
    model = load_model(tmp_path)
    model.stance.targets = None
    assert model.knows_target(MOTIONS[2])


def test_train_says_what_it_learned_from_and_where_it_will_be_weak(tmp_path):
    """Issue 29 point 5: labelled sentences, unlabelled ones, labels per class, and the weak classes."""
    from builder.learn.train import WEAK_EXAMPLES, explain

    labelled = claims(MOTIONS[:2]) + claims(MOTIONS[2:], per_motion=4, seed=2)
    spans = ({"start": 0, "end": 7, "label": "PER"},)
    labelled[0] = Example(labelled[0].id, labelled[0].article_id, "Doctors say so.", spans, "against", MOTIONS[0])
    result = fit_model(labelled, tmp_path, entity_labels=["PER", "ORG"], unlabelled=("One more.", "And another."))
    training = result.manifest["training"]
    assert training["spans_per_label"] == {"PER": 1, "ORG": 0}
    assert training["sentences_per_stance"] == {"against": 62, "favor": 62}
    assert training["stance_targets"] == 3 and training["stance_targets_too_few"] == 1
    assert training["unlabelled_sentences"] == 2
    lines = explain(result.manifest)
    assert lines[0] == "learned from: 124 labelled sentences in 120 articles, 2 unlabelled sentences"
    assert lines[1] == "  spans: PER 1, ORG 0" and lines[2] == "  stance: against 62, favor 62 over 3 targets"
    weak = [line for line in lines if line.startswith("  weak: ")]
    assert f"fewer than {WEAK_EXAMPLES} labelled examples: PER spans (1), ORG spans (0)" in weak[0]
    assert weak[1].startswith("  weak: 1 targets have fewer than 10 labelled stances: no stance is suggested")


def test_builder_train_learns_words_from_the_unlabelled_sentences_of_a_sentences_file(tmp_path, monkeypatch):
    """`builder train --unlabelled FILE`: the file's sentences neither labelled nor set aside are counted and
    their lower-case words join the model's memory (issue 29 point 3)."""
    from click.testing import CliRunner

    from builder.cli import cli

    from .conftest import ROOT, make_project

    root = tmp_path / "project"
    make_project(root, "train unlabelled", snapshot=ROOT / "annotations" / "snapshot.jsonl")
    labelled_id = json.loads((ROOT / "annotations" / "snapshot.jsonl").read_text().splitlines()[0])["data"]
    sentences = [
        {"id": labelled_id["sentence_id"], "article_id": "a", "text": labelled_id["text"]},
        {"id": "new-1", "article_id": "b", "text": "The zyxwvut was grand and quixotically cheap."},
        {"id": "new-2", "article_id": "b", "text": "Photo: somebody", "set_aside": "credit"},
        {"id": "new-3", "article_id": "b", "text": "Another plain sentence here."},
    ]
    (root / "sentences.jsonl").write_text("".join(json.dumps(s) + "\n" for s in sentences))
    monkeypatch.chdir(root)
    monkeypatch.delenv("BUILDER_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["train", "-o", "model", "--unlabelled", "sentences.jsonl"])
    assert result.exit_code == 0, result.output
    assert ", 2 unlabelled sentences" in result.stdout.splitlines()[0], result.stdout
    memory = json.loads((root / "model" / "memory.json").read_text())
    assert "zyxwvut" in memory["lower_words"] and "quixotically" in memory["lower_words"]
    assert json.loads((root / "model" / "manifest.json").read_text())["training"]["unlabelled_sentences"] == 2


def test_push_asks_with_each_sentences_own_target(tmp_path):
    """`builder push` makes each task with `task_for`: a sentence whose article's target the model never
    learned gets no stance suggestion; one whose target it learned does (the same words)."""
    from builder.labelstudio.push import task_for
    from builder.project import load_project

    from .conftest import make_project

    make_project(tmp_path / "project", "targets")
    project = load_project(tmp_path / "project" / "builder.toml")
    (tmp_path / "model").mkdir()
    fit_model(claims(MOTIONS[:2]), tmp_path / "model", entity_labels=[])
    model = load_model(tmp_path / "model")
    text = f"Doctors strongly support the plan to {MOTIONS[0]}, says report 1."
    sentence = {"id": "s1", "article_id": "a1", "sentence_index": 0, "text": text}

    def stances(target: str) -> list:
        task = task_for({**sentence, "target": target}, project, model)
        assert task["data"]["target"] == target
        return [r for p in task.get("predictions", []) for r in p["result"] if r["type"] == "choices"]

    assert stances(MOTIONS[0])  # a learned target: suggested
    assert stances(MOTIONS[2]) == []  # never labelled: nothing
