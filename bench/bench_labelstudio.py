"""Push and pull against a real Label Studio.

1. Push 10,000 sentences into a fresh project with `builder push` (batches of 1,000, id checks
   for idempotency) and compare with one plain bulk import of the same tasks through the SDK into
   another fresh project, in the same run. Goal (issue 3): ratio >= 0.8.
2. After 100 tasks changed: time of `builder pull --since-last` against a full pull; then after
   10 annotated tasks were deleted in bulk (no `updated_at` bumped: the incremental pull finds them
   by counts, lists the annotated tasks and drops them). Both incremental snapshots must equal a
   full pull byte for byte.

    python bench/bench_labelstudio.py [--sentences 10000] [--changed 100]

Uses LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY when set, else starts a throw-away local server.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from builder.labeling_config import labeling_config
from builder.labelstudio import server
from builder.labelstudio.client import Connection, resolve_connection
from builder.labelstudio.pull import pull
from builder.labelstudio.push import push_sentences, task_for
from builder.project import load_project, project_from_dict

ROOT = Path(__file__).resolve().parents[1]


def sentences(n: int) -> list[dict]:
    return [
        {
            "id": f"bench{i:07d}",
            "article_id": f"article-{i // 40}",
            "article_title": f"Article {i // 40}",
            "sentence_index": i % 40,
            "start": 0,
            "end": 60,
            "text": f"Sentence {i}: officials in Moscow and Pyongyang discussed the talks.",
            "prev_text": "The previous sentence gives context.",
            "next_text": "The next sentence gives more.",
        }
        for i in range(n)
    ]


def fresh_project(base, title: str):
    raw = dict(base.raw, label_studio={"project_title": title})
    raw["annotation"] = dict(base.raw["annotation"], guidelines=str(base.guidelines_path))
    return project_from_dict(raw, base.source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each side is compared")
    args = parser.parse_args()
    base = load_project(ROOT / "builder.toml")
    tmp = Path(tempfile.mkdtemp(prefix="bench-ls-"))
    started = False
    if os.environ.get("LABEL_STUDIO_URL"):
        connection = resolve_connection(tmp)
    else:
        state = server.start(tmp, None, log=print)
        started = True
        connection = Connection(state.url, state.token, "local server", state.data_dir)
    try:
        run(connection, base, args, tmp)
    finally:
        if started:
            server.stop(tmp)


def run(connection: Connection, base, args, tmp: Path) -> None:
    data = sentences(args.sentences)
    stamp = time.strftime("%H%M%S")
    client = connection.client()

    baseline_times, ours_times = [], []
    for round_ in range(args.rounds):
        # baseline: one plain bulk import of the same tasks through the SDK, into a fresh project
        baseline_project = fresh_project(base, f"bench baseline {stamp}-{round_}")
        tasks = [task_for(s, baseline_project, None) for s in data]
        project_id = client.projects.create(
            title=baseline_project.project_title, label_config=labeling_config(baseline_project)
        ).id
        began = time.perf_counter()
        client.projects.import_tasks(project_id, request=tasks, return_task_ids=False)
        baseline_times.append(time.perf_counter() - began)

        ours_project = fresh_project(base, f"bench push {stamp}-{round_}")
        began = time.perf_counter()
        result = push_sentences(connection, ours_project, data, predictor=None, progress=False)
        ours_times.append(time.perf_counter() - began)
        assert result.created == len(data)
    baseline_s, ours_s = min(baseline_times), min(ours_times)
    began = time.perf_counter()
    again = push_sentences(connection, ours_project, data, predictor=None, progress=False)
    repeat_s = time.perf_counter() - began
    assert again.created == 0

    print(f"push of {len(data):,} sentences, best of {args.rounds} alternating rounds")
    print(
        f"  all rounds (s): baseline {', '.join(f'{t:.2f}' for t in baseline_times)}; "
        f"builder {', '.join(f'{t:.2f}' for t in ours_times)}"
    )
    print(f"  SDK bulk import (baseline): {baseline_s:6.2f} s  {len(data) / baseline_s:8,.0f} tasks/s")
    print(f"  builder push:               {ours_s:6.2f} s  {len(data) / ours_s:8,.0f} tasks/s")
    print(f"  ratio builder/baseline:     {baseline_s / ours_s:.2f}  (goal >= 0.8)")
    print(f"  re-push, all skipped:       {repeat_s:6.2f} s")

    # pull: full, then change tasks, then incremental vs full
    project_dir = tmp / "pull"
    (project_dir / "annotations").mkdir(parents=True)
    raw = dict(ours_project.raw)
    pull_project = project_from_dict(raw, project_dir / "builder.toml")
    ids = [t.id for t in client.tasks.list(project=result.project_id, page_size=args.changed)][: args.changed]
    for task_id in ids[: args.changed // 2]:
        client.annotations.create(
            id=task_id,
            result=[
                {"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": ["neutral"]}}
            ],
        )
    pull(connection, pull_project)
    time.sleep(pull_margin_s() + 1.1)  # as if the next pull came later: nothing is re-fetched for safety
    for task_id in ids:
        client.annotations.create(
            id=task_id,
            result=[{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": ["favor"]}}],
        )
    compare_pulls(
        connection, pull_project, project_dir, f"pull after {len(ids)} tasks changed (project of {len(data):,} tasks)"
    )

    time.sleep(pull_margin_s() + 1.1)
    deleted = ids[:10]
    response = connection.http().request(
        "api/dm/actions",
        method="POST",
        params={"id": "delete_tasks", "project": result.project_id},
        json={"selectedItems": {"all": False, "included": deleted}},
    )
    assert response.status_code < 300, response.text
    compare_pulls(connection, pull_project, project_dir, f"pull after {len(deleted)} annotated tasks deleted in bulk")


def pull_margin_s() -> float:
    from builder.labelstudio.pull import SINCE_MARGIN

    return SINCE_MARGIN.total_seconds()


def compare_pulls(connection: Connection, project, project_dir: Path, title: str) -> None:
    began = time.perf_counter()
    incremental = pull(connection, project, since_last=True)
    incremental_s = time.perf_counter() - began
    began = time.perf_counter()
    full = pull(connection, project, project_dir / "full.jsonl")
    full_s = time.perf_counter() - began
    how = " (counts differed: annotated tasks listed)" if incremental.reconciled else ""
    print(title)
    print(f"  full pull:        {full_s:6.2f} s  ({full.fetched:,} tasks exported)")
    print(f"  incremental pull: {incremental_s:6.2f} s  ({incremental.fetched:,} tasks exported{how})")
    print(f"  speed-up:         x{full_s / incremental_s:.1f}")
    assert incremental.incremental, incremental.why_full
    assert (project_dir / "annotations" / "snapshot.jsonl").read_bytes() == (project_dir / "full.jsonl").read_bytes()
    print("  incremental snapshot == full snapshot: yes")


if __name__ == "__main__":
    main()
