"""The `builder` command line: parses arguments, calls one library function, reports domain errors.

Every command's help ends with an example (a test checks it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from builder import __version__
from builder.errors import BuilderError
from builder.project import Project, load_project, no_project_file_error
from builder.report import Report


class CleanErrors(click.Group):
    """Turns domain errors into one line on stderr and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BuilderError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(getattr(exc, "exit_code", 1))
        except OSError as exc:  # a write builder does not guard itself: stdout to a full disk, a closed pipe
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("error: interrupted; outputs were left as they were before this run", err=True)
            ctx.exit(130)


def project_of(ctx: click.Context, needs_root: bool = False) -> Project:
    """The project; `needs_root`: the command works in the project folder (writes there), so the bundled
    default (whose root is inside the installed package) is refused."""
    root = ctx.find_root()
    if "project" not in root.meta:
        root.meta["project"] = load_project(root.params.get("config"))
    if needs_root and root.meta["project"].bundled:
        raise no_project_file_error()
    return root.meta["project"]


class OutputFile(click.ParamType):
    """A file to write: a folder (`-o .`, `-o ../`) is refused in one line, before any work is done."""

    name = "file"

    def convert(self, value, param, ctx):
        from builder.outputs import check_output_file

        check_output_file(value, option=param.opts[0] if param else "-o")
        return Path(value)


def print_report(report: Report, *, show_removed: bool = True) -> None:
    """Problems one per line, then counts, all on stderr (stdout stays for data)."""
    for problem in report.problems:
        if problem.error or show_removed:
            prefix = "rejected" if problem.error else problem.fields.get("notice", "removed")
            click.echo(f"{prefix}: {problem.line()}", err=True)
    kept = ", ".join(f"{n} {what}" for what, n in sorted(report.kept.items())) or "nothing"
    dropped = ", ".join(f"{n} {why}" for why, n in sorted(report.dropped().items()))
    click.echo(f"{report.stage}: kept {kept}" + (f"; dropped {dropped}" if dropped else ""), err=True)


@click.group(cls=CleanErrors, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "-c",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BUILDER_CONFIG",
    help="Project file. Default: the nearest builder.toml, else the bundled default (then commands that write into the project folder refuse).",
)
@click.version_option(__version__, prog_name="builder")
def cli(config: Path | None) -> None:
    """Build an annotated dataset: split news into sentences, label them in Label Studio,
    validate what comes back, and publish a Hugging Face dataset.

    \b
    Example:
        builder run          # the whole loop on the bundled sample
    """


@cli.command()
@click.argument("articles", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=OutputFile(), help="Sentences, JSON Lines.")
@click.option(
    "--articles-output",
    type=OutputFile(),
    help="Articles (the text offsets point into). Default: OUTPUT with .articles.jsonl.",
)
@click.option(
    "--report", "report_path", type=OutputFile(), help="Write the full report (removed lines, rejected inputs) as JSON."
)
@click.pass_context
def split(ctx, articles, output, articles_output, report_path) -> None:
    """Split ARTICLES (.txt, .jsonl, .html files or folders of them) into sentences.

    A .txt file's first non-empty line is its headline; a .jsonl file has one article per line
    with `id` and `text` (optional `title`, `url`, `published`, `target`). Boilerplate lines
    (donation appeals, subscribe/share lines) are removed and listed on stderr. Exit status 1
    if any input was rejected; the valid articles are still written. Files builder wrote
    (OUTPUT itself, sentence and article records) are never read as articles. When nothing
    valid was read, the previous OUTPUT is kept untouched (exit status 1).

    \b
    Example:
        builder split examples/sample -o work/sentences.jsonl
    """
    from builder.jsonio import atomic_write
    from builder.outputs import REPORT, check_output_file
    from builder.sentences.stage import default_articles_path, split_files

    project = project_of(ctx)
    outputs = (
        (output, "-o", ("sentence records",)),
        (articles_output or default_articles_path(output), "--articles-output", ("article records",)),
        (report_path, "--report", (REPORT,)),
    )
    for path, option, kinds in outputs:
        if path is not None:
            check_output_file(path, project, option, replaces=kinds)
    result = split_files(articles, output, project, articles_output, report_path=report_path)
    print_report(result.report)
    if not result.written:
        kept = " and ".join(str(path) for path in result.kept)
        click.echo(
            f"error: nothing valid was read; {'kept the previous ' + kept if kept else 'wrote nothing'}", err=True
        )
    else:
        click.echo(
            f"wrote {result.sentences} sentences from {result.articles} articles to {result.sentences_path}", err=True
        )
    if report_path:
        import json

        with atomic_write(report_path, "w") as handle:
            json.dump(result.report.as_dict(), handle, indent=2, sort_keys=True, ensure_ascii=False)
    if result.report.errors() or not result.written:
        ctx.exit(1)


