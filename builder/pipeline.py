"""Whole stages wired together: what a CLI command calls, one function each."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from builder.ingest import ArticleReader
from builder.jsonio import atomic_write, dumps_line
from builder.report import Report
from builder.scheme import Project
from builder.split import DEFAULT_ENGINE, split_articles, splitter_name


@dataclass
class SplitResult:
    articles: int
    sentences: int
    report: Report
    sentences_path: Path
    articles_path: Path


def default_articles_path(sentences_path: Path) -> Path:
    """`x/sentences.jsonl` -> `x/sentences.articles.jsonl`."""
    return sentences_path.with_name(sentences_path.stem + ".articles.jsonl")


def split_files(
    inputs: Iterable[str | Path],
    sentences_path: str | Path,
    project: Project,
    articles_path: str | Path | None = None,
    engine: str = DEFAULT_ENGINE,
) -> SplitResult:
    """Read articles, split them into sentences, write both files atomically (sorted by article id)."""
    sentences_path = Path(sentences_path)
    articles_path = Path(articles_path) if articles_path else default_articles_path(sentences_path)
    report = Report("split")
    articles = sorted(ArticleReader(report, project.boilerplate_rules).read(inputs), key=lambda a: a["id"])
    for article in articles:
        article["splitter"] = splitter_name(engine)
    with atomic_write(sentences_path) as out_sentences, atomic_write(articles_path) as out_articles:
        for article in articles:
            out_articles.write(dumps_line(article))
        for sentence in split_articles(articles, report, engine):
            out_sentences.write(dumps_line(sentence))
    return SplitResult(len(articles), report.kept["sentences"], report, sentences_path, articles_path)
