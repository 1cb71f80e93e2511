"""The incremental pull's in-place merge against the one-pass merge it stands in for (no Label Studio).

The in-place merge parses only the changed lines of the old snapshot and copies the rest in runs; it
must write exactly what the one-pass merge writes, with the same counts, or decline.
"""

from __future__ import annotations

import random
from array import array
from collections import Counter

import pytest

from builder.records.snapshot import Counts, InPlaceMerge, TaskStore, merge_rows, snapshot_rows, sorted_member


def _task(task_id: int, sentence_id: str, rng: random.Random) -> dict:
    stance = rng.choice(["favor", "against", "neutral"])
    annotations = [
        {
            "id": task_id * 10 + k,
            "annotator": f"annotator-{k:012x}",
            "result": [] if k == 2 else [{"from_name": "stance", "value": {"choices": [stance]}}],
            "was_cancelled": k == 2,
            "ground_truth": False,
            "lead_time": 1.5,
        }
        for k in range(rng.randint(1, 3))
    ]
    predictions = [{"model_version": "m/1", "score": None, "result": []}] if rng.random() < 0.3 else []
    # Hostile text: what the in-place merge must not be fooled by (it reads the task id from the end).
    text = rng.choice(["plain", 'quote " and ,"task_id":7}', "newline \\n escaped", "ünïcödé 🙂"])
    return {
        "task_id": task_id,
        "data": {"sentence_id": sentence_id, "text": text},
        "annotations": annotations,
        "predictions": predictions,
    }


def _snapshot(tmp_path, tasks: list[dict]):
    store = TaskStore(tmp_path / "old.sqlite3")
    for task in tasks:
        store.add(task)
    counts, path = Counts(), tmp_path / "snapshot.jsonl"
    with open(path, "wb") as out:
        for _, _, line, row_counts in store.rows():
            out.write(line)
            counts.add(row_counts)
    store.close()
    return path, counts


@pytest.mark.parametrize("seed", range(25))
def test_the_in_place_merge_writes_what_the_one_pass_merge_writes(tmp_path, seed):
    rng = random.Random(seed)
    ids = rng.sample(range(1, 5000), rng.randint(1, 400))
    old = [_task(i, f"s{rng.randint(0, 300):04d}", rng) for i in ids]  # shared sentence ids: ties on the key
    path, counts = _snapshot(tmp_path, old)
    fresh = TaskStore(tmp_path / "fresh.sqlite3")
    changed = array("q")
    for task in rng.sample(old, rng.randint(0, min(len(old), 70))):
        changed.append(task["task_id"])
        if rng.random() < 0.8:  # re-annotated, perhaps under another sentence id; else no annotation left
            sentence = task["data"]["sentence_id"] if rng.random() < 0.7 else f"s{rng.randint(0, 300):04d}"
            fresh.add(_task(task["task_id"], sentence, rng))
    for new_id in rng.sample(range(5000, 6000), rng.randint(0, 30)):  # newly annotated tasks
        changed.append(new_id)
        fresh.add(_task(new_id, f"s{rng.randint(0, 301):04d}", rng))
    changed = array("q", sorted(changed))

    expected_counts, removed = merge_rows(
        snapshot_rows(path), fresh, sorted_member(changed), tmp_path / "one-pass", None
    )
    merge = InPlaceMerge.prepare(path, fresh, changed, counts, None)
    assert merge is not None
    written = merge.written()
    got = b"".join(written.chunks)
    assert got == (tmp_path / "one-pass").read_bytes()
    assert written.lines == got.count(b"\n") and merge.removed == removed
    assert written.counts.to_state() == expected_counts.to_state()
    assert Counts.from_state(written.counts.to_state()) == written.counts
    fresh.close()


def test_the_in_place_merge_declines_what_it_cannot_trust(tmp_path):
    rng = random.Random(1)
    path, counts = _snapshot(tmp_path, [_task(i, f"s{i}", rng) for i in range(1, 50)])
    fresh = TaskStore(tmp_path / "fresh.sqlite3")
    fresh.add(_task(3, "s3", rng))
    changed = array("q", [3])
    assert InPlaceMerge.prepare(path, fresh, changed, None, None) is None  # no counts kept (older state)
    wrong = Counts(counts.tasks + 1, counts.annotations, counts.predictions, counts.cancelled)
    assert InPlaceMerge.prepare(path, fresh, changed, wrong, None) is None  # counts of another file
    many = array("q", range(1, 200))
    assert InPlaceMerge.prepare(path, fresh, many, counts, None) is None  # more than 100 and 1%: one pass is cheaper
    path.write_bytes(path.read_bytes().replace(b'"task_id":10}', b'"task_id": 10}'))  # not builder's formatting
    assert InPlaceMerge.prepare(path, fresh, changed, counts, None) is None
    fresh.close()


def test_counts_from_a_malformed_state_are_refused():
    assert Counts.from_state(None) is None
    assert Counts.from_state({"tasks": 1, "annotations": 1, "predictions": 0}) is None
    assert Counts.from_state({"tasks": -1, "annotations": 1, "predictions": 0, "cancelled": {}}) is None
    assert Counts.from_state({"tasks": 1, "annotations": 1, "predictions": 0, "cancelled": {"x": 1}}) is None
    kept = Counts.from_state({"tasks": 2, "annotations": 3, "predictions": 0, "cancelled": {"1": 1}})
    assert kept == Counts(2, 3, 0, Counter({1: 1}))
