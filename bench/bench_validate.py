"""Validate and convert a generated snapshot of N annotated tasks (two annotations each).

Prints records/second and peak memory for 10% of N and for N (memory must not grow with the
input: streaming, peak <= 1 GB at 1M), and, as the baseline, plain `jsonschema` validation of a
sample of the same tasks in the same run.

    python bench/bench_validate.py [--tasks 1000000] [--sample 10000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import measure

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys, time
from measure import peak_mb

from pathlib import Path
from builder.records.from_snapshot import validate_snapshot
from builder.project import load_project
project = load_project(sys.argv[1])

began = time.perf_counter()
result = validate_snapshot(project, Path(sys.argv[2]), Path(sys.argv[3]))
seconds = time.perf_counter() - began
peak = peak_mb()
print(f"{result.tasks_in} {result.records} {result.quarantined} {seconds:.3f} {peak:.1f}")
"""


def _text(i: int) -> str:
    return f"Minister Ri Chang Dae met Sergei Shoigu in Moscow on day {i} to discuss cooperation."


def generate(path: Path, n: int, annotators: int = 2) -> None:
    """A snapshot as `builder pull` writes it: sorted by sentence id; `annotators` annotations per task."""
    import orjson

    from builder.sentences.segmenter import sentence_id

    labels = ["PER", "ORG", "LOC", "MISC"]
    stances = ["favor", "against", "neutral"]
    order = sorted((sentence_id(f"article-{i // 30}", _text(i)), i) for i in range(n))
    with open(path, "wb") as out:
        for sid, i in order:
            text = _text(i)
            data = {
                "sentence_id": sid,
                "article_id": f"article-{i // 30}",
                "article_title": "T",
                "sentence_index": i % 30,
                "text": text,
                "prev_text": "",
                "next_text": "",
                "target": "t",
                "start": 0,
                "end": len(text),
            }
            annotations = []
            for a in range(annotators):
                result = [
                    {
                        "id": "r1",
                        "from_name": "entities",
                        "to_name": "sentence",
                        "type": "labels",
                        "value": {"start": 9, "end": 21, "text": "Ri Chang Dae", "labels": [labels[0]]},
                    },
                    {
                        "id": "r2",
                        "from_name": "entities",
                        "to_name": "sentence",
                        "type": "labels",
                        "value": {"start": 26, "end": 39, "text": "Sergei Shoigu", "labels": [labels[0]]},
                    },
                    {
                        "id": "r3",
                        "from_name": "entities",
                        "to_name": "sentence",
                        "type": "labels",
                        "value": {"start": 43, "end": 49, "text": "Moscow", "labels": [labels[2 + (i + a) % 2]]},
                    },
                    {
                        "id": "r4",
                        "from_name": "stance",
                        "to_name": "sentence",
                        "type": "choices",
                        "value": {"choices": [stances[(i * (a + 1)) % 3]]},
                    },
                ]
                annotations.append(
                    {
                        "id": annotators * i + a,
                        "annotator": f"annotator-{a:08d}",
                        "result": result,
                        "was_cancelled": False,
                        "ground_truth": False,
                        "lead_time": 12.5,
                    }
                )
            out.write(
                orjson.dumps(
                    {"task_id": i, "data": data, "annotations": annotations, "predictions": []},
                    option=orjson.OPT_SORT_KEYS,
                )
                + b"\n"
            )


def run_child(project: Path, snapshot: Path, records: Path) -> dict:
    tasks_in, records_n, quarantined, seconds, peak = measure.run_child(CHILD, project, snapshot, records)
    return {
        "tasks": int(tasks_in),
        "records": int(records_n),
        "quarantined": int(quarantined),
        "seconds": float(seconds),
        "peak_mb": float(peak),
    }


def jsonschema_baseline(snapshot: Path, sample: int) -> float:
    import jsonschema

    from builder.model import task_schema
    from builder.project import load_project

    validator = jsonschema.Draft202012Validator(task_schema(load_project(ROOT / "builder.toml")))
    with open(snapshot, "rb") as handle:
        tasks = [json.loads(next(handle)) for _ in range(sample)]
    began = time.perf_counter()
    for task in tasks:
        validator.is_valid(task)
    return sample / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=10_000, help="tasks validated by plain jsonschema (baseline)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        tmp = Path(tmp)
        rows = []
        for n in (args.tasks // 10, args.tasks):
            snapshot = tmp / f"snapshot-{n}.jsonl"
            began = time.perf_counter()
            generate(snapshot, n)
            print(
                f"generated {n:,} tasks ({snapshot.stat().st_size / 1e9:.2f} GB) "
                f"in {time.perf_counter() - began:.0f} s",
                flush=True,
            )
            row = run_child(ROOT / "builder.toml", snapshot, tmp / "records.jsonl")
            assert row["records"] == n and row["quarantined"] == 0
            rows.append(row)
            if n == args.tasks:
                baseline = jsonschema_baseline(snapshot, args.sample)
            snapshot.unlink()
        print(f"{'tasks':>10} {'seconds':>8} {'records/s':>10} {'peak RSS MB':>12}")
        for row in rows:
            print(
                f"{row['tasks']:>10,} {row['seconds']:>8.1f} "
                f"{row['tasks'] / row['seconds']:>10,.0f} {row['peak_mb']:>12.0f}"
            )
        ours = rows[-1]["tasks"] / rows[-1]["seconds"]
        print(
            f"baseline: plain jsonschema is_valid on {args.sample:,} tasks: {baseline:,.0f} tasks/s "
            "(schema only, no semantic checks, no records)"
        )
        print(f"builder validate+convert vs jsonschema alone: x{ours / baseline:.1f} (goal: >= 50,000 records/s)")
        print(
            f"peak memory at {rows[-1]['tasks']:,} vs {rows[0]['tasks']:,} tasks: "
            f"{rows[-1]['peak_mb']:.0f} vs {rows[0]['peak_mb']:.0f} MB (goal <= 1024 MB, flat)"
        )


if __name__ == "__main__":
    main()