@cli.group()
def server() -> None:
    """Run a local Label Studio (installed on first use into its own virtual environment).

    \b
    Example:
        builder server start --port 8080
    """


def _root(ctx) -> Path:
    return project_of(ctx).root


@server.command("install")
def server_install() -> None:
    """Install Label Studio into its own virtual environment now (otherwise done on first start).

    \b
    Example:
        builder server install
    """
    from builder.labelstudio import server as local

    click.echo(
        f"Label Studio {local.LABEL_STUDIO_VERSION}: {local.ensure_installed(log=lambda m: click.echo(m, err=True))}"
    )


@server.command("start")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port on 127.0.0.1 (default 8080, or the last one used).",
)
@click.pass_context
def server_start(ctx, port) -> None:
    """Start the local Label Studio and wait until it is healthy.

    Its data lives in .builder/label-studio-data (git-ignored); URL, process id and the API token
    are kept in .builder/server.json, readable only by you.

    \b
    Example:
        builder server start --port 8080
    """
    from builder.labelstudio import server as local

    state = local.start(project_of(ctx, needs_root=True).root, port, log=lambda m: click.echo(m, err=True))
    click.echo(
        f"Label Studio runs on {state.url} (pid {state.pid}); log in as {state.username}, password in {local.state_path(_root(ctx))}"
    )


@server.command("stop")
@click.pass_context
def server_stop(ctx) -> None:
    """Stop the local Label Studio started by `builder server start` (and nothing else).

    \b
    Example:
        builder server stop
    """
    from builder.labelstudio import server as local

    click.echo("stopped" if local.stop(_root(ctx)) else "no local Label Studio was running")


@server.command("status")
@click.pass_context
def server_status(ctx) -> None:
    """Say which Label Studio the other commands use, and whether it answers.

    \b
    Example:
        builder server status
    """
    import os

    from builder.labelstudio import client as ls_client
    from builder.labelstudio import server as local

    if os.environ.get(ls_client.URL_VARIABLE):
        url = os.environ[ls_client.URL_VARIABLE]
        health = "healthy" if local.is_healthy(url.rstrip("/")) else "not answering"
        click.echo(f"using {url} from {ls_client.URL_VARIABLE} ({health})")
        return
    state = local.read_state(_root(ctx))
    if not local.is_running(state):
        click.echo("no local Label Studio is running (start one with `builder server start`)")
        ctx.exit(3)
    health = "healthy" if local.is_healthy(state.url) else "not answering yet"
    click.echo(
        f"local Label Studio {state.version} on {state.url}, pid {state.pid}, {health}; data in {state.data_dir}"
    )


@cli.command()
@click.argument("sentences", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--predictor", default="gazetteer", show_default=True, help="Pre-annotations: gazetteer, spacy:<model>, or none."
)
@click.option(
    "--batch-size",
    type=int,
    default=5000,
    show_default=True,
    help="Tasks per import request (Label Studio recounts the project after each).",
)
@click.pass_context
def push(ctx, sentences, predictor, batch_size) -> None:
    """Create or update the Label Studio project from the scheme and import SENTENCES.

    Sentences already in the project (by id) are skipped, so re-running after an interruption
    completes the push without duplicates. Tasks carry entity pre-annotations.

    \b
    Example:
        builder push work/sentences.jsonl
    """
    from builder.labelstudio.client import resolve_connection
    from builder.labelstudio.push import push_sentences
    from builder.preannotate import make_predictor

    project = project_of(ctx)
    connection = resolve_connection(project.root)
    chosen = make_predictor(predictor, project.annotations_dir / "snapshot.jsonl", project.entity_values)
    result = push_sentences(connection, project, Path(sentences), chosen, batch_size)
    verb = "created" if result.project_created else "updated"
    click.echo(f"project '{project.project_title}' (id {result.project_id}) {verb} on {connection.url}")
    click.echo(f"push: created {result.created} tasks, skipped {result.skipped} already present")


