"""`builder build` from a snapshot of N tasks (three annotations each, a gold question per 50 tasks, a
suggestion per other task): seconds and peak memory, this checkout against another in the same run.

What bench_build.py leaves out: validating the snapshot and what else the build learns from it (its hash,
the annotators' quality and the control arms, the pre-annotations), read once since issue 25. Rounds
alternate the two checkouts; the best of each is printed (this machine's timings vary by +-15%).

`--evidence-off` (issue 28.7): the baseline is this checkout's build with issue 28's additions switched off
as a release before manifest format 9 is rebuilt (`research_notes=False, evidence=False`: no agreement
evidence, intervals, label provenance, Croissant 1.1 or data statement), the build as it was before them,
in the same run (goal: the full build <= 1.3x it).

The snapshot is generated in one pass (92 s for 1,000,000 tasks, 2.3 GB, under load 7; it took 745 s as two
passes) and kept under ~/.cache/builder/bench/snapshot-<tasks>x3-g<GENERATOR>/ for the next run at that size
(`XDG_CACHE_HOME` moves it; delete the folder to generate it again).

    python bench/bench_build_snapshot.py [--tasks 200000] [--baseline /path/to/other/checkout | --evidence-off]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent

CHILD = """
import resource, sys, time
from pathlib import Path
from measure import peak_mb
from builder.dataset.build import build_dataset
from builder.project import load_project
project = load_project(sys.argv[1])
switched = {"research_notes": False, "evidence": False} if sys.argv[3] == "off" else {}
began = time.perf_counter()
build_dataset(project, project.snapshot_path, Path(sys.argv[2]), **switched)
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{time.perf_counter() - began:.3f} {peak_mb():.1f} {workers:.1f}")
"""


GENERATOR = 1  # bump when the generated snapshot changes: the cache key holds it
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "builder" / "bench"


def generate_snapshot(folder: Path, tasks: int) -> None:
    """`tasks` tasks (three annotations each) in `folder`/snapshot.jsonl, as `builder pull` writes them, sorted by
    sentence id, a suggestion on each task but every 50th, whose sentence `folder`/gold.jsonl answers instead.

    One pass, no re-reading: the same bytes as bench_validate.generate's snapshot with the suggestions added
    afterwards (tests/test_bench_snapshot.py checks it at a small size)."""
    from bench_validate import _text

    from builder.sentences.segmenter import sentence_id

    labels = ["PER", "ORG", "LOC", "MISC"]
    stances = ["favor", "against", "neutral"]
    order = sorted((sentence_id(f"article-{i // 30}", _text(i)), i) for i in range(tasks))
    suggestion = [{"model_version": "builder-crf/2+x", "score": 0.9, "result": []}]
    keep = ("article_id", "sentence_index", "text", "start", "end")
    dumps, sort = orjson.dumps, orjson.OPT_SORT_KEYS

    def span(rid: str, start: int, end: int, text: str, label: str) -> dict:
        value = {"start": start, "end": end, "text": text, "labels": [label]}
        return {"id": rid, "from_name": "entities", "to_name": "sentence", "type": "labels", "value": value}

    per = [span("r1", 9, 21, "Ri Chang Dae", labels[0]), span("r2", 26, 39, "Sergei Shoigu", labels[0])]
    moscow = [span("r3", 43, 49, "Moscow", labels[2 + k]) for k in (0, 1)]
    stance = [
        {"id": "r4", "from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [s]}}
        for s in stances
    ]
    with open(folder / "snapshot.jsonl", "wb") as out, open(folder / "gold.jsonl", "wb") as gold:
        for n, (sid, i) in enumerate(order):
            text = _text(i)
            article = f"article-{i // 30}"
            data = {
                "sentence_id": sid,
                "article_id": article,
                "article_title": "T",
                "sentence_index": i % 30,
                "text": text,
                "prev_text": "",
                "next_text": "",
                "target": "t",
                "start": 0,
                "end": len(text),
            }
            annotations = [
                {
                    "id": 3 * i + a,
                    "annotator": f"annotator-{a:08d}",
                    "result": [*per, moscow[(i + a) % 2], stance[(i * (a + 1)) % 3]],
                    "was_cancelled": False,
                    "ground_truth": False,
                    "lead_time": 12.5,
                }
                for a in range(3)
            ]
            if n % 50 == 0:
                answer = {"stance": "neutral", "entities": [], "id": sid}
                gold.write(dumps({**{k: data[k] for k in keep}, **answer}) + b"\n")
                predictions = []
            else:
                predictions = suggestion
            task = {"task_id": i, "data": data, "annotations": annotations, "predictions": predictions}
            out.write(dumps(task, option=sort) + b"\n")


def cached_snapshot(tasks: int) -> Path:
    """The folder (under ~/.cache/builder/bench/) holding the generated snapshot and gold file for `tasks`,
    generated once per size and generator version; written beside and renamed, so a killed run leaves no half."""
    folder = CACHE / f"snapshot-{tasks}x3-g{GENERATOR}"
    if not (folder / "snapshot.jsonl").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=folder.parent))
        generate_snapshot(partial, tasks)
        partial.rename(folder)
    return folder


def make_project(folder: Path, tasks: int) -> Path:
    """A project folder (the repository's scheme) whose snapshot has `tasks` tasks and whose gold file
    answers every 50th task's sentence (both links to the cached files)."""
    cached = cached_snapshot(tasks)
    (folder / "annotations").mkdir(parents=True)
    (folder / "annotations" / "snapshot.jsonl").symlink_to(cached / "snapshot.jsonl")
    (folder / "gold.jsonl").symlink_to(cached / "gold.jsonl")
    text = (ROOT / "builder.toml").read_text(encoding="utf-8")
    text = text.replace('guidelines = "guidelines.md"', f'guidelines = "{ROOT / "guidelines.md"}"')
    (folder / "builder.toml").write_text(f'{text}\n[quality]\ngold = "gold.jsonl"\n', encoding="utf-8")
    return folder / "builder.toml"


def timed(checkout: Path, project: Path, output: Path, mode: str = "on") -> tuple[float, float, float]:
    path = os.pathsep.join([str(checkout), str(BENCH)])
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, project, output, mode], capture_output=True, text=True, env=env, cwd=checkout
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    seconds, peak, workers = map(float, out.stdout.split())
    return seconds, peak, workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="another checkout of builder (say, main's worktree)")
    parser.add_argument("--evidence-off", action="store_true", help="baseline: this checkout, issue 28 switched off")
    args = parser.parse_args()
    checkouts = {"this checkout": (ROOT, "on")}
    if args.baseline:
        checkouts = {"baseline": (args.baseline.resolve(), "on"), **checkouts}
    elif args.evidence_off:
        checkouts = {"baseline": (ROOT, "off"), **checkouts}
    with tempfile.TemporaryDirectory(prefix="bench-build-snapshot-") as tmp:
        tmp = Path(tmp)
        began = time.perf_counter()
        project = make_project(tmp / "project", args.tasks)
        snapshot = (tmp / "project" / "annotations" / "snapshot.jsonl").resolve()
        print(
            f"snapshot of {args.tasks:,} tasks ({snapshot.stat().st_size / 1e9:.2f} GB, {snapshot.parent}) "
            f"ready in {time.perf_counter() - began:.0f} s (generated once, then cached)",
            flush=True,
        )
        results: dict[str, list] = {name: [] for name in checkouts}
        for round_ in range(args.rounds):
            for name, (checkout, mode) in checkouts.items():
                results[name].append(timed(checkout, project, tmp / f"out-{round_}-{name[0]}", mode))
                print(f"round {round_ + 1} {name}: {results[name][-1][0]:.1f} s", flush=True)
        outputs = sorted(tmp.glob("out-0-*"))
        if len(outputs) == 2 and not args.evidence_off:  # the same dataset, card and all, byte for byte
            files = [{p.relative_to(o): p.read_bytes() for p in sorted(o.rglob("*")) if p.is_file()} for o in outputs]
            print("outputs byte-identical:", files[0] == files[1])
        print(f"{'':<14} {'seconds':>8} {'peak RSS MB':>12} {'workers MB':>11}")
        for name, runs in results.items():
            seconds = min(run[0] for run in runs)
            peak = max(run[1] for run in runs)
            workers = max(run[2] for run in runs)
            print(f"{name:<14} {seconds:>8.1f} {peak:>12.0f} {workers:>11.0f}")
        if len(results) == 2:
            base, ours = (min(run[0] for run in runs) for runs in results.values())
            print(f"ratio this checkout/baseline: {ours / base:.2f} (added {ours - base:+.1f} s)")


if __name__ == "__main__":
    main()
