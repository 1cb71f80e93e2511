"""Does the promise hold when the dev folds' models are fitted on fewer sentences (`dev_max_sentences`)?

Data: GUM news plus the tuning genres of bench_cross_genre.py (interview, bio; never the reported genres), every
document dealt by a hash of its id: a third held out, the rest trained on with `fit_model`. Per cap: the precision
promised at training time, the precision, recall and actions saved measured on the held-out documents (as
bench_preannotate.py counts them), and the CPU seconds of the fit.

    python bench/bench_dev_cap.py [--caps none,1000]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gum_genres  # noqa: E402

GENRES = ("news", "interview", "bio")


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caps", default="none,450,900")
    args = parser.parse_args()
    from builder.learn.train import fit_model
    from builder.learn.trained import load_model

    cross, pre = _bench("bench_cross_genre"), _bench("bench_preannotate")
    genres = gum_genres.load_genres()
    docs = [d for g in GENRES for d in genres[g]]
    held = {d["doc_id"] for d in docs if int(hashlib.sha256(d["doc_id"].encode()).hexdigest()[:8], 16) % 3 == 0}
    examples = cross.examples_of(docs)
    train = [e for e in examples if e.article_id not in held]
    test = [e for e in examples if e.article_id in held]
    print(f"train {len(train)} sentences, held out {len(test)} ({', '.join(GENRES)})")
    for cap in args.caps.split(","):
        settings = {"dev_max_sentences": None if cap == "none" else int(cap)}
        with tempfile.TemporaryDirectory() as folder:
            cpu = time.process_time()
            result = fit_model(train, Path(folder), entity_labels=pre.LABELS, settings=settings)
            cpu = time.process_time() - cpu
            model = load_model(folder)
            counts = Counter()
            contexts = model.article_contexts([e.text for e in test], [e.article_id for e in test])
            for e in test:
                gold = {(s["start"], s["end"], s["label"]) for s in e.entities}
                found = {
                    (r["value"]["start"], r["value"]["end"], r["value"]["labels"][0])
                    for r in model.predict(e.text, context=contexts[e.article_id])
                    if r["type"] == "labels"
                }
                pre.score_proposals(gold, found, counts)
        promised = result.metrics["promised"]["span"]
        measured = counts["right"] / counts["proposed"] if counts["proposed"] else 0.0
        gap = (measured - promised["precision"]) * 100 if promised else float("nan")
        print(
            f"cap {cap}: fit {cpu:.1f} s CPU; threshold {result.thresholds['span']}, promised "
            f"{promised and promised['precision']}; held out: {pre.summary(counts)}; gap {gap:+.1f} points"
        )


if __name__ == "__main__":
    main()
