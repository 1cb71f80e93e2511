"""The `builder` command line: parses arguments, calls one library function, reports domain errors.

Every command's help ends with an example (a test checks it).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from builder import __version__, scaffold
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
        except BrokenPipeError:  # the reader went away (`builder quality | head`): not an error to report
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes stdout at exit
            ctx.exit(141)  # 128 + SIGPIPE, as a shell reports a command a closed pipe stopped
        except OSError as exc:  # a write builder does not guard itself: stdout to a full disk
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


def set_aside_line(counts: dict[str, int]) -> str:
    """'4 set aside: 2 credit, 1 dateline, 1 heading' (split's and push's summaries say it alike)."""
    return f"{sum(counts.values())} set aside: " + ", ".join(f"{n} {reason}" for reason, n in counts.items())


@click.group(cls=CleanErrors, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "-c",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BUILDER_CONFIG",
    help=(
        "Project file. Default: the nearest builder.toml, else the bundled default "
        "(then commands that write into the project folder refuse)."
    ),
)
@click.version_option(__version__, prog_name="builder")
def cli(config: Path | None) -> None:
    """Build an annotated dataset: split news into sentences, label them in Label Studio,
    validate what comes back, and publish a Hugging Face dataset.

    \b
    Example:
        builder run          # the whole loop on the bundled sample
    """


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


@cli.command()
@click.argument("folder", required=False, default=".", type=click.Path(path_type=Path))
@click.option("--name", help="Dataset name: lowercase letters, digits, '.', '_', '-'. Default: from FOLDER's name.")
@click.option("--target", help=f"What the stance is towards. Default: '{scaffold.DEFAULT_TARGET}'.")
@click.option("--stance-labels", help="Comma-separated, lowercase. Default: favor,against,neutral.")
@click.option("--entity-labels", help="Comma-separated, uppercase. Default: PER,ORG,LOC,MISC.")
@click.option("--language", help="ISO 639-1 (or -3) code of the articles. Default: en.")
@click.option("--license", help="Hugging Face Hub licence id (cc-by-4.0, apache-2.0, other...). Default: cc-by-4.0.")
@click.option("--annotators-per-sentence", type=int, help="1 to 20. Default: 2.")
@click.option("--project-title", help="Label Studio project title, 3 to 50 characters. Default: from the name.")
@click.option(
    "--scheme",
    type=click.Choice(scaffold.SCHEMES),
    default="both",
    show_default=True,
    help="What annotators label: stance and entities, stance only, or entities only.",
)
@click.option("--yes", "-y", "--no-input", "no_input", is_flag=True, help="Ask nothing: take flags and defaults.")
def init(folder, no_input, scheme, **given) -> None:
    """Start a dataset project in FOLDER (default: the current folder; made if missing).

    Writes builder.toml (the label scheme), guidelines.md (a template with a section per label),
    annotations/ and .gitignore lines for builder's outputs. In a terminal it asks for each value
    not given as a flag; otherwise (or with --yes) it takes the defaults. It never replaces a
    builder.toml or guidelines.md, and a failed write leaves the folder as it was. Needs no project.

    \b
    Example:
        builder init my-dataset --target "the new climate law" --stance-labels support,oppose,none
        builder init my-claims --scheme stance --target "the motion of the debate"
    """
    # the flags are checked before anything is asked
    asked = [q for q in scaffold.QUESTIONS if q.key not in scaffold.NOT_ASKED[scheme]]
    answers = {q.key: q.check(given[q.key]) for q in asked if given[q.key] is not None}
    if not no_input and _stdin_is_terminal():
        for question in asked:
            if question.key not in answers:
                answers[question.key] = click.prompt(
                    question.text, default=question.default(folder, answers), value_proc=_checked(question.check)
                )
    result = scaffold.init_project(folder, scheme=scheme, **answers)
    click.echo(scaffold.summary(result))
    steps = scaffold.next_steps(result, folder)
    width = max(len(step) for step, _ in steps)
    click.echo("next:")
    for step, why in steps:
        click.echo(f"  {step:<{width}}  {why}".rstrip())


def _checked(check):
    """A click value_proc: the library's check; a refused answer is asked again."""

    def proc(value):
        try:
            return check(value)
        except BuilderError as exc:
            raise click.UsageError(str(exc)) from None

    return proc


def executor_options(when: str = ""):
    """`--workers N` and `--engine local|ray` (as `executor`): where a pure step runs (builder.sentences.executors)."""

    def decorate(command):
        command = click.option(
            "--engine",
            "executor",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help=f"{when}ray runs on Ray Data (pip install 'builder[ray]'): the cluster at RAY_ADDRESS or local.",
        )(command)
        return click.option(
            "--workers",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help=f"{when}processes on this machine (with --engine ray: Ray's concurrency). Same output as one.",
        )(command)

    return decorate


def input_field_options(command):
    """`--id-field KEY` ... `--target-field KEY`: the input key or column each article field is read from."""
    from builder.sentences.field_map import INPUT_FIELDS

    what = {"published": "publication date", "target": "own stance target", "url": "URL", "title": "headline"}
    for role in reversed(INPUT_FIELDS):
        command = click.option(
            f"--{role}-field",
            metavar="KEY",
            help=f"Input key or column of the article's {what.get(role, role)}. "
            f"Default: [input] {role}_field, else '{role}'.",
        )(command)
    return command


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
@input_field_options
@executor_options()
@click.pass_context
def split(ctx, articles, output, articles_output, report_path, workers, executor, **fields) -> None:
    """Split ARTICLES (.txt, .jsonl, .html, .parquet files or folders of them) into sentences.

    A .txt file's first non-empty line is its headline; a .jsonl file has one article per line
    with `id` and `text` (optional `title`, `url`, `published`, `target`); a .parquet file has
    `id` and `text` columns (and optionally those). When your corpus names them otherwise, map
    them: `--id-field doc_id` (or `id_field = "doc_id"` in builder.toml's [input] table; a flag
    overrides the table). A file none of whose records has the id or text field is one line
    naming the fields it has, and nothing is written. Boilerplate lines
    (donation appeals, subscribe/share lines) are removed and listed on stderr. Exit status 1
    if any input was rejected; the valid articles are still written. Files builder wrote
    (OUTPUT itself, sentence and article records) are never read as articles. When nothing
    valid was read, the previous OUTPUT is kept untouched (exit status 1).

    \b
    Example:
        builder split examples/sample -o work/sentences.jsonl
        builder split crawl/*.parquet -o work/sentences.jsonl --workers 8
        builder split corpus.jsonl -o work/sentences.jsonl --id-field doc_id --url-field source_url
    """
    from builder.sentences.splitting import split_files

    result = split_files(
        articles,
        output,
        project_of(ctx),
        articles_output,
        report_path=report_path,
        workers=workers,
        executor=executor,
        fields={name.removesuffix("_field"): key for name, key in fields.items() if key},
    )
    print_report(result.report)
    if not result.written:
        kept = " and ".join(str(path) for path in result.kept)
        why = result.refused or "nothing valid was read"
        click.echo(f"error: {why}; {'kept the previous ' + kept if kept else 'wrote nothing'}", err=True)
    else:
        click.echo(
            f"wrote {result.sentences} sentences from {result.articles} articles to {result.sentences_path}", err=True
        )
        if result.set_aside:
            click.echo(f"split: {set_aside_line(result.set_aside)}, kept as context, not to be pushed", err=True)
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
    """Install Label Studio into its own virtual environment now (otherwise done on first start), and make
    the empty database every new project's first start copies.

    \b
    Example:
        builder server install
    """
    from builder.labelstudio import empty_database

    executable = empty_database.prepare(log=lambda m: click.echo(m, err=True))
    click.echo(f"Label Studio {empty_database.LABEL_STUDIO_VERSION}: {executable}")


