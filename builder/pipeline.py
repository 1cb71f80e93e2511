"""Whole stages wired together: what a CLI command calls, one function each."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.errors import InputError
from builder.ingest import ArticleReader
from builder.jsonio import atomic_write, dumps_line, paused_gc, read_jsonl
from builder.records import to_records
from builder.report import Report
from builder.scheme import Project
from builder.split import DEFAULT_ENGINE, split_articles, splitter_name
from builder.validate import UnsortedSnapshot, validate_tasks


@dataclass
class SplitResult:
    articles: int
    sentences: int
    report: Report
    sentences_path: Path
    articles_path: Path
    written: bool = True  # False when nothing valid was read: the previous outputs were left as they were
    kept: tuple[Path, ...] = ()  # the previous outputs left untouched (when not written)


def default_articles_path(sentences_path: Path) -> Path:
    """`x/sentences.jsonl` -> `x/sentences.articles.jsonl`."""
    return sentences_path.with_name(sentences_path.stem + ".articles.jsonl")


def split_files(
    inputs: Iterable[str | Path],
    sentences_path: str | Path,
    project: Project,
    articles_path: str | Path | None = None,
    engine: str = DEFAULT_ENGINE,
    report_path: str | Path | None = None,
) -> SplitResult:
    """Read articles, split them into sentences, write both files atomically (sorted by article id).

    The output paths (and `report_path`, written by the caller) are never read as input. When no
    valid article was read, nothing is written: the previous outputs stay as they were (`written`
    is False, `kept` names them).
    """
    sentences_path = Path(sentences_path)
    articles_path = Path(articles_path) if articles_path else default_articles_path(sentences_path)
    report = Report("split")
    reader = ArticleReader(report, project.boilerplate_rules)
    outputs = [path for path in (sentences_path, articles_path, report_path) if path is not None]
    articles = sorted(reader.read(inputs, exclude=outputs), key=lambda a: a["id"])
    if not articles:
        kept = tuple(path for path in (sentences_path, articles_path) if path.exists())
        return SplitResult(0, 0, report, sentences_path, articles_path, written=False, kept=kept)
    for article in articles:
        article["splitter"] = splitter_name(engine)
    with atomic_write(sentences_path) as out_sentences, atomic_write(articles_path) as out_articles:
        for article in articles:
            out_articles.write(dumps_line(article))
        for sentence in split_articles(articles, report, engine):
            out_sentences.write(dumps_line(sentence))
    return SplitResult(len(articles), report.kept["sentences"], report, sentences_path, articles_path)


_SENTENCE_STRINGS = {"id": True, "text": True, "article_id": True, "article_title": False, "prev_text": False, "next_text": False, "target": False}
_SENTENCE_INTEGERS = {"sentence_index": True, "start": True, "end": True, "occurrence": False}


def read_sentences(path: str | Path) -> list[dict]:
    """Every sentence of a sentences file (as `builder split` writes it), checked before any is pushed.

    A line must be a JSON object with non-empty strings `id`, `text`, `article_id`, integers
    `sentence_index`, `start`, `end` in 0..2**31-1 (what a pushed task must hold to pass
    validation), optional strings `article_title`, `prev_text`, `next_text`, `target` and an
    optional integer `occurrence` (set to None when absent, in files split before it existed:
    validation then searches for it). The first bad line raises InputError "FILE:LINE: field 'id' ...".
    """
    from builder.schemas import INT32_MAX

    path = Path(path)
    sentences = []
    for number, sentence in _numbered_jsonl(path):
        where = f"{path}:{number}"
        if not isinstance(sentence, dict):
            raise InputError(f"{where}: expected a JSON object (a sentence), not {_kind(sentence)}")
        fields = [(key, required, str) for key, required in _SENTENCE_STRINGS.items()]
        fields += [(key, required, int) for key, required in _SENTENCE_INTEGERS.items()]
        for key, required, kind in fields:
            if key not in sentence:
                if required:
                    raise InputError(f"{where}: field '{key}' is missing")
                continue
            value = sentence[key]
            if kind is str and (not isinstance(value, str) or (required and not value)):
                raise InputError(f"{where}: field '{key}' must be a {'non-empty ' if required else ''}string, not {_kind(value)}")
            if kind is int and not (key == "occurrence" and value is None) and (type(value) is not int or not 0 <= value <= INT32_MAX):
                raise InputError(f"{where}: field '{key}' must be an integer from 0 to {INT32_MAX}, not {_kind(value)}")
        sentences.append(sentence if "occurrence" in sentence else {**sentence, "occurrence": None})
    return sentences


def _kind(value: object) -> str:
    """How an unexpected value is named in an error: its type, and the value itself when it is a number."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return f"{type(value).__name__} {value!r}"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    return f"a {type(value).__name__}"


