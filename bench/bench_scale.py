"""A 200,000-task project: builder's push and pull beside Label Studio's own figures, same run.

Starts its own Label Studio (SQLite unless `--db` is given) in a throw-away folder, then:

1. baseline: one plain SDK bulk import of the N tasks into a fresh project; builder's push of the
   same N sentences (a sentences file) into another (goal: >= 0.9x the baseline's speed);
2. a re-push of the unchanged project (goal <= 5 s: the push ledger, no task listing);
3. a project of N tasks each with an annotation (bulk-imported): Label Studio's own export of it
   (create + download) against builder's full pull (goal <= 1.5x), then `--changed` tasks get an
   annotation and builder's incremental pull runs (goal <= 5 s); it must equal a full pull byte for byte;
4. builder's peak memory (VmHWM of the child process doing each push and pull) at N and at
   `--memory-at` tasks (goal: the same within 20%, <= 300 MB).

    python bench/bench_scale.py [--tasks 200000] [--changed 1000] [--memory-at 20000] [--db postgresql]

Each builder step runs in a fresh child process, so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson
from measure import run_child

from builder.jsonio import write_jsonl
from builder.labeling_config import labeling_config
from builder.labelstudio import server
from builder.labelstudio.client import Connection
from builder.labelstudio.project_api import ensure_project
from builder.labelstudio.push import task_for
from builder.project import load_project, project_from_dict

ROOT = Path(__file__).resolve().parents[1]
IMPORT_BATCH = 10_000  # tasks per request when the bench itself imports annotated tasks

CHILD = """
import sys, time
from pathlib import Path
from measure import peak_mb
from builder.labelstudio.client import Connection
from builder.project import load_project
what, url, key, root, path = sys.argv[1:6]
connection = Connection(url, key, "environment")
project = load_project(Path(root) / "builder.toml")
began = time.perf_counter()
if what == "push":
    from builder.labelstudio.push import push_sentences
    result = push_sentences(connection, project, Path(path), predictor=None, progress=False)
    count = result.created
else:
    from builder.labelstudio.pull import pull
    result = pull(connection, project, Path(path), since_last=what == "incremental")
    assert result.incremental == (what == "incremental"), result.why_full
    count = result.fetched
print(time.perf_counter() - began, peak_mb(), count)
"""


def sentences(n: int, prefix: str) -> list[dict]:
    return [
        {
            "id": f"{prefix}{i:07d}",
            "article_id": f"article-{i // 40}",
            "article_title": f"Article {i // 40}",
            "sentence_index": i % 40,
            "start": 0,
            "end": 60,
            "text": f"Sentence {i}: officials in Moscow and Pyongyang discussed the talks.",
            "prev_text": "The previous sentence gives context.",
            "next_text": "The next sentence gives more.",
            "occurrence": 0,
        }
        for i in range(n)
    ]


def project_in(folder: Path, base, title: str):
    """A project folder of its own (builder.toml, its own .builder/) for one Label Studio project."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "builder.toml").read_text(encoding="utf-8")
    text = text.replace(f'project_title = "{base.project_title}"', f'project_title = "{title}"')
    text = text.replace('guidelines = "guidelines.md"', f'guidelines = "{ROOT / "guidelines.md"}"')
    (folder / "builder.toml").write_text(text, encoding="utf-8")
    return load_project(folder / "builder.toml")


def child(what: str, connection: Connection, folder: Path, path: Path) -> tuple[float, float, int]:
    seconds, peak, count = run_child(CHILD, what, connection.url, connection.api_key, folder, path)
    return float(seconds), float(peak), int(count)


def sdk(connection: Connection):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=connection.url, api_key=connection.api_key, timeout=3600)