@server.command("start")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port (default 8080, or the last one used).",
)
@click.option(
    "--db",
    "database",
    type=click.Choice(["sqlite", "postgresql"]),
    default=None,
    help="Label Studio's database: SQLite in .builder/, or PostgreSQL in a private cluster builder makes in "
    ".builder/postgresql (Debian: apt-get install postgresql). Default: the one the project's server was "
    "created with, else sqlite.",
)
@click.option(
    "--database-url",
    metavar="postgresql://USER@HOST:PORT/DB",
    default=None,
    help="Use an existing PostgreSQL server; its password comes from PGPASSWORD or ~/.pgpass, never the URL.",
)
@click.option(
    "--pg-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port of the PostgreSQL cluster builder makes (--db postgresql), on 127.0.0.1. Default: the one it "
    "last ran on, else a free one.",
)
@click.option(
    "--host",
    metavar="ADDRESS",
    default=None,
    help="Listen on this address (0.0.0.0: every interface) so annotators can connect. Default: 127.0.0.1 only.",
)
@click.pass_context
def server_start(ctx, port, database, database_url, pg_port, host) -> None:
    """Start the local Label Studio and wait until it is healthy.

    Its data lives in .builder/ (git-ignored); URL, process id, the API token and the database
    password are kept in .builder/server.json, readable only by you.

    \b
    Example:
        builder server start --port 8080
        builder server start --db postgresql --host 0.0.0.0
        builder server start --db postgresql --pg-port 54329
    """
    from builder.labelstudio import server as local

    root = project_of(ctx, needs_root=True).root
    state = local.start(
        root,
        port,
        log=lambda m: click.echo(m, err=True),
        database=database,
        database_url=database_url,
        host=host,
        pg_port=pg_port,
    )
    click.echo(
        f"Label Studio runs on {state.url} (pid {state.pid}), database: {local.describe_database(state)}; "
        f"log in as {state.username}, password in {local.state_path(root)}"
    )
    shared = local.share_url(state)
    if shared:
        click.echo(f"share with annotators: {shared}")
        click.echo(
            "warning: Label Studio speaks plain HTTP: passwords and data cross the network unencrypted; "
            "put it behind a TLS reverse proxy (nginx, Caddy) beyond a trusted network",
            err=True,
        )


@server.command("migrate")
@click.option(
    "--to",
    "to",
    type=click.Choice(["postgresql"]),
    required=True,
    help="The database to move to (PostgreSQL, the only choice for now).",
)
@click.option(
    "--database-url",
    metavar="postgresql://USER@HOST:PORT/DB",
    default=None,
    help="An existing, empty PostgreSQL database instead of a cluster builder makes in .builder/postgresql; "
    "its password comes from PGPASSWORD or ~/.pgpass, never the URL.",
)
@click.pass_context
def server_migrate(ctx, to, database_url) -> None:
    """Move the local Label Studio's data from SQLite to PostgreSQL, and check that nothing was lost.

    Everything moves with Label Studio's own ids (tasks, predictions, annotations with their annotator,
    ground truth, cancellation and lead time, accounts, API tokens), so URL, token and project stay the
    same. The move is checked: rows per model, and the snapshot pulled before and after, byte for byte;
    on any difference the project stays on SQLite. The SQLite database is kept as a backup.

    \b
    Example:
        builder server migrate --to postgresql
        builder server migrate --to postgresql --database-url postgresql://ls@db.example.org:5432/labelstudio
    """
    from builder.labelstudio.migrate import migrate_to_postgresql

    project = project_of(ctx, needs_root=True)
    result = migrate_to_postgresql(project.root, project, database_url, log=lambda m: click.echo(m, err=True))
    check = (
        "pulled snapshot identical"
        if result.snapshot_identical
        else f"no Label Studio project titled '{project.project_title}' to compare"
    )
    click.echo(
        f"moved to {result.database}: {result.tasks} tasks, {result.annotations} annotations, "
        f"{result.predictions} predictions, {result.users} users ({sum(result.counts.values())} rows); {check}"
    )
    click.echo(f"Label Studio runs on {result.url} on PostgreSQL (same URL, token and project id)")
    click.echo(f"the SQLite database stays as a backup in {result.sqlite_backup}: delete it once you are satisfied")


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
    from builder.labelstudio.client import URL_VARIABLE, status

    found = status(_root(ctx))
    if found.source == "environment":
        click.echo(f"using {found.url} from {URL_VARIABLE} ({'healthy' if found.healthy else 'not answering'})")
    elif found.source is None:
        click.echo("no local Label Studio is running (start one with `builder server start`)")
        ctx.exit(3)
    else:
        health = "healthy" if found.healthy else "not answering yet"
        click.echo(
            f"local Label Studio {found.version} on {found.url}, pid {found.pid}, {health}; database: {found.database}"
        )


def _format_option(json_help: str):
    """`--format table|json|csv`, the same on every report command (rendered by builder.report)."""
    from builder.report import FORMATS

    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help=f"Output format; JSON goes alone on stdout, messages to stderr. {json_help}",
    )


# `--json`, older spelling of `--format json`: kept working for scripts, no longer listed.
_json_alias = click.option("--json", "as_json", is_flag=True, hidden=True)


@cli.group()
def annotators() -> None:
    """Annotator accounts of the Label Studio organization: add, list with progress, remove.

    E-mails are shown masked (a•••@example.org) unless --show-emails: annotators' e-mails never
    reach the dataset, and stay off shared logs too. The API key is never printed.

    \b
    Example:
        builder annotators add ann1@example.org ann2@example.org
    """


_show_emails = click.option(
    "--show-emails", is_flag=True, help="Print e-mails in full (for the maintainer's own terminal, not for logs)."
)


