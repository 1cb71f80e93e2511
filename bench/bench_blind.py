"""Blind against shared (issue 26): push and full pull of the same sentences, 5 annotators, 2 per sentence.

Starts its own Label Studio (SQLite) in a throw-away folder, makes 5 annotator accounts, then, in the same run:

1. shared: builder's push of N sentences into one project (2 annotators per task); every task gets 2
   annotations by 2 of the 5 annotators; builder's full pull;
2. blind (`blind = true`, the same builder.toml otherwise): builder's blind push of the same N sentences (the
   5 accounts moved into organizations of their own, each sentence given to 2 of them, 5 copies holding 2N
   tasks in all); every copy's task gets its annotator's annotation; builder's full blind pull (5 copies
   pulled, merged into one snapshot).

Each way's full pull runs `--pulls` times (2), alternated with the other way's; the fastest of each is compared.
The annotations are written straight into Label Studio's database (Django's bulk_create in the server's own
environment): labelling is not what is measured. Goal: blind <= 1.5x shared for push and for pull, builder's
peak memory (VmHWM of the child process doing each step) about the same.

    python bench/bench_blind.py [--sentences 20000] [--annotators 5] [--pulls 2]

Each builder step runs in a fresh child process, so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_scale import project_in, sentences
from measure import run_child

from builder.jsonio import write_jsonl
from builder.labelstudio import server
from builder.labelstudio.accounts import add_annotators
from builder.labelstudio.blind_push import copy_project
from builder.labelstudio.client import Connection
from builder.labelstudio.isolation import read_organizations
from builder.labelstudio.project_api import find_project
from builder.project import load_project

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CHILD = """
import sys, time
from pathlib import Path
from measure import peak_mb
from builder.labelstudio.client import Connection
from builder.project import load_project
what, url, key, root, path = sys.argv[1:6]
connection = Connection(url, key, "local server", sys.argv[6] or None)
project = load_project(Path(root) / "builder.toml")
isolating = [0.0]
began = time.perf_counter()
if what == "push":
    from builder.labelstudio.push import push_sentences
    count = push_sentences(connection, project, Path(path), predictor=None, progress=False).created
elif what == "blind-push":
    from builder.labelstudio import blind_push
    isolate = blind_push.isolate_members
    def timed(*args):
        start = time.perf_counter()
        try:
            return isolate(*args)
        finally:
            isolating[0] += time.perf_counter() - start
    blind_push.isolate_members = timed
    count = blind_push.push_blind(connection, project, Path(path)).created
elif what == "pull":
    from builder.labelstudio.pull import pull
    count = pull(connection, project, Path(path)).written
else:
    from builder.labelstudio.blind_pull import pull_blind
    count = pull_blind(connection, project, Path(path)).written
print(time.perf_counter() - began, peak_mb(), count, isolating[0])
"""

# Run by the server's own Python (Label Studio's Django models): every task of each listed project gets
# `per_task` annotations, by consecutive accounts of `emails` (distinct per task).
ANNOTATE = """
import json, os, sys
import label_studio
sys.path.insert(0, os.path.dirname(label_studio.__file__))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings.label_studio")
import django
django.setup()
from django.db import transaction
from tasks.models import Annotation, Task
from users.models import User
made = 0
for item in json.load(sys.stdin):
    users = [User.objects.get(email=email).id for email in item["emails"]]
    tasks = Task.objects.filter(project_id=item["project"]).order_by("id").values_list("id", flat=True)
    rows = []
    for i, task_id in enumerate(tasks):
        for k in range(item["per_task"]):
            stance = ("favor", "against", "neutral")[(task_id + k) % 3]
            result = [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}}]
            rows.append(Annotation(task_id=task_id, project_id=item["project"], result=result, lead_time=3.0,
                                   completed_by_id=users[(i + k) % len(users)]))
    with transaction.atomic():
        Annotation.objects.bulk_create(rows, batch_size=2000)
        Task.objects.filter(project_id=item["project"]).update(total_annotations=item["per_task"], is_labeled=True)
    made += len(rows)
