"""Reading articles from .txt, .jsonl and .html files into article records.

An article record is a dict: `id`, `title`, `text` (normalised, boilerplate removed: the text that
sentence offsets point into), `url`, `published`, `target`, `source` (file, and line for JSONL)
and `metadata` (any other JSONL keys).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from builder.boilerplate import DEFAULT_RULES, BoilerplateFilter
from builder.report import Report
from builder.scheme import BoilerplateRule

SUPPORTED_SUFFIXES = (".txt", ".jsonl", ".html", ".htm")
OPTIONAL_FIELDS = ("title", "url", "published", "target")


def normalise_text(text: str) -> str:
    """Drop a BOM and turn CRLF and CR into LF, before anything else looks at the text."""
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def expand_inputs(paths: Iterable[str | Path], report: Report) -> list[Path]:
    """Files named, plus every supported file under named folders, in a stable order."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
            if not found:
                report.drop("empty folder", str(path), f"no {', '.join(SUPPORTED_SUFFIXES)} files in this folder")
            files += found
        elif not path.exists():
            report.drop("missing file", str(path), "no such file or folder")
        elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
            report.drop(
                "unknown extension",
                str(path),
                f"unknown extension '{path.suffix or '(none)'}' (expected {', '.join(SUPPORTED_SUFFIXES)})",
            )
        else:
            files.append(path)
    return files


def _decode(path: Path, data: bytes, report: Report) -> str | None:
    if not data.strip():
        report.drop("empty file", str(path), "empty file")
        return None
    if b"\x00" in data:
        report.drop("binary file", str(path), "binary file (contains NUL bytes), expected UTF-8 text")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        report.drop("invalid utf-8", f"{path}:{line}", f"invalid UTF-8 at byte {exc.start}: {exc.reason}")
        return None


class ArticleReader:
    """Turns files into article records, dropping (and reporting) what cannot be used."""

    def __init__(self, report: Report, rules: tuple[BoilerplateRule, ...] = ()) -> None:
        self.report = report
        self.boilerplate = BoilerplateFilter(DEFAULT_RULES + tuple(rules))
        self.seen_ids: dict[str, str] = {}

    def read(self, paths: Iterable[str | Path]) -> Iterator[dict]:
        for path in expand_inputs(paths, self.report):
            try:
                data = path.read_bytes()
            except OSError as exc:
                self.report.drop("unreadable file", str(path), f"cannot read ({exc.strerror})")
                continue
            text = _decode(path, data, self.report)
            if text is None:
                continue
            suffix = path.suffix.lower()
            if suffix == ".jsonl":
                yield from self._from_jsonl(path, text)
            elif suffix == ".txt":
                yield from self._finish(self._from_txt(path, text), str(path))
            else:
                yield from self._finish(self._from_html(path, text), str(path))

    def _from_txt(self, path: Path, text: str) -> dict:
        text = normalise_text(text)
        title = next((line.strip() for line in text.split("\n") if line.strip()), "")
        return {"id": path.stem, "title": title, "text": text, "source": {"file": str(path)}}

    def _from_html(self, path: Path, html: str) -> dict | None:
        import trafilatura

        body = trafilatura.extract(html, include_comments=False, include_tables=False, favor_precision=True)
        metadata = trafilatura.extract_metadata(html)
        title = (metadata.title if metadata else None) or ""
        if not body or not body.strip():
            self.report.drop("no article text", str(path), "no main text found in the HTML")
            return None
        body = normalise_text(body)
        if title and not body.lstrip().startswith(title):
            body = f"{title}\n{body}"
        record = {"id": path.stem, "title": title or body.strip().split("\n")[0], "text": body, "source": {"file": str(path)}}
        if metadata is not None:
            if metadata.url:
                record["url"] = metadata.url
            if metadata.date:
                record["published"] = metadata.date
        return record

    def _from_jsonl(self, path: Path, text: str) -> Iterator[dict]:
        for number, line in enumerate(normalise_text(text).split("\n"), 1):
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
            missing = [key for key in ("id", "text") if key not in obj]
            if missing:
                self.report.drop("missing field", where, f"missing required field '{missing[0]}'", field=missing[0])
                continue
            if not isinstance(obj["id"], (str, int)) or isinstance(obj["id"], bool) or str(obj["id"]).strip() == "":
                self.report.drop("bad field", where, "field 'id' must be a non-empty string or integer", field="id")
                continue
            if not isinstance(obj["text"], str) or not obj["text"].strip():
                self.report.drop("bad field", where, "field 'text' must be a non-empty string", field="text")
                continue
            bad = next((k for k in OPTIONAL_FIELDS if k in obj and obj[k] is not None and not isinstance(obj[k], str)), None)
            if bad:
                self.report.drop("bad field", where, f"field '{bad}' must be a string", field=bad)
                continue
            record = {
                "id": str(obj["id"]),
                "text": normalise_text(obj["text"]),
                "source": {"file": str(path), "line": number},
                "metadata": {k: v for k, v in obj.items() if k not in ("id", "text", *OPTIONAL_FIELDS)},
            }
            for key in OPTIONAL_FIELDS:
                if obj.get(key) is not None:
                    record[key] = normalise_text(obj[key]) if key == "title" else obj[key]
            yield from self._finish(record, where)

    def _finish(self, record: dict | None, where: str) -> Iterator[dict]:
        if record is None:
            return
        first = self.seen_ids.get(record["id"])
        if first is not None:
            self.report.drop("duplicate article id", where, f"duplicate article id '{record['id']}' (first in {first})", field="id")
            return
        self.seen_ids[record["id"]] = where
        clean, removed = self.boilerplate.clean(record["text"])
        for line in removed:
            self.report.drop(
                "boilerplate",
                f"{record['source']['file']}:{record['source'].get('line', line.line_number)}",
                f"removed boilerplate line ({line.rule}): {line.text[:80]!r}",
                error=False,
                article_id=record["id"],
                rule=line.rule,
                text=line.text,
            )
        record["text"] = clean.strip("\n")
        if not record["text"].strip():
            self.report.drop("empty article", where, "no article text left after removing boilerplate")
            return
        record.setdefault("title", record["text"].strip().split("\n")[0].strip())
        self.report.keep("articles")
        yield record