@annotators.command("add")
@click.argument("emails", nargs=-1)
@click.option(
    "--invite-only",
    is_flag=True,
    help="Make no account: print the invite link, for people to sign up with a password of their own.",
)
@_show_emails
@click.pass_context
def annotators_add(ctx, emails, invite_only, show_emails) -> None:
    """Make an annotator account for each e-mail, the way a person joins (the invite link).

    Each account gets as its Label Studio name the pseudonym the dataset gives it, so other
    annotators see that, not its e-mail; each row printed starts with it (two e-mails at one domain
    mask alike). Prints each account's generated password (hand it over privately: Label Studio
    Community has no page to change it), or with --invite-only the invite link (anyone who has it
    can join; run `annotators add` with their e-mails once they signed up, to name them). An e-mail
    that is a member already is reported and named, nothing else; invalid e-mails stop the command
    before anything is made.

    \b
    Example:
        builder annotators add ann1@example.org ann2@example.org
        builder annotators add --invite-only
    """
    from builder.labelstudio.accounts import REMOVED_EARLIER, checked_emails, mask_email
    from builder.labelstudio.client import resolve_connection
    from builder.labelstudio.display_names import add_named_annotators

    if not emails and not invite_only:
        raise click.UsageError("give at least one e-mail, or --invite-only")
    shown = (lambda e: e) if show_emails else mask_email
    wanted = checked_emails(emails)
    project = project_of(ctx, needs_root=True)  # the pseudonym key is the project's
    width = max([len(shown(e)) for e in wanted] + [len("e-mail")])
    name_width = len("annotator-") + 12
    if wanted:
        click.echo(f"{'pseudonym':<{name_width}}  {'e-mail':<{width}}  {'status':<30}  password")

    def row(account, pseudonym: str) -> None:
        click.echo(
            f"{pseudonym:<{name_width}}  {shown(account.email):<{width}}  {account.status:<30}  "
            f"{account.password or '-'}".rstrip()
        )

    result, _ = add_named_annotators(
        resolve_connection(project.root),
        project,
        wanted,
        invite_only,
        on_account=row,
        log=lambda m: click.echo(m, err=True),
    )
    if result.invite_url:
        click.echo(f"invite link (anyone who has it can join the organization): {result.invite_url}")
    if any(a.password for a in result.accounts):
        click.echo(f"they log in at {result.login_url}")
    not_added = [a for a in result.accounts if a.status == REMOVED_EARLIER]
    if not_added:
        raise BuilderError(
            f"{len(not_added)} e-mail(s) belong to accounts removed from the organization earlier; "
            "Label Studio Community cannot add them again (use another e-mail)"
        )


@annotators.command("list")
@_format_option("JSON: the project and one object per account.")
@_json_alias
@_show_emails
@click.pass_context
def annotators_list(ctx, fmt, as_json, show_emails) -> None:
    """Each account: its pseudonym in the dataset, whether it is active, and its progress.

    Progress in the project: tasks annotated, tasks skipped, and tasks remaining for them (not yet
    annotated or skipped by them, and still short of the annotators per task the project asks for).
    The pseudonym is the one `builder pull` gives (shown once `annotators add` or a pull made the key).
    Before the first push the accounts are listed with no progress, under a note saying nothing is pushed yet.
    E-mails are masked in every format unless --show-emails.
    In a blind project ([annotation] blind), also the tasks assigned to each (their own copy).

    \b
    Example:
        builder annotators list
        builder annotators list --format csv
    """
    from builder.labelstudio.accounts import list_annotators, mask_email
    from builder.labelstudio.blind_push import is_blind, list_blind_annotators
    from builder.labelstudio.client import resolve_connection
    from builder.report import render, render_json

    project = project_of(ctx, needs_root=True)  # the pseudonym key and the pull state are the project's
    connection = resolve_connection(project.root)
    blind = is_blind(project, connection)
    listing = (list_blind_annotators if blind else list_annotators)(connection, project)
    fmt = "json" if as_json else fmt
    if fmt == "json":
        if not listing.pushed:
            click.echo(listing.note(), err=True)
        click.echo(render_json(listing.as_dict(show_emails)), nl=False)
        return
    shown = (lambda e: e or "-") if show_emails else mask_email
    click.echo(listing.note(), err=fmt != "table")
    rows = [
        {
            "pseudonym": a.pseudonym,
            "active": "yes" if a.active else "no (removed)",
            **({"assigned": a.assigned} if blind else {}),
            "annotated": a.annotated,
            "skipped": a.skipped,
            "remaining": a.remaining,
            "email": shown(a.email),
        }
        for a in listing.annotators
    ]
    if not rows and fmt == "table":
        click.echo("no annotator accounts yet: `builder annotators add EMAIL...`")
        return
    columns = [*ANNOTATOR_COLUMNS[:2], *([("assigned", "assigned")] if blind else []), *ANNOTATOR_COLUMNS[2:]]
    click.echo(render(fmt, columns, rows), nl=False)


ANNOTATOR_COLUMNS = [
    ("pseudonym", "pseudonym"),
    ("active", "active"),
    ("annotated", "annotated"),
    ("skipped", "skipped"),
    ("remaining", "remaining"),
    ("email", "e-mail"),
]


@annotators.command("remove")
@click.argument("email")
@_show_emails
@click.pass_context
def annotators_remove(ctx, email, show_emails) -> None:
    """Remove the account with EMAIL from the organization; its annotations stay.

    The account can no longer open the project or annotate (Label Studio still lets it log in and
    see project titles); everything it annotated stays in Label Studio, and later pulls keep it
    under the same pseudonym. Label Studio Community cannot add the same e-mail again afterwards.
    In a blind project ([annotation] blind), the tasks of their copy they had not started go to
    the other annotators (those with the fewest sentences first, never one who has the sentence),
    so that each sentence still reaches annotators_per_sentence of them while enough remain;
    running it again completes an interrupted removal.

    \b
    Example:
        builder annotators remove ann2@example.org
    """
    from builder.labelstudio.accounts import mask_email, remove_annotator
    from builder.labelstudio.blind_push import is_blind
    from builder.labelstudio.client import resolve_connection

    project = project_of(ctx, needs_root=True)  # the account's pseudonym is recorded in the pull state
    connection = resolve_connection(project.root)
    shown = email if show_emails else mask_email(email.strip().lower())
    if is_blind(project, connection):
        from builder.labelstudio.blind_handover import remove_blind_annotator

        removed = remove_blind_annotator(connection, project, email)
        handed = removed.handed
        name = f" ({removed.pseudonym})" if removed.pseudonym else ""
        done = "was removed already" if removed.was_removed else f"removed{name} from their organization"
        click.echo(
            f"{shown} {done}; their {removed.kept} annotated or skipped tasks stay; "
            f"{handed.sentences} unstarted sentences handed to {len(handed.receivers)} other annotator(s)"
        )
        if handed.short:
            click.echo(
                f"{handed.short} sentences now reach fewer than {project.annotators_per_sentence} annotators: "
                "too few annotators remain (`builder annotators add`, then `builder push` tops them up)",
                err=True,
            )
        return
    removed = remove_annotator(connection, email, project)
    name = f" under the pseudonym {removed.pseudonym}" if removed.pseudonym else " (named at the first pull)"
    click.echo(
        f"removed {removed.email if show_emails else mask_email(removed.email)} from the organization at "
        f"{connection.url}; its annotations stay{name}"
    )


@annotators.command("blind")
@click.pass_context
def annotators_blind(ctx) -> None:
    """Make the shared project blind: each annotator in an organization of their own, seeing no one else's work.

    For a project first pushed with annotators shared (before blind annotation, or with
    blind = false) on builder's local server. The shared project stays as it is, with every
    annotation, ground truth and pseudonym, and every later pull merges it with the annotators'
    copies: a pull gives the same snapshot before and after. Each annotator is moved into an
    organization of their own (they can no longer open the shared project), and each sentence the
    shared project has not finished is given to as many annotators as it lacks, never to one who
    labelled it already. Drafts left in the shared project are not carried over. Then set
    [annotation] blind = "auto" (the default) or true. Running it again changes nothing.

    \b
    Example:
        builder annotators blind
    """
    from builder.labelstudio.blind_handover import make_blind
    from builder.labelstudio.client import resolve_connection

    project = project_of(ctx, needs_root=True)  # the organizations' tokens are kept under the project root
    connection = resolve_connection(project.root)
    made = make_blind(connection, project, log=lambda m: click.echo(m, err=True))
    handed = made.handed
    click.echo(
        f"blind: {made.annotators} annotators each in an organization of their own; the shared project's "
        f"{made.tasks} tasks and their annotations stay and are pulled with the copies; "
        f"{handed.sentences} unfinished sentences given to annotators' copies ({handed.places} tasks), "
        f"{made.finished} already finished"
    )
    if handed.short:
        click.echo(
            f"{handed.short} sentences reach fewer than {project.annotators_per_sentence} annotators: "
            "too few annotators (`builder annotators add`, then `builder push` tops them up)",
            err=True,
        )