def _numbered_jsonl(path: Path) -> list[tuple[int, object]]:
    """(line number, value) for each non-blank line; a line that is not JSON is an InputError."""
    import orjson

    values = []
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        values.append((number, orjson.loads(line)))
                    except orjson.JSONDecodeError as exc:
                        raise InputError(f"{path}:{number}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    return values


def read_tasks(path: Path, report: Report) -> Iterator[dict]:
    """Stream a snapshot; a line that is not JSON is reported (file and line), not fatal."""

    def unreadable(where: str, detail: str) -> None:
        report.drop("unreadable line", where, detail, scope="task", field="")

    for task in read_jsonl(path, unreadable, hint="; run `builder pull` first"):
        report.keep("lines read")
        yield task


@dataclass
class ValidateResult:
    report: Report
    tasks_in: int
    records: int
    quarantined: int
    sorted_input: bool = True


def validate_snapshot(project: Project, snapshot: Path, records_path: Path | None = None) -> ValidateResult:
    """Validate a snapshot and (optionally) write its records; everything dropped is in the report.

    Streams with constant memory over a snapshot sorted by sentence id (as `builder pull` writes
    it); a hand-edited, unsorted one is validated again from the start, remembering every id.
    """
    try:
        return _validate_snapshot(project, snapshot, records_path, assume_sorted=True)
    except UnsortedSnapshot:
        return _validate_snapshot(project, snapshot, records_path, assume_sorted=False)


def _validate_snapshot(project: Project, snapshot: Path, records_path: Path | None, assume_sorted: bool) -> ValidateResult:
    report = Report("validate")
    records = to_records(validate_tasks(read_tasks(snapshot, report), project, report, assume_sorted), project)
    count = 0
    with paused_gc():
        if records_path is not None:
            with atomic_write(records_path) as out:
                for record in records:
                    out.write(dumps_line(record))
                    count += 1
        else:
            for _ in records:
                count += 1
    quarantined = sum(1 for p in report.problems if p.fields.get("scope") == "task")
    tasks_in = report.kept["lines read"] + len(report.by_reason("unreadable line"))
    return ValidateResult(report, tasks_in, count, quarantined, assume_sorted)


def load_records(project: Project, snapshot: Path) -> tuple[list[dict], Report]:
    """Validated records in memory (for statistics on dataset-sized snapshots)."""
    report = Report("validate")
    return list(to_records(validate_tasks(read_tasks(snapshot, report), project, report), project)), report


def dataset_statistics(project: Project, snapshot: Path) -> dict:
    from builder.agreement import annotator_counts, label_counts, span_agreement, stance_agreement

    records, _ = load_records(project, snapshot)
    return {
        "records": len(records),
        "labels": label_counts(records),
        "annotators": annotator_counts(records),
        "stance_agreement": stance_agreement(records, project.stance_values),
        "span_agreement": span_agreement(records, project.entity_values),
    }


def unresolved_records(project: Project, snapshot: Path) -> list[dict]:
    records, _ = load_records(project, snapshot)
    return [r for r in records if r["stance"] is None]
