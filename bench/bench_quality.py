"""`builder quality` and the stance aggregation on a generated snapshot of N tasks, 3 annotations each.

The snapshot (written to a temporary folder, streamed by every step) has 30 simulated annotators
(most right 95% of the time, some 70%, two random), 5% gold questions (a gold file the project
names), pre-annotated spans on half the tasks and 2% cancelled annotations. Each step runs in its
own process, for its peak memory (VmHWM):

- builder: `annotator_report` (read the snapshot streamed, every column of the report);
- aggregation: `aggregated_stances` (majority vote) on the annotation frame, and the Dawid-Skene EM
  of `builder.records.reliability` when it is importable (timed alone; the peak includes the read);
- floor: plain pandas on the same annotations, measured in the same run: the same file read line by
  line with orjson into a DataFrame of (annotator, was_cancelled, lead_time) and one groupby by
  annotator (counts and median lead time).

Goals (issue 13): <= 60 s and <= 1 GB peak at 1,000,000 tasks.

    python bench/bench_quality.py [--tasks 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import measure

ROOT = Path(__file__).resolve().parents[1]
ANNOTATORS = 30
ACCURACY = [0.95] * 24 + [0.7] * 4 + [1 / 3] * 2  # per simulated annotator
STANCES = ["favor", "against", "neutral"]
SPANS = [(9, 21, "PER"), (26, 39, "PER"), (43, 49, "LOC")]
TEXT = "Minister Ri Chang Dae met Sergei Shoigu in Moscow on day {} to discuss cooperation."

OURS = """
import sys, time
from measure import peak_mb

from builder.project import load_project
from builder.records.quality import annotator_report
project = load_project(sys.argv[1])
began = time.perf_counter()
report = annotator_report(sys.argv[2], project)
seconds = time.perf_counter() - began
assert len(report) == 30 and report["gold_answers"].sum() > 0, report
print(f"{seconds:.3f} {peak_mb():.1f} {int(report['annotated'].sum())} {int(report['flagged'].sum())}")
"""

AGGREGATION = """
import sys, time
from measure import peak_mb

import numpy as np
from builder.project import load_project
from builder.records.quality import aggregated_stances, read_frames
project = load_project(sys.argv[1])
frames = read_frames(sys.argv[2], project)
rows = frames.annotations
began = time.perf_counter()
majority = aggregated_stances(rows, project, frames.gold_stance)
majority_s = time.perf_counter() - began
try:
    from builder.records.reliability import dawid_skene
except ImportError:
    dawid_skene = None
ds_s, iterations = float("nan"), -1
if dawid_skene is not None:
    began = time.perf_counter()
    stance = rows["stance"].cat.codes.to_numpy()
    answered = ~rows["was_cancelled"].to_numpy() & (stance >= 0)
    gold = np.flatnonzero(frames.gold_stance >= 0)
    fit = dawid_skene(
        rows["task"].to_numpy()[answered], rows["annotator"].cat.codes.to_numpy()[answered], stance[answered],
        frames.tasks, len(rows["annotator"].cat.categories), len(frames.stance_labels),
        known=dict(zip(gold.tolist(), frames.gold_stance[gold].tolist())),
    )
    ds_s, iterations = time.perf_counter() - began, fit.iterations
print(f"{majority_s:.3f} {ds_s:.3f} {iterations} {peak_mb():.1f} {int((majority >= 0).sum())}")
"""

FLOOR = """
import sys, time
from measure import peak_mb

import orjson, pandas as pd
began = time.perf_counter()
annotator, cancelled, lead_time = [], [], []
with open(sys.argv[1], "rb") as handle:
    for line in handle:
        for a in orjson.loads(line)["annotations"]:
            annotator.append(a["annotator"]); cancelled.append(a["was_cancelled"]); lead_time.append(a["lead_time"])