PREDICTORS = "gazetteer, model (or model:FOLDER), spacy:NAME_OR_PATH, or none"


def _predictor(spec: str, project: Project):
    """The predictor `--predictor` names (builder.preannotate.make_predictor)."""
    from builder.preannotate import make_predictor

    return make_predictor(spec, project.snapshot_path, project.entity_values, project)


@cli.command()
@click.argument("sentences", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--predictor",
    help=f"Pre-annotations: {PREDICTORS}. Default: model with --select uncertain, else gazetteer.",
)
@click.option(
    "--select",
    "how",
    type=click.Choice(["file", "uncertain", "random"]),
    default="file",
    show_default=True,
    help="Which new sentences: in file order, where the model is least certain (spread over articles), or at random.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Import at most N new sentences (needed by uncertain, random)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --select random.")
@click.option(
    "--batch-size",
    type=int,
    default=5000,
    show_default=True,
    help="Tasks per import request (Label Studio recounts the project after each); a request ends where an article "
    "ends, so it may hold up to twice as many.",
)
@click.option(
    "--adopt-project",
    is_flag=True,
    help="Take the existing Label Studio project with the scheme's title as this repository's (once: builder "
    "otherwise refuses a project it did not make, since any member can make one with the same title).",
)
@click.pass_context
def push(ctx, sentences, predictor, how, limit, seed, batch_size, adopt_project) -> None:
    """Create or update the Label Studio project from the scheme and import SENTENCES.

    Sentences already in the project (by id) are skipped, so re-running after an interruption
    completes the push without duplicates. Tasks carry pre-annotations (Label Studio predictions),
    and the project shows the predictor's model version. It says what it attached (tasks with
    proposals, entity spans, stance suggestions) and, for a kind attached to none, why (an empty
    gazetteer, no model trained yet, a model that promises nothing of that kind, the control arm).
    With [quality] gold and gold_rate in builder.toml, gold questions are mixed in at that rate,
    each once.

    \b
    Example:
        builder push work/sentences.jsonl
        builder push work/sentences.jsonl --select uncertain --limit 200
    """
    from builder.labelstudio.blind_push import is_blind, push_blind, remote_warning
    from builder.labelstudio.client import resolve_connection
    from builder.labelstudio.push import Selection, attached_lines, push_sentences

    project = project_of(ctx)
    select = Selection(how, limit, seed)
    predictor = predictor or ("model" if how == "uncertain" else "gazetteer")
    connection = resolve_connection(project.root)
    chosen = _predictor(predictor, project)
    if is_blind(project, connection):
        if how != "file" or limit is not None or adopt_project:
            raise click.UsageError(
                "a blind project pushes every new sentence: leave out --select, --limit, --adopt-project"
            )
        blind = push_blind(connection, project, Path(sentences), chosen, batch_size)
        click.echo(
            f"push (blind): {blind.created} new sentences given to {project.annotators_per_sentence} of "
            f"{blind.annotators} annotators each, in a copy of the project per annotator on {connection.url}; "
            f"skipped {blind.skipped} already given"
        )
        if blind.short:
            click.echo(
                f"push (blind): {blind.short} sentences reach fewer than {project.annotators_per_sentence} "
                "annotators: too few annotators (`builder annotators add`, then push again)",
                err=True,
            )
        return
    warning = remote_warning(project, connection)
    if warning:
        click.echo(warning, err=True)
    result = push_sentences(
        connection, project, Path(sentences), chosen, batch_size, select=select, adopt_project=adopt_project
    )
    verb = "created" if result.project_created else "updated"
    click.echo(f"project '{project.project_title}' (id {result.project_id}) {verb} on {connection.url}")
    click.echo(f"push: created {result.created} tasks, skipped {result.skipped} already present")
    if result.set_aside:
        click.echo(f"push: {set_aside_line(result.set_aside)} (not sentences to label), never pushed")
    if limit is not None:
        mean = "" if result.mean_uncertainty is None else f", mean uncertainty {result.mean_uncertainty:.3f}"
        click.echo(
            f"push: chose {result.created} new sentences ({how}{f', seed {seed}' if how == 'random' else ''}){mean}; "
            f"{result.left_out} new sentences left for a later push"
        )
    for line in attached_lines(result, predictor):
        click.echo(f"push: {line}")
    if result.withheld:
        click.echo(
            f"push: {result.withheld} tasks imported without a suggestion: the control arm "
            f"([annotation] suggestion_holdout {project.suggestion_holdout:g})"
        )
    if project.gold_rate > 0:
        click.echo(f"push: added {result.gold} gold questions (gold rate {project.gold_rate:g})")
        if result.gold_short:
            click.echo(
                f"push: {result.gold_short} gold questions were due but every one in {project.gold_path} is in the "
                "project already: add gold questions to keep the rate",
                err=True,
            )
    if result.model_version is not None and result.previous_model_version != result.model_version:
        click.echo(f"push: the project now shows predictions of {result.model_version}")
        if result.previous_model_version:
            click.echo(
                f"push: tasks pushed earlier hold predictions of {result.previous_model_version}: run "
                f"`builder predict --predictor {predictor}` to refresh those nobody has annotated yet",
                err=True,
            )


def _predict_pool(project: Project, sentences, predictor: str, output, workers: int, engine: str) -> None:
    """`builder predict SENTENCES -o OUT`: the trained model over a pool of sentences, offline."""
    from builder.learn.pool import predict_pool
    from builder.learn.trained import default_model_dir

    if sentences is None or output is None:
        raise click.UsageError("give both SENTENCES and -o OUT to predict a sentences file (or neither)")
    if predictor != "model" and not predictor.startswith("model:"):
        raise click.UsageError(f"--predictor {predictor}: a sentences file is predicted by model or model:FOLDER")
    folder = default_model_dir(project) if predictor == "model" else Path(predictor.split(":", 1)[1])
    result = predict_pool(folder, sentences, output, project, workers=workers, engine=engine)
    mean = f"{result.mean_uncertainty:.3f}" if result.mean_uncertainty is not None else "-"
    click.echo(
        f"predict: {result.sentences} sentences, {result.with_proposals} with proposals of {result.model_version}, "
        f"mean uncertainty {mean}; wrote {result.path}",
        err=True,
    )


