"""Reading articles from .txt, .jsonl and .html files into article records.

An article record is a dict: `id`, `title`, `text` (normalised, boilerplate removed: the text that
sentence offsets point into), `url`, `published`, `target`, `source` (file, and line for JSONL)
and `metadata` (any other JSONL keys).
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import orjson

from builder.model import ARTICLE_OPTIONAL
from builder.outputs import builder_output_kind
from builder.project import BoilerplateRule
from builder.report import Problem, Report
from builder.sentences.boilerplate import DEFAULT_RULES, BoilerplateFilter
from builder.sentences.field_map import REQUIRED_FIELDS, FieldTally, added_tallies, input_field_map, unmapped_detail

SUPPORTED_SUFFIXES = (".txt", ".jsonl", ".html", ".htm", ".parquet")
OPTIONAL_FIELDS = ARTICLE_OPTIONAL  # title, url, published, target
TITLE_MAX = 200  # characters; a longer first line is body text, a longer explicit title is cut
TARGET_MAX = 1000  # characters; a per-article stance target is copied into every sentence
ID_MAX = 200  # characters; an article id is copied into every sentence (and hashed into its id)
MIN_SENTENCE_WORDS = 6  # an HTML page needs one line this long with sentence punctuation
JSONL_SHARD_BYTES = 32 * 2**20  # a larger .jsonl file is cut at line ends into shards of about this size
SCAN_BLOCK = 4 * 2**20  # bytes read at a time when a .jsonl file is scanned to cut it
WIDE_SAMPLE = 4096  # the first bytes that tell UTF-16/UTF-32 text without a byte-order mark

_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "UTF-32LE"),
    (codecs.BOM_UTF32_BE, "UTF-32BE"),
    (codecs.BOM_UTF8, "UTF-8"),
    (codecs.BOM_UTF16_LE, "UTF-16LE"),
    (codecs.BOM_UTF16_BE, "UTF-16BE"),
)
_NON_SPACE = re.compile(r"\S")
_FIRST_RECORD = re.compile(r"[\ufeff\s]*(\{[^\n]*)")  # the first non-empty line, when it opens a JSON object
_NOT_BLANK = re.compile(r"[^\ufeff\s]")  # where _FIRST_RECORD's first line starts
_BAD_BYTES = re.compile("[\x00\udc80-\udcff]")  # a NUL byte, or an invalid UTF-8 byte as `_jsonl_text` decodes it
_SENTENCE_PUNCTUATION = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*(?:\s|$)")
# What an id may not hold: control characters (Unicode category Cc: NUL, tab, CR, LF, DEL, the C1 controls),
# the line and paragraph separators, the bidirectional controls (they reorder how the text around them is
# shown) and lone surrogates (not encodable). An id is copied into every sentence, hashed into its id, and
# shown in Label Studio, the changelog and `builder diff`: there it must read as the one line it is.
_ID_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


class InputFile(NamedTuple):
    """A file to read; `named` when it was named as input, not found in a folder.

    `part`: for a Parquet file cut into shards, the row groups [first, stop) this shard reads; for a
    JSON Lines file cut into shards, the bytes [start, stop), whose first line is line `first_line`
    of the file (None: the whole file).
    """

    path: Path
    named: bool
    part: tuple[int, int] | None = None
    first_line: int = 1


class Candidate(NamedTuple):
    """An article read from one file, before the run-wide check of its id.

    `record` is cleaned of boilerplate (the lines removed are `removed`, as report problems);
    `empty` when nothing was left. Reading a file yields these and report problems, in order.
    """

    record: dict
    where: str
    removed: tuple[Problem, ...]
    empty: bool


def id_problem(value: str) -> str | None:
    """What makes `value` no id, as the end of "field 'id' ...", or None for a good one.

    An id (an article's, or a sentence's in a sentences file) is 1 to ID_MAX characters, without
    control characters, line or paragraph separators, bidirectional controls or lone surrogates
    (`_ID_FORBIDDEN`), and without whitespace at either end (two ids that look the same are the same).
    """
    if not value.strip():
        return "must be a non-empty string"
    if len(value) > ID_MAX:
        return f"has {len(value):,} characters (at most {ID_MAX}: copied into every sentence)"
    bad = _ID_FORBIDDEN.search(value)
    if bad is not None:
        char = bad.group()
        kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
        if char in "\u2028\u2029":
            kind = "a line or paragraph separator"
        elif char in "\u061c\u200e\u200f" or "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
            kind = "a bidirectional control"
        return (
            f"holds {kind} (U+{ord(char):04X}) at character {bad.start() + 1}: an id holds no control characters, "
            "line separators, bidirectional controls or lone surrogates"
        )
    if value != value.strip():
        return f"{value[:40]!r} starts or ends with whitespace"
    return None


def normalise_text(text: str) -> str:
    """Drop a BOM and turn CRLF and CR into LF, before anything else looks at the text."""
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def headline(text: str) -> str:
    """The first non-empty line as a title, when it is short (<= TITLE_MAX) and more text follows; else ''.

    A longer first line is body text: copying it into every sentence would make output quadratic.
    """
    position = 0
    while True:  # scan lines without splitting the whole text: it may be one 50 MB line
        end = text.find("\n", position)
        line = text[position:end] if end >= 0 else text[position:]
        if line.strip():
            break
        if end < 0:
            return ""
        position = end + 1
    title = line.strip()
    if end < 0 or len(title) > TITLE_MAX or not _NON_SPACE.search(text, end + 1):
        return ""
    return title


def cut_title(title: str) -> str:
    """A title cut to TITLE_MAX characters, ending in '\u2026' when cut."""
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1].rstrip() + "\u2026"


def expand_inputs(paths: Iterable[str | Path], report: Report, exclude: Iterable[str | Path] = ()) -> list[InputFile]:
    """Files named, plus every supported file under named folders, in a stable order.

    Paths in `exclude` (this run's outputs, compared resolved) are never read: skipped with a note
    when found in a folder, rejected when named. Anything that is not a regular file (a FIFO, a
    socket, a device) is reported and never opened.
    """
    excluded = {Path(p).resolve() for p in exclude}
    files: list[InputFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = 0
            for found in sorted(path.rglob("*")):
                if found.is_dir():
                    continue
                supported = found.suffix.lower() in SUPPORTED_SUFFIXES
                candidates += supported
                if supported and found.resolve() in excluded:
                    detail = "this run's output, not articles"
                    report.drop("builder output", str(found), detail, error=False, notice="skipped")
                elif not _is_regular(found):
                    # an unsupported name is no input (like notes.md): noted, not an error
                    notice = {} if supported else {"error": False, "notice": "skipped"}
                    report.drop("not a regular file", str(found), _not_regular(found), **notice)
                elif supported:
                    files.append(InputFile(found, named=False))
            if not candidates:
                report.drop("empty folder", str(path), f"no {', '.join(SUPPORTED_SUFFIXES)} files in this folder")
        elif path.resolve() in excluded:
            report.drop("builder output", str(path), "this run's output (-o), not articles: not read")
        elif not path.exists():
            report.drop("missing file", str(path), "no such file or folder")
        elif not _is_regular(path):
            report.drop("not a regular file", str(path), _not_regular(path))
        elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
            report.drop(
                "unknown extension",
                str(path),
                f"unknown extension '{path.suffix or '(none)'}' (expected {', '.join(SUPPORTED_SUFFIXES)})",
            )
        else:
            files.append(InputFile(path, named=True))
    return files


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _not_regular(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"not a regular file (cannot stat: {exc.strerror}); not read"
    if stat.S_ISFIFO(mode):
        kind = "a FIFO"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    else:
        kind = "not a file or folder"
    return f"not a regular file ({kind}); not read"


class _NotRegular(Exception):
    pass


def _read_regular(path: Path, part: tuple[int, int] | None = None) -> bytes:
    """The bytes of a regular file, or its bytes [start, stop) for `part`; opened without blocking, so a FIFO
    swapped in after the check cannot hang."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise _NotRegular
        if part is None:
            return handle.read()
        start, stop = part
        handle.seek(start)
        return handle.read(stop - start)


def jsonl_shards(file: InputFile) -> list[InputFile]:
    """`file` cut after line ends (LF) into shards of about JSONL_SHARD_BYTES, each knowing its first line's number.

    The file is scanned once in blocks (never held whole) and cut only when a single reader would
    read it line by line: no UTF-16/UTF-32 byte-order mark, no NUL byte, valid UTF-8, some text, a
    first record that is not builder's own output (and parses on its own line). Anything else, or a
    file that cannot be opened, stays one shard, read and reported whole as before: so the shards'
    events, in order, are those of the whole file.
    """
    try:
        fd = os.open(file.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size <= JSONL_SHARD_BYTES:
                return [file]
            scanned = _jsonl_cuts(handle, JSONL_SHARD_BYTES)
    except OSError:  # the reader meets it too, and reports it
        return [file]
    if scanned is None or len(scanned[0]) < 2:
        return [file]
    cuts, end = scanned
    stops = [start for start, _ in cuts[1:]] + [end]
    return [file._replace(part=(start, stop), first_line=line) for (start, line), stop in zip(cuts, stops)]


def _jsonl_cuts(handle, size: int) -> tuple[list[tuple[int, int]], int] | None:
    """([(start byte, first line number)] of each shard, bytes scanned), or None when the file must be read whole.

    Makes the whole-file decisions of `_decode(lines=True)` and `_is_builder_output` as they would: None for
    what they reject or skip (and for a first record they cannot judge from its own line). A NUL byte or
    invalid UTF-8 is no such decision (its line is reported alone), unless the file looks like wide text.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")  # as `_jsonl_text` decodes
    cuts = [(0, 1)]
    target = size - 1  # a shard ends at the first LF at or after this byte: it holds at least `size` bytes
    position = lines = 0  # the offset of the block, the LFs before it
    head: str | None = ""  # the text up to the end of the first non-blank line, until it is known
    has_text = False
    start = handle.read(max(len(bom) for bom, _ in _BOMS) + WIDE_SAMPLE)
    handle.seek(0)
    for bom, name in _BOMS:
        if start.startswith(bom):
            if name != "UTF-8":
                return None
            position = len(bom)
            break
    if _looks_like_wide_text(start[position : position + WIDE_SAMPLE]):
        return None  # wide text without a BOM: rejected whole
    handle.seek(position)
    block = handle.read(SCAN_BLOCK)
    while block:
        if head is not None or not has_text:  # after that, the text itself no longer matters: only line ends
            text = decoder.decode(block)
            has_text = has_text or bool(text.strip())
        if head is not None:
            head += text
            blank = _NOT_BLANK.search(head)
            if blank is not None and head.find("\n", blank.start()) >= 0:
                if _first_record_is_output(head):
                    return None
                head = None
            elif len(head) > size:
                return None  # a first record longer than a shard: read whole
        while target < position + len(block):
            found = block.find(b"\n", max(0, target - position))
            if found < 0:
                break  # the next cut is in a later block
            cut = position + found + 1
            cuts.append((cut, lines + block.count(b"\n", 0, found + 1) + 1))
            target = cut + size - 1
        lines += block.count(b"\n")
        position += len(block)
        block = handle.read(SCAN_BLOCK)
    if not has_text:  # the file may end inside a character: a lone surrogate, not blank
        has_text = bool(decoder.decode(b"", final=True).strip())
    if not has_text or (head is not None and _first_record_is_output(head)):
        return None
    if cuts[-1][0] >= position:
        cuts.pop()  # the last LF ends the file: no empty shard after it
    return cuts, position


def _first_record_is_output(head: str) -> bool:
    """Whether `_is_builder_output` may skip or reject the file whose text starts with `head` (its first line whole)."""
    match = _FIRST_RECORD.match(head)
    if match is None:
        return False
    try:
        return builder_output_kind(orjson.loads(match.group(1))) is not None
    except orjson.JSONDecodeError:
        return True  # perhaps a report, one JSON object over many lines: the whole file decides


class Decoded(NamedTuple):
    """A file's text; `suspect` when some of its lines hold a NUL byte or invalid UTF-8 (JSON Lines only: those
    lines are reported one by one, their bad bytes decoded as `_jsonl_text` does); `start`: the byte of the file
    where the text starts (after a byte-order mark), which a reported byte counts from."""

    text: str
    suspect: bool = False
    start: int = 0


def _jsonl_text(data: bytes) -> Decoded:
    """UTF-8 JSON Lines bytes as text, decoding each invalid byte to a lone surrogate (surrogateescape).

    A line holding one (or a NUL byte) is the fault of that line alone, reported by `FileReader._from_jsonl`;
    a line end (LF) is never part of a UTF-8 sequence, so each line decodes the same in any shard.
    """
    try:
        return Decoded(data.decode("utf-8"), b"\x00" in data)
    except UnicodeDecodeError:
        return Decoded(data.decode("utf-8", "surrogateescape"), True)


def _decode(path: Path, data: bytes, report: Report, lines: bool = False) -> Decoded | None:
    """Text of a file: UTF-8, or UTF-16/UTF-32 with a byte-order mark (the BOM is dropped).

    For `lines` (JSON Lines), NUL bytes and invalid UTF-8 are the faults of the lines holding them, not of the
    file: only wide text without a BOM is rejected whole."""
    encoding, skipped = "UTF-8", 0
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding, skipped, data = name, len(bom), data[len(bom) :]
            break
    if encoding == "UTF-8" and b"\x00" in data:
        wide = _looks_like_wide_text(data)
        if wide:
            report.drop(
                "unsupported encoding",
                str(path),
                f"looks like {wide} text without a byte-order mark; convert it to UTF-8: iconv -f {wide} -t UTF-8",
            )
            return None
        if not lines:
            report.drop("binary file", str(path), "binary file (contains NUL bytes), expected UTF-8 text")
            return None
    if lines and encoding == "UTF-8":
        decoded = _jsonl_text(data)._replace(start=skipped)
        if not decoded.text.strip():
            report.drop("empty file", str(path), "empty file")
            return None
        return decoded
    try:
        text = data.decode(encoding.lower())
    except UnicodeDecodeError as exc:
        if encoding == "UTF-8":
            line = data[: exc.start].count(b"\n") + 1
            report.drop("invalid utf-8", f"{path}:{line}", f"invalid UTF-8 at byte {skipped + exc.start}: {exc.reason}")
        else:
            detail = f"invalid {encoding} (the byte-order mark says so) at byte {skipped + exc.start}: {exc.reason}"
            report.drop("invalid encoding", str(path), detail)
        return None
    if not text.strip():
        report.drop("empty file", str(path), "empty file")
        return None
    return Decoded(text, start=skipped)


def _looks_like_wide_text(data: bytes) -> str | None:
    """The UTF-16/UTF-32 encoding NUL-rich bytes decode to as readable text, if any.

    At least a tenth of the bytes must be NUL (the high bytes of Latin text): a stray NUL in UTF-8
    text pairs up into readable CJK characters too, and stays "binary file".
    """
    sample = data[:WIDE_SAMPLE]
    if sample.count(0) < len(sample) / 10:
        return None
    for name in ("UTF-32LE", "UTF-32BE", "UTF-16LE", "UTF-16BE"):
        try:
            text = codecs.getincrementaldecoder(name.lower())().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        readable = sum(char.isprintable() or char in "\n\r\t" for char in text)
        if text and "\x00" not in text and readable >= 0.95 * len(text):
            return name
    return None


def has_sentence(text: str) -> bool:
    """Whether some line has at least MIN_SENTENCE_WORDS words and sentence punctuation (. ! ? ...)."""
    return any(
        len(line.split()) >= MIN_SENTENCE_WORDS and _SENTENCE_PUNCTUATION.search(line) for line in text.split("\n")
    )


def _report_kind(text: str) -> str | None:
    """'a report' when `text` is a builder report (split or validate `--report`), else None."""
    try:
        whole = orjson.loads(text.lstrip("\ufeff"))
    except orjson.JSONDecodeError:  # fails at the second line of a JSON Lines file: cheap
        return None
    return "a report" if isinstance(whole, dict) and {"stage", "problems"} <= whole.keys() else None


class ArticleReader:
    """Turns files into article records, dropping (and reporting) what cannot be used.

    Reading is two steps: `FileReader.events` reads one file (or one shard of it) on its own, so
    files can be read in other processes or on a cluster; `admit` then takes their events in input
    order and checks what spans files (duplicate ids), so the report is the same either way.
    """

    def __init__(
        self, report: Report, rules: tuple[BoilerplateRule, ...] = (), fields: dict[str, str] | None = None
    ) -> None:
        self.report = report
        self.files = FileReader(rules, fields)
        self.seen_ids: dict[str, str] = {}

    def read(self, paths: Iterable[str | Path], exclude: Iterable[str | Path] = ()) -> Iterator[dict]:
        """Article records from files and folders; `exclude`: this run's output paths, never read."""
        for file in expand_inputs(paths, self.report, exclude):
            yield from self.admit(self.files.events(file))

    def admit(self, events: Iterable[Problem | Candidate | FieldTally]) -> Iterator[dict]:
        """The articles of `events` (from `FileReader.events`, in input order) whose id is new; all reported.

        A .jsonl file none of whose records has a required field (the corpus names it otherwise) is one
        line naming the keys its records have (`unmapped` in its fields), in place of a line per record.
        """
        tallies: dict[str, FieldTally] = {}
        for event in events:
            if isinstance(event, Problem):
                self.report.problems.append(event)
                continue
            if isinstance(event, FieldTally):
                tallies[event.file] = added_tallies(tallies.get(event.file), event)
                continue
            record = event.record
            first = self.seen_ids.get(record["id"])
            if first is not None:
                detail = f"duplicate article id '{record['id']}' (first in {first})"
                self.report.drop("duplicate article id", event.where, detail, field="id")
                continue
            self.seen_ids[record["id"]] = event.where
            self.report.problems.extend(event.removed)
            if event.empty:
                self.report.drop("empty article", event.where, "no article text left after removing boilerplate")
                continue
            self.report.keep("articles")
            yield record
        for tally in tallies.values():
            self._report_unmapped(tally)

    def _report_unmapped(self, tally: FieldTally) -> None:
        """Put one line for `tally`'s file in place of its per-record lines when a required field is in no record."""
        unmapped = [role for role, count in tally.lacking if count == tally.records]
        if not unmapped:
            return
        # Every record lacked it, so each was dropped with a "missing field" line naming its file and line.
        own = f"{tally.file}:"
        lines = [
            i for i, p in enumerate(self.report.problems) if p.reason == "missing field" and p.where.startswith(own)
        ]
        detail = unmapped_detail(self.files.fields, unmapped, tally.present, scope=" in any record")
        field = self.files.fields[unmapped[0]]
        summary = Problem(
            "missing field", tally.file, detail, {"field": field, "records": tally.records, "unmapped": True}
        )
        at = lines[0] if lines else len(self.report.problems)
        drop = set(lines)
        kept = [p for i, p in enumerate(self.report.problems) if i not in drop]
        self.report.problems = kept[:at] + [summary] + kept[at:]


def read_shard(
    file: InputFile, rules: tuple[BoilerplateRule, ...] = (), fields: dict[str, str] | None = None
) -> list[Problem | Candidate | FieldTally]:
    """The events of one input file or shard, as a list: the unit of work executors send to workers."""
    return list(FileReader(rules, fields).events(file))


class FileReader:
    """Reads one file, or one shard of it, into report problems and article candidates: no state across files.

    `fields`: builder's article field -> the input key or column it is read from (`input_field_map`).
    """

    def __init__(self, rules: tuple[BoilerplateRule, ...] = (), fields: dict[str, str] | None = None) -> None:
        self.boilerplate = BoilerplateFilter(DEFAULT_RULES + tuple(rules))
        self.report = Report("split")
        self.fields = fields or input_field_map()
        self.roles = {key: role for role, key in self.fields.items()}  # input key -> builder's field
        self.mapped = {role: key for role, key in self.fields.items() if role != key}  # recorded in each `source`

    def events(self, file: InputFile) -> Iterator[Problem | Candidate | FieldTally]:
        """Problems and candidates of `file`, in the order a single reader meets them; then its JSON Lines tally."""
        self.report = Report("split")
        self.tally = None
        emitted = 0
        for candidate in self._candidates(file):
            yield from self.report.problems[emitted:]
            emitted = len(self.report.problems)
            yield candidate
        yield from self.report.problems[emitted:]
        if self.tally is not None:
            yield self.tally

    def _candidates(self, file: InputFile) -> Iterator[Candidate]:
        path, named = file.path, file.named
        if file.part is not None and path.suffix.lower() == ".jsonl":
            decoded = self._jsonl_part(file)
            if decoded is not None:
                yield from self._from_jsonl(path, decoded.text, file.first_line, decoded.suspect, decoded.start)
            return
        if path.suffix.lower() == ".parquet":
            from builder.sentences.parquet import read_parquet

            for record, where in read_parquet(self, file):
                yield from self._finish(record, where)
            return
        try:
            data = _read_regular(path)
        except _NotRegular:
            self.report.drop("not a regular file", str(path), "not a regular file; not read")
            return
        except OSError as exc:
            self.report.drop("unreadable file", str(path), f"cannot read ({exc.strerror})")
            return
        suffix = path.suffix.lower()
        decoded = _decode(path, data, self.report, lines=suffix == ".jsonl")
        if decoded is None:
            return
        text = decoded.text
        if suffix in (".jsonl", ".txt") and self._is_builder_output(path, text, named):
            return
        if suffix == ".jsonl":
            yield from self._from_jsonl(path, text, 1, decoded.suspect, decoded.start)
            return
        problem = id_problem(path.stem)
        if problem is not None:  # a .txt or .html file's name is its article's id
            detail = f"field 'id' (the file name) {problem}; rename the file"
            self.report.drop("bad field", str(path), detail, field="id")
        elif suffix == ".txt":
            yield from self._finish(self._from_txt(path, text), str(path))
        else:
            yield from self._finish(self._from_html(path, text), str(path))

    def _from_txt(self, path: Path, text: str) -> dict:
        text = normalise_text(text)
        return {"id": path.stem, "title": headline(text), "text": text, "source": {"file": str(path)}}

    def _from_html(self, path: Path, html: str) -> dict | None:
        import trafilatura

        body = trafilatura.extract(html, include_comments=False, include_tables=False, favor_precision=True)
        metadata = trafilatura.extract_metadata(html)
        title = normalise_text((metadata.title if metadata else None) or "").strip()
        if not body or not body.strip():
            self.report.drop("no article text", str(path), "no main text found in the HTML")
            return None
        body = normalise_text(body)
        if not has_sentence(body):
            self.report.drop(
                "no article text",
                str(path),
                f"no article text in the HTML: no line of {MIN_SENTENCE_WORDS}+ words with sentence punctuation"
                " (navigation or a menu only?)",
            )
            return None
        if title and not body.lstrip().startswith(title):
            body = f"{title}\n{body}"
        title = self._bounded_title(title, str(path)) if title else headline(body)
        record = {"id": path.stem, "title": title, "text": body, "source": {"file": str(path)}}
        if metadata is not None:
            if metadata.url:
                record["url"] = metadata.url
            if metadata.date:
                record["published"] = metadata.date
        return record

    def _bounded_title(self, title: str, where: str) -> str:
        if len(title) > TITLE_MAX:
            self.report.drop(
                "long title",
                where,
                f"title of {len(title):,} characters cut to {TITLE_MAX}",
                error=False,
                notice="warning",
            )
        return cut_title(title)

    def _jsonl_part(self, file: InputFile) -> Decoded | None:
        """The text of a JSON Lines shard (`jsonl_shards` checked the whole file); None when it cannot be read.

        The first shard drops the UTF-8 byte-order mark, as `_decode` does; `start` is the byte where the
        text starts in the file. What goes wrong here only happens when the file changed after it was scanned.
        """
        path, where = file.path, f"{file.path}:{file.first_line}"
        try:
            data = _read_regular(path, file.part)
        except _NotRegular:
            self.report.drop("not a regular file", where, "not a regular file; not read")
            return None
        except OSError as exc:
            self.report.drop("unreadable file", where, f"cannot read ({exc.strerror})")
            return None
        skipped = len(codecs.BOM_UTF8) if file.first_line == 1 and data.startswith(codecs.BOM_UTF8) else 0
        return _jsonl_text(data[skipped:])._replace(start=file.part[0] + skipped)

    def _from_jsonl(
        self, path: Path, text: str, first_line: int = 1, suspect: bool = False, offset: int = 0
    ) -> Iterator[dict]:
        """Articles of JSON Lines text whose first line is line `first_line` of the file, at byte `offset`.

        `suspect`: some line holds a NUL byte or invalid UTF-8 (see `_jsonl_text`): each line is then looked at
        (one compiled search) and such a line reported alone, naming its byte; the other lines are read.
        """
        # Lines end at LF only (CRLF counts as one line end): a stray CR must not shift later line numbers.
        # A shard after the first starts right after an LF, at line `first_line` of the file.
        if first_line == 1:
            stripped = text.lstrip("\ufeff")
            offset += len(codecs.BOM_UTF8) * (len(text) - len(stripped))
            text = stripped
        objects, present, lacking = 0, dict[str, None](), dict.fromkeys(REQUIRED_FIELDS, 0)  # for the FieldTally
        for number, line in enumerate(text.split("\n"), first_line):
            if suspect:
                start = offset
                offset += len(line.encode("utf-8", "surrogateescape")) + 1
                if _BAD_BYTES.search(line):
                    self._report_bad_bytes(f"{path}:{number}", line, start)
                    continue
            line = line.removesuffix("\r")
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                self.report.drop("invalid json", where, f"not valid JSON ({exc})")
                continue
            if not isinstance(obj, dict):
                self.report.drop("invalid json", where, f"expected a JSON object, got {type(obj).__name__}")
                continue
            objects += 1
            present.update(dict.fromkeys(obj))
            for role in REQUIRED_FIELDS:
                lacking[role] += self.fields[role] not in obj
            record = self.from_object(obj, where, {"file": str(path), "line": number})
            if record is not None:
                yield from self._finish(record, where)
        if objects:
            self.tally = FieldTally(str(path), objects, tuple(lacking.items()), tuple(present))

    def _report_bad_bytes(self, where: str, line: str, start: int) -> None:
        """Report a JSON Lines line that holds a NUL byte or invalid UTF-8 (whichever comes first), at byte `start`."""
        raw = line.encode("utf-8", "surrogateescape")
        nul = raw.find(b"\x00")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if nul < 0 or exc.start < nul:
                detail = f"invalid UTF-8 at byte {start + exc.start}: {exc.reason}; line not read"
                self.report.drop("invalid utf-8", where, detail)
                return
        detail = f"NUL byte at byte {start + nul} (binary data, not a JSON line); line not read"
        self.report.drop("nul byte", where, detail)

    def _is_builder_output(self, path: Path, text: str, named: bool) -> bool:
        """Whether the file's first line is a record builder writes (skipped in a folder, rejected when named).

        Also for .txt: an output written as `-o sentences.txt` is JSON Lines all the same.
        """
        match = _FIRST_RECORD.match(text)
        if match is None:
            return False
        try:
            kind = builder_output_kind(orjson.loads(match.group(1)))
        except orjson.JSONDecodeError:
            kind = _report_kind(text)  # a report is one JSON object over many lines
        if kind is None:
            return False
        if named:
            self.report.drop("builder output", str(path), f"builder output ({kind}), not articles: not read")
        else:
            detail = f"builder output ({kind}), not articles"
            self.report.drop("builder output", str(path), detail, error=False, notice="skipped")
        return True

    def from_object(self, obj: dict, where: str, source: dict) -> dict | None:
        """An article record from a JSON Lines object or a Parquet row (`id`, `text`, optional fields), or None.

        Each field is read from the key `self.fields` maps it to (`--id-field doc_id`: the id from `doc_id`);
        problems name the key as the input has it. Keys read as no field are kept as `metadata`.
        """
        keys = self.fields
        missing = [keys[role] for role in REQUIRED_FIELDS if keys[role] not in obj]
        if missing:
            self.report.drop("missing field", where, f"missing required field '{missing[0]}'", field=missing[0])
            return None
        article_id, text = obj[keys["id"]], obj[keys["text"]]
        if not isinstance(article_id, (str, int)) or isinstance(article_id, bool) or str(article_id).strip() == "":
            detail = f"field '{keys['id']}' must be a non-empty string or integer"
            self.report.drop("bad field", where, detail, field=keys["id"])
            return None
        problem = id_problem(str(article_id))
        if problem is not None:
            self.report.drop("bad field", where, f"field '{keys['id']}' {problem}", field=keys["id"])
            return None
        if not isinstance(text, str) or not text.strip():
            detail = f"field '{keys['text']}' must be a non-empty string"
            self.report.drop("bad field", where, detail, field=keys["text"])
            return None
        optional = {role: obj[keys[role]] for role in OPTIONAL_FIELDS if obj.get(keys[role]) is not None}
        bad = next((role for role, value in optional.items() if not isinstance(value, str)), None)
        if bad:
            self.report.drop("bad field", where, f"field '{keys[bad]}' must be a string", field=keys[bad])
            return None
        if len(optional.get("target", "")) > TARGET_MAX:
            detail = (
                f"field '{keys['target']}' has {len(optional['target']):,} characters "
                f"(at most {TARGET_MAX}: copied into every sentence)"
            )
            self.report.drop("bad field", where, detail, field=keys["target"])
            return None
        record = {
            "id": str(article_id),
            "text": normalise_text(text),
            "source": {**source, "fields": self.mapped} if self.mapped else source,
            "metadata": {k: v for k, v in obj.items() if k not in self.roles},
        }
        for role, value in optional.items():
            record[role] = self._bounded_title(normalise_text(value), where) if role == "title" else value
        return record

    def _finish(self, record: dict | None, where: str) -> Iterator[Candidate]:
        if record is None:
            return
        clean, removed = self.boilerplate.clean(record["text"])
        source = record["source"]
        problems = tuple(
            Problem(
                "boilerplate",
                f"{source['file']}:{source.get('line', line.line_number)}"
                if "row" not in source
                else f"{source['file']}:row {source['row']}, line {line.line_number}",
                f"removed boilerplate line ({line.rule}): {line.text[:80]!r}",
                {"article_id": record["id"], "rule": line.rule, "text": line.text},
                error=False,
            )
            for line in removed
        )
        record["text"] = clean.strip("\n")
        empty = not record["text"].strip()
        if not empty:
            record.setdefault("title", headline(record["text"]))
        yield Candidate(record, where, problems, empty)
