"""The `builder` command line: parses arguments, calls one library function, reports domain errors.

Every command's help ends with an example (a test checks it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from builder import __version__
from builder.errors import BuilderError
from builder.report import Report
from builder.scheme import Project, load_project


class CleanErrors(click.Group):
    """Turns domain errors into one line on stderr and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BuilderError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("error: interrupted; outputs were left as they were before this run", err=True)
            ctx.exit(130)


def project_of(ctx: click.Context) -> Project:
    root = ctx.find_root()
    if "project" not in root.meta:
        root.meta["project"] = load_project(root.params.get("config"))
    return root.meta["project"]


def print_report(report: Report, *, show_removed: bool = True) -> None:
    """Problems one per line, then counts, all on stderr (stdout stays for data)."""
    for problem in report.problems:
        if problem.error or show_removed:
            prefix = "rejected" if problem.error else "removed"
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
    help="Project file. Default: the nearest builder.toml, else the bundled default.",
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
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Sentences, JSON Lines.")
@click.option(
    "--articles-output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Articles (the text offsets point into). Default: OUTPUT with .articles.jsonl.",
)
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the full report (removed lines, rejected inputs) as JSON.")
@click.pass_context
def split(ctx, articles, output, articles_output, report_path) -> None:
    """Split ARTICLES (.txt, .jsonl, .html files or folders of them) into sentences.

    A .txt file's first non-empty line is its headline; a .jsonl file has one article per line
    with `id` and `text` (optional `title`, `url`, `published`, `target`). Boilerplate lines
    (donation appeals, subscribe/share lines) are removed and listed on stderr. Exit status 1
    if any input was rejected; the valid articles are still written.

    \b
    Example:
        builder split examples/sample -o work/sentences.jsonl
    """
    from builder.jsonio import atomic_write
    from builder.pipeline import split_files

    result = split_files(articles, output, project_of(ctx), articles_output)
    print_report(result.report)
    click.echo(f"wrote {result.sentences} sentences from {result.articles} articles to {result.sentences_path}", err=True)
    if report_path:
        import json

        with atomic_write(report_path, "w") as handle:
            json.dump(result.report.as_dict(), handle, indent=2, sort_keys=True, ensure_ascii=False)
    if result.report.errors():
        ctx.exit(1)


def main() -> None:
    cli(prog_name="builder")


if __name__ == "__main__":
    sys.exit(main())
