"""Pre-annotation effort: the model `builder train` makes against the gazetteer, on real news.

Entities: the 24 GUM news articles of ../shared/corpora/gum_news.jsonl (gold sentences; GUM's named
persons, organisations and places as PER/ORG/LOC, mapped as examples/make_sample.py maps them). The
articles are dealt into FOLDS groups by a hash of their id; each group is predicted by a model trained
on the others (never on its own articles), so every article is evaluated once. Per predictor, on the
pooled held-out sentences, exact span and label:

- precision and recall of the proposals sent to annotators (the model: only those above its thresholds);
- actions: labelling from nothing takes one per gold span; with proposals, one per wrong proposal
  (deleted or relabelled) plus one per gold span not proposed; saved = 1 - actions / gold spans.

Stance: ../shared/corpora/claim_stance.jsonl within topic (claims of every topic on both sides, dealt by
a hash of the claim id, a quarter held out): accuracy where a suggestion is shown, the share of held-out
claims it is shown on, and the accuracy of the best guess on all of them.

Speed: `fit_model` (dev folds, thresholds, the final fit) on 1,000 labelled sentences (GUM news sentences, cycled,
each with the stance and target of one claim) and predictions per second (`predict`, `uncertainties`).

Goals (issue 14): saved >= 25% with proposals right >= 80%; the gazetteer saves < 10%; stance right
>= 80% where shown; train <= 30 s on 1,000 sentences; >= 1,000 sentences/s.

    python bench/bench_preannotate.py [--folds 4]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
LABELS = ["PER", "ORG", "LOC"]


def _make_sample():
    spec = importlib.util.spec_from_file_location("make_sample", ROOT / "examples" / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gum_sentences() -> list:
    """Example per gold sentence of every GUM news article, with its gold named-entity spans."""
    from builder.learn.train import Example

    sample = _make_sample()
    examples = []
    for line in (CORPORA / "gum_news.jsonl").read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        spans = [(s["start"], s["end"], s["label"]) for s in sample.named_spans(doc)]
        for index, (s_start, s_end) in enumerate(doc["sentences"]):
            text = doc["text"][s_start:s_end]
            inside = [
                {"start": a - s_start, "end": b - s_start, "label": label}
                for a, b, label in spans
                if a >= s_start and b <= s_end
            ]
            examples.append(Example(f"{doc['doc_id']}:{index}", doc["doc_id"], text, tuple(inside)))
    return examples


def fold_of(key: str, folds: int) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % folds


def score_proposals(gold: set, proposed: set, counts: Counter) -> None:
    counts.update(gold=len(gold), proposed=len(proposed), right=len(gold & proposed))


def summary(counts: Counter) -> str:
    right, proposed, gold = counts["right"], counts["proposed"], counts["gold"]
    actions = (proposed - right) + (gold - right)
    precision = right / proposed if proposed else 0.0
    return (
        f"precision {precision:.2f}  recall {right / gold:.2f}  proposed {proposed}  right {right}  "
        f"gold {gold}  actions {actions}  saved {1 - actions / gold:+.1%}"
    )


def entities(folds: int) -> tuple[list, list]:
    from builder.learn.model import load_model
    from builder.learn.train import fit_model
    from builder.preannotate import GazetteerPredictor

    examples = gum_sentences()
    articles = sorted({e.article_id for e in examples})
    ours, unthresholded, gazetteer = Counter(), Counter(), Counter()
    held_out_texts = []
    for fold in range(folds):
        test_ids = {a for a in articles if fold_of(a, folds) == fold}
        train = [e for e in examples if e.article_id not in test_ids]
        test = [e for e in examples if e.article_id in test_ids]
        with tempfile.TemporaryDirectory() as folder:
            fit_model(train, Path(folder), entity_labels=LABELS)
            model = load_model(folder)
            votes: dict[str, Counter] = {}
            for e in train:
                for s in e.entities:
                    votes.setdefault(e.text[s["start"] : s["end"]].strip(), Counter())[s["label"]] += 1
            gaz = GazetteerPredictor(
                {surface: c.most_common(1)[0][0] for surface, c in votes.items() if len(surface) >= 2}
            )
            for e in test:
                gold = {(s["start"], s["end"], s["label"]) for s in e.entities}
                found = {
                    (r["value"]["start"], r["value"]["end"], r["value"]["labels"][0])
                    for r in model.predict(e.text)
                    if r["type"] == "labels"
                }
                score_proposals(gold, found, ours)
                every = {(s, t, label) for s, t, label, _ in model.entity_spans(e.text)[0]}
                score_proposals(gold, every, unthresholded)
                g = {(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in gaz.predict(e.text)}
                score_proposals(gold, g, gazetteer)
                held_out_texts.append(e.text)
    print(f"entities: GUM news, {len(articles)} articles, {len(examples)} sentences, {folds} folds by article")
    print(f"  model (confident proposals): {summary(ours)}")
    print(f"  model (every span found):    {summary(unthresholded)}")
    print(f"  gazetteer:                   {summary(gazetteer)}")
    return examples, held_out_texts


def claims() -> list:
    from builder.learn.train import Example

    rows = [json.loads(line) for line in (CORPORA / "claim_stance.jsonl").read_text(encoding="utf-8").splitlines()]
    return [Example(r["id"], r["id"], r["text"], (), r["stance"].lower(), r["topic_target"]) for r in rows]


def stance() -> None:
    from builder.learn.model import load_model
    from builder.learn.train import fit_model

    examples = claims()
    test = [e for e in examples if fold_of(e.id, 4) == 0]
    train = [e for e in examples if fold_of(e.id, 4) != 0]
    with tempfile.TemporaryDirectory() as folder:
        fit_model(train, Path(folder), entity_labels=[])
        model = load_model(folder)
        shown = right = best = 0
        for e in test:
            items = [r for r in model.predict(e.text, target=e.target) if r["type"] == "choices"]
            if items:
                shown += 1
                right += items[0]["value"]["choices"][0] == e.stance
            probabilities = model.stance_probabilities(e.text, e.target)
            best += max(probabilities, key=probabilities.get) == e.stance
        threshold = model.thresholds["stance"]
    print(
        f"stance: claim_stance within topic, train {len(train)}, held out {len(test)}: threshold {threshold}, "
        f"right where shown {right / shown if shown else 0:.2f} ({right}/{shown}), "
        f"shown on {shown / len(test):.1%}; best guess on all {best / len(test):.2f}"
    )


def speed(gum: list, texts: list) -> None:
    from builder.learn.model import load_model
    from builder.learn.train import Example, fit_model

    stances = claims()
    thousand = []
    for i in range(1000):
        e, claim = gum[i % len(gum)], stances[i]
        thousand.append(
            Example(f"{e.id}/{i}", f"{e.article_id}/{i // len(gum)}", e.text, e.entities, claim.stance, claim.target)
        )
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        fit_model(thousand, Path(folder), entity_labels=LABELS)
        trained = time.perf_counter() - began
        model = load_model(folder)
        began = time.perf_counter()
        for text in texts:
            model.predict(text)
        predict = len(texts) / (time.perf_counter() - began)
        began = time.perf_counter()
        model.uncertainties(texts)
        uncertain = len(texts) / (time.perf_counter() - began)
    print(
        f"speed: train {trained:.1f} s on 1,000 sentences (dev folds + final fit); "
        f"predict {predict:,.0f} sentences/s, uncertainties {uncertain:,.0f} sentences/s ({len(texts)} sentences)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()
    gum, texts = entities(args.folds)
    stance()
    speed(gum, texts)


if __name__ == "__main__":
    main()