@cli.command()
@click.argument("sentences", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--predictor", default="model", show_default=True, help=f"The predictor whose predictions to give: {PREDICTORS}."
)
@click.option(
    "-o", "--output", type=OutputFile(), help="With SENTENCES: where to write their predictions (JSON Lines)."
)
@executor_options("With SENTENCES: ")
@click.pass_context
def predict(ctx, sentences, predictor, output, workers, executor) -> None:
    """Refresh the predictions of the tasks nobody has annotated yet with the current predictor; or, given a
    SENTENCES file and -o, write the trained model's predictions for it (no Label Studio).

    Predictions builder made with another model version are replaced on tasks without any
    annotation (submitted or cancelled); annotated tasks, and predictions builder did not make, are
    left as they are. The project is set to show the new model version. Re-running changes nothing.

    With SENTENCES (a large pool, as `builder split` writes it), each output line holds a sentence's
    `id`, `article_id`, the `model_version`, its `uncertainty` (what `push --select uncertain` ranks by) and
    the `predictions` `push` would attach, in the file's order; --workers and --engine ray give the same bytes.

    \b
    Example:
        builder predict
        builder predict --predictor model:models/crf-2
        builder predict work/pool.jsonl -o work/pool.predictions.jsonl --workers 4
    """
    project = project_of(ctx)
    if sentences is not None or output is not None:
        _predict_pool(project, sentences, predictor, output, workers, executor)
        return
    from builder.labelstudio.client import resolve_connection
    from builder.labelstudio.predictions import refresh_predictions

    connection = resolve_connection(project.root)
    chosen = _predictor(predictor, project)
    result = refresh_predictions(connection, project, chosen)
    click.echo(
        f"predict: {result.predicted} tasks got new predictions of {result.model_version}"
        + (f"; {result.cleared} tasks lost their older ones (nothing proposed now)" if result.cleared else "")
        + f"; {result.deleted} older predictions deleted"
    )
    click.echo(
        f"predict: skipped {result.skipped} of {result.tasks} tasks: {result.annotated} annotated"
        + (f", {result.drafted} with an annotator's draft" if result.drafted else "")
        + " (never touched"
        + (f"; {result.annotated_meanwhile} of them annotated while predict ran" if result.annotated_meanwhile else "")
        + f"), {result.current} already predicted by this version, {result.nothing} with nothing proposed"
        + (f", {result.no_text} without a text" if result.no_text else "")
        + (f", {result.withheld} in the control arm (never suggested)" if result.withheld else "")
    )
    if result.foreign:
        click.echo(f"predict: kept {result.foreign} predictions builder did not make (other model versions)")
    if result.version_set:
        click.echo(f"predict: the project shows predictions of {result.model_version}")
    else:
        click.echo(
            f"predict: the project's model version stays {result.previous_version or '(none)'}: "
            f"no task holds a prediction of {result.model_version}",
            err=True,
        )


@cli.command()
@click.option("--since-last", is_flag=True, help="Fetch only tasks changed since the previous pull and merge them.")
@click.option(
    "--rename-annotators",
    is_flag=True,
    help="Accept that a new pseudonym key renames the annotators already in the snapshot.",
)
@click.option(
    "--accept-changes",
    is_flag=True,
    help="Pull although the labeling config, settings, task data or another's annotation changed in Label Studio.",
)
@click.option("-o", "--output", type=OutputFile(), help="Snapshot file. Default: annotations/snapshot.jsonl.")
@click.pass_context
def pull(ctx, since_last, rename_annotators, accept_changes, output) -> None:
    """Fetch annotated tasks through a Label Studio snapshot export into annotations/.

    The snapshot is JSON Lines, one task per line sorted by sentence id, annotators as
    pseudonyms; it is written atomically, so a failed pull leaves the previous one untouched.
    A pull refuses, writing nothing, when what annotators label against changed in Label Studio:
    the labeling config or settings builder set, a task's data, or an annotation edited by an
    account other than its author; --accept-changes pulls anyway and records what it accepted.

    \b
    Example:
        builder pull --since-last
    """
    from builder.labelstudio.blind_pull import pull_blind
    from builder.labelstudio.blind_push import is_blind
    from builder.labelstudio.client import resolve_connection
    from builder.labelstudio.pull import pull as pull_snapshot
    from builder.outputs import check_output_file

    project = project_of(ctx, needs_root=True)  # the pull state is kept under the project root
    if output is not None:
        check_output_file(output, project, replaces=("Label Studio tasks",))
    connection = resolve_connection(project.root)
    puller = pull_blind if is_blind(project, connection) else pull_snapshot  # blind: every copy, merged
    result = puller(
        connection,
        project,
        output,
        since_last,
        log=lambda m: click.echo(m, err=True),
        rename_annotators=rename_annotators,
        accept_changes=accept_changes,
    )
    if since_last and not result.incremental:
        click.echo(f"full pull: {result.why_full}", err=True)
    mode = "changed tasks merged" if result.incremental else "full export"
    removed = f", {result.removed} tasks no longer annotated or deleted removed" if result.incremental else ""
    click.echo(
        f"pull ({mode}): fetched {result.fetched} tasks, {result.unannotated} without annotations left out{removed}; "
        f"{result.written} annotated tasks in {result.path}"
    )
    if result.duplicates:
        shown = ", ".join(map(str, result.duplicates[:10])) + (", ..." if len(result.duplicates) > 10 else "")
        click.echo(
            f"pull: the export held {len(result.duplicates)} task ids more than once (tasks {shown}): "
            "each counted once, the annotations of its copies merged",
            err=True,
        )


def _snapshot_option(function):
    return click.option(
        "--snapshot", type=click.Path(dir_okay=False, path_type=Path), help="Default: annotations/snapshot.jsonl."
    )(function)


def validation_summary(result) -> dict:
    """What `validate` (and `build`, before it builds) found: the accounting, then the problems counted
    by reason with the first of each as the example (every problem is in the JSON report file)."""
    from builder.records.aggregate import UNRESOLVED_ENTITIES
    from builder.report import problems_by_reason

    return {
        "tasks_in": result.tasks_in,
        "records": result.records,
        "gold_questions": result.gold,
        "quarantined": result.quarantined,
        "entity_conflicts": result.report.kept[UNRESOLVED_ENTITIES],
        "problems": problems_by_reason(result.report.problems),
    }


