"""Training time at size: `fit_model` (its dev folds, thresholds and the final fit) on 5,000 labelled sentences
plus 100,000 unlabelled ones, with the CPU seconds (the worker processes' included), wall seconds, peak
memory (this process, and the largest worker) and the sha256 of the model files.

Labelled: the GUM news sentences of ../shared/corpora/gum_news.jsonl cycled (each cycle its own articles),
each with the stance and target of one claim of ../shared/corpora/claim_stance.jsonl (as bench_preannotate.py's
speed check, at 1,000). Unlabelled: the sentences of GUM's other genres (bench/gum_genres.py's cache), cycled.

Goal (issue 29): <= 60 s, CPU and wall, on this 2-core machine; the same inputs give the same model bytes
(with any number of worker processes: `--workers 1` runs every fit in this process).

    python bench/bench_train_time.py [--labelled 5000] [--unlabelled 100000] [--set NAME=JSON] [--workers N]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gum_genres  # noqa: E402


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def labelled(n: int) -> list:
    from builder.learn.train import Example

    pre = _bench("bench_preannotate")
    gum, stances = pre.gum_sentences(), pre.claims()
    out = []
    for i in range(n):
        e, claim = gum[i % len(gum)], stances[i % len(stances)]
        out.append(
            Example(f"{e.id}/{i}", f"{e.article_id}/{i // len(gum)}", e.text, e.entities, claim.stance, claim.target)
        )
    return out


def unlabelled(n: int) -> tuple[str, ...]:
    cross = _bench("bench_cross_genre")
    genres = gum_genres.load_genres()
    texts = [e.text for g in sorted(genres) if g != "news" for e in cross.examples_of(genres[g])]
    return tuple(texts[i % len(texts)] for i in range(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", type=int, default=5000)
    parser.add_argument("--unlabelled", type=int, default=100_000)
    parser.add_argument("--set", action="append", default=[], help="a training setting, NAME=JSON (repeatable)")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    parser.add_argument("--workers", type=int, default=None, help="processes for the fits (default: fit_model's)")
    args = parser.parse_args()
    settings = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    from builder.learn.train import fit_model

    given = {} if args.workers is None else {"workers": args.workers}  # main before issue 29 has no workers

    train, others = labelled(args.labelled), unlabelled(args.unlabelled)
    with tempfile.TemporaryDirectory() as folder:
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        children = os.times()
        result = fit_model(
            train, Path(folder), entity_labels=["PER", "ORG", "LOC"], settings=settings, unlabelled=others, **given
        )
        after = os.times()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        cpu += (after.children_user - children.children_user) + (after.children_system - children.children_system)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        digest = hashlib.sha256()
        for path in sorted(Path(folder).iterdir()):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    promised = result.metrics["promised"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    print(
        f"train: {len(train):,} labelled sentences ({len({e.article_id for e in train})} articles) + {len(others):,} "
        f"unlabelled: {cpu:.1f} s CPU, {wall:.1f} s wall; load {os.getloadavg()[0]:.2f}; peak {peak} MB "
        f"(largest worker {worker} MB); "
        f"threshold span {result.thresholds['span']}, stance {result.thresholds['stance']}; "
        f"promised span {promised['span'] and promised['span']['precision']}; model sha256 {digest.hexdigest()[:16]}"
    )


if __name__ == "__main__":
    main()
