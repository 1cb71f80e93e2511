"""Big projects with builder's memory flat, on a real Label Studio: the push ledger, pulls in parts,
and peak memory that does not grow with the project (bench/bench_scale.py gives the real figures)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import timedelta

import orjson

from builder.jsonio import write_jsonl
from builder.labelstudio import pull as pull_module
from builder.labelstudio.client import Connection
from builder.labelstudio.project_api import ensure_project, existing_sentence_ids, find_project
from builder.labelstudio.pull import pull
from builder.labelstudio.push import push_sentences, task_for

from .conftest import ROOT, make_project
from .proxy import FailingProxy
from .test_labelstudio import synthetic_sentences, task_count


def counting_proxy(ls: Connection) -> FailingProxy:
    return FailingProxy(ls.url, lambda method, path, count: False)


def listings(proxy: FailingProxy) -> int:
    return proxy.counts[("GET", "/api/tasks/")]


def test_repush_trusts_the_ledger_and_relists_after_deletions(ls, tmp_path):
    project = make_project(tmp_path, "ledger")
    sentences = synthetic_sentences(3000, "L")
    path = tmp_path / "sentences.jsonl"
    write_jsonl(path, sentences)
    with counting_proxy(ls) as proxy:
        via = Connection(proxy.url, ls.api_key, "environment")
        first = push_sentences(via, project, path, batch_size=1000)
        assert (first.created, first.skipped) == (3000, 0)
        assert listings(proxy) == 0  # a new project: the empty ledger agrees with 0 tasks

        again = push_sentences(via, project, path, batch_size=1000)
        assert (again.created, again.skipped) == (0, 3000)
        assert listings(proxy) == 0, "an unchanged project is never listed"
        assert proxy.counts[("POST", f"/api/projects/{first.project_id}/import")] == 3

        doomed = sorted(t.id for t in ls.client().tasks.list(project=first.project_id, page_size=50))[:7]
        response = ls.http().request(
            "api/dm/actions",
            method="POST",
            params={"id": "delete_tasks", "project": first.project_id},
            json={"selectedItems": {"all": False, "included": doomed}},
        )
        assert response.status_code < 300, response.text
        assert task_count(ls, first.project_id) == 2993

        refilled = push_sentences(via, project, path, batch_size=1000)
        assert (refilled.created, refilled.skipped) == (7, 2993)
        assert listings(proxy) == 1  # counts differed: one listing (3,000 tasks fit a page)
        assert task_count(ls, first.project_id) == 3000
        assert existing_sentence_ids(ls, first.project_id) == {s["id"] for s in sentences}

        last = push_sentences(via, project, path, batch_size=1000)
        assert (last.created, listings(proxy)) == (0, 1)
    ledger = tmp_path / ".builder" / "push-ledger.sqlite3"
    assert ledger.stat().st_mode & 0o777 == 0o600


def test_a_corrupt_ledger_is_rebuilt(ls, tmp_path):
    project = make_project(tmp_path, "corrupt ledger")
    sentences = synthetic_sentences(20, "C")
    push_sentences(ls, project, sentences)
    ledger = tmp_path / ".builder" / "push-ledger.sqlite3"
    ledger.write_bytes(b"not a database at all" * 100)
    again = push_sentences(ls, project, sentences + synthetic_sentences(22, "C")[20:])
    assert (again.created, again.skipped) == (2, 20)
    ledger.unlink()  # SQLite, but of another shape: rebuilt too, never a traceback
    import sqlite3

    foreign = sqlite3.connect(ledger)
    foreign.execute("CREATE TABLE projects (x)")
    foreign.commit()
    foreign.close()
    third = push_sentences(ls, project, synthetic_sentences(23, "C"))
    assert (third.created, third.skipped) == (1, 22)


def annotated_tasks(project, n: int, prefix: str) -> list[dict]:
    """Tasks as builder pushes them, each with one annotation (imported in bulk: fast)."""
    tasks = []
    for i, sentence in enumerate(synthetic_sentences(n, prefix)):
        task = task_for(sentence, project, None)
        stance = ("favor", "against", "neutral")[i % 3]
        result = [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}}]
        task["annotations"] = [{"result": result, "was_cancelled": i % 17 == 0, "lead_time": 2.5}]
        tasks.append(task)
    return tasks


def import_annotated(ls: Connection, project, n: int, prefix: str) -> int:
    project_id, _ = ensure_project(ls, project)
    tasks = annotated_tasks(project, n, prefix)
    for begin in range(0, n, 1000):
        response = ls.http().request(
            f"api/projects/{project_id}/import",
            method="POST",
            params={"return_task_ids": "false"},
            content=orjson.dumps(tasks[begin : begin + 1000]),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code < 300, response.text
    return project_id


def test_pull_in_parts_equals_pull_in_one_part(ls, tmp_path, monkeypatch):
    monkeypatch.setattr(pull_module, "SINCE_MARGIN", timedelta(0))  # re-fetch only what changed
    project = make_project(tmp_path, "parts")
    # the promise is the parts' seams, not the size: 1,040 tasks in parts of 220 cross as many seams (4) as
    # the 3,040 in parts of 700 this once took (~4 times as long: each pull exports every task)
    project_id = import_annotated(ls, project, 1000, "P")
    push_sentences(ls, project, synthetic_sentences(40, "Pu"))  # and some tasks without annotations
    time.sleep(1.1)  # the server's clock has whole seconds
    one = pull(ls, project, tmp_path / "one.jsonl")
    with counting_proxy(ls) as proxy:
        via = Connection(proxy.url, ls.api_key, "environment")
        parts = pull(via, project, tmp_path / "parts.jsonl", part_size=220)
        exports = sum(n for (method, path), n in proxy.counts.items() if method == "POST" and "/exports" in path)
    assert exports == 5, proxy.counts  # 1,040 tasks in parts of 220
    assert (one.fetched, one.written, one.unannotated) == (parts.fetched, parts.written, parts.unannotated)
    assert (one.fetched, one.written) == (1040, 1000)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "parts.jsonl").read_bytes()

    time.sleep(1.1)
    client = ls.client()
    for task in sorted(t.id for t in client.tasks.list(project=project_id, page_size=5))[:5]:
        result = [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": ["favor"]}}]
        client.annotations.create(id=task, result=result, lead_time=1.0)
    incremental = pull(ls, project, tmp_path / "one.jsonl", since_last=True, part_size=2)  # 5 changed: 3 parts
    assert incremental.incremental and incremental.fetched == 5, incremental
    full = pull(ls, project, tmp_path / "parts.jsonl")
    assert full.written == incremental.written == 1000
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "parts.jsonl").read_bytes()
    assert not list((tmp_path / ".builder").glob("pull-[0-9]*"))  # the pull's temporary folder is gone


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from builder.labelstudio.client import Connection
    from builder.project import load_project
    what, url, key, root, path = sys.argv[1:6]
    connection = Connection(url, key, "environment")
    project = load_project(Path(root) / "builder.toml")
    if what == "push":
        from builder.labelstudio.push import push_sentences
        push_sentences(connection, project, Path(path), batch_size=500)
    else:
        from builder.labelstudio.pull import pull
        pull(connection, project, Path(path), part_size=2000)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) / 1024)
    """
)


