"""Pre-annotation effort: the model `builder train` makes against the gazetteer, on real news.

Entities: the 24 GUM news articles of ../shared/corpora/gum_news.jsonl (gold sentences; GUM's named
persons, organisations and places as PER/ORG/LOC, mapped as examples/make_sample.py maps them). The
articles are dealt into FOLDS groups by a hash of their id; each group is predicted by a model trained
on the others (never on its own articles), so every article is evaluated once. Per predictor, on the
pooled held-out sentences, exact span and label:

- precision and recall of the proposals sent to annotators (the model: only those above its thresholds);
- actions: labelling from nothing takes one per gold span; with proposals, one per wrong proposal
  (deleted, or relabelled when it covers a gold span's exact characters with another label) plus one per
  gold span missed (neither proposed right nor relabelled); saved = 1 - actions / gold spans. The saving
  when a relabelled span also counts as missed is printed beside it.

Stance: ../shared/corpora/claim_stance.jsonl within topic (claims of every topic on both sides, dealt by
a hash of the claim id, a quarter held out): accuracy where a suggestion is shown, the share of held-out
claims it is shown on, and the accuracy of the best guess on all of them.

Speed: `fit_model` (dev folds, thresholds, the final fit) on 1,000 labelled sentences (GUM news sentences, cycled,
each with the stance and target of one claim) and predictions per second (`predict`, `uncertainties`).

Goals (issue 14): saved >= 25% with proposals right >= 80%; the gazetteer saves < 10%; stance right
>= 80% where shown; train <= 30 s on 1,000 sentences; >= 1,000 sentences/s.

Promises (`--draws N`, issue 24): N seeded random train/test draws instead of the above. Entities: GUM news,
`--test-articles` articles drawn at random held out, the others trained on; stance: claim_stance,
`--stance-train` claims drawn at random trained on, every other claim held out (each claim is its own
article). Per draw and kind: the precision `builder train` promises for its suggestions (its 95%
interval, n, the share of dev items shown), the precision measured on the held-out part (every proposal
`predict` returns there: headline-like sentences too), the share shown there, and the gap (measured minus
promised). Goal: the mean gap within 5 points of the promise, and no draw 10 points below it. A kind
suggesting nothing in a draw promises nothing and is counted apart.

    python bench/bench_preannotate.py [--folds 4]
    python bench/bench_preannotate.py --draws 10 [--test-articles 6] [--stance-train 1000]
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
    """Counts for one sentence. A wrong proposal on a gold span's exact characters is relabelled (one action,
    and that gold span is then labelled); any other wrong one is deleted (one action, the gold span it
    overlaps, if any, still costs one)."""
    right = gold & proposed
    open_gold = {(s, e): label for s, e, label in gold - right}
    relabelled = {(s, e) for s, e, _ in proposed - right if (s, e) in open_gold}
    counts.update(gold=len(gold), proposed=len(proposed), right=len(right), relabelled=len(relabelled))


def summary(counts: Counter) -> str:
    right, proposed, gold, relabelled = counts["right"], counts["proposed"], counts["gold"], counts["relabelled"]
    wrong = proposed - right
    actions = wrong + (gold - right - relabelled)  # each wrong proposal deleted or relabelled, each gold span missed
    strict = wrong + (gold - right)  # a relabelled span counted as missed as well (the count before)
    precision = right / proposed if proposed else 0.0
    return (
        f"precision {precision:.2f}  recall {right / gold:.2f}  proposed {proposed}  right {right}  "
        f"relabelled {relabelled}  gold {gold}  actions {actions}  saved {1 - actions / gold:+.1%}  "
        f"(relabelled counted as missed too: {1 - strict / gold:+.1%})"
    )


def entities(folds: int) -> tuple[list, list]:
    from builder.learn.train import fit_model
    from builder.learn.trained import load_model
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
            contexts = model.article_contexts([e.text for e in test], [e.article_id for e in test])
            for e in test:
                gold = {(s["start"], s["end"], s["label"]) for s in e.entities}
                context = contexts[e.article_id]  # the article's other sentences, as a push of it gives them
                found = {
                    (r["value"]["start"], r["value"]["end"], r["value"]["labels"][0])
                    for r in model.predict(e.text, context=context)
                    if r["type"] == "labels"
                }
                score_proposals(gold, found, ours)
                every = {(s, t, label) for s, t, label, _ in model.entity_spans(e.text, context)[0]}
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
    from builder.learn.train import fit_model
    from builder.learn.trained import load_model

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
    from builder.learn.train import Example, fit_model
    from builder.learn.trained import load_model

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


def draw_entities(seed: int, test_articles: int) -> tuple[dict | None, dict]:
    """The span promise of a model trained on all GUM articles but `test_articles` drawn with `seed`, and
    what its proposals scored on those."""
    import random

    from builder.learn.train import fit_model
    from builder.learn.trained import load_model

    examples = gum_sentences()
    articles = sorted({e.article_id for e in examples})
    held = set(random.Random(seed).sample(articles, test_articles))
    train = [e for e in examples if e.article_id not in held]
    test = [e for e in examples if e.article_id in held]
    with tempfile.TemporaryDirectory() as folder:
        result = fit_model(train, Path(folder), entity_labels=LABELS, seed=seed)
        model = load_model(folder)
        contexts = model.article_contexts([e.text for e in test], [e.article_id for e in test])
        shown = right = found = 0
        for e in test:
            gold = {(s["start"], s["end"], s["label"]) for s in e.entities}
            context = contexts[e.article_id]
            found += len(model.entity_spans(e.text, context)[0])
            for r in model.predict(e.text, context=context):
                if r["type"] == "labels":
                    shown += 1
                    right += (r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) in gold
    measured = {"shown": shown, "right": right, "share": shown / found if found else 0.0, "of": found}
    return result.metrics["promised"]["span"], measured


def draw_stance(seed: int, train_size: int) -> tuple[dict | None, dict]:
    """The stance promise of a model trained on `train_size` claims drawn with `seed`, and what its suggestions
    scored on every other claim."""
    import random

    from builder.learn.train import fit_model
    from builder.learn.trained import load_model

    examples = claims()
    picked = set(random.Random(seed).sample(range(len(examples)), train_size))
    train = [e for i, e in enumerate(examples) if i in picked]
    test = [e for i, e in enumerate(examples) if i not in picked]
    with tempfile.TemporaryDirectory() as folder:
        result = fit_model(train, Path(folder), entity_labels=[], seed=seed)
        model = load_model(folder)
        shown = right = 0
        for e in test:
            items = [r for r in model.predict(e.text, target=e.target) if r["type"] == "choices"]
            if items:
                shown += 1
                right += items[0]["value"]["choices"][0] == e.stance
    measured = {"shown": shown, "right": right, "share": shown / len(test), "of": len(test)}
    return result.metrics["promised"]["stance"], measured


def promises(draws: int, test_articles: int, stance_train: int) -> bool:
    """Promised beside measured precision over `draws` seeded draws; True when the goal is met for each kind."""
    met = True
    for kind, run in (
        ("spans", lambda seed: draw_entities(seed, test_articles)),
        ("stance", lambda seed: draw_stance(seed, stance_train)),
    ):
        part = f"{test_articles} GUM articles held out" if kind == "spans" else f"{stance_train} claims trained on"
        print(f"{kind}: {draws} draws, {part}")
        header = f"{'promised [95% interval] n, dev share shown':<44} {'measured (right/shown)':<24}"
        print(f"  {'draw':>4}  {header} share  gap")
        gaps = []
        for seed in range(draws):
            began = time.perf_counter()
            promised, measured = run(seed)
            took = time.perf_counter() - began
            if promised is None:
                print(f"  {seed:>4}  nothing suggested: no promise{'':<15} shown {measured['shown']}  ({took:.0f} s)")
                continue
            low, high = promised["interval"]
            precision = measured["right"] / measured["shown"] if measured["shown"] else None
            left = (
                f"{promised['precision']:.3f} [{low:.3f}-{high:.3f}] n {promised['n']}, {promised['shown_share']:.0%}"
            )
            if precision is None:
                print(f"  {seed:>4}  {left:<44} nothing shown on the test part  ({took:.0f} s)")
                continue
            gap = precision - promised["precision"]
            gaps.append((promised["precision"], precision, gap, low <= precision <= high))
            right = f"{precision:.3f} ({measured['right']}/{measured['shown']})"
            print(f"  {seed:>4}  {left:<44} {right:<24} {measured['share']:.0%}  {gap * 100:+.1f} ({took:.0f} s)")
        if not gaps:
            print("  no draw suggested anything: no promise to check")
            continue
        mean_promised = sum(g[0] for g in gaps) / len(gaps)
        mean_measured = sum(g[1] for g in gaps) / len(gaps)
        mean_gap = sum(g[2] for g in gaps) / len(gaps)
        worst = min(g[2] for g in gaps)
        inside = sum(g[3] for g in gaps)
        ok = abs(mean_gap) <= 0.05 and worst >= -0.10
        met = met and ok
        print(
            f"  mean over {len(gaps)} draws: promised {mean_promised:.3f}, measured {mean_measured:.3f}, "
            f"gap {mean_gap * 100:+.1f} points (mean |gap| {sum(abs(g[2]) for g in gaps) / len(gaps) * 100:.1f}), "
            f"worst {worst * 100:+.1f}; measured inside the promised interval in {inside}/{len(gaps)}"
        )
        print(f"  goal (mean gap within 5 points, none 10 below): {'met' if ok else 'NOT met'}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--draws", type=int, default=0, help="random train/test draws: check the promises instead")
    parser.add_argument("--test-articles", type=int, default=6, help="GUM articles held out per draw")
    parser.add_argument("--stance-train", type=int, default=1000, help="claims trained on per draw")
    args = parser.parse_args()
    if args.draws:
        raise SystemExit(0 if promises(args.draws, args.test_articles, args.stance_train) else 1)
    gum, texts = entities(args.folds)
    stance()
    speed(gum, texts)


if __name__ == "__main__":
    main()
