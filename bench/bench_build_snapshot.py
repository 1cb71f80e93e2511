"""`builder build` from a snapshot of N tasks (three annotations each, a gold question per 50 tasks, a
suggestion per other task): seconds and peak memory, this checkout against another in the same run.

What bench_build.py leaves out: validating the snapshot and what else the build learns from it (its hash,
the annotators' quality and the control arms, the pre-annotations), read once since issue 25. Rounds
alternate the two checkouts; the best of each is printed (this machine's timings vary by +-15%).

`--evidence-off` (issue 28.7): the baseline is this checkout's build with issue 28's additions switched off
as a release before manifest format 9 is rebuilt (`research_notes=False, evidence=False`: no agreement
evidence, intervals, label provenance, Croissant 1.1 or data statement), the build as it was before them,
in the same run (goal: the full build <= 1.3x it).

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
from bench_validate import generate

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


def make_project(folder: Path, tasks: int) -> Path:
    """A project folder (the repository's scheme) whose snapshot has `tasks` tasks and whose gold file
    answers every 50th task's sentence."""
    (folder / "annotations").mkdir(parents=True)
    snapshot = folder / "annotations" / "snapshot.jsonl"
    generate(snapshot, tasks, annotators=3)
    with_suggestions = folder / "annotations" / "suggested.jsonl"
    with open(snapshot, "rb") as lines, open(with_suggestions, "wb") as out, open(folder / "gold.jsonl", "wb") as gold:
        for n, line in enumerate(lines):
            task = orjson.loads(line)
            data = task["data"]
            if n % 50 == 0:
                answer = {"stance": "neutral", "entities": [], "id": data["sentence_id"]}
                keep = ("article_id", "sentence_index", "text", "start", "end")
                gold.write(orjson.dumps({**{k: data[k] for k in keep}, **answer}) + b"\n")
            else:
                task["predictions"] = [{"model_version": "builder-crf/2+x", "score": 0.9, "result": []}]
            out.write(orjson.dumps(task, option=orjson.OPT_SORT_KEYS) + b"\n")
    with_suggestions.replace(snapshot)
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
        size = (tmp / "project" / "annotations" / "snapshot.jsonl").stat().st_size
        print(
            f"generated {args.tasks:,} tasks ({size / 1e9:.2f} GB) in {time.perf_counter() - began:.0f} s", flush=True
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
