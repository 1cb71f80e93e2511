"""The round trip against a real Label Studio server (started once per session; never mocked)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from builder.errors import LabelStudioError
from builder.jsonio import read_jsonl, write_jsonl
from builder.labeling_config import labeling_config
from builder.labelstudio import server
from builder.labelstudio.client import Connection
from builder.labelstudio.project_api import existing_sentence_ids, find_project
from builder.labelstudio.pull import pull
from builder.labelstudio.push import push_sentences
from builder.labelstudio.task_exports import export_tasks
from builder.labelstudio.users import annotator_connection
from builder.pseudonyms import Pseudonymizer, load_key

from .conftest import ROOT, cli_env, free_port, make_project, run_cli
from .proxy import FailingProxy


def task_count(connection: Connection, project_id: int) -> int:
    return connection.client().projects.get(project_id).task_number


def synthetic_sentences(n: int, prefix: str = "s") -> list[dict]:
    return [
        {
            "id": f"{prefix}{i:06d}",
            "article_id": f"{prefix}-article-{i // 50}",
            "article_title": "Synthetic",
            "sentence_index": i % 50,
            "text": f"Sentence number {i} mentions Moscow and Pyongyang.",
            "start": 0,
            "end": 48,
            "prev_text": "",
            "next_text": "",
        }
        for i in range(n)
    ]


def project_of_running_push(connection: Connection, project) -> int | None:
    """The project a running `builder push` made, once it is bound (between its creation and its binding,
    a moment, it looks like someone else's project of the same title)."""
    try:
        return find_project(connection, project)
    except LabelStudioError:
        return None


def start_push(connection: Connection, path, cwd, batch_size: int) -> subprocess.Popen:
    """`builder push` running in the background (to kill, interrupt or run beside others)."""
    return subprocess.Popen(
        [sys.executable, "-m", "builder", "push", str(path), "--batch-size", str(batch_size), "--predictor", "none"],
        env=cli_env(connection),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_push_sets_up_project_from_scheme_and_is_idempotent(ls, tmp_path, sample_sentences):
    project = make_project(tmp_path, "push twice")
    path, every = sample_sentences
    sentences = [s for s in every if not s["set_aside"]]  # the sample's 4 date lines are never tasks (issue 27)
    assert len(every) - len(sentences) == 4
    first = run_cli("push", path, env=cli_env(ls), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"created {len(sentences)} tasks, skipped 0" in first.stdout
    assert "push: 4 set aside: 4 dateline (not sentences to label), never pushed" in first.stdout
    second = run_cli("push", path, env=cli_env(ls), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"created 0 tasks, skipped {len(sentences)} already present" in second.stdout

    project_id = find_project(ls, project)
    remote = ls.client().projects.get(project_id)
    assert remote.label_config.strip() == labeling_config(project).strip()
    assert remote.maximum_annotations == project.annotators_per_sentence == 2
    assert "Annotation guidelines" in remote.expert_instruction and "Keyboard shortcuts" in remote.expert_instruction
    assert not remote.show_instruction  # not forced over the task: the stream's Instructions button shows them
    assert task_count(ls, project_id) == len(sentences)
    assert existing_sentence_ids(ls, project_id) == {s["id"] for s in sentences}
    assert ls.api_key not in first.stdout + first.stderr + second.stdout + second.stderr


def test_generated_config_is_text_not_hypertext_and_carries_hotkeys(project):
    config = labeling_config(project)
    assert "<HyperText" not in config and '<Text name="sentence" value="$text"' in config
    for label in project.entity_labels:
        assert f'<Label value="{label.value}" background="{label.color}" hotkey="{label.hotkey}"' in config
    for label in project.stance_labels:
        assert f'<Choice value="{label.value}" hotkey="{label.hotkey}"' in config
    assert 'required="true"' in config and "$target" in config and "$prev_text" in config and "$next_text" in config


def test_per_article_target_overrides_project_target(ls, tmp_path):
    project = make_project(tmp_path, "per-article target")
    sentences = synthetic_sentences(2, "t")
    sentences[1]["target"] = "a target of its own"
    result = push_sentences(ls, project, sentences)
    tasks = {t.data["sentence_id"]: t.data for t in ls.client().tasks.list(project=result.project_id)}
    assert tasks["t000000"]["target"] == project.target
    assert tasks["t000001"]["target"] == "a target of its own"


def test_gazetteer_predictions_from_the_dataset_annotations(ls, tmp_path, sample_sentences):
    project = make_project(tmp_path, "predictions", snapshot=ROOT / "annotations" / "snapshot.jsonl")
    path, sentences = sample_sentences
    result = run_cli("push", path, env=cli_env(ls), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    project_id = find_project(ls, project)
    seed = [t for t in export_tasks(ls, project_id) if "Ri Chang Dae" in t["data"]["text"]]
    assert seed
    for task in seed:
        assert task["predictions"] and task["predictions"][0]["model_version"].startswith("builder-gazetteer/1+")
        spans = [r["value"] for r in task["predictions"][0]["result"]]
        assert {"start", "end", "text", "labels"} <= set(spans[0])
        assert any(s["text"] == "Ri Chang Dae" and s["labels"] == ["PER"] for s in spans)
        for span in spans:
            assert task["data"]["text"][span["start"] : span["end"]] == span["text"]
        assert not task["annotations"]  # predictions never become annotations


def test_killed_push_resumes_with_every_sentence_exactly_once(ls, tmp_path):
    project = make_project(tmp_path, "killed push")
    sentences = synthetic_sentences(5000, "k")
    path = tmp_path / "sentences.jsonl"
    write_jsonl(path, sentences)
    process = start_push(ls, path, tmp_path, 250)
    deadline = time.monotonic() + 120
    project_id = None
    while time.monotonic() < deadline:
        project_id = project_id or project_of_running_push(ls, project)
        if project_id and task_count(ls, project_id) >= 250:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    interrupted_at = task_count(ls, project_id)
    assert 0 < interrupted_at < 5000, "the kill should land mid-push"
    rerun = run_cli("push", path, "--batch-size", "250", "--predictor", "none", env=cli_env(ls), cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    after = task_count(ls, project_id)
    assert after == 5000
    ids = existing_sentence_ids(ls, project_id)
    assert len(ids) == 5000 and ids == {s["id"] for s in sentences}


def test_server_error_mid_push_then_rerun(ls, tmp_path):
    project = make_project(tmp_path, "5xx push")
    sentences = synthetic_sentences(1000, "e")
    path = tmp_path / "sentences.jsonl"
    write_jsonl(path, sentences)

    with FailingProxy(ls.url, lambda m, p, c: m == "POST" and "/import" in p and c == 3, status=500) as proxy:
        env = {**cli_env(ls), "LABEL_STUDIO_URL": proxy.url}
        failed = run_cli("push", path, "--batch-size", "200", "--predictor", "none", env=env, cwd=tmp_path)
    assert proxy.failed == 1
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and failed.stderr.startswith("error: ")
    assert "(500)" in failed.stderr and "re-run to resume" in failed.stderr and "Traceback" not in failed.stderr
    project_id = find_project(ls, project)
    assert task_count(ls, project_id) == 400
    rerun = run_cli("push", path, "--batch-size", "200", "--predictor", "none", env=cli_env(ls), cwd=tmp_path)
    assert "created 600 tasks, skipped 400" in rerun.stdout
    assert task_count(ls, project_id) == 1000


def annotate(
    connection: Connection, task_id: int, spans: list[tuple[int, int, str, str]], stance: str, lead_time: float
):
    result = [
        {
            "from_name": "entities",
            "to_name": "sentence",
            "type": "labels",
            "value": {"start": s, "end": e, "text": t, "labels": [label]},
        }
        for s, e, t, label in spans
    ]
    result.append({"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}})
    return connection.client().annotations.create(id=task_id, result=result, lead_time=lead_time)


# E-mails of their own: another module's test may have made alice@ or bob@ on the session's server
ALICE, BOB = f"alice-{uuid.uuid4().hex[:8]}@example.org", f"bob-{uuid.uuid4().hex[:8]}@example.org"


def test_two_annotators_pull_and_incremental_pull(ls, tmp_path, sample_sentences):
    project = make_project(tmp_path, "two annotators")
    _, sentences = sample_sentences
    seed = [s for s in sentences if s["article_id"] == "ri-chang-dae-moscow"][:4]
    others = [s for s in sentences if s["article_id"] != "ri-chang-dae-moscow" and not s.get("set_aside")][:3]
    result = push_sentences(ls, project, seed + others)
    tasks = {t.data["sentence_id"]: t.id for t in ls.client().tasks.list(project=result.project_id)}
    alice = annotator_connection(ls, ALICE, "alice-secret-1")
    bob = annotator_connection(ls, BOB, "bob-secret-22")
    first = seed[0]
    start = first["text"].index("Ri Chang Dae")
    annotate(alice, tasks[first["id"]], [(start, start + 12, "Ri Chang Dae", "PER")], "neutral", 12.5)
    bobs = annotate(bob, tasks[first["id"]], [(start, start + 12, "Ri Chang Dae", "PER")], "favor", 20.0)
    for sentence in seed[1:]:
        annotate(alice, tasks[sentence["id"]], [], "neutral", 5.0)

    snapshot = tmp_path / "annotations" / "snapshot.jsonl"
    pulled = run_cli("pull", env=cli_env(ls), cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert "fetched 7 tasks, 3 without annotations left out; 4 annotated tasks" in pulled.stdout
    lines = snapshot.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["data"]["sentence_id"] for r in records] == sorted(s["id"] for s in seed)
    assert all(
        line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        for line in lines
    )
    by_id = {r["data"]["sentence_id"]: r for r in records}
    record = by_id[first["id"]]
    assert record["task_id"] == tasks[first["id"]]
    assert record["data"]["text"] == first["text"] and record["data"]["article_id"] == first["article_id"]
    assert record["data"]["start"] == first["start"] and record["data"]["end"] == first["end"]
    assert record["data"]["target"] == project.target
    a, b = record["annotations"]
    pseudonym = Pseudonymizer(load_key(tmp_path), project.name)
    assert a["annotator"] == pseudonym(ALICE) and a["annotator"].startswith("annotator-")
    assert b["annotator"] == pseudonym(BOB)
    assert a["lead_time"] == 12.5 and b["lead_time"] == 20.0
    assert a["was_cancelled"] is False and a["ground_truth"] is False
    entity, stance = a["result"]
    assert entity["value"] == {"start": start, "end": start + 12, "text": "Ri Chang Dae", "labels": ["PER"]}
    assert stance["value"] == {"choices": ["neutral"]} and b["result"][1]["value"] == {"choices": ["favor"]}
    text = snapshot.read_text(encoding="utf-8")
    for secret in (ALICE, BOB, ls.api_key, "created_at", "updated_at", "completed_by"):
        assert secret not in text

    # incremental: one annotation changes; tasks updated since the last pull (less a safety margin)
    # come back and are merged into the snapshot
    before = {r["data"]["sentence_id"]: r for r in records}
    time.sleep(1.1)
    bob.client().annotations.update(
        id=bobs.id,
        result=[{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": ["against"]}}],
    )
    incremental = run_cli("pull", "--since-last", env=cli_env(ls), cwd=tmp_path)
    assert incremental.returncode == 0, incremental.stderr
    assert "(changed tasks merged): fetched" in incremental.stdout
    after = {r["data"]["sentence_id"]: r for r in read_jsonl(snapshot)}
    assert after.keys() == before.keys()
    assert after[first["id"]]["annotations"][1]["result"] == [
        {"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": ["against"]}}
    ]
    assert all(after[k] == before[k] for k in before if k != first["id"])

    # the tie (alice neutral, bob against) is listed by `builder review`, with a view to adjudicate in
    review = run_cli("review", env=cli_env(ls), cwd=tmp_path)
    assert review.returncode == 0, review.stderr
    assert first["id"] in review.stdout and "1 unresolved; review them in Label Studio:" in review.stdout
    views = [
        v
        for v in ls.client().views.list(project=result.project_id)
        if (v.data or {}).get("title") == "builder: unresolved stance"
    ]
    assert len(views) == 1
    items = views[0].data["filters"]["items"]
    assert [i["value"] for i in items] == [first["id"]] and items[0]["filter"] == "filter:tasks:data.sentence_id"


def test_review_lists_entity_conflicts_and_an_adjudication_becomes_ground_truth(ls, tmp_path):
    """Issue 24: two annotators label "Moscow" LOC and ORG. `builder review` lists the conflict (the sentence,
    both annotators' spans by pseudonym) beside the stance ties and makes a Label Studio view of it; the
    adjudicator's starred annotation is then the dataset's spans, marked ground_truth."""
    from builder.records.from_snapshot import load_records
    from builder.sentences.segmenter import sentence_id

    project = make_project(tmp_path, "entity review")
    sentences = [  # ids as `builder split` makes them, which validation checks
        {**s, "id": sentence_id(s["article_id"], s["text"], 0), "occurrence": 0, "end": len(s["text"])}
        for s in synthetic_sentences(2, "e")
    ]
    result = push_sentences(ls, project, sentences)
    tasks = {t.data["sentence_id"]: t.id for t in ls.client().tasks.list(project=result.project_id)}
    carol = annotator_connection(ls, "carol@example.org", "carol-secret-1")
    dave = annotator_connection(ls, "dave@example.org", "dave-secret-22")
    conflict, agreed = sentences
    start = conflict["text"].index("Moscow")
    moscow = (start, start + 6, "Moscow")
    annotate(carol, tasks[conflict["id"]], [(*moscow, "LOC")], "neutral", 3.0)
    annotate(dave, tasks[conflict["id"]], [(*moscow, "ORG")], "neutral", 3.0)
    for who in (carol, dave):
        annotate(who, tasks[agreed["id"]], [(*moscow, "LOC")], "neutral", 3.0)
    assert run_cli("pull", env=cli_env(ls), cwd=tmp_path).returncode == 0

    records, _ = load_records(project, project.snapshot_path)
    record = next(r for r in records if r["id"] == conflict["id"])
    assert record["entities"] == [] and [e["label"] for e in record["unresolved_entities"]] == ["LOC", "ORG"]
    review = run_cli("review", env=cli_env(ls), cwd=tmp_path)
    assert review.returncode == 0, review.stderr
    lines = review.stdout.splitlines()
    assert lines[0] == "entity conflicts (1 sentence(s)):"
    assert lines[1] == f"{conflict['id']}  {conflict['article_id']}#0  {conflict['text']}"
    by_annotator = {a["annotator"]: a["entities"][0]["label"] for a in record["annotations"]}
    assert sorted(lines[2:4]) == sorted(
        f"    {name}: {label} 'Moscow' {start}-{start + 6}" for name, label in by_annotator.items()
    )
    assert lines[4] == f"    unresolved: LOC 'Moscow' {start}-{start + 6}; ORG 'Moscow' {start}-{start + 6}"
    assert lines[5].startswith("1 sentence(s) with entity conflicts; review them in Label Studio: ")
    assert "unresolved stance" not in review.stdout and agreed["id"] not in review.stdout
    views = {(v.data or {}).get("title"): v for v in ls.client().views.list(project=result.project_id)}
    assert "builder: unresolved stance" not in views  # no stance tie
    items = views["builder: entity conflicts"].data["filters"]["items"]
    assert [i["value"] for i in items] == [conflict["id"]]
    assert lines[5].endswith(f"/projects/{result.project_id}/data?tab={views['builder: entity conflicts'].id}")

    # the adjudicator adds an annotation and stars it: its spans are the dataset's, marked ground_truth
    decision = annotate(ls, tasks[conflict["id"]], [(*moscow, "LOC")], "neutral", 8.0)
    ls.client().annotations.update(id=decision.id, ground_truth=True)
    assert run_cli("pull", env=cli_env(ls), cwd=tmp_path).returncode == 0
    records, _ = load_records(project, project.snapshot_path)
    record = next(r for r in records if r["id"] == conflict["id"])
    assert record["entities"] == [
        {"start": start, "end": start + 6, "label": "LOC", "text": "Moscow", "status": "ground_truth"}
    ]
    assert record["unresolved_entities"] == []
    again = run_cli("review", env=cli_env(ls), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == "no unresolved sentences\n"


def test_unreachable_server_wrong_token_unknown_project(ls, tmp_path, sample_sentences):
    make_project(tmp_path, "never pushed")
    path, _ = sample_sentences
    snapshot = tmp_path / "annotations" / "snapshot.jsonl"
    snapshot.parent.mkdir()
    previous = '{"annotations":[],"data":{"sentence_id":"x"},"predictions":[],"task_id":0}\n'
    snapshot.write_text(previous, encoding="utf-8")
    cases = [
        ({"LABEL_STUDIO_URL": f"http://127.0.0.1:{free_port()}"}, ["push", path], "cannot reach Label Studio"),
        ({"LABEL_STUDIO_API_KEY": "0123456789abcdef-wrong-token"}, ["push", path], "refused the API key (401)"),
        ({}, ["pull"], "unknown project 'never pushed'"),
    ]
    for overrides, args, expected in cases:
        env = {**cli_env(ls), **overrides}
        result = run_cli(*args, env=env, cwd=tmp_path)
        assert result.returncode == 1, result
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr
        assert env["LABEL_STUDIO_API_KEY"] not in result.stderr + result.stdout
    assert snapshot.read_text(encoding="utf-8") == previous
    env = {k: v for k, v in cli_env(ls).items() if k not in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY")}
    result = run_cli("pull", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "no Label Studio to talk to: run `builder server start`" in result.stderr


def test_failed_pull_leaves_previous_snapshot(ls, tmp_path):
    project = make_project(tmp_path, "failing pull")
    result = push_sentences(ls, project, synthetic_sentences(3, "p"))
    task = next(iter(ls.client().tasks.list(project=result.project_id)))
    annotate(ls, task.id, [], "neutral", 1.0)
    snapshot = tmp_path / "annotations" / "snapshot.jsonl"  # the folder holds the push's label-studio.json
    snapshot.write_text("previous\n", encoding="utf-8")
    with FailingProxy(ls.url, lambda m, p, c: "/download" in p, status=503) as proxy:
        with pytest.raises(LabelStudioError, match=r"failed \(503\) while downloading the export"):
            pull(Connection(proxy.url, ls.api_key, "environment"), project)
    assert snapshot.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in snapshot.parent.iterdir()) == ["label-studio.json", "snapshot.jsonl"]
    pull(ls, project)
    assert len(list(read_jsonl(snapshot))) == 1


@pytest.mark.parametrize("interrupt", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_pull_interrupted_mid_download_keeps_the_previous_snapshot(ls, tmp_path, interrupt):
    """`builder pull --since-last` interrupted for real while it writes the export it downloads (the proxy
    stops the answer halfway, then the signal comes): the previous snapshot and pull state are kept byte
    for byte, nothing is left in the project, an interrupted (SIGINT) pull removes its export from Label
    Studio, and the next pull completes and equals a full pull."""
    from builder.labelstudio.task_exports import EXPORT_TITLE

    from .test_outputs import tree

    project = make_project(tmp_path, f"interrupted pull {interrupt.name}")
    project_id = push_sentences(ls, project, synthetic_sentences(40, f"ip{interrupt.value}-")).project_id
    tasks = sorted(t.id for t in ls.client().tasks.list(project=project_id))
    for task in tasks[:10]:
        annotate(ls, task, [], "neutral", 1.0)
    assert run_cli("pull", env=cli_env(ls), cwd=tmp_path).returncode == 0
    time.sleep(1.1)  # the server's clock has whole seconds
    for task in tasks[10:20]:
        annotate(ls, task, [], "favor", 2.0)
    before = tree(tmp_path)

    def builder_exports() -> list:
        return [e for e in ls.client().projects.exports.list(project_id) if e.title == EXPORT_TITLE]

    with FailingProxy(ls.url, lambda *request: False, hold_when=lambda m, p, c: "/download" in p) as proxy:
        process = subprocess.Popen(
            [sys.executable, "-m", "builder", "pull", "--since-last"],
            env={**cli_env(ls), "LABEL_STUDIO_URL": proxy.url},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proxy.holding.wait(120), "the pull never reached the download"
        assert builder_exports()  # mid-export: Label Studio holds the pull's export
        process.send_signal(interrupt)
        _, stderr = process.communicate(timeout=120)
    work = {name for name in tree(tmp_path) if re.match(r"\.builder/pull-\d+-", name)}  # a pull's own folder
    if interrupt == signal.SIGINT:
        assert process.returncode == 130, stderr
        assert stderr == "error: interrupted; outputs were left as they were before this run\n"
        assert not builder_exports() and not work
    else:  # a killed pull cannot clean up: its folder goes with the next pull, its export after an hour
        assert process.returncode == -signal.SIGKILL
        assert set(tree(tmp_path)) - set(before) == work, work
    assert {name: digest for name, digest in tree(tmp_path).items() if name not in work} == before

    resumed = run_cli("pull", "--since-last", env=cli_env(ls), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    full = run_cli("pull", "-o", tmp_path / "full.jsonl", env=cli_env(ls), cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    snapshot = (tmp_path / "annotations" / "snapshot.jsonl").read_bytes()
    assert snapshot == (tmp_path / "full.jsonl").read_bytes() and snapshot.count(b"\n") == 20
    assert not list((tmp_path / ".builder").glob("pull-*-*"))


def test_state_file_is_private_and_busy_port_is_refused(ls_server, tmp_path):
    mode = os.stat(server.state_path(server_root(ls_server))).st_mode & 0o777
    assert mode == 0o600
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LabelStudioError, match=f"port {port} is busy"):
            server.start(tmp_path, port)
    result = run_cli(
        "server", "stop", cwd=tmp_path, env={k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO")}
    )
    assert "no local Label Studio was running" in result.stdout
    status = run_cli(
        "server", "status", cwd=tmp_path, env={k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO")}
    )
    assert status.returncode == 3 and "no local Label Studio is running" in status.stdout


def server_root(state):
    from pathlib import Path

    return Path(state.data_dir).parents[1]


def test_parallel_pushes_into_a_new_project_make_each_task_once(ls, tmp_path):
    project = make_project(tmp_path, "parallel pushes")
    sentences = synthetic_sentences(2000, "par")
    path = tmp_path / "sentences.jsonl"
    write_jsonl(path, sentences)
    runs = [start_push(ls, path, tmp_path, 500) for _ in range(3)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    created = sorted(int(out.split("push: created ")[1].split(" ")[0]) for out, _ in outputs)
    assert created == [0, 0, 2000]
    assert sum("waiting for another builder push" in err for _, err in outputs) >= 1
    matches = [p for p in ls.client().projects.list(title=project.project_title) if p.title == project.project_title]
    assert len(matches) == 1
    assert task_count(ls, matches[0].id) == 2000


def test_ctrl_c_during_push_says_what_was_imported(ls, tmp_path):
    project = make_project(tmp_path, "interrupted push")
    sentences = synthetic_sentences(5000, "int")
    path = tmp_path / "sentences.jsonl"
    write_jsonl(path, sentences)
    process = start_push(ls, path, tmp_path, 250)
    deadline, project_id = time.monotonic() + 120, None
    while time.monotonic() < deadline:
        project_id = project_id or project_of_running_push(ls, project)
        if project_id and task_count(ls, project_id) >= 500:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.startswith("error: interrupted: ") and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert "left as they were" not in stderr and "re-run the same `builder push` to complete it" in stderr
    reported = int(stderr.split("interrupted: ")[1].split(" of ")[0])
    on_server = task_count(ls, project_id)
    assert 0 < reported <= on_server <= reported + 250 < 5000
    rerun = run_cli("push", path, "--batch-size", "250", "--predictor", "none", env=cli_env(ls), cwd=tmp_path)
    assert rerun.returncode == 0 and f"created {5000 - on_server} tasks, skipped {on_server}" in rerun.stdout
    assert task_count(ls, project_id) == 5000


@pytest.mark.parametrize(
    ("case", "how", "expected"),
    [
        (1, {"drop": True}, "cannot reach Label Studio"),
        (2, {"status": 200, "body": b'{"tasks": "not a list"}'}, "unexpected answer"),
        (3, {"status": 200, "body": b"<html>a proxy's page</html>"}, "unexpected answer"),
    ],
)
def test_server_gone_or_odd_while_push_lists_tasks(ls, tmp_path, case, how, expected):
    project = make_project(tmp_path, f"listing fails {case}")  # a project of each case's own
    push_sentences(ls, project, synthetic_sentences(1, "lst0"))
    (tmp_path / ".builder" / "push-ledger.sqlite3").unlink()  # tasks the push must list to know
    path = tmp_path / "sentences.jsonl"
    write_jsonl(path, synthetic_sentences(3, "lst"))
    with FailingProxy(ls.url, lambda m, p, c: m == "GET" and p.startswith("/api/tasks/"), **how) as proxy:
        result = run_cli("push", path, env={**cli_env(ls), "LABEL_STUDIO_URL": proxy.url}, cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, (
        result.stderr
    )
    assert (
        expected in result.stderr
        and "while listing the project's tasks" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_pull_leaves_no_export_behind(ls_server, ls, tmp_path, monkeypatch):
    """Label Studio 1.23 keeps an export's file after the export is deleted: builder removes it (local server)."""
    from datetime import timedelta

    from builder.labelstudio import task_exports

    monkeypatch.setattr(task_exports, "STALE_AFTER", timedelta(0))  # the killed pull's export is old enough
    project = make_project(tmp_path, "no export left")
    result = push_sentences(ls, project, synthetic_sentences(3, "exp"))
    task = next(iter(ls.client().tasks.list(project=result.project_id)))
    annotate(ls, task.id, [], "neutral", 1.0)
    ls.client().projects.exports.create(result.project_id, title="builder pull")  # as if a pull had been killed
    time.sleep(1.1)  # the server's clock (its Date header) has whole seconds
    local = Connection(ls.url, ls.api_key, "local server", ls_server.data_dir)
    pull(local, project)
    pull(local, project, since_last=True)
    assert list(ls.client().projects.exports.list(result.project_id)) == []
    folder = Path(ls_server.data_dir) / "media" / "export" / str(result.project_id)
    assert not folder.exists() or list(folder.iterdir()) == []
    views = [
        v
        for v in ls.client().views.list(project=result.project_id)
        if (v.data or {}).get("title", "").startswith("builder")
    ]
    assert views == []  # the incremental pull's own view went with it


def test_pseudonym_key_is_needed_to_pull_again_and_never_leaks(ls, tmp_path):
    from builder.pseudonyms import KEY_VARIABLE, key_path, legacy_pseudonym

    project = make_project(tmp_path, "pseudonym key")
    result = push_sentences(ls, project, synthetic_sentences(2, "key"))
    task = next(iter(ls.client().tasks.list(project=result.project_id)))
    annotate(annotator_connection(ls, "carol@example.org", "carol-secret-1"), task.id, [], "favor", 2.0)
    first = run_cli("pull", env=cli_env(ls), cwd=tmp_path)
    assert first.returncode == 0 and "made a new pseudonym key" in first.stderr
    snapshot = tmp_path / "annotations" / "snapshot.jsonl"
    pulled = snapshot.read_bytes()
    key = key_path(tmp_path)
    assert os.stat(key).st_mode & 0o777 == 0o600
    private = [path for path in (tmp_path / ".builder").rglob("*") if path.is_file()]
    modes = {oct(path.stat().st_mode & 0o777) for path in private}
    assert len(private) >= 3 and modes == {"0o600"}, private  # the pull state and .gitignore too
    assert (tmp_path / ".builder" / ".gitignore").read_text() == "*\n"  # no server started: ignored all the same
    secret = key.read_text().strip()
    name = json.loads(pulled)["annotations"][0]["annotator"]
    assert name == Pseudonymizer(bytes.fromhex(secret), project.name)("carol@example.org")
    assert name != legacy_pseudonym(project.name, "carol@example.org")  # guessing the e-mail is not enough
    assert secret not in pulled.decode() + first.stdout + first.stderr

    key.rename(tmp_path / "moved.key")
    refused = run_cli("pull", env=cli_env(ls), cwd=tmp_path)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "was pulled with a pseudonym key" in refused.stderr and KEY_VARIABLE in refused.stderr
    assert snapshot.read_bytes() == pulled and not key.exists()
    with_variable = run_cli("pull", env={**cli_env(ls), KEY_VARIABLE: secret}, cwd=tmp_path)
    assert with_variable.returncode == 0, with_variable.stderr
    assert snapshot.read_bytes() == pulled and secret not in with_variable.stdout + with_variable.stderr

    # a key made by a pull into another file, or another key given: never a silent renaming
    assert run_cli("pull", "-o", tmp_path / "elsewhere.jsonl", env=cli_env(ls), cwd=tmp_path).returncode == 0
    assert key.exists() and key.read_text().strip() != secret
    for env in (cli_env(ls), {**cli_env(ls), KEY_VARIABLE: "ab" * 32}):
        renamed = run_cli("pull", env=env, cwd=tmp_path)
        assert renamed.returncode == 1 and "pulling would rename the annotators of 1 annotations" in renamed.stderr
        assert snapshot.read_bytes() == pulled
    on_purpose = run_cli("pull", "--rename-annotators", env=cli_env(ls), cwd=tmp_path)
    assert on_purpose.returncode == 0 and snapshot.read_bytes() != pulled


def secrets_in(data: bytes, secrets: dict[str, bytes]) -> list[str]:
    return sorted(name for name, secret in secrets.items() if secret in data)


def test_no_secret_reaches_the_server_log_or_a_release_of_a_real_pull(ls, ls_server, tmp_path, sample_sentences):
    """A real push, annotations by people who signed up with e-mails and passwords, a real pull and a
    real `builder release`: no API token, password, e-mail or pseudonym key (hex or raw) is in any file of
    the project outside `.builder/` (snapshot, records, release, Parquet values read back, changelog), in
    the commands' output, or in the local Label Studio's log files."""
    import pyarrow.parquet as pq

    from builder.pseudonyms import key_path

    from .test_outputs import tree
    from .test_release import git

    folder = tmp_path / "repo"
    project = make_project(folder, "no secrets in a release")
    toml = folder / "builder.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(
            f'guidelines = "{ROOT / "guidelines.md"}"', 'guidelines = "guidelines.md"'
        )
    )
    (folder / "guidelines.md").write_bytes((ROOT / "guidelines.md").read_bytes())
    path, sentences = sample_sentences
    pushed = run_cli("push", path, "--predictor", "none", env=cli_env(ls), cwd=folder)
    assert pushed.returncode == 0, pushed.stderr
    tasks = sorted(t.id for t in ls.client().tasks.list(project=find_project(ls, project), page_size=100))
    people = {"dora@example.org": "dora-Secret-9f3", "emil@example.org": "emil-Secret-4c1"}
    for email, password in people.items():
        person = annotator_connection(ls, email, password)
        for task in tasks:
            annotate(person, task, [], "neutral", 1.5)
    pulled = run_cli("pull", env=cli_env(ls), cwd=folder)
    assert pulled.returncode == 0, pulled.stderr
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "pulled")
    released = run_cli("release", "1.0.0", cwd=folder)
    assert released.returncode == 0, released.stderr
    assert (folder / "releases" / "1.0.0").is_dir()

    key = key_path(folder).read_text().strip()
    secrets = {
        "admin token": ls.api_key.encode(),
        "admin password": ls_server.password.encode(),
        "admin e-mail": ls_server.username.encode(),
        "pseudonym key (hex)": key.encode(),
        "pseudonym key (raw)": bytes.fromhex(key),
    }
    for email, password in people.items():
        secrets[email] = email.encode()
        secrets[f"password of {email}"] = password.encode()
        secrets[f"token of {email}"] = annotator_connection(ls, email, password).api_key.encode()
    assert "@" in ls_server.username and len(bytes.fromhex(key)) == 32

    files = [folder / name for name in tree(folder) if not name.startswith((".builder/", ".git/"))]
    assert any(p.suffix == ".parquet" for p in files) and (folder / "annotations" / "snapshot.jsonl") in files
    found = {}
    for file in files:
        data = file.read_bytes()
        if file.suffix == ".parquet":  # compressed pages: the values, read back
            data += json.dumps(pq.read_table(file).to_pylist(), default=str).encode()
        found[str(file.relative_to(folder))] = secrets_in(data, secrets)
    output = "".join(r.stdout + r.stderr for r in (pushed, pulled, released)).encode()
    found["commands' output"] = secrets_in(output, secrets)
    logs = sorted(server_root(ls_server).rglob("*.log"))
    assert server_root(ls_server) / ".builder" / "label-studio.log" in logs
    # The local server's admin is builder's fixed account name (server.ADMIN_EMAIL, no person's address), which
    # Label Studio itself prints on every restart ("User admin@builder.local already exists"): not a secret in
    # the server's own private log; tokens, passwords and the annotators' e-mails are.
    from builder.labelstudio.server import ADMIN_EMAIL

    assert ls_server.username == ADMIN_EMAIL
    in_logs = {name: value for name, value in secrets.items() if name != "admin e-mail"}
    for log in logs:
        found[str(log)] = secrets_in(log.read_bytes(), in_logs)
    assert {where: names for where, names in found.items() if names} == {}


def test_removed_accounts_keep_their_names(ls, tmp_path):
    """Label Studio renames the e-mail of every account removed from the organization to "Deleted"."""
    project = make_project(tmp_path, "removed accounts")
    result = push_sentences(ls, project, synthetic_sentences(2, "rm"))
    tasks = [t.id for t in ls.client().tasks.list(project=result.project_id)]
    people = [annotator_connection(ls, f"leaver{n}@example.org", f"leaver-secret-{n}") for n in range(2)]
    for person in people:
        annotate(person, tasks[0], [], "neutral", 1.0)
    snapshot = tmp_path / "annotations" / "snapshot.jsonl"
    assert run_cli("pull", env=cli_env(ls), cwd=tmp_path).returncode == 0
    before = snapshot.read_bytes()
    names = {a["annotator"] for a in json.loads(before)["annotations"]}
    assert len(names) == 2
    organization = ls.client().users.whoami().active_organization
    for person in people:
        user_id = person.client().users.whoami().id
        response = ls.http().request(f"api/organizations/{organization}/memberships/{user_id}/", method="DELETE")
        assert response.status_code < 300, response.text
    again = run_cli("pull", env=cli_env(ls), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert snapshot.read_bytes() == before  # neither renamed nor merged into one "Deleted" person


def test_sentences_differing_around_a_nul_are_pushed_each_once(ls, tmp_path):
    """ "x" repeated (occurrence 1) and the text "x", NUL, "1" once got one id: push refused the file and said to
    run `split` again, which gave the same ids. Now each is its own task, and comes back with its own id."""
    from builder.sentences.segmenter import sentence_id_matches
    from builder.sentences.splitting import split_files

    project = make_project(tmp_path, "nul sentences")
    line = "Alpha beta gamma delta."
    articles = tmp_path / "nul.jsonl"
    text = f"{line}\n{line}\n{line}\x001\n{line}\x00"
    articles.write_text(json.dumps({"id": "nul-article", "text": text}) + "\n", encoding="utf-8")
    sentences = tmp_path / "work" / "sentences.jsonl"
    split = split_files([articles], sentences, project)
    assert split.sentences == 4 and not split.report.errors()
    ids = {s["id"] for s in read_jsonl(sentences)}
    assert len(ids) == 4
    result = push_sentences(ls, project, sentences)
    assert task_count(ls, result.project_id) == 4 and existing_sentence_ids(ls, result.project_id) == ids
    assert push_sentences(ls, project, sentences).project_id == result.project_id  # again: nothing new
    assert task_count(ls, result.project_id) == 4
    pulled = [task["data"] for task in export_tasks(ls, result.project_id)]
    assert {(d["sentence_id"], d["text"]) for d in pulled} == {(s["id"], s["text"]) for s in read_jsonl(sentences)}
    for data in pulled:
        assert sentence_id_matches(data["article_id"], data["text"], data["sentence_id"], None, data["sentence_index"])


# --- the project is bound by id; a look-alike of the same title is refused (issue 23, item 9) ---------------

REGISTRY_NAME = "label-studio.json"  # annotations/label-studio.json, committed (builder/labelstudio/registry.py)


def test_a_look_alike_project_is_refused_before_the_first_push_and_ignored_after(ls, tmp_path):
    title = "look-alike"
    project = make_project(tmp_path / "ours", title)
    someone = ls.client().projects.create(title=title)  # any member can make a project with this title
    with pytest.raises(LabelStudioError, match=r"was not made by builder for this repository.*--adopt-project"):
        push_sentences(ls, project, synthetic_sentences(2, "la"))
    assert task_count(ls, someone.id) == 0
    write_jsonl(tmp_path / "la.jsonl", synthetic_sentences(2, "la"))
    refused = run_cli("push", tmp_path / "la.jsonl", "--predictor", "none", env=cli_env(ls), cwd=tmp_path / "ours")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "--adopt-project" in refused.stderr

    adopted = push_sentences(ls, project, synthetic_sentences(2, "la"), adopt_project=True)  # on purpose
    assert adopted.project_id == someone.id and not adopted.project_created
    ls.client().projects.delete(someone.id)

    other = make_project(tmp_path / "other", title + " 2")
    first = push_sentences(ls, other, synthetic_sentences(2, "lb"))
    assert first.project_created
    registry = json.loads((tmp_path / "other" / "annotations" / REGISTRY_NAME).read_text(encoding="utf-8"))
    [entry] = registry["servers"].values()
    assert entry["project"]["id"] == first.project_id
    after = ls.client().projects.create(title=title + " 2")  # a look-alike after the first push
    again = push_sentences(ls, other, synthetic_sentences(3, "lb"))
    assert again.project_id == first.project_id and again.created == 1
    assert task_count(ls, after.id) == 0 and task_count(ls, first.project_id) == 3
    assert find_project(ls, other) == first.project_id
    pull(ls, other)  # pull, too, reads the bound project
    ls.client().projects.delete(first.project_id)  # gone, and the look-alike holds the title: not adopted
    with pytest.raises(LabelStudioError, match="is gone, and project"):
        push_sentences(ls, other, synthetic_sentences(3, "lb"))
    assert task_count(ls, after.id) == 0


# --- pseudonyms do not depend on this machine's state or the URL (issue 23, item 7) -----------------------


def test_names_are_the_same_by_any_url_without_pull_state_and_on_a_second_machine(ls, tmp_path):
    import shutil

    first = tmp_path / "first"
    project = make_project(first, "names by any url")
    result = push_sentences(ls, project, synthetic_sentences(2, "url"))
    tasks = [t.id for t in ls.client().tasks.list(project=result.project_id)]
    stays = annotator_connection(ls, "stays@example.org", "stays-secret-1")
    leaves = annotator_connection(ls, "leaves@example.org", "leaves-secret-1")
    annotate(stays, tasks[0], [], "favor", 1.0)
    annotate(leaves, tasks[1], [], "against", 1.0)
    assert ls.url.startswith("http://127.0.0.1:")
    snapshot = first / "annotations" / "snapshot.jsonl"
    assert run_cli("pull", env=cli_env(ls), cwd=first).returncode == 0
    before = snapshot.read_bytes()
    # removed in Label Studio's own way (not through builder): its e-mail is hidden from now on
    organization = ls.client().users.whoami().active_organization
    user_id = leaves.client().users.whoami().id
    assert (
        ls.http().request(f"api/organizations/{organization}/memberships/{user_id}/", method="DELETE").status_code < 300
    )

    localhost = Connection(ls.url.replace("127.0.0.1", "localhost"), ls.api_key, "environment")
    (first / ".builder" / "pull-state.json").unlink()
    for connection in (localhost, ls):
        again = run_cli("pull", "-o", first / "fresh.jsonl", env=cli_env(connection), cwd=first)
        assert again.returncode == 0, again.stderr
        assert (first / "fresh.jsonl").read_bytes() == before  # a new file: the same names
        same = run_cli("pull", env=cli_env(connection), cwd=first)
        assert same.returncode == 0, same.stderr
        assert snapshot.read_bytes() == before

    with FailingProxy(ls.url, lambda method, path, count: False) as proxy:  # another URL again (a TLS proxy, say)
        through = Connection(proxy.url, ls.api_key, "environment")
        assert run_cli("pull", "-o", first / "proxied.jsonl", env=cli_env(through), cwd=first).returncode == 0
    assert (first / "proxied.jsonl").read_bytes() == before

    # a second maintainer: the repository (builder.toml, annotations/) and the key, nothing else
    second = tmp_path / "second"
    make_project(second, "names by any url")
    shutil.copytree(first / "annotations", second / "annotations", dirs_exist_ok=True)
    key = (first / ".builder" / "pseudonym.key").read_text().strip()
    env = {**cli_env(localhost), "BUILDER_PSEUDONYM_KEY": key}
    assert run_cli("pull", "-o", second / "mine.jsonl", env=env, cwd=second).returncode == 0
    assert (second / "mine.jsonl").read_bytes() == before
    assert key not in (second / "annotations" / REGISTRY_NAME).read_text(encoding="utf-8")
    assert "leaves" not in (second / "annotations" / REGISTRY_NAME).read_text(encoding="utf-8")

    # without the accounts' recorded names the removed one cannot be named again: the refusal says so, not "the key"
    registry = second / "annotations" / REGISTRY_NAME
    data = json.loads(registry.read_text(encoding="utf-8"))
    for entry in data["servers"].values():
        entry.pop("accounts")
    registry.write_text(json.dumps(data), encoding="utf-8")
    refused = run_cli("pull", env=env, cwd=second)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "were removed from the organization" in refused.stderr and "not the pseudonym key" not in refused.stderr
    assert (second / "annotations" / "snapshot.jsonl").read_bytes() == before


def test_set_aside_sentences_are_never_pushed_whatever_the_selection(ls, tmp_path):
    """Credits, datelines, bylines and headings stay out of the tasks (issue 27), counted by reason; a sentences
    file split before `set_aside` existed is pushed whole."""
    from builder.labelstudio.push import Selection
    from builder.sentences.segmenter import split_article

    text = "A headline\nMonday, May 4, 2015\nBy Jane Doe\nBackground\nThe minister spoke. Image: Ann Lee.\nYes."
    sentences = split_article({"id": "na1", "title": "A headline", "text": text})
    assert [s["set_aside"] for s in sentences] == [None, "dateline", "byline", "heading", None, "credit", None]
    labelled = {s["id"] for s in sentences if not s["set_aside"]}
    project = make_project(tmp_path / "a", "set aside")
    result = push_sentences(ls, project, sentences, None, select=Selection("random", limit=10))
    assert (result.created, result.set_aside) == (3, {"byline": 1, "credit": 1, "dateline": 1, "heading": 1})
    assert existing_sentence_ids(ls, result.project_id) == labelled
    again = push_sentences(ls, project, sentences, None)
    assert (again.created, again.skipped, sum(again.set_aside.values())) == (0, 3, 4)
    old = make_project(tmp_path / "b", "set aside, old file")
    before = [{k: v for k, v in s.items() if k != "set_aside"} for s in sentences]
    assert push_sentences(ls, old, before, None).created == 7