@cli.command()
@click.option("--since-last", is_flag=True, help="Fetch only tasks changed since the previous pull and merge them.")
@click.option(
    "--rename-annotators",
    is_flag=True,
    help="Accept that a new pseudonym key renames the annotators already in the snapshot.",
)
@click.option("-o", "--output", type=OutputFile(), help="Snapshot file. Default: annotations/snapshot.jsonl.")
@click.pass_context
def pull(ctx, since_last, rename_annotators, output) -> None:
    """Fetch annotated tasks through a Label Studio snapshot export into annotations/.

    The snapshot is JSON Lines, one task per line sorted by sentence id, annotators as
    pseudonyms; it is written atomically, so a failed pull leaves the previous one untouched.

    \b
    Example:
        builder pull --since-last
    """
    from builder.labelstudio.client import resolve_connection
    from builder.labelstudio.pull import pull as pull_snapshot
    from builder.outputs import check_output_file

    project = project_of(ctx, needs_root=True)  # the pull state is kept under the project root
    if output is not None:
        check_output_file(output, project, replaces=("Label Studio tasks",))
    result = pull_snapshot(
        resolve_connection(project.root),
        project,
        output,
        since_last,
        log=lambda m: click.echo(m, err=True),
        rename_annotators=rename_annotators,
    )
    if since_last and not result.incremental:
        click.echo(f"full pull: {result.why_full}", err=True)
    mode = "changed tasks merged" if result.incremental else "full export"
    removed = f", {result.removed} tasks no longer annotated or deleted removed" if result.incremental else ""
    click.echo(
        f"pull ({mode}): fetched {result.fetched} tasks, {result.unannotated} without annotations left out{removed}; "
        f"{result.written} annotated tasks in {result.path}"
    )


def _snapshot_option(function):
    return click.option(
        "--snapshot", type=click.Path(dir_okay=False, path_type=Path), help="Default: annotations/snapshot.jsonl."
    )(function)


def print_validation(result, limit: int = 30) -> None:
    """A readable table of problems on stderr, then the accounting line."""
    rows = [p for p in result.report.problems]
    if rows:
        click.echo(f"{'reason':<22} {'where':<44} {'field':<26} detail", err=True)
        for problem in rows[:limit]:
            kind = "" if problem.error else " (warning)"
            click.echo(
                f"{problem.reason + kind:<22} {problem.where:<44} {problem.fields.get('field', '')!s:<26} {problem.detail[:100]}",
                err=True,
            )
        if len(rows) > limit:
            click.echo(f"... and {len(rows) - limit} more in the JSON report", err=True)
    dropped = ", ".join(f"{n} {why}" for why, n in sorted(result.report.dropped().items())) or "none"
    click.echo(
        f"validate: {result.tasks_in} tasks in = {result.records} records + {result.quarantined} quarantined; problems by reason: {dropped}",
        err=True,
    )


@cli.command()
@_snapshot_option
@click.option(
    "-o",
    "--records",
    "records_path",
    type=OutputFile(),
    help="Validated records (JSON Lines). Default: build/records.jsonl in the project.",
)
@click.option(
    "--report",
    "report_path",
    type=OutputFile(),
    help="Machine-readable report of every problem. Default: build/validation-report.json in the project.",
)
@click.pass_context
def validate(ctx, snapshot, records_path, report_path) -> None:
    """Check the pulled snapshot against the task schema and the scheme; write records.

    Every task ends as a record or in the report with a reason; problems name the task,
    annotation, annotator pseudonym and field. Exit status 1 if anything is invalid.

    \b
    Example:
        builder validate --report build/validation-report.json
    """
    import json

    from builder.jsonio import atomic_write
    from builder.outputs import REPORT, check_output_file
    from builder.records.stage import validate_snapshot

    project = project_of(ctx)
    records_path = records_path or project.root / "build" / "records.jsonl"
    report_path = report_path or project.root / "build" / "validation-report.json"
    check_output_file(records_path, project, replaces=("sentence records",))
    check_output_file(report_path, project, "--report", replaces=(REPORT,))
    result = validate_snapshot(project, snapshot or project.annotations_dir / "snapshot.jsonl", records_path)
    print_validation(result)
    with atomic_write(report_path, "w") as handle:
        json.dump(
            {
                **result.report.as_dict(),
                "tasks_in": result.tasks_in,
                "records": result.records,
                "quarantined": result.quarantined,
            },
            handle,
            indent=2,
            sort_keys=True,
            ensure_ascii=False,
        )
    click.echo(f"wrote {result.records} records to {records_path}, report to {report_path}", err=True)
    if result.report.errors():
        ctx.exit(1)


