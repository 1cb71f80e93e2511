"""builder.learn.unlabelled: word clusters and self-training from the unlabelled sentences (issue 29)."""

from __future__ import annotations

import dataclasses
import json
import random

from builder.learn.features import token_features
from builder.learn.train import SETTINGS, fit_model
from builder.learn.trained import load_model
from builder.learn.unlabelled import PSEUDO, self_trained, self_training_sample, word_clusters

from .test_learn import files_of, synthetic

LABELS = ["PER", "LOC", "ORG"]


def sentences(n: int = 600, seed: int = 0) -> list[str]:
    """Sentences in which words of one kind (people, places, verbs, nouns) stand in the same places."""
    rng = random.Random(seed)
    people = [f"Person{i}" for i in range(40)]
    places = [f"Place{i}" for i in range(40)]
    verbs = [f"verb{i}" for i in range(30)]
    nouns = [f"noun{i}" for i in range(30)]
    out = []
    for _ in range(n):
        p, q, place = rng.choice(people), rng.choice(people), rng.choice(places)
        out.append(
            rng.choice(
                (
                    f"{p} {rng.choice(verbs)} the {rng.choice(nouns)} in {place} .",
                    f"In {place} , {p} {rng.choice(verbs)} {q} .",
                    f"The {rng.choice(nouns)} of {place} {rng.choice(verbs)} a {rng.choice(nouns)} .",
                )
            )
        )
    return out


def test_word_clusters_are_the_same_for_the_same_sentences_and_coarse_ones_hold_whole_fine_ones():
    texts = sentences()
    settings = {"word_clusters": [2, 4, 16]}
    clusters = word_clusters(texts, settings, 0)
    assert clusters == word_clusters(list(texts), dict(settings), 0)
    assert json.dumps(clusters, sort_keys=True) == json.dumps(word_clusters(texts, settings, 0), sort_keys=True)
    assert all(len(ids) == 3 for ids in clusters.values()) and {"Person3", "Place7", "the"} <= set(clusters)
    for level in (0, 1):  # each fine cluster lies inside one cluster of each coarser granularity
        above: dict[int, set[int]] = {}
        for ids in clusters.values():
            above.setdefault(ids[2], set()).add(ids[level])
        assert all(len(coarse) == 1 for coarse in above.values())
    people = {tuple(clusters[f"Person{i}"][:2]) for i in range(40) if f"Person{i}" in clusters}
    places = {tuple(clusters[f"Place{i}"][:2]) for i in range(40) if f"Place{i}" in clusters}
    assert len(people) == 1 and len(places) == 1 and people != places  # words of one kind together
    assert word_clusters(texts, {"word_clusters": []}, 0) == {}
    assert word_clusters(texts[:3], settings, 0) == {}  # too few words to cluster
    assert "Rare" not in word_clusters([*texts, "Rare words stand here ."], settings, 0)  # fewer than MIN_COUNT


def test_a_capitalised_token_reads_its_clusters_and_its_neighbours_coarsest_one():
    words = ["Kim", "visited", "Seoul", "."]
    clusters = {"Kim": [1, 5, 9], "Seoul": [2, 6, 10], "visited": [0, 3, 7], ".": [4, 8, 11]}
    rows = token_features(words, [None] * 4, frozenset(), False, clusters=clusters)
    assert {"c0=1", "c1=5", "c2=9", "+1c0=0"} <= set(rows[0]) and not {"+1c1=3", "+1c2=7"} & set(rows[0])
    assert {"c0=2", "c1=6", "c2=10", "-1c0=0", "+1c0=4"} <= set(rows[2])
    clustered = ("c0=", "c1=", "c2=", "-1c0=", "+1c0=")
    assert not any(f.startswith(clustered) for f in rows[1] + rows[3])  # lower case and punctuation: none
    plain = token_features(words, [None] * 4, frozenset(), False)
    assert plain == token_features(words, [None] * 4, frozenset(), False, clusters={})
    assert [[f for f in row if not f.startswith(clustered)] for row in rows] == plain