print(made)
"""


def child(what: str, connection: Connection, folder: Path, path: Path) -> tuple[float, float, int, float]:
    try:
        seconds, peak, count, isolating = run_child(
            CHILD, what, connection.url, connection.api_key, folder, path, connection.data_dir or ""
        )
    except subprocess.CalledProcessError as failed:  # say why (the child's own traceback), not only that it failed
        sys.exit(f"{what} failed:\n{(failed.stderr or '')[-4000:]}")
    return float(seconds), float(peak), int(count), float(isolating)


def annotate(state: server.ServerState, spec: list[dict]) -> int:
    """Write the annotations `spec` asks for straight into Label Studio's database; how many."""
    python = server.ensure_installed(lambda message: None).parent / "python"
    done = subprocess.run(
        [str(python), "-c", ANNOTATE],
        input=json.dumps(spec),
        env=server._server_environment(state),
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=20_000)
    parser.add_argument("--annotators", type=int, default=5)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--pulls", type=int, default=2, help="full pulls each way, alternated; the fastest counts")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-blind-"))
    state = server.start(tmp, args.port or free_port(), timeout=1200, log=print)
    connection = Connection(state.url, state.token, "local server", state.data_dir)
    try:
        run(connection, state, load_project(ROOT / "builder.toml"), args, tmp)
    finally:
        server.stop(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def run(connection: Connection, state: server.ServerState, base, args, tmp: Path) -> None:
    n, stamp = args.sentences, time.strftime("%H%M%S")
    print(f"Label Studio at {connection.url} (sqlite); {n:,} sentences, {args.annotators} annotators", flush=True)
    emails = [f"annotator{i}@example.org" for i in range(args.annotators)]
    add_annotators(connection, emails)
    path = tmp / "sentences.jsonl"
    write_jsonl(path, sentences(n, "s"))

    # 1. shared: one project, 2 annotators per task
    shared_folder = tmp / "shared"
    shared = project_in(shared_folder, base, f"shared {stamp}")
    assert shared.annotators_per_sentence == 2 and shared.blind is not True
    shared_push = child("push", connection, shared_folder, path)
    assert shared_push[2] == n, shared_push
    shared_id = find_project(connection, shared)
    annotated = annotate(state, [{"project": shared_id, "emails": emails, "per_task": 2}])

    # 2. blind: the server's own folder is the project's (blind needs builder's local server of the project)
    blind = project_in(tmp, base, f"blind {stamp}")
    toml = (tmp / "builder.toml").read_text(encoding="utf-8")
    (tmp / "builder.toml").write_text(toml.replace("[annotation]\n", "[annotation]\nblind = true\n", 1), "utf-8")
    blind = load_project(tmp / "builder.toml")
    blind_push = child("blind-push", connection, tmp, path)
    assert blind_push[2] == n, blind_push
    copies, copy = read_organizations(tmp), copy_project(blind)
    spec = [
        {"project": find_project(entry.connection(connection.url), copy), "emails": [email], "per_task": 1}
        for email, entry in sorted(copies.items())
    ]
    assert annotate(state, spec) == annotated == 2 * n
    # the full pulls, alternated (shared, blind, shared, ...) `--pulls` times each: the fastest of each way is
    # compared, so that a burst of load on this shared machine during one of them does not decide the ratio
    shared_pulls, blind_pulls = [], []
    for _ in range(args.pulls):
        shared_pulls.append(child("pull", connection, shared_folder, shared_folder / "snapshot.jsonl"))
        blind_pulls.append(child("blind-pull", connection, tmp, tmp / "blind-snapshot.jsonl"))
        assert shared_pulls[-1][2] == blind_pulls[-1][2] == n, (shared_pulls, blind_pulls)
    shared_pull, blind_pull = min(shared_pulls), min(blind_pulls)
    shared_lines = (shared_folder / "snapshot.jsonl").read_bytes().count(b"\n")
    blind_lines = (tmp / "blind-snapshot.jsonl").read_bytes().count(b"\n")

    print(f"\n{n:,} sentences, {args.annotators} annotators, 2 per sentence ({2 * n:,} annotations each way)")
    print(f"  shared push ({n:,} tasks, one project):      {shared_push[0]:8.2f} s  peak {shared_push[1]:6.1f} MB")
    copies_line = f"  blind push ({2 * n:,} tasks, {len(copies)} copies):"
    print(
        f"{copies_line:46s}{blind_push[0]:8.2f} s  peak {blind_push[1]:6.1f} MB"
        f"  (of which moving the accounts into their organizations {blind_push[3]:.2f} s)"
    )
    pushing = blind_push[0] - blind_push[3]
    print(f"  ratio blind/shared push:                    {blind_push[0] / shared_push[0]:8.2f}")
    print(f"    without moving the accounts (once a project): {pushing / shared_push[0]:.2f}    (goal <= 1.5)")
    every = f"  (each run: {', '.join(f'{p[0]:.2f}' for p in shared_pulls)} s)" if args.pulls > 1 else ""
    print(
        f"  shared full pull:                           {shared_pull[0]:8.2f} s  peak {shared_pull[1]:6.1f} MB{every}"
    )
    every = f"  (each run: {', '.join(f'{p[0]:.2f}' for p in blind_pulls)} s)" if args.pulls > 1 else ""
    print(f"  blind full pull (5 copies, merged):         {blind_pull[0]:8.2f} s  peak {blind_pull[1]:6.1f} MB{every}")
    print(f"  ratio blind/shared pull:                    {blind_pull[0] / shared_pull[0]:8.2f}    (goal <= 1.5)")
    push_memory, pull_memory = blind_push[1] / shared_push[1], blind_pull[1] / shared_pull[1]
    print(f"  peak memory blind/shared: push {push_memory:.2f}, pull {pull_memory:.2f}    (goal: flat, within 20%)")
    print(f"  snapshot lines: shared {shared_lines:,}, blind {blind_lines:,}")


if __name__ == "__main__":
    main()