@cli.command()
@_snapshot_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def stats(ctx, snapshot, as_json) -> None:
    """Label counts and inter-annotator agreement (Krippendorff's alpha, Fleiss' kappa, span F1).

    \b
    Example:
        builder stats
    """
    import json

    from builder.records.stage import dataset_statistics

    project = project_of(ctx)
    figures = dataset_statistics(project, snapshot or project.annotations_dir / "snapshot.jsonl")
    if as_json:
        click.echo(json.dumps(figures, indent=2, sort_keys=True))
        return
    s, e = figures["stance_agreement"], figures["span_agreement"]
    click.echo(
        f"records: {figures['records']}, annotators: {len(figures['annotators'])} ({', '.join(f'{k}: {v}' for k, v in figures['annotators'].items())})"
    )
    click.echo(f"stance: {figures['labels']['stance']}  status: {figures['labels']['stance_status']}")
    click.echo(f"entities: {figures['labels']['entities']}")
    click.echo(
        f"stance agreement over {s['units']} sentences with 2+ annotators ({s['ratings']} ratings): "
        f"Krippendorff's alpha {s['krippendorff_alpha']}, Fleiss' kappa {s['fleiss_kappa']} ({s['fleiss_units']} sentences)"
    )
    per_label = ", ".join(f"{k} {v}" for k, v in e["per_label"].items())
    click.echo(f"entity agreement, pairwise exact-span F1 over {e['pairs']} annotator pairs: {e['f1']} ({per_label})")


@cli.command()
@_snapshot_option
@click.pass_context
def review(ctx, snapshot) -> None:
    """List sentences whose stance is unresolved and make a Label Studio view of them.

    Adjudicate in that view (star an annotation as ground truth, or add one); the next pull
    and build resolve them.

    \b
    Example:
        builder review
    """
    from builder.labelstudio.client import resolve_connection
    from builder.labelstudio.review import create_review_view
    from builder.records.stage import unresolved_records

    project = project_of(ctx)
    unresolved = unresolved_records(project, snapshot or project.annotations_dir / "snapshot.jsonl")
    for record in unresolved:
        votes = ", ".join(f"{a['annotator']}: {a['stance']}" for a in record["annotations"])
        click.echo(
            f"{record['id']}  {record['article_id']}#{record['sentence_index']}  [{votes}]  {record['text'][:80]}"
        )
    if not unresolved:
        click.echo("no unresolved sentences")
        return
    connection = resolve_connection(project.root)
    url = create_review_view(connection, project, [r["id"] for r in unresolved])
    click.echo(f"{len(unresolved)} unresolved; review them in Label Studio: {url}")


@cli.command("schema")
@click.option("--check", is_flag=True, help="Only check that schema/ matches the scheme; exit 1 if not.")
@click.pass_context
def schema_command(ctx, check) -> None:
    """Write schema/task.schema.json and schema/record.schema.json from the label scheme.

    \b
    Example:
        builder schema --check
    """
    import tempfile

    from builder.model import write_schemas

    project = project_of(ctx, needs_root=True)  # checks or writes the project's schema/
    folder = project.root / "schema"
    if check:
        with tempfile.TemporaryDirectory() as tmp:
            stale = [
                p.name
                for p in write_schemas(project, Path(tmp))
                if not (folder / p.name).is_file() or (folder / p.name).read_text() != p.read_text()
            ]
        if stale:
            raise BuilderError(f"{', '.join(stale)} in {folder} do not match {project.source}: run `builder schema`")
        click.echo("schema/ matches the label scheme")
        return
    for path in write_schemas(project, folder):
        click.echo(f"wrote {path}")


