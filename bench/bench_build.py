"""Build the dataset folder from N validated records: seconds and peak memory, against a floor.

The floor, measured in the same run: read the same records (orjson) and write them to Parquet
with pyarrow directly (Table.from_pylist in batches of 50,000), no derived columns. Goals
(issue 16): build <= 1.3x the floor, peak memory <= 1 GB at 1,000,000 records (the build's own
process; its two worker processes' peaks are printed beside it). Rounds alternate floor and
build; the best of each is compared (this machine's timings vary by +-15%).

    python bench/bench_build.py [--records 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import measure

ROOT = Path(__file__).resolve().parents[1]

OURS = """
import sys, time
from measure import peak_mb

from pathlib import Path
from builder.dataset.card import write_card
from builder.dataset.build import write_dataset
from builder.project import load_project
project = load_project(sys.argv[1])
from builder.jsonio import paused_gc
out = Path(sys.argv[3]); out.mkdir()
began = time.perf_counter()
with paused_gc():  # as build_dataset does
    facts = write_dataset(project, Path(sys.argv[2]), out)
write_card(project, out, facts, None)
import resource
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{time.perf_counter() - began:.3f} {peak_mb():.1f} {workers:.1f}")
"""

FLOOR = """
import gc, sys, time
from measure import peak_mb

import orjson, pyarrow as pa, pyarrow.parquet as pq
gc.disable()  # the floor gets the same treatment as builder
began = time.perf_counter()
writer, batch = None, []
def flush():
    global writer
    table = pa.Table.from_pylist(batch)
    writer = writer or pq.ParquetWriter(sys.argv[3], table.schema, compression="zstd")
    writer.write_table(table)
with open(sys.argv[2], "rb") as handle:
    for line in handle:
        batch.append(orjson.loads(line))
        if len(batch) >= 50_000:
            flush(); batch = []
if batch:
    flush()
writer.close()
print(f"{time.perf_counter() - began:.3f} {peak_mb():.1f}")
"""


def generate(path: Path, n: int) -> None:
    import orjson

    stances = ["favor", "against", "neutral"]
    with open(path, "wb") as out:
        for i in range(n):
            text = f"Minister Ri Chang Dae met Sergei Shoigu in Moscow on day {i} to discuss cooperation."
            entities = [
                {"start": 9, "end": 21, "label": "PER", "text": "Ri Chang Dae"},
                {"start": 26, "end": 39, "label": "PER", "text": "Sergei Shoigu"},
                {"start": 43, "end": 49, "label": "LOC", "text": "Moscow"},
            ]
            annotations = [
                {
                    "annotator": f"annotator-{a:08d}",
                    "stance": stances[(i + a) % 3],
                    "entities": entities,
                    "lead_time": 12.5,
                    "ground_truth": False,
                }
                for a in range(2)
            ]
            record = {
                "id": f"s{i:09d}",
                "article_id": f"article-{i // 30:06d}",
                "sentence_index": i % 30,
                "text": text,
                "target": "t",
                "stance": stances[i % 3] if i % 7 else None,
                "stance_status": "majority" if i % 7 else "tie",
                "stance_distribution": [0.5, 0.5, 0.0],
                "entities": entities,
                "annotations": annotations,
                "num_annotators": 2,
                "agreement": 0.5,
            }
            out.write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n")


def timed(code: str, *args) -> tuple[float, ...]:
    return tuple(float(value) for value in measure.run_child(code, *args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each side is compared")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        tmp = Path(tmp)
        records = tmp / "records.jsonl"
        began = time.perf_counter()
        generate(records, args.records)
        print(
            f"generated {args.records:,} records ({records.stat().st_size / 1e9:.2f} GB) "
            f"in {time.perf_counter() - began:.0f} s",
            flush=True,
        )
        floors, ours = [], []
        for round_ in range(args.rounds):
            floors.append(timed(FLOOR, "-", records, tmp / f"floor-{round_}.parquet"))
            ours.append(timed(OURS, ROOT / "builder.toml", records, tmp / f"dataset-{round_}"))
        print(
            f"rounds (s): floor {', '.join(f'{s:.1f}' for s, _ in floors)}; "
            f"builder {', '.join(f'{s:.1f}' for s, *_ in ours)}"
        )
        floor_s, floor_mb = min(floors)
        ours_s, ours_mb, workers_mb = min(ours)
        print(f"{'':<34} {'seconds':>8} {'records/s':>10} {'peak RSS MB':>12}")
        print(
            f"{'floor (orjson + pyarrow Parquet)':<34} {floor_s:>8.1f} "
            f"{args.records / floor_s:>10,.0f} {floor_mb:>12.0f}"
        )
        print(
            f"{'builder build (splits, BIO, card)':<34} {ours_s:>8.1f} {args.records / ours_s:>10,.0f} {ours_mb:>12.0f}"
        )
        print(
            f"ratio builder/floor: {ours_s / floor_s:.2f} (goal <= 1.3); peak {ours_mb:.0f} MB (goal <= 1024), "
            f"each worker process <= {workers_mb:.0f} MB"
        )


if __name__ == "__main__":
    main()
