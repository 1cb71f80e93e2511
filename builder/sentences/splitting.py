"""Splitting articles into sentences (what `builder split` calls) and reading them back (for `builder push`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path

from builder.errors import InputError
from builder.jsonio import atomic_write, dumps_line, write_json
from builder.model import INT32_MAX, SENTENCE_FIELDS, Field, Int32, Text
from builder.project import Project
from builder.report import Problem, Report
from builder.sentences.articles import (
    ArticleReader,
    InputFile,
    expand_inputs,
    id_problem,
    jsonl_shards,
    read_shard,
)
from builder.sentences.executors import Executor, LocalExecutor
from builder.sentences.field_map import input_field_map
from builder.sentences.segmenter import DEFAULT_ENGINE, split_articles, splitter_name

# The ids of a sentences file (a gold file's too) follow the rule of article ids: `id_problem`.
ID_FIELDS = ("id", "article_id")


@dataclass
class SplitResult:
    articles: int
    sentences: int
    report: Report
    sentences_path: Path
    articles_path: Path
    written: bool = True  # False when nothing valid was read: the previous outputs were left as they were
    refused: str = ""  # why nothing was written although articles were read (a file lacking a required field)
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
    workers: int = 1,
    executor: str = "local",
    fields: dict[str, str] | None = None,
) -> SplitResult:
    """Read articles, split them into sentences, write both files atomically (sorted by article id).

    `workers` > 1 reads input shards and splits chunks of articles in that many processes;
    `executor="ray"` runs the same steps on Ray Data (`builder.sentences.executors`). Either way the
    files and the report are byte for byte those of a single process.

    Each output is checked first (`builder.outputs.check_output_file`): none may be a folder or
    overwrite a file of another kind. The output paths are never read as input. With `report_path`,
    the full report is written there as JSON (also when nothing valid was read). When no valid
    article was read, the sentence and article files are not written: the previous ones stay as
    they were (`written` is False, `kept` names them).

    `fields` maps article fields to the input keys or columns they are read from (`{"id": "doc_id"}`),
    over the project's `[input]` table; the articles file records the map in each article's `source`.
    A file none of whose records has a required field (the corpus names it otherwise) is one line in
    the report, and nothing is written (`refused` says why), whatever the other files held.
    """
    from builder.outputs import REPORT, check_output_file

    sentences_path = Path(sentences_path)
    articles_path = Path(articles_path) if articles_path else default_articles_path(sentences_path)
    report_path = Path(report_path) if report_path else None
    for path, option, kinds in (
        (sentences_path, "-o", ("sentence records",)),
        (articles_path, "--articles-output", ("article records",)),
        (report_path, "--report", (REPORT,)),
    ):
        if path is not None:
            check_output_file(path, project, option, replaces=kinds)
    from builder.sentences.executors import make_executor

    field_map = input_field_map(project.input_fields, fields or {})
    runner = make_executor(executor, workers)
    try:
        result = _split(inputs, sentences_path, articles_path, report_path, project, engine, runner, field_map)
    finally:
        runner.close()
    if report_path is not None:
        write_json(report_path, result.report.as_dict())
    return result


def _split(
    inputs: Iterable[str | Path],
    sentences_path: Path,
    articles_path: Path,
    report_path: Path | None,
    project: Project,
    engine: str,
    runner: Executor,
    fields: dict[str, str],
) -> SplitResult:
    report = Report("split")
    reader = ArticleReader(report, project.boilerplate_rules, fields)
    outputs = [path for path in (sentences_path, articles_path, report_path) if path is not None]
    shards = input_shards(expand_inputs(inputs, report, exclude=outputs))
    rules = tuple(project.boilerplate_rules)
    events = chain.from_iterable(runner.map(partial(read_shard, rules=rules, fields=fields), shards))
    articles = sorted(reader.admit(events), key=lambda a: a["id"])
    unmapped = [problem for problem in report.problems if problem.fields.get("unmapped")]
    if not articles or unmapped:
        kept = tuple(path for path in (sentences_path, articles_path) if path.exists())
        refused = f"{len(unmapped)} file(s) lack a required field in every record (named above)" if unmapped else ""
        return SplitResult(0, 0, report, sentences_path, articles_path, written=False, kept=kept, refused=refused)
    for article in articles:
        article["splitter"] = splitter_name(engine)
    with atomic_write(sentences_path) as out_sentences, atomic_write(articles_path) as out_articles:
        for article in articles:
            out_articles.write(dumps_line(article))
        if isinstance(runner, LocalExecutor):  # the same step, streamed: no chunk is shipped anywhere
            for sentence in split_articles(articles, report, engine):
                out_sentences.write(dumps_line(sentence))
        else:
            chunks = article_chunks(articles, runner.workers)
            for lines, problems, kept in runner.map(partial(split_chunk, engine=engine), chunks):
                out_sentences.write(lines)
                report.problems.extend(problems)
                if kept:
                    report.keep("sentences", kept)
    return SplitResult(len(articles), report.kept["sentences"], report, sentences_path, articles_path)


def input_shards(files: Iterable[InputFile]) -> Iterator[InputFile]:
    """The units of reading, in input order: files; Parquet cut by row groups, large JSON Lines by lines.

    Lazy: a file is scanned for its cuts (`jsonl_shards`) only when the shards before it have been
    handed out, so workers read while the driver scans the next file.
    """
    from builder.sentences.parquet import parquet_shards

    for file in files:
        suffix = file.path.suffix.lower()
        if suffix == ".parquet":
            yield from parquet_shards(file)
        elif suffix == ".jsonl":
            yield from jsonl_shards(file)
        else:
            yield file


CHUNK_CHARS = 4_000_000  # characters of article text per unit of splitting work, at most


def article_chunks(articles: list[dict], workers: int) -> Iterator[list[dict]]:
    """Consecutive runs of `articles` for workers: at most CHUNK_CHARS each, about 4 per worker when there is less."""
    total = sum(len(article["text"]) for article in articles)
    limit = max(1, min(CHUNK_CHARS, total // (4 * max(workers, 1))))
    chunk: list[dict] = []
    size = 0
    for article in articles:
        chunk.append(article)
        size += len(article["text"])
        if size >= limit:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def split_chunk(articles: list[dict], engine: str = DEFAULT_ENGINE) -> tuple[bytes, list[Problem], int]:
    """The pure splitting step on a run of articles: their sentence lines, the problems, the sentences kept."""
    report = Report("split")
    lines = b"".join(dumps_line(sentence) for sentence in split_articles(articles, report, engine))
    return lines, report.problems, report.kept["sentences"]


def read_sentences(path: str | Path) -> list[dict]:
    """Every sentence of a sentences file (as `builder split` writes it), checked: `iter_sentences` as a list."""
    return list(iter_sentences(path))


def iter_sentences(path: str | Path) -> Iterator[dict]:
    """Stream the sentences of a sentences file (as `builder split` writes it), each checked as it is read.

    A line must be a JSON object with the fields of `builder.model.SENTENCE_FIELDS`: non-empty
    strings `id`, `text`, `article_id`, integers `sentence_index`, `start`, `end` in 0..2**31-1
    (what a pushed task must hold to pass validation), optional strings `article_title`,
    `prev_text`, `next_text`, `target` and an optional integer `occurrence` (set to None when
    absent, in files split before it existed: validation then searches for it). The first bad
    line raises InputError "FILE:LINE: field 'id' ...".
    """
    for _, sentence in iter_numbered_sentences(path):
        yield sentence


def iter_numbered_sentences(path: str | Path) -> Iterator[tuple[str, dict]]:
    """("FILE:LINE", sentence) for each sentence of a sentences file, checked as `iter_sentences` does."""
    path = Path(path)
    for number, sentence in _numbered_jsonl(path):
        where = f"{path}:{number}"
        if not isinstance(sentence, dict):
            raise InputError(f"{where}: expected a JSON object (a sentence), not {_kind(sentence)}")
        for field in SENTENCE_FIELDS.fields:
            if field.name not in sentence:
                if field.required:
                    raise InputError(f"{where}: field '{field.name}' is missing")
                continue
            problem = _field_problem(field, sentence[field.name])
            if problem:
                raise InputError(f"{where}: field '{field.name}' must be {problem}, not {_kind(sentence[field.name])}")
            if field.name in ID_FIELDS:
                problem = id_problem(sentence[field.name])
                if problem:
                    raise InputError(f"{where}: field '{field.name}' {problem}")
        yield where, sentence if "occurrence" in sentence else {**sentence, "occurrence": None}


def _field_problem(field: Field, value: object) -> str | None:
    """What `value` should have been, or None when it fits `field`."""
    kind = field.kind
    if isinstance(kind, Text):
        if not isinstance(value, str) or (kind.non_empty and not value):
            return "a non-empty string" if kind.non_empty else "a string"
        return None
    if isinstance(kind, Int32):
        if value is None and kind.nullable:
            return None
        if type(value) is not int or not kind.minimum <= value <= INT32_MAX:
            return f"an integer from {kind.minimum} to {INT32_MAX}"
        return None
    raise TypeError(f"no check for {kind!r}")  # a field kind added to SENTENCE_FIELDS needs its check here


def _kind(value: object) -> str:
    """How an unexpected value is named in an error: its type, and the value itself when it is a number."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return f"{type(value).__name__} {value!r}"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    return f"a {type(value).__name__}"


def _numbered_jsonl(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, value) for each non-blank line, streamed; a line that is not JSON is an InputError."""
    import orjson

    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        value = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        raise InputError(f"{path}:{number}: not valid JSON ({exc})") from None
                    yield number, value
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