@cli.command()
@_snapshot_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Dataset folder, new, empty or an earlier build's. Default: dist/<dataset name>.",
)
@click.option("--push-to-hub", "repo_id", help="Also upload the folder to this Hub dataset repo (token from HF_TOKEN).")
@click.pass_context
def build(ctx, snapshot, output, repo_id) -> None:
    """Build the Hugging Face dataset folder: Parquet per split and a generated card.

    Validation problems are reported (as by `builder validate`) and the valid records are built.
    OUTPUT must be new, empty, or an earlier output of builder's (marked by .builder-output.json);
    it is replaced whole, or kept as it was if the build fails.

    \b
    Example:
        builder build -o dist/my-dataset && python -c "import datasets; print(datasets.load_dataset('dist/my-dataset'))"
    """
    from builder.dataset.build import build_dataset

    project = project_of(ctx)
    output = output or project.root / "dist" / project.name
    facts = build_dataset(project, snapshot or project.annotations_dir / "snapshot.jsonl", output)
    print_validation(facts.validation, limit=10)
    sizes = ", ".join(f"{split} {facts.counts[split]['records']}" for split in ("train", "validation", "test"))
    click.echo(f"built {output}: {sizes}")
    if repo_id:
        from builder.dataset.hub import push_folder

        click.echo(f"pushed to {push_folder(output, repo_id)}")


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port for the local Label Studio (when LABEL_STUDIO_URL is not set).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    help="Dataset folder, new, empty or an earlier build's. Default: dist/<dataset name>.",
)
@click.pass_context
def run(ctx, port, output) -> None:
    """The whole loop on the bundled sample: Label Studio, push, annotations, pull, validate, build, load.

    Starts the local Label Studio (installing it on first use), pushes examples/sample, replays the
    bundled annotations as their annotators, pulls them back into build/, validates, builds
    dist/<name>, loads it with `datasets` and prints a summary. Safe to re-run.

    \b
    Example:
        builder run
    """
    from builder.sample_loop import run_sample_loop

    summary = run_sample_loop(
        project_of(ctx, needs_root=True), port=port, output=output, log=lambda m: click.echo(m, err=True)
    )
    click.echo(summary)


@cli.command()
@click.argument("version")
@click.option("--push-to-hub", "repo_id", help="Also upload the release to this Hub dataset repo and tag it vVERSION.")
@click.pass_context
def release(ctx, version, repo_id) -> None:
    """Cut release VERSION from the committed snapshot into releases/VERSION/.

    Refused, with nothing written, if VERSION exists or is not greater than the last release
    (Semantic Versioning 2.0.0 order), if validation finds problems, if the project file, the
    guidelines or annotations/snapshot.jsonl are not committed in git, or if the previous release
    does not verify. Adds a generated entry to CHANGELOG.md (with the manifest's sha256). Articles
    in an earlier release's test split stay in test. Two releases at once run one after the other.

    \b
    Example:
        builder release 1.1.0
    """
    from builder.dataset.release import cut_release

    project = project_of(ctx, needs_root=True)
    result = cut_release(project, version)
    splits = result.manifest["splits"]
    click.echo(
        f"released {project.name} {version} in {result.folder}: "
        + ", ".join(f"{s} {splits[s]['records']}" for s in splits)
    )
    click.echo(result.changelog_entry)
    if repo_id:
        from builder.dataset.hub import push_folder

        click.echo(
            f"pushed to {push_folder(result.folder, repo_id, tag=f'v{version}', message=f'{project.name} {version}')} and tagged v{version}"
        )


@cli.command("diff")
@click.argument("a")
@click.argument("b")
@click.pass_context
def diff_command(ctx, a, b) -> None:
    """Compare releases A and B: sentences, articles, stance, entities, label and agreement deltas.

    Each release is decoded with its own label names, so a reordered label scheme relabels nothing;
    a change of annotator pseudonym scheme is said plainly.

    \b
    Example:
        builder diff 1.0.0 1.1.0
    """
    from builder.dataset.release import compare, format_comparison

    click.echo(f"{a} -> {b}")
    click.echo(format_comparison(compare(project_of(ctx), a, b)))


@cli.command()
@click.argument("version")
@click.pass_context
def verify(ctx, version) -> None:
    """Check release VERSION against its manifest, and the manifests against each other.

    Recomputes the sha256 of every file; the counts, article ids, agreement and pseudonym scheme
    from the Parquet files; compares the input hashes with the card; and checks the chain of
    manifest hashes across releases and CHANGELOG.md. One line per mismatch.

    \b
    Example:
        builder verify 1.0.0
    """
    from builder.dataset.release import verify_release

    problems = verify_release(project_of(ctx), version)
    for problem in problems:
        click.echo(f"mismatch: {problem}", err=True)
    if problems:
        raise BuilderError(f"release {version} does not match its manifest ({len(problems)} problem(s))")
    click.echo(f"release {version}: its files, manifest, card and the chain of releases agree")


def main() -> None:
    cli(prog_name="builder")


if __name__ == "__main__":
    sys.exit(main())
