"""Stance suggestions on targets never labelled: trained on some debate motions, suggested on others.

Data: ../shared/corpora/claim_stance.jsonl (IBM Debater Claim Stance, CC BY-SA 3.0): Wikipedia claims, each
with its motion (`topic_target`) and the stance IBM's annotators gave. The motions are dealt into
`--folds` groups by a hash of the motion; each group is suggested on by a model (`fit_model`, as
`builder train` fits it) trained on the claims of the other motions. Each claim is its own article, and
the model is asked with the claim's own motion as target (as `builder push` passes an article's `target`).

Printed: on unseen motions, the share of claims given a suggestion and how often it is right, and the
accuracy of the model's best guess on all of them (what it would say if it did not hold back); beside it,
within seen motions (a quarter of every motion's claims held out, the rest trained on), the same figures.

Goal (issue 29, point 4): on unseen motions >= 20% suggested at >= 80% right, or nothing suggested
rather than wrong suggestions.

    python bench/bench_cross_target.py [--folds 4]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"


def claims() -> list:
    from builder.learn.train import Example

    rows = [json.loads(line) for line in (CORPORA / "claim_stance.jsonl").read_text(encoding="utf-8").splitlines()]
    return [Example(r["id"], r["id"], r["text"], (), r["stance"].lower(), r["topic_target"]) for r in rows]


def group_of(key: str, folds: int) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % folds


def suggest(train: list, test: list) -> dict:
    """Suggestions of a model fitted on `train`, scored on `test`."""
    from builder.learn.train import fit_model
    from builder.learn.trained import load_model

    with tempfile.TemporaryDirectory() as folder:
        result = fit_model(train, Path(folder), entity_labels=[])
        model = load_model(folder)
        shown = right = best = 0
        for e in test:
            items = [r for r in model.predict(e.text, target=e.target) if r["type"] == "choices"]
            if items:
                shown += 1
                right += items[0]["value"]["choices"][0] == e.stance
            probabilities = model.stance_probabilities(e.text, e.target)
            best += max(probabilities, key=lambda k: (probabilities[k], k)) == e.stance
    return {"shown": shown, "right": right, "best": best, "n": len(test), "promised": result.metrics["promised"]}


def line(name: str, c: dict) -> str:
    right = f"{c['right'] / c['shown']:.2f} ({c['right']}/{c['shown']})" if c["shown"] else "- (nothing suggested)"
    return (
        f"  {name:<16} suggested on {c['shown'] / c['n']:.1%} of {c['n']}, right where suggested {right}; "
        f"best guess on all {c['best'] / c['n']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()
    examples = claims()
    motions = sorted({e.target for e in examples})
    unseen = {"shown": 0, "right": 0, "best": 0, "n": 0}
    for fold in range(args.folds):
        held = {m for m in motions if group_of(m, args.folds) == fold}
        scored = suggest([e for e in examples if e.target not in held], [e for e in examples if e.target in held])
        for key in unseen:
            unseen[key] += scored[key]
    seen = suggest([e for e in examples if group_of(e.id, 4) != 0], [e for e in examples if group_of(e.id, 4) == 0])
    print(f"stance: claim_stance, {len(examples)} claims, {len(motions)} motions, {args.folds} folds by motion")
    print(line("unseen motions", unseen))
    print(line("seen motions", seen))
    ok = unseen["shown"] == 0 or (unseen["shown"] / unseen["n"] >= 0.2 and unseen["right"] / unseen["shown"] >= 0.8)
    print(f"goal on unseen motions (>= 20% at >= 80% right, or nothing suggested): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