def test_a_model_with_clusters_is_byte_identical_from_run_to_run_and_keeps_them_for_prediction(tmp_path):
    examples, unlabelled = synthetic(12), tuple(sentences(400, seed=1))
    settings = {"word_clusters": [2, 4, 16]}
    folders = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        fit_model(examples, tmp_path / name, entity_labels=LABELS, settings=settings, unlabelled=unlabelled)
        folders.append(tmp_path / name)
    assert files_of(folders[0]) == files_of(folders[1])
    memory = json.loads((folders[0] / "memory.json").read_text())
    assert memory["clusters"] == word_clusters([e.text for e in examples] + list(unlabelled), settings, 0)
    model = load_model(folders[0])
    assert model.clusters == memory["clusters"]
    text = "Person3 verb2 the noun4 in Place7 ."
    assert model.predict(text) == load_model(folders[1]).predict(text)
    (tmp_path / "off").mkdir()
    fit_model(examples, tmp_path / "off", entity_labels=LABELS, settings={"word_clusters": []}, unlabelled=unlabelled)
    assert json.loads((tmp_path / "off" / "memory.json").read_text())["clusters"] == {}


def test_the_defaults_are_the_measured_best():
    """Word clusters were kept (bench_cross_genre); self-training was not better on the tuning genres."""
    assert SETTINGS["word_clusters"] == [16, 64, 256] and SETTINGS["self_training"] is None


def test_self_training_refits_on_the_sure_unlabelled_sentences_deterministically(tmp_path):
    examples = synthetic(12)
    unlabelled = tuple(
        f"{p} met {q} in {place} on Monday."
        for p, q, place in zip(("Nora Quist", "Elif Demir"), ("Tomas Varga", "Anna Berg"), ("Oslo", "Seoul"))
    )
    sample = self_training_sample(unlabelled * 2, 0)
    assert sorted(sample) == sorted(unlabelled) and sample == self_training_sample(unlabelled, 0)
    settings = {"word_clusters": [], "self_training": 0.5}
    folders = []
    for name in ("a", "b", "off"):
        (tmp_path / name).mkdir()
        chosen = settings if name != "off" else {**settings, "self_training": None}
        fit_model(examples, tmp_path / name, entity_labels=LABELS, settings=chosen, unlabelled=unlabelled)
        folders.append(tmp_path / name)
    assert files_of(folders[0]) == files_of(folders[1])
    memory = json.loads((folders[0] / "memory.json").read_text())
    off = json.loads((folders[2] / "memory.json").read_text())
    # the sure sentences joined the training: their names are in the refitted model's gazetteer
    surfaces = {tuple(entry[0]) for entry in memory["gazetteer"]} - {tuple(entry[0]) for entry in off["gazetteer"]}
    assert ("Nora", "Quist") in surfaces and ("Tomas", "Varga") in surfaces
    assert (folders[0] / "entities.crfsuite").read_bytes() != (folders[2] / "entities.crfsuite").read_bytes()


def test_self_training_without_a_floor_or_sentences_or_twice_leaves_the_fit_as_it_is():
    def fit(*args):
        raise AssertionError("fitted again")

    class Prepared:
        unlabelled = ("Nora Quist met Tomas Varga in Oslo on Monday.",)

    files = {"memory.json": b"{}"}
    examples = synthetic(2)
    assert self_trained(fit, files, examples, {"self_training": None}, None, 0, frozenset(), Prepared()) is files
    pseudo = dataclasses.replace(examples[0], article_id=PSEUDO + "0")
    assert (
        self_trained(fit, files, [*examples, pseudo], {"self_training": 0.9}, None, 0, frozenset(), Prepared()) is files
    )
    Prepared.unlabelled = ()
    assert self_trained(fit, files, examples, {"self_training": 0.9}, None, 0, frozenset(), Prepared()) is files