def print_validation(result, table: bool = True) -> None:
    """On stderr: the problems, one row per reason with a count and the first as example (unless `table`
    is False: stdout carries them as JSON or CSV), then the accounting line (and the gold questions and
    entity conflicts)."""
    from builder.report import PROBLEM_COLUMNS, render_table

    summary = validation_summary(result)
    if summary["problems"] and table:
        click.echo(render_table(PROBLEM_COLUMNS, summary["problems"]), nl=False, err=True)
        listed = result.report_path or "the report `builder validate` writes"
        click.echo(f"each problem, one by one, with its task, annotation and field: {listed}", err=True)
    dropped = ", ".join(f"{n} {why}" for why, n in sorted(result.report.dropped().items())) or "none"
    gold = f" + {result.gold} gold questions" if result.gold else ""
    click.echo(
        f"validate: {result.tasks_in} tasks in = {result.records} records{gold} + {result.quarantined} quarantined; "
        f"problems by reason: {dropped}",
        err=True,
    )
    if result.gold:
        click.echo(f"gold questions: {result.gold} tasks, not in the dataset", err=True)
    if summary["entity_conflicts"]:
        click.echo(
            f"entity conflicts: {summary['entity_conflicts']} span(s) the vote could not decide, in "
            "`unresolved_entities`; `builder review` lists them",
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
@_format_option("JSON: the accounting and the problems by reason; CSV: one row per reason.")
@click.pass_context
def validate(ctx, snapshot, records_path, report_path, fmt) -> None:
    """Check the pulled snapshot against the task schema and the scheme; write records.

    Every task ends as a record or in the report with a reason; problems name the task,
    annotation, annotator pseudonym and field. On screen they are counted by reason, the first of
    each as the example; the JSON report file lists each one. Exit status 1 if anything is invalid.

    \b
    Example:
        builder validate --report build/validation-report.json
        builder validate --format json
    """
    from builder.records.from_snapshot import validate_to_files
    from builder.report import PROBLEM_COLUMNS, render

    result = validate_to_files(project_of(ctx), snapshot, records_path, report_path)
    print_validation(result, table=fmt == "table")
    if fmt != "table":
        summary = {
            "stage": "validate",
            **validation_summary(result),
            "records_path": str(result.records_path),
            "report_path": str(result.report_path),
        }
        click.echo(render(fmt, PROBLEM_COLUMNS, summary["problems"], summary), nl=False)
    click.echo(f"wrote {result.records} records to {result.records_path}, report to {result.report_path}", err=True)
    if result.report.errors():
        ctx.exit(1)


@cli.command()
@_snapshot_option
@_format_option("JSON: the figures as one object; table and CSV: one row per figure (section, key, value).")
@_json_alias
@click.pass_context
def stats(ctx, snapshot, fmt, as_json) -> None:
    """Label counts and inter-annotator agreement (Krippendorff's alpha, Fleiss' kappa, span F1).

    `agreement_evidence` gives every figure with its 95% interval and n, Gwet's AC1 and Krippendorff's
    unitizing alpha, and what the span disagreements are; `diagnostics` says where a figure rests on
    too few items, one label dominates, or disagreements are mostly on boundaries.

    Annotators appear under their pseudonyms. The table and CSV have one row per figure: its
    section (`labels.stance`, `stance_agreement`, ...), its key and its value.

    \b
    Example:
        builder stats
        builder stats --format json
    """
    from builder.records.from_snapshot import dataset_statistics
    from builder.report import flat_rows, render, render_json

    project = project_of(ctx)
    snapshot = snapshot or project.snapshot_path
    figures = dataset_statistics(project, snapshot)
    fmt = "json" if as_json else fmt
    if fmt == "json":
        click.echo(render_json(figures, sort_keys=True), nl=False)
    else:
        figures = {"dataset": {"records": figures.pop("records")}, **figures}  # every row has a section
        click.echo(render(fmt, STATS_COLUMNS, flat_rows(figures)), nl=False)
    _said_which_snapshot(snapshot)


STATS_COLUMNS = [("section", "section"), ("key", "key"), ("value", "value")]


def _said_which_snapshot(snapshot) -> None:
    """Which snapshot the figures are of (`builder run` builds from build/run/snapshot.jsonl, not the default
    one): on stderr, after the figures, so that `builder stats | head -1` still ends quietly."""
    click.echo(f"snapshot: {snapshot}", err=True)


@cli.command()
@_snapshot_option
@_format_option("JSON: a list of one object per annotator (null where a figure has no data).")
@click.option("-o", "--output", type=OutputFile(), help="Write the report to this file (atomically) instead of stdout.")
@click.pass_context
def quality(ctx, snapshot, fmt, output) -> None:
    """One row per annotator (pseudonym): answers, skips, lead time, gold accuracy, agreement, anchoring.

    Gold accuracy (stance on the gold questions of `[quality] gold`, with a 95% Wilson interval) and
    entity span F1 on them; Cohen's kappa with the other annotators; agreement with the aggregated
    stance; the share of pre-annotated spans kept unchanged. Annotators below `[quality]
    min_gold_accuracy` are flagged (* in the table); the count is the last line on stderr. Exit
    status 0 either way: it is a report. With a control arm (`[annotation] suggestion_holdout`), the
    tasks with and without suggestions compared (in the table; with csv or json, on stderr).

    \b
    Example:
        builder quality --format csv -o build/quality.csv
    """
    from builder.records.quality import quality_report

    project = project_of(ctx)
    result = quality_report(project, snapshot, fmt, output)
    if output is None:
        click.echo(result.text, nl=False)
    for reason, (count, where) in sorted(result.ignored.items()):
        click.echo(f"ignored: {count} {reason} (first: {where}); `builder validate` says more", err=True)
    if result.steering is not None and fmt != "table":  # the table carries it; CSV and JSON rows are annotators
        from builder.records.steering import steering_lines

        for line in steering_lines(result.steering):
            click.echo(f"control arm: {line}", err=True)
    wrote = f"; wrote {result.output}" if result.output else ""
    click.echo(
        f"quality: {result.tasks} tasks, {result.summary['annotators']} annotators; {result.summary['flagged']} "
        f"below min_gold_accuracy {project.min_gold_accuracy:g}" + (" (marked *)" if fmt == "table" else "") + wrote,
        err=True,
    )


@cli.command()
@_snapshot_option
@_format_option(
    "JSON: the stance ties and the entity conflicts (each annotator's stance and spans) and the views' links; "
    "CSV: one row per sentence."
)
@click.pass_context
def review(ctx, snapshot, fmt) -> None:
    """List what aggregation could not decide and make Label Studio views of it for adjudication.

    Stance ties (each annotator's stance), then entity conflicts: the sentence, each annotator's spans by
    pseudonym, and the spans the vote could not decide (another label on the same extent, overlapping
    spans, too few annotators). One view each in Label Studio; adjudicate there (star an annotation as
    ground truth, or add one and star it): the next pull and build take its decision, marked
    `ground_truth` in the dataset.

    \b
    Example:
        builder review
        builder review --format json > build/review.json
    """
    from builder.labelstudio.client import resolve_connection
    from builder.labelstudio.review import (
        ENTITY_REVIEW_VIEW_TITLE,
        create_review_view,
        describe_spans,
        entity_conflict_lines,
    )
    from builder.records.from_snapshot import unresolved_records
    from builder.report import render, render_table

    project = project_of(ctx)
    unresolved, conflicts = unresolved_records(project, snapshot or project.snapshot_path)
    as_table = fmt == "table"
    rows = []
    for kind, records in (("stance tie", unresolved), ("entity conflict", conflicts)):
        for record in records:
            rows.append(
                {
                    "kind": kind,
                    "id": record["id"],
                    "sentence": f"{record['article_id']}#{record['sentence_index']}",
                    "annotations": "; ".join(
                        f"{a['annotator']}: {a['stance'] if kind == 'stance tie' else describe_spans(a['entities'])}"
                        for a in record["annotations"]
                    ),
                    "unresolved": describe_spans(record.get("unresolved_entities") or [])
                    if kind == "entity conflict"
                    else "stance",
                    "text": record["text"],
                }
            )
    if as_table and unresolved:
        ties = [{**row, "text": row["text"][:80]} for row in rows if row["kind"] == "stance tie"]
        click.echo(f"stance ties ({len(unresolved)} sentence(s)):")
        click.echo(render_table(REVIEW_TIE_COLUMNS, ties), nl=False)
    if as_table and conflicts:
        click.echo(f"entity conflicts ({len(conflicts)} sentence(s)):")
        for record in conflicts:
            for line in entity_conflict_lines(record):
                click.echo(line)
    views = {}
    if unresolved or conflicts:
        connection = resolve_connection(project.root)
        if unresolved:
            views["stance_ties"] = create_review_view(connection, project, [r["id"] for r in unresolved])
        if conflicts:
            views["entity_conflicts"] = create_review_view(
                connection, project, [r["id"] for r in conflicts], ENTITY_REVIEW_VIEW_TITLE
            )
    if not as_table:
        data = {
            "stance_ties": [
                {
                    "id": r["id"],
                    "article_id": r["article_id"],
                    "sentence_index": r["sentence_index"],
                    "stances": {a["annotator"]: a["stance"] for a in r["annotations"]},
                    "text": r["text"],
                }
                for r in unresolved
            ],
            "entity_conflicts": [
                {
                    "id": r["id"],
                    "article_id": r["article_id"],
                    "sentence_index": r["sentence_index"],
                    "spans": {a["annotator"]: a["entities"] for a in r["annotations"]},
                    "unresolved": r["unresolved_entities"],
                    "text": r["text"],
                }
                for r in conflicts
            ],
            "views": views,
        }
        click.echo(render(fmt, REVIEW_COLUMNS, rows, data), nl=False)
    if not unresolved and not conflicts:
        click.echo("no unresolved sentences", err=not as_table)
    if unresolved:
        click.echo(
            f"{len(unresolved)} unresolved; review them in Label Studio: {views['stance_ties']}", err=not as_table
        )
    if conflicts:
        click.echo(
            f"{len(conflicts)} sentence(s) with entity conflicts; review them in Label Studio: "
            f"{views['entity_conflicts']}",
            err=not as_table,
        )


REVIEW_TIE_COLUMNS = [("id", "id"), ("sentence", "sentence"), ("annotations", "stances"), ("text", "text")]
REVIEW_COLUMNS = [
    ("kind", "kind"),
    ("id", "id"),
    ("sentence", "sentence"),
    ("annotations", "annotations"),
    ("unresolved", "unresolved"),
    ("text", "text"),
]


@cli.command("schema")
@click.option("--check", is_flag=True, help="Only check that schema/ matches the scheme; exit 1 if not.")
@click.pass_context
def schema_command(ctx, check) -> None:
    """Write schema/task.schema.json and schema/record.schema.json from the label scheme.

    \b
    Example:
        builder schema --check
    """
    from builder.model import stale_schemas, write_schemas

    project = project_of(ctx, needs_root=True)  # checks or writes the project's schema/
    folder = project.schema_dir
    if check:
        stale = stale_schemas(project, folder)
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
@_format_option("JSON: the folder, records per split, the validation summary and warnings; CSV: one row per split.")
@click.pass_context
def build(ctx, snapshot, output, repo_id, fmt) -> None:
    """Build the Hugging Face dataset folder: Parquet per split and a generated card.

    Validation problems are reported once, counted by reason (as by `builder validate`), and the
    valid records are built.
    OUTPUT must be new, empty, or an earlier output of builder's (marked by .builder-output.json);
    it is replaced whole, or kept as it was if the build fails.

    \b
    Example:
        builder build -o dist/my-dataset && python -c "import datasets; print(datasets.load_dataset('dist/my-dataset'))"
    """
    from builder.dataset.build import uneven_warnings
    from builder.dataset.release import build_project_dataset

    project = project_of(ctx)
    output = output or project.dataset_path
    facts = build_project_dataset(project, snapshot or project.snapshot_path, output)
    print_validation(facts.validation, table=fmt != "json")
    warnings = uneven_warnings(project, facts)
    for line in warnings:
        click.echo(line, err=True)
    splits = ("train", "validation", "test")
    sizes = ", ".join(f"{split} {facts.counts[split]['records']}" for split in splits)
    gold = f"; {facts.gold_questions} gold questions in the snapshot, left out" if facts.gold_questions else ""
    click.echo(f"built {output}: {sizes}{gold}", err=fmt != "table")
    pushed = None
    if repo_id:
        from builder.dataset.hub import push_folder

        pushed = push_folder(output, repo_id)
        click.echo(f"pushed to {pushed}", err=fmt != "table")
    if fmt != "table":
        from builder.report import render

        rows = [
            {
                "split": split,
                "records": facts.counts[split]["records"],
                "articles": len(facts.counts[split]["articles"]),
            }
            for split in splits
        ]
        summary = {
            "output": str(output),
            "splits": {row["split"]: row["records"] for row in rows},
            "gold_questions": facts.gold_questions,
            "validation": validation_summary(facts.validation),
            "warnings": warnings,
            "pushed_to": None if pushed is None else str(pushed),
        }
        click.echo(render(fmt, BUILD_COLUMNS, rows, summary), nl=False)


BUILD_COLUMNS = [("split", "split"), ("records", "records"), ("articles", "articles")]


@cli.command()
@_snapshot_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Model folder, new, empty or an earlier `builder train` output. Default: .builder/model/ in the project.",
)
@click.option(
    "--unlabelled",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A sentences file (`builder split`'s): its sentences not yet labelled teach the model which words are "
    "common words and which keep the same company (word clusters), which helps on text unlike the labelled "
    "(another genre or source).",
)
@click.pass_context
def train(ctx, snapshot, output, unlabelled) -> None:
    """Train the pre-annotation model (entity tagger and stance classifier) on the validated records.

    Articles are dealt into dev folds (each scored by a model fitted on the others); every figure is printed
    beside a baseline scored on the same folds (spans: the gazetteer of labelled strings; stance: always the
    most frequent stance). The thresholds are chosen there so that the one-sided 95% lower bound of the
    proposals' precision is 0.8 or more (a stance's also above the most frequent stance's share), and the precision
    they promise is printed with its interval; a kind no cut qualifies for is never suggested, and the line
    says why. The model is then fitted on every record.
    The folder is written atomically; its model_version hashes the training data and the settings, so the
    same snapshot gives the same model. Use it with `builder push --predictor model`.
    It says first what it learned from (labelled sentences, unlabelled ones, labels per class) and where its
    suggestions will be weak (classes with few examples, targets labelled too rarely: no stance is suggested
    for a target never labelled).

    \b
    Example:
        builder train --unlabelled work/sentences.jsonl && builder push work/sentences.jsonl --predictor model
    """
    from builder.learn.train import explain, train_model

    project = project_of(ctx)
    result = train_model(project, snapshot, output, unlabelled=unlabelled)
    metrics = result.metrics
    if result.left_out:
        click.echo(
            f"left out: {result.left_out} tasks or annotations that fail validation (`builder validate` names them)",
            err=True,
        )
    for line in explain(result.manifest):
        click.echo(line)
    click.echo(f"dev: {metrics['dev']}, {metrics['dev_sentences']} sentences")
    for line in train_report(metrics, result.thresholds):
        click.echo(line)
    click.echo(f"threshold headline_span: {result.thresholds['headline_span']}")
    click.echo(f"wrote {result.folder} (model_version {result.model_version})")


def train_report(metrics: dict, thresholds: dict) -> list[str]:
    """The lines `builder train` prints: each dev figure beside its baseline, aligned, then each threshold with
    the precision it promises (95% interval, n) beside the baseline's, or why nothing of its kind is suggested."""
    baselines = metrics.get("baselines") or {}
    gazetteer = baselines.get("entities") or {}
    lines = [f"  {'':<16} {'model':<36} baseline"]
    for label, m in metrics["entities"].items():
        base = gazetteer.get(label)
        figures = f"precision {m['precision']:.2f} recall {m['recall']:.2f} f1 {m['f1']:.2f}"
        beside = (
            f"precision {base['precision']:.2f} recall {base['recall']:.2f} f1 {base['f1']:.2f} (gazetteer)"
            if base
            else ""
        )
        lines.append(f"  {label + ' spans':<16} {figures:<36} {beside}".rstrip() + f"  ({m['support']} gold spans)")
    accuracy = metrics["stance_accuracy"]
    majority = baselines.get("stance") or {}
    if accuracy is None:
        lines.append(f"  {'stance accuracy':<16} no model")
    else:
        base = majority.get("accuracy")
        beside = f"{base:.2f} (always {majority.get('label')!r})" if base is not None else ""
        lines.append(
            f"  {'stance accuracy':<16} {accuracy:<36.2f} {beside}  ({metrics['stance_dev_sentences']} sentences)"
        )
    notes = metrics["threshold_notes"]
    promised = metrics.get("promised") or {}
    for key, base in (("span", (gazetteer.get("all") or {}).get("precision")), ("stance", majority.get("accuracy"))):
        value = thresholds[key]
        head = f"threshold {key}:"
        if value is None:
            lines.append(f"{head:<18} none: {notes[key]}")
            continue
        made = promised.get(key)
        if made is None:
            lines.append(f"{head:<18} {value} ({notes[key]}; no precision promised)")
            continue
        low, high = made["interval"]
        promise = f"{value} promises precision {made['precision']:.2f} [95% {low:.2f}-{high:.2f}, n {made['n']}]"
        beside = f"baseline {base:.2f} ({'gazetteer' if key == 'span' else 'always the most frequent'})"
        lines.append(f"{head:<18} {promise:<50} {beside if base is not None else ''}".rstrip())
    return lines


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


def _stance_map(ctx, param, value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    pairs = [item.partition("=") for item in value.split(",") if item.strip()]
    if any(not sep or not label.strip() for label, sep, _ in pairs):
        raise click.BadParameter("give LABEL=FAVOR|AGAINST|NONE pairs separated by commas, e.g. support=FAVOR")
    labels = [label.strip() for label, _, _ in pairs]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise click.BadParameter(f"{', '.join(twice)} given more than once")
    return {label.strip(): target.strip().upper() for label, _, target in pairs}


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["conll", "semeval", "spacy", "jsonl"]),
    required=True,
    help="conll: TOKEN TAG columns; semeval: ID, Target, Text, Stance TSV; spacy: DocBin; jsonl: every column.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Folder, new, empty or an earlier export's. Default: dist/<name>-<format> (dist/<name>-<VERSION>-<format>).",
)
@click.option("--version", "version", help="Export release VERSION (releases/VERSION) instead of the built dataset.")
@click.option(
    "--stance-map",
    callback=_stance_map,
    help="semeval: LABEL=FAVOR|AGAINST|NONE pairs, for labels not mapped by name.",
)
@click.pass_context
def export(ctx, fmt, output, version, stance_map) -> None:
    """Write the built dataset (dist/<name>) or a release for other toolkits: one file per split.

    \b
    conll    CoNLL-2003 columns, TOKEN TAG (the dataset's tokens and BIO tags); -DOCSTART- before
             each article, a blank line after each sentence
    semeval  SemEval-2016 Task 6 TSV: ID, Target, Text, Stance; labels mapped by name to FAVOR
             (favor, support, pro...), AGAINST (against, oppose, con...), NONE (neutral, none...),
             or by --stance-map; the mapping used is printed on stderr
    spacy    spaCy DocBin (`spacy train` reads it): Doc.ents, doc.spans["entities"], doc.cats
             (needs `pip install spacy`)
    jsonl    every column, labels as names, entity spans as character offsets into `text`

    What a format cannot hold (overlapping spans in CoNLL, an unresolved stance in SemEval) is
    counted on stderr with the sentence ids, and listed whole in export-report.json.

    \b
    Example:
        builder export --format conll -o dist/conll && head dist/conll/train.conll
    """
    from builder.dataset.export import export_dataset

    result = export_dataset(project_of(ctx), fmt, output, version, stance_map)
    if result.stance_map:
        click.echo(
            "stance mapping: " + ", ".join(f"{label} -> {value}" for label, value in result.stance_map.items()),
            err=True,
        )
    for note in result.notes:
        click.echo(note, err=True)
    sizes = ", ".join(f"{split} {n}" for split, n in result.rows.items())
    click.echo(f"exported {result.source} as {fmt} to {result.folder}: {sizes}")


