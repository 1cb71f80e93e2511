"""Sentence splitting: boundary F1 against GUM's gold sentences and characters/second, per splitter.

Targets (issue 16): builder's splitter (`rules`) reaches F1 >= 0.98 on text its rules never saw and
>= 5,000,000 characters/second on one core. Its rules were drawn from the errors on all 24 GUM news
articles (both halves), so F1 there says little: the target is F1 on the held-out text, GUM's 19
Wikinews interviews (tests/data/gum_interview.jsonl, made by tests/data/make_gum_interview.py). segtok
(the default before), pysbd and other library splitters run on the same text in the same run, as baselines.

Non-sentences (issue 27): what `lines+rules/3` sets aside (credits, datelines, bylines, headings: kept in
the sentences file, never pushed), by reason, on both corpora; how many of those spans are gold sentence
spans and how many GUM types as a real sentence (any `s_type` but `frag`, tests/data/gum_s_types.json):
the filter's errors. Sentence F1 is given before (no dateline cut, as `lines+rules/2`) and after, same run.

    python bench/bench_split.py [--corpus ../shared/corpora/gum_news.jsonl] [--held-out FILE] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from unittest import mock

from builder.sentences.segmenter import DEFAULT_ENGINE, ENGINES, classified_spans, sentence_spans

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "gum_news.jsonl"
HELD_OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "gum_interview.jsonl"
S_TYPES = Path(__file__).resolve().parents[1] / "tests" / "data" / "gum_s_types.json"


def boundaries(spans: list[tuple[int, int]]) -> set[int]:
    """Sentence ends inside the document (the document's own end is not a decision)."""
    return {end for _, end in spans[:-1]}


def counts(docs: list[dict], engine: str) -> tuple[int, int, int]:
    """True positive, false positive and false negative sentence ends over `docs`."""
    tp = fp = fn = 0
    for doc in docs:
        gold = boundaries([tuple(s) for s in doc["sentences"]])
        predicted = boundaries(sentence_spans(doc["text"], engine))
        tp += len(gold & predicted)
        fp += len(predicted - gold)
        fn += len(gold - predicted)
    return tp, fp, fn


def f1_of(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def evaluate(docs: list[dict], held_out: list[dict], engine: str, repeat: int) -> dict:
    tp, fp, fn = counts(docs, engine)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = f1_of(tp, fp, fn)
    characters = sum(len(doc["text"]) for doc in docs)
    sentence_spans(docs[0]["text"], engine)  # warm-up: imports, model loading
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        for doc in docs:
            sentence_spans(doc["text"], engine)
        best = min(best, time.perf_counter() - began)
    return {
        "engine": engine,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "f1_held_out": f1_of(*counts(held_out, engine)),
        "chars_per_s": characters / best,
        "gold_boundaries": tp + fn,
    }


def set_aside_counts(docs: list[dict], s_types: dict) -> dict:
    """What the splitter sets aside in `docs`: by reason, how many are gold sentence spans, and which of
    those GUM types as a real sentence (not `frag`): [reason, s_type, GUM block kinds, text] each."""
    reasons: Counter = Counter()
    gold_spans: Counter = Counter()
    real: list[list[str]] = []
    for doc in docs:
        types = {tuple(span): s_types[doc["doc_id"]][i] for i, span in enumerate(doc["sentences"])}
        for start, end, reason in classified_spans(doc["text"]):
            if reason is None:
                continue
            reasons[reason] += 1
            gold = types.get((start, end))
            if gold is not None:
                gold_spans[reason] += 1
                if gold[0] != "frag":
                    real.append([reason, gold[0], gold[1], doc["text"][start:end]])
    return {"by_reason": dict(sorted(reasons.items())), "gold_spans": dict(sorted(gold_spans.items())), "real": real}


def before_and_after(docs: list[dict], held_out: list[dict]) -> None:
    """F1 of the default splitter with and without its dateline cut (lines+rules/2 did none), and what it sets aside."""
    with mock.patch("builder.sentences.segmenter.dateline_end", lambda line: None):
        before = (f1_of(*counts(docs, DEFAULT_ENGINE)), f1_of(*counts(held_out, DEFAULT_ENGINE)))
    after = (f1_of(*counts(docs, DEFAULT_ENGINE)), f1_of(*counts(held_out, DEFAULT_ENGINE)))
    print(
        f"\nF1 before (no dateline cut) -> after: news {before[0]:.4f} -> {after[0]:.4f}, "
        f"held out {before[1]:.4f} -> {after[1]:.4f}"
    )
    s_types = json.loads(S_TYPES.read_text(encoding="utf-8"))
    for name, corpus in (("news", docs), ("held out", held_out)):
        found = set_aside_counts(corpus, s_types)
        total = sum(found["by_reason"].values())
        gold = sum(found["gold_spans"].values())
        sentences = sum(len(doc["sentences"]) for doc in corpus)
        print(
            f"set aside ({name}, {sentences} gold sentence spans): {total} {found['by_reason']}; "
            f"{gold} are gold spans; {len(found['real'])} typed as a real sentence by GUM: {found['real']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--held-out", type=Path, default=HELD_OUT, help="text no rule was drawn from")
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats; the best is reported")
    args = parser.parse_args()
    docs = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    held_out = [json.loads(line) for line in args.held_out.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"{len(docs)} articles, {sum(len(d['text']) for d in docs):,} characters, one core, best of {args.repeat}")
    print(f"held out: {len(held_out)} documents of {args.held_out.name}, no rule drawn from them")
    print(
        f"{'splitter (lines first)':<24} {'precision':>9} {'recall':>7} {'F1':>6} {'F1 held-out':>11} {'chars/s':>12}"
    )
    results = {}
    order = [DEFAULT_ENGINE] + sorted(e for e in ENGINES if e != DEFAULT_ENGINE)
    for engine in order:
        try:
            ENGINES[engine]("A line.")
        except ImportError:  # a baseline library not installed (`pip install -e '.[bench]'`)
            print(f"{engine:<24} (not installed)")
            continue
        r = evaluate(docs, held_out, engine, args.repeat if engine != "pysbd" else 1)
        results[engine] = r
        mark = "  <- builder default" if engine == DEFAULT_ENGINE else ""
        print(
            f"{engine:<24} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['f1']:>6.3f} {r['f1_held_out']:>11.3f} "
            f"{r['chars_per_s']:>12,.0f}{mark}"
        )
    ours = results[DEFAULT_ENGINE]
    print()
    for name in ("segtok", "blingfire", "sentencex", "pysbd"):
        if name not in results:
            continue
        baseline = results[name]
        print(
            f"builder ({DEFAULT_ENGINE}) vs {name}: F1 {ours['f1']:.3f} vs {baseline['f1']:.3f}, held out "
            f"{ours['f1_held_out']:.3f} vs {baseline['f1_held_out']:.3f}, "
            f"speed x{ours['chars_per_s'] / baseline['chars_per_s']:.1f}"
        )
    before_and_after(docs, held_out)
    ok = ours["f1_held_out"] >= 0.98 and ours["chars_per_s"] >= 5_000_000
    print(f"targets F1 held out >= 0.98 and >= 5,000,000 chars/s: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