def peak_mb(what: str, ls: Connection, root, path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, what, ls.url, ls.api_key, str(root), str(path)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(root)},
    )
    assert done.returncode == 0, done.stderr
    return float(done.stdout.split()[-1])


def test_peak_memory_does_not_grow_with_the_project(ls, tmp_path):
    peaks = {}
    for n in (1000, 5000):
        folder = tmp_path / f"m{n}"
        project = make_project(folder, f"memory {n}")
        path = folder / "sentences.jsonl"
        write_jsonl(path, synthetic_sentences(n, f"M{n}-"))
        push = peak_mb("push", ls, folder, path)
        pulled = make_project(folder / "pull", f"memory pull {n}")
        import_annotated(ls, pulled, n, f"MP{n}-")
        peaks[n] = (push, peak_mb("pull", ls, folder / "pull", folder / "pull" / "snapshot.jsonl"))
        assert len((folder / "pull" / "snapshot.jsonl").read_bytes().splitlines()) == n
        project_id = find_project(ls, project)  # the push made its project, with a task per sentence
        assert project_id is not None and task_count(ls, project_id) == n
    (push_small, pull_small), (push_big, pull_big) = peaks[1000], peaks[5000]
    # 4,000 more tasks held as Python objects would take ~40-80 MB more; streamed, a few MB of noise
    assert push_big - push_small < 8, peaks
    assert pull_big - pull_small < 8, peaks