@cli.command()
@click.argument("version")
@click.option("--push-to-hub", "repo_id", help="Also upload the release to this Hub dataset repo and tag it vVERSION.")
@click.option(
    "--allow-placeholders",
    is_flag=True,
    help="Release although guidelines.md still holds the template's placeholders (they are published as they are).",
)
@click.pass_context
def release(ctx, version, repo_id, allow_placeholders) -> None:
    """Cut release VERSION from the committed snapshot into releases/VERSION/.

    Refused, with nothing written, if VERSION exists or is not greater than the last release
    (Semantic Versioning 2.0.0 order), if validation finds problems, if the project file, the
    guidelines, annotations/snapshot.jsonl, annotations/withheld-suggestions.jsonl or the gold file
    are not committed in git (the project folder must be a git repository: `git init`), if the
    previous release does not verify, or if guidelines.md still holds `builder init`'s placeholders
    ("describe it here", example lines "- *...*"; --allow-placeholders releases them). Adds a
    generated entry to CHANGELOG.md (with the manifest's sha256), then prints the `git add` and
    `git commit` of the release folder and CHANGELOG.md (`builder verify` and the next release
    check them against git). Articles in an earlier release's test split stay in
    test. Two releases at once run one after the other,
    and a release and a `builder pull` of its snapshot wait for each other; the release is built from
    the snapshot (withheld suggestions, gold file) bytes it checked against git's HEAD.

    \b
    Example:
        builder release 1.1.0
    """
    from builder.dataset.release import cut_release

    project = project_of(ctx, needs_root=True)
    result = cut_release(project, version, log=lambda m: click.echo(m, err=True), allow_placeholders=allow_placeholders)
    splits = result.manifest["splits"]
    click.echo(
        f"released {project.name} {version} in {result.folder}: "
        + ", ".join(f"{s} {splits[s]['records']}" for s in splits)
    )
    click.echo(result.changelog_entry)
    import shlex

    paths = " ".join(shlex.quote(os.path.relpath(path)) for path in result.to_commit)
    click.echo(f"next: commit the release: git add {paths} && git commit -m {shlex.quote(f'release {version}')}")
    if repo_id:
        from builder.dataset.hub import push_folder

        pushed = push_folder(result.folder, repo_id, tag=f"v{version}", message=f"{project.name} {version}")
        click.echo(f"pushed to {pushed} and tagged v{version}")


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
    from the Parquet files; compares the input hashes with the card, and the snapshot, withheld
    suggestions and gold file hashes with those files' versions in git; and checks the chain of
    manifest hashes across releases and CHANGELOG.md. One line per mismatch. Outside a git work
    tree (or in a shallow clone) the commits cannot be checked, and a `note:` line says so.

    \b
    Example:
        builder verify 1.0.0
    """
    from builder.dataset.release import unchecked_history_note, verify_release

    project = project_of(ctx)
    problems = verify_release(project, version)
    note = unchecked_history_note(project)
    if note:
        click.echo(f"note: {note}", err=True)
    for problem in problems:
        click.echo(f"mismatch: {problem}", err=True)
    if problems:
        raise BuilderError(f"release {version} does not match its manifest ({len(problems)} problem(s))")
    click.echo(f"release {version}: its files, manifest, card and the chain of releases agree")


def main() -> None:
    cli(prog_name="builder")


if __name__ == "__main__":
    sys.exit(main())
