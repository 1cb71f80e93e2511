"""The whole loop on the bundled sample, in one call (what `builder run` does)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from builder.errors import BuilderError
from builder.progress import Steps
from builder.project import Project

SAMPLE_DIR = Path("examples") / "sample"
ACCOUNTS_FILE = Path("examples") / "sample-annotators.json"
# A bundled example's own folder (examples/claims/): its articles in sample/, its replay accounts in annotators.json.
EXAMPLE_SAMPLE_DIR = Path("sample")
EXAMPLE_ACCOUNTS_FILE = Path("annotators.json")
REPLAY_PROBLEMS_SHOWN = 10  # annotations not replayed, one line each; the rest are counted


def run_sample_loop(project: Project, port: int | None = None, output: Path | None = None, log=print) -> str:
    """The whole loop on the bundled sample (see `_run_sample_loop`), with the registry of its throwaway server's
    project and accounts, and the suggestions its push withholds (the control arm), in `build/run/`, not in the
    repository's committed `annotations/`."""
    from builder.labelstudio.registry import REGISTRY_NAME, registry_at
    from builder.records.steering import WITHHELD_FILE, withheld_at

    folder = project.root / "build" / "run"
    with registry_at(folder / REGISTRY_NAME), withheld_at(folder / WITHHELD_FILE):
        return _run_sample_loop(project, port, output, log)