frame = pd.DataFrame({"annotator": annotator, "was_cancelled": cancelled, "lead_time": lead_time})
del annotator, cancelled, lead_time
answered = frame[~frame["was_cancelled"]]
table = answered.groupby("annotator").agg(annotated=("lead_time", "size"), median_lead_time=("lead_time", "median"))
seconds = time.perf_counter() - began
assert len(table) == 30
print(f"{seconds:.3f} {peak_mb():.1f} {int(table['annotated'].sum())}")
"""


def generate(folder: Path, n: int) -> tuple[Path, Path]:
    """(project file, snapshot): the snapshot sorted by sentence id as `builder pull` writes it, the
    project with a gold file of 5% of its tasks."""
    import numpy as np
    import orjson

    rng = np.random.default_rng(13)
    base = rng.integers(0, ANNOTATORS, n)
    who = np.stack([(base + 10 * k + rng.integers(0, 10, n)) % ANNOTATORS for k in range(3)], axis=1)
    truth = rng.integers(0, 3, n)
    accuracy = np.array(ACCURACY)[who]
    right = rng.random((n, 3)) < accuracy
    wrong = (truth[:, None] + rng.integers(1, 3, (n, 3))) % 3
    answer = np.where(right, truth[:, None], wrong)
    keep_span = rng.random((n, 3, len(SPANS))) < np.where(accuracy > 0.5, 0.95, 0.5)[:, :, None]
    cancelled = rng.random((n, 3)) < 0.02
    empty = rng.random((n, 3)) < 0.5
    lead = np.round(rng.gamma(2.0, 6.0, (n, 3)), 1)
    gold = rng.random(n) < 0.05
    predicted = rng.random(n) < 0.5

    def item(i, from_name, value):
        kind = "labels" if from_name == "entities" else "choices"
        return {"id": f"r{i}", "from_name": from_name, "to_name": "sentence", "type": kind, "value": value}

    def span(start, end, label, text):
        return {"start": start, "end": end, "text": text[start:end], "labels": [label]}

    snapshot, gold_file = folder / "snapshot.jsonl", folder / "gold.jsonl"
    with open(snapshot, "wb") as out, open(gold_file, "wb") as gold_out:
        for i in range(n):
            text = TEXT.format(i)
            sentence = {
                "id": f"s{i:08d}",
                "article_id": f"article-{i // 30}",
                "sentence_index": i % 30,
                "text": text,
                "start": 0,
                "end": len(text),
            }
            annotations = []
            for k in range(3):
                result = [item(0, "stance", {"choices": [STANCES[answer[i, k]]]})]
                result += [item(j + 1, "entities", span(*s, text)) for j, s in enumerate(SPANS) if keep_span[i, k, j]]
                if cancelled[i, k] and empty[i, k]:
                    result = []
                annotations.append(
                    {
                        "id": 3 * i + k,
                        "annotator": f"annotator-{who[i, k]:08x}",
                        "result": result,
                        "was_cancelled": bool(cancelled[i, k]),
                        "ground_truth": False,
                        "lead_time": float(lead[i, k]),
                    }
                )
            predictions = []
            if predicted[i]:
                result = [item(j, "entities", span(*s, text)) for j, s in enumerate(SPANS[:2])]
                predictions.append({"model_version": "builder-gazetteer/1", "score": None, "result": result})
            data = {**sentence, "sentence_id": sentence.pop("id"), "prev_text": "", "next_text": "", "target": "t"}
            task = {"task_id": i + 1, "data": data, "annotations": annotations, "predictions": predictions}
            out.write(orjson.dumps(task, option=orjson.OPT_SORT_KEYS) + b"\n")
            if gold[i]:
                entities = [{"start": s, "end": e, "label": label} for s, e, label in SPANS]
                answer_line = {**sentence, "id": data["sentence_id"], "stance": STANCES[truth[i]], "entities": entities}
                gold_out.write(orjson.dumps(answer_line) + b"\n")
    project = folder / "builder.toml"
    text = (ROOT / "builder.toml").read_text(encoding="utf-8")
    text = text.replace('guidelines = "guidelines.md"', f'guidelines = "{ROOT / "guidelines.md"}"')
    project.write_text(text + '\n[quality]\ngold = "gold.jsonl"\nmin_gold_accuracy = 0.8\n', encoding="utf-8")
    return project, snapshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        began = time.perf_counter()
        project, snapshot = generate(Path(tmp), args.tasks)
        print(
            f"generated {args.tasks:,} tasks x 3 annotations ({snapshot.stat().st_size / 1e9:.2f} GB) "
            f"in {time.perf_counter() - began:.0f} s",
            flush=True,
        )
        floor_s, floor_mb, floor_n = measure.run_child(FLOOR, snapshot)
        ours_s, ours_mb, ours_n, flagged = measure.run_child(OURS, project, snapshot)
        majority_s, ds_s, iterations, agg_mb, resolved = measure.run_child(AGGREGATION, project, snapshot)
    floor_s, floor_mb, ours_s, ours_mb = float(floor_s), float(floor_mb), float(ours_s), float(ours_mb)
    assert int(floor_n) == int(ours_n), (floor_n, ours_n)  # the same answers counted
    print(f"{'step':<44} {'seconds':>8} {'peak MB':>8} {'vs floor':>9}")
    print(f"{'floor: orjson lines -> DataFrame -> groupby':<44} {floor_s:>8.1f} {floor_mb:>8.0f} {'1.00':>9}")
    print(f"{'builder quality (annotator_report)':<44} {ours_s:>8.1f} {ours_mb:>8.0f} {ours_s / floor_s:>9.2f}")
    print(f"{'aggregation: majority (after the read)':<44} {float(majority_s):>8.2f} {float(agg_mb):>8.0f}")
    if int(iterations) >= 0:
        print(f"{'aggregation: Dawid-Skene EM (after the read)':<44} {float(ds_s):>8.2f} {'':>8} ({iterations} it.)")
    else:
        print("aggregation: Dawid-Skene EM: builder.records.reliability is not importable here, not measured")
    print(
        f"{int(ours_n):,} answers, {flagged} of {ANNOTATORS} annotators flagged, {int(resolved):,} tasks resolved by "
        f"majority; goals: <= 60 s ({'met' if ours_s <= 60 else 'MISSED'}), "
        f"<= 1024 MB ({'met' if max(ours_mb, float(agg_mb)) <= 1024 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
