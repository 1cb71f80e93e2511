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