def _run_sample_loop(project: Project, port: int | None, output: Path | None, log) -> str:
    """Server, split, push, replay the bundled annotations, pull, validate, build, load; returns a summary."""
    from builder.dataset.build import uneven_warnings
    from builder.dataset.release import build_project_dataset
    from builder.jsonio import read_jsonl
    from builder.labelstudio import server
    from builder.labelstudio.annotator_names import give_names, pseudonymizer_for
    from builder.labelstudio.client import URL_VARIABLE, resolve_connection
    from builder.labelstudio.pull import pull
    from builder.labelstudio.push import attached_lines, push_sentences
    from builder.labelstudio.replay import replay
    from builder.outputs import DATASET_COMMANDS, check_output_folder
    from builder.preannotate import make_predictor
    from builder.project import no_project_file_error
    from builder.sentences.splitting import split_files

    if project.bundled:
        raise no_project_file_error()
    root = project.root
    output = output or project.dataset_path
    check_output_folder(
        output, project, option="--output", commands=DATASET_COMMANDS
    )  # before any work: the build would refuse it last
    sample, accounts_file, committed = (
        root / SAMPLE_DIR,
        root / ACCOUNTS_FILE,
        project.snapshot_path,
    )
    if not sample.exists() and (root / EXAMPLE_SAMPLE_DIR).exists():  # a bundled example's folder (examples/claims)
        sample, accounts_file = root / EXAMPLE_SAMPLE_DIR, root / EXAMPLE_ACCOUNTS_FILE
    for needed in (sample, accounts_file, committed):
        if not needed.exists():
            raise BuilderError(
                f"{needed} is missing: `builder run` works in the builder repository, on its bundled sample, or in "
                "a bundled example's folder (examples/claims)"
            )
    work = root / "build" / "run"
    local = not os.environ.get(URL_VARIABLE)
    # Every step says when it starts (seconds since the first), and one that runs long says so every few seconds.
    steps = Steps(log, total=8 if local else 6)
    if local:
        with steps.running(f"install Label Studio {server.LABEL_STUDIO_VERSION} (first use only)", "installing"):
            executable = server.ensure_installed(log=steps.note)
        steps.note(f"Label Studio: {executable}")
        with steps.running("start Label Studio (a new project copies an empty, migrated database)", "starting"):
            server.start(root, port, log=steps.note)
    connection = resolve_connection(root)
    with steps.running(f"split {sample}", "splitting"):
        split = split_files([sample], work / "sentences.jsonl", project)
    if split.report.errors():
        raise BuilderError(
            f"the sample has {len(split.report.errors())} rejected inputs; run `builder split {sample} -o x.jsonl`"
        )
    with steps.running(f"push {split.sentences} sentences to {connection.url}", "pushing"):
        # the gazetteer suggests entities: a stance-only scheme has none to suggest
        predictor = make_predictor("gazetteer", committed, project.entity_values) if project.has_entities else None
        pushed = push_sentences(connection, project, read_jsonl(split.sentences_path), predictor)
    log(f"    created {pushed.created}, skipped {pushed.skipped} already present")
    if pushed.set_aside:
        log("    " + ", ".join(f"{n} {reason}" for reason, n in pushed.set_aside.items()) + " set aside, never pushed")
    for line in attached_lines(pushed, "gazetteer"):
        log(f"    {line}")
    sample_accounts = json.loads(accounts_file.read_text(encoding="utf-8"))
    accounts, names = sample_accounts["accounts"], sample_accounts.get("pseudonyms", {})
    # The bundled annotations predate `lines+rules/3`: those of sentences it sets aside (datelines) have no task.
    set_aside = {s["id"] for s in read_jsonl(split.sentences_path) if s.get("set_aside")}
    bundled = (_in_scheme(task, project) for task in read_jsonl(committed) if not _of_sentences(task, set_aside))
    with steps.running(f"replay the bundled annotations ({committed}) as {len(accounts)} annotators", "replaying"):
        replayed = replay(connection, pushed.project_id, project.name, bundled, accounts, names=names)
    log(f"    {replayed.summary()}")
    if set_aside:
        log(f"    the annotations of {len(set_aside)} sentences set aside (never pushed) were not replayed")
    not_replayed = replayed.report.errors()
    for problem in not_replayed[:REPLAY_PROBLEMS_SHOWN]:
        log(f"    not replayed: {problem.line()} ({problem.reason})")
    if len(not_replayed) > REPLAY_PROBLEMS_SHOWN:
        log(f"    ... and {len(not_replayed) - REPLAY_PROBLEMS_SHOWN} more not replayed")
    snapshot = work / "snapshot.jsonl"
    # The committed snapshot was pulled with the maintainers' key, which this machine need not have: each replayed
    # account is recorded (in build/run/'s registry) under the name the committed snapshot gives it, so the
    # dataset built here names the same people as the snapshot `builder stats` reads by default, and its card
    # agrees with it. The names are the sample's own, so an earlier run's names in build/run/ give way to them.
    with steps.running(f"pull the annotations into {snapshot}", "pulling"):
        give_names(connection, project, pseudonymizer_for(project, snapshot, log), names)
        pulled = pull(connection, project, snapshot, rename_annotators=True)
    log(f"    pulled {pulled.written} annotated tasks")
    with steps.running(f"validate and build {output}", "building"):
        facts = build_project_dataset(project, snapshot, output, command="builder run")
    v = facts.validation
    log(f"    validated: {v.tasks_in} tasks = {v.records} records + {v.quarantined} quarantined; built {output}")
    for line in uneven_warnings(project, facts):
        log(f"    {line}")
    with steps.running("load it back with datasets.load_dataset", "loading"):
        import datasets

        datasets.disable_progress_bars()
        # Prepared afresh: `datasets` may otherwise answer from a cache of an earlier build of this folder.
        loaded = datasets.load_dataset(str(output), download_mode="force_redownload")
    log(f"[{steps.elapsed():4.0f} s] done: a loadable dataset")
    features = loaded["train"].features
    described = [f"stance {features['stance'].names}"] if project.has_stance else []
    described += [f"ner_tags {features['ner_tags'].feature.names}"] if project.has_entities else []
    lines = [
        f"dataset {project.name}: " + ", ".join(f"{name} {len(split_)}" for name, split_ in loaded.items()),
        f"features: {', '.join(described)}",
        f"card: {output / 'README.md'}",
        f"Label Studio: {connection.url}/projects/{pushed.project_id}/data "
        f"(log in with the credentials in {server.state_path(root)})"
        if connection.source == "local server"
        else f"Label Studio: {connection.url}/projects/{pushed.project_id}/data",
    ]
    return "\n".join(lines)


def _in_scheme(task: object, project: Project) -> object:
    """`task` with only the result items of the controls `project`'s scheme has: the bundled annotations label
    stance and entities, a stance-only or entities-only project replays its own half of them."""
    from builder.model import ENTITIES, STANCE

    if project.has_stance and project.has_entities or not isinstance(task, dict):
        return task
    controls = {STANCE} if project.has_stance else {ENTITIES}
    annotations = task.get("annotations")
    if not isinstance(annotations, list):
        return task
    kept = []
    for annotation in annotations:
        if isinstance(annotation, dict) and isinstance(annotation.get("result"), list):
            result = [i for i in annotation["result"] if not isinstance(i, dict) or i.get("from_name") in controls]
            annotation = {**annotation, "result": result}
        kept.append(annotation)
    return {**task, "annotations": kept}


def _of_sentences(task: object, sentence_ids: set[str]) -> bool:
    """Whether `task` (as a snapshot holds it; replay reports a malformed one) is of one of `sentence_ids`."""
    data = task.get("data") if isinstance(task, dict) else None
    return isinstance(data, dict) and data.get("sentence_id") in sentence_ids