def annotated_project(connection: Connection, project, n: int, prefix: str) -> int:
    """A project of n tasks, each with one annotation, imported in bulk."""
    project_id, _ = ensure_project(connection, project)
    http = sdk(connection)._client_wrapper.httpx_client
    for begin in range(0, n, IMPORT_BATCH):
        batch = []
        for i, sentence in enumerate(sentences(min(n, begin + IMPORT_BATCH), prefix)[begin:], begin):
            task = task_for(sentence, project, None)
            stance = ("favor", "against", "neutral")[i % 3]
            result = [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}}]
            task["annotations"] = [{"result": result, "lead_time": 3.0}]
            batch.append(task)
        response = http.request(
            f"api/projects/{project_id}/import",
            method="POST",
            params={"return_task_ids": "false"},
            content=orjson.dumps(batch),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code < 300, response.text[:300]
    return project_id


def label_studio_export(connection: Connection, project_id: int, destination: Path) -> float:
    """Label Studio's own snapshot export of the project (create, then download): seconds."""
    client = sdk(connection)
    began = time.perf_counter()
    export = client.projects.exports.create(
        project_id, title="bench", serialization_options={"predictions": {"only_id": False}}
    )
    while client.projects.exports.get(project_id, export.id).status not in ("completed", "failed"):
        time.sleep(0.2)
    with open(destination, "wb") as out:
        for chunk in client.projects.exports.download(project_id, export.id, export_type="JSON"):
            out.write(chunk)
    seconds = time.perf_counter() - began
    client.projects.exports.delete(project_id, export.id)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--changed", type=int, default=1000)
    parser.add_argument("--memory-at", type=int, default=20_000, help="a second project size for peak memory")
    parser.add_argument("--db", default=None, help="Label Studio's database (passed to server.start when given)")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    tmp.chmod(0o711)  # PostgreSQL runs as its own user when we are root: it must pass through
    state = server.start(tmp, args.port, log=print, database=args.db)
    connection = Connection(state.url, state.token, "local server", state.data_dir)
    try:
        run(connection, load_project(ROOT / "builder.toml"), args, tmp)
    finally:
        server.stop(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def run(connection: Connection, base, args, tmp: Path) -> None:
    n = args.tasks
    stamp = time.strftime("%H%M%S")
    client = sdk(connection)
    print(f"Label Studio at {connection.url} ({args.db or 'sqlite'}); {n:,} tasks", flush=True)

    # 1. push: one plain SDK bulk import, then builder's push of the same sentences
    data = sentences(n, "s")
    plain = project_from_dict(dict(base.raw, label_studio={"project_title": f"scale baseline {stamp}"}), base.source)
    tasks = [task_for(s, plain, None) for s in data]
    project_id = client.projects.create(title=plain.project_title, label_config=labeling_config(plain)).id
    began = time.perf_counter()
    client.projects.import_tasks(project_id, request=tasks, return_task_ids=False)
    baseline_s = time.perf_counter() - began
    del tasks
    pushed = tmp / "push"
    project_in(pushed, base, f"scale push {stamp}")
    path = pushed / "sentences.jsonl"
    write_jsonl(path, data)
    del data
    push_s, push_mb, created = child("push", connection, pushed, path)
    assert created == n, created
    repush_s, repush_mb, created = child("push", connection, pushed, path)
    assert created == 0, created

    # 2. pull: Label Studio's own export against builder's full pull, then an incremental pull
    pulled = tmp / "pull"
    pull_project = project_in(pulled, base, f"scale pull {stamp}")
    began = time.perf_counter()
    pull_id = annotated_project(connection, pull_project, n, "a")
    import_s = time.perf_counter() - began
    export_s = label_studio_export(connection, pull_id, tmp / "ls-export.json")
    export_mb = (tmp / "ls-export.json").stat().st_size / 1e6
    (tmp / "ls-export.json").unlink()
    snapshot = pulled / "annotations" / "snapshot.jsonl"
    full_s, full_mb, _ = child("full", connection, pulled, snapshot)
    ids = [t.id for t in itertools.islice(client.tasks.list(project=pull_id, page_size=args.changed), args.changed)]
    began = time.perf_counter()
    for task_id in ids:
        client.annotations.create(
            id=task_id,
            result=[{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": ["favor"]}}],
        )
    change_s = time.perf_counter() - began
    incremental_s, incremental_mb, fetched = child("incremental", connection, pulled, snapshot)
    child("full", connection, pulled, pulled / "full.jsonl")
    same = snapshot.read_bytes() == (pulled / "full.jsonl").read_bytes()

    # 3. peak memory at a second size
    small = {}
    if args.memory_at and args.memory_at != n:
        m = args.memory_at
        folder = tmp / "small-push"
        project_in(folder, base, f"scale small push {stamp}")
        write_jsonl(folder / "sentences.jsonl", sentences(m, "m"))
        small["push"] = child("push", connection, folder, folder / "sentences.jsonl")[1]
        small["re-push"] = child("push", connection, folder, folder / "sentences.jsonl")[1]
        folder = tmp / "small-pull"
        annotated_project(connection, project_in(folder, base, f"scale small pull {stamp}"), m, "b")
        small["full pull"] = child("full", connection, folder, folder / "annotations" / "snapshot.jsonl")[1]
        small["incremental pull"] = child("incremental", connection, folder, folder / "annotations" / "snapshot.jsonl")[
            1
        ]

    print(f"\n{n:,} tasks on Label Studio with {args.db or 'sqlite'}")
    print(f"  SDK bulk import (baseline, one request): {baseline_s:8.2f} s  {n / baseline_s:8,.0f} tasks/s")
    print(f"  builder push:                            {push_s:8.2f} s  {n / push_s:8,.0f} tasks/s")
    print(f"  ratio builder/baseline speed:            {baseline_s / push_s:8.2f}    (goal >= 0.9)")
    print(f"  re-push, nothing new:                    {repush_s:8.2f} s             (goal <= 5 s)")
    print(f"  (bulk import of {n:,} annotated tasks for the pull: {import_s:.1f} s)")
    print(f"  Label Studio's own export (create + download, {export_mb:,.0f} MB): {export_s:8.2f} s")
    print(f"  builder full pull:                       {full_s:8.2f} s  ratio {full_s / export_s:.2f} (goal <= 1.5)")
    print(f"  ({len(ids):,} tasks annotated through the API: {change_s:.1f} s)")
    print(f"  builder incremental pull:                {incremental_s:8.2f} s  ({fetched:,} exported; goal <= 5 s)")
    print(f"  incremental snapshot == full snapshot:   {'yes' if same else 'NO'}")
    print("  builder's peak memory (VmHWM of the child process), MB:")
    rows = {"push": push_mb, "re-push": repush_mb, "full pull": full_mb, "incremental pull": incremental_mb}
    for step, big in rows.items():
        at_small = f"{small[step]:7.1f} at {args.memory_at:,}; " if step in small else ""
        ratio = f"  ratio {big / small[step]:.2f}" if step in small else ""
        print(f"    {step:17s} {at_small}{big:7.1f} at {n:,}{ratio}   (goal: within 20%, <= 300 MB)")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
