"""`builder export`: the built dataset (or a release) in formats other toolkits read.

One file per split in an output folder (written whole, like `builder build`'s):

- `conll`: CoNLL-2003 style columns `TOKEN TAG` (the dataset's own `tokens` and `ner_tags`), a
  `-DOCSTART- O` line and a blank line before each article, a blank line after each sentence;
  `{split}.conll`.
- `semeval`: SemEval-2016 Task 6 style TSV, `ID<TAB>Target<TAB>Text<TAB>Stance`, the stance label
  names mapped to FAVOR / AGAINST / NONE (`STANCE_MAP`, or the caller's mapping); `{split}.tsv`.
- `spacy`: a spaCy `DocBin` per split (`{split}.spacy`, what `spacy train` reads): entity spans as
  `Doc.ents`, every span (overlapping ones too) in `doc.spans["entities"]`, the stance as `doc.cats`
  (one 1.0, the others 0.0), the sentence and article ids in `doc.user_data`.
- `jsonl`: every column, labels as names, entity spans as character offsets into `text`; `{split}.jsonl`.

Entity spans are the resolved ones of `entities` (dataset format 3: not those of status `unresolved`,
which a project may keep there; `unresolved_entities` is only in jsonl). What a format cannot hold is
never dropped silently: each loss is counted in `ExportResult.notes` by its real kind (a span with the
same extent as another with another label, a nested or a crossing span, which BIO tags and `Doc.ents`
cannot hold beside the span they keep, `builder.dataset.bio.loss_kind`; a span off token boundaries; an
unresolved span kept in `entities`; an unresolved stance in SemEval or spaCy's cats), naming the
sentence ids, and listed whole in `export-report.json` in the output folder. Rows are ordered by
article id, then sentence index.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from builder.dataset.bio import _TOKEN, bio_to_spans, loss_kind, non_overlapping
from builder.dataset.splits import SPLITS, parquet_pattern
from builder.errors import BuilderError
from builder.model import UNRESOLVED
from builder.project import Project

FORMATS = ("conll", "semeval", "spacy", "jsonl")
SUFFIX = {"conll": "conll", "semeval": "tsv", "spacy": "spacy", "jsonl": "jsonl"}
EXPORT_COMMAND = "builder export"
REPORT = "export-report.json"
SEMEVAL = ("FAVOR", "AGAINST", "NONE")
# Stance label names -> SemEval-2016 Task 6 labels, by name (case-insensitive); others need a mapping.
STANCE_MAP = {
    **dict.fromkeys(("favor", "favour", "for", "support", "supports", "pro", "positive"), "FAVOR"),
    **dict.fromkeys(("against", "oppose", "opposes", "con", "contra", "negative"), "AGAINST"),
    **dict.fromkeys(("none", "neutral", "neither", "unrelated", "other", "no stance"), "NONE"),
}
SHOWN = 10  # ids named on stderr per kind of loss; the report lists them all


@dataclass
class ExportResult:
    folder: Path
    source: Path
    files: list[Path] = field(default_factory=list)
    rows: dict = field(default_factory=dict)  # split -> sentences written
    notes: list[str] = field(default_factory=list)  # what the format could not hold, one line each
    stance_map: dict | None = None  # semeval: label name -> FAVOR/AGAINST/NONE


def source_folder(project: Project, version: str | None) -> Path:
    """The dataset folder to export: release `version`, else the project's build output."""
    if version is not None:
        from builder.dataset.release import RELEASES_DIR, read_manifest

        read_manifest(project, version)  # an unknown version is one line naming the releases there are
        return project.root / RELEASES_DIR / version
    folder = project.dataset_path
    if not any(folder.glob(parquet_pattern("*"))):
        raise BuilderError(f"{folder}: no built dataset there; run `builder build` first, or pass --version")
    return folder


def default_output(project: Project, fmt: str, version: str | None) -> Path:
    """dist/<name>-<format>, or dist/<name>-<version>-<format> for a release."""
    return project.dataset_path.parent / "-".join([project.name, *([version] if version else []), fmt])


def stance_mapping(labels: list[str], given: dict[str, str] | None = None) -> dict[str, str]:
    """Each stance label name -> FAVOR, AGAINST or NONE: `given` first, then by name (STANCE_MAP)."""
    given = given or {}
    unknown_keys = sorted(set(given) - set(labels))
    if unknown_keys:
        raise BuilderError(f"--stance-map: {', '.join(unknown_keys)} not among the stance labels ({', '.join(labels)})")
    bad = sorted(f"{k}={v}" for k, v in given.items() if v not in SEMEVAL)
    if bad:
        raise BuilderError(f"--stance-map: {', '.join(bad)}: map each label to one of {', '.join(SEMEVAL)}")
    mapping = {label: given.get(label) or STANCE_MAP.get(label.lower()) for label in labels}
    missing = [label for label, value in mapping.items() if value is None]
    if missing:
        raise BuilderError(
            f"stance label(s) {', '.join(missing)} have no SemEval equivalent by name; pass --stance-map "
            + ",".join(f"{label}=FAVOR|AGAINST|NONE" for label in missing)
        )
    return mapping


def read_rows(folder: Path) -> Iterator[tuple[str, list[dict]]]:
    """(split, rows) of a dataset folder, each split's rows ordered by article and sentence index, ClassLabel
    ids decoded to names with each Parquet file's own features (an unresolved stance is None)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features

    for split in SPLITS:
        rows: list[dict] = []
        for path in sorted(folder.glob(parquet_pattern(split))):
            try:
                table = pq.read_table(path)
                features = Features.from_arrow_schema(table.schema)
            except (pa.ArrowException, OSError, ValueError, KeyError) as exc:
                raise BuilderError(f"{path}: cannot read it as a dataset's Parquet ({type(exc).__name__}: {exc})")
            # a stance-only dataset has no entity columns, an entities-only one no stance column
            stance_names = features["stance"].names if "stance" in features else None
            entity_names = features["entities"].feature["label"].names if "entities" in features else None
            tag_names = features["ner_tags"].feature.names if "ner_tags" in features else None
            for row in table.to_pylist():
                if stance_names is not None:
                    row["stance"] = (
                        stance_names[row["stance"]] if row["stance"] is not None and row["stance"] >= 0 else None
                    )
                if entity_names is not None:
                    row["entities"] = [{**e, "label": entity_names[e["label"]]} for e in row["entities"]]
                    if "unresolved_entities" in row:  # dataset format 3 on
                        row["unresolved_entities"] = [
                            {**e, "label": entity_names[e["label"]]} for e in row["unresolved_entities"]
                        ]
                    row["ner_tags"] = [tag_names[t] for t in row["ner_tags"]]
                for a in row["annotations"]:
                    if stance_names is not None:
                        a["stance"] = (
                            stance_names[a["stance"]] if a["stance"] is not None and a["stance"] >= 0 else None
                        )
                    if entity_names is not None:
                        a["entities"] = [{**e, "label": entity_names[e["label"]]} for e in a["entities"]]
                rows.append(row)
        if rows:
            rows.sort(key=lambda r: (r["article_id"], r["sentence_index"], r["id"]))
            yield split, rows


def stance_labels(folder: Path) -> list[str]:
    """The stance label names of the dataset in `folder`, from its Parquet files' own features (a release keeps
    the names it was built with, whatever builder.toml says now)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features

    names: list[str] = []
    for path in sorted(folder.glob(parquet_pattern("*"))):
        try:
            features = Features.from_arrow_schema(pq.read_schema(path))
            if "stance" not in features and "ner_tags" in features:  # an entities-only dataset: no stance labels
                return []
            found = features["stance"].names
        except (pa.ArrowException, OSError, ValueError, KeyError, AttributeError) as exc:
            raise BuilderError(f"{path}: cannot read it as a dataset's Parquet ({type(exc).__name__}: {exc})")
        if names and found != names:
            raise BuilderError(f"{path}: stance labels {', '.join(found)} differ from {', '.join(names)} in {folder}")
        names = found
    return names


def _span_text(span: dict) -> str:
    return f"{span['label']} '{span['text']}' [{span['start']}:{span['end']}]"


class _Losses:
    """What a format could not hold: kind -> [(sentence id, detail)]."""

    def __init__(self) -> None:
        self.kinds: dict[str, list[tuple[str, str]]] = {}

    def add(self, kind: str, sentence_id: str, detail: str = "") -> None:
        self.kinds.setdefault(kind, []).append((sentence_id, detail))

    def notes(self, fmt: str, report: str) -> list[str]:
        lines = []
        for kind, items in self.kinds.items():
            shown = ", ".join(f"{i} {d}".strip() for i, d in items[:SHOWN])
            more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
            lines.append(f"{fmt}: {len(items)} {kind}: {shown}{more} (all in {report})")
        return lines

    def report(self) -> dict:
        return {kind: [{"id": i, "detail": d} for i, d in items] for kind, items in self.kinds.items()}


# --- the formats ------------------------------------------------------------------------------


def _conll(rows: list[dict], path: Path, losses: _Losses) -> None:
    article = None
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for row in rows:
            if row["article_id"] != article:
                article = row["article_id"]
                out.write("-DOCSTART- O\n\n")
            for token, tag in zip(row["tokens"], row["ner_tags"]):
                out.write(f"{token} {tag}\n")
            out.write("\n")
            held = {
                (s["start"], s["end"], s["label"]) for s in bio_to_spans(row["text"], row["tokens"], row["ner_tags"])
            }
            spans, unresolved = _resolved(row, losses)
            for span in spans:
                if (span["start"], span["end"], span["label"]) not in held:
                    others = [o for o in spans if o is not span and (o["start"], o["end"], o["label"]) in held]
                    if any(o["start"] < span["end"] and span["start"] < o["end"] for o in others):
                        kind = f"entity span(s) {loss_kind(span, others)}, which BIO tags cannot hold, left out"
                    else:
                        kind = "entity span(s) not on token boundaries, left out"
                    losses.add(kind, row["id"], _span_text(span))


def _resolved(row: dict, losses: _Losses) -> tuple[list[dict], list[dict]]:
    """(resolved spans, unresolved ones) of a row's `entities`: the unresolved spans a project keeps there
    (status `unresolved`) are left out of every export but jsonl, and counted."""
    spans = [s for s in row["entities"] if s.get("status") != UNRESOLVED]
    unresolved = [s for s in row["entities"] if s.get("status") == UNRESOLVED]
    for span in unresolved:
        losses.add("unresolved entity span(s) (status unresolved), left out", row["id"], _span_text(span))
    return spans, unresolved


def _semeval(rows: list[dict], path: Path, losses: _Losses, mapping: dict[str, str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(["ID", "Target", "Text", "Stance"])
        for row in rows:
            if row["stance"] is None:
                losses.add("sentence(s) with an unresolved stance (no SemEval label), left out", row["id"])
                continue
            writer.writerow([row["id"], row["target"], row["text"], mapping[row["stance"]]])


def _pieces(text: str, spans: list[dict]) -> list[tuple[int, int]]:
    """(start, end) of words covering `text`: the dataset's tokenization (bio._TOKEN), cut at every span
    boundary (so every span, overlapping ones included, covers whole tokens)."""
    cuts = sorted({0, len(text), *(s["start"] for s in spans), *(s["end"] for s in spans)})
    found = []
    for a, b in zip(cuts, cuts[1:]):
        found += [m.span() for m in _TOKEN.finditer(text, a, b)]
    return found


def _doc(vocab, row: dict, labels: list[str], losses: _Losses):
    """A spaCy Doc of `row` whose text is exactly the sentence: words from _pieces, whitespace as spaCy keeps it."""
    from spacy.tokens import Doc, Span

    text = row["text"]
    entities, _ = _resolved(row, losses) if "entities" in row else ([], [])
    words, spaces = [], []
    position = 0
    for start, end in _pieces(text, entities):
        gap = text[position:start]
        if gap:
            if words and gap.startswith(" "):
                spaces[-1] = True
                gap = gap[1:]
            if gap:
                words.append(gap)  # other whitespace: a whitespace token, as spaCy's tokenizer makes
                spaces.append(False)
        words.append(text[start:end])
        spaces.append(False)
        position = end
    if position < len(text):
        gap = text[position:]
        if words and gap.startswith(" "):
            spaces[-1] = True
            gap = gap[1:]
        if gap:
            words.append(gap)
            spaces.append(False)
    doc = Doc(vocab, words=words, spaces=spaces)
    if doc.text != text:  # by construction it is; never export a Doc whose offsets would be wrong
        raise BuilderError(f"{row['id']}: the spaCy Doc does not reproduce the sentence's text")
    spans = []
    for entity in entities:
        span = doc.char_span(entity["start"], entity["end"], label=entity["label"])
        if span is None:
            losses.add("entity span(s) not on token boundaries, left out", row["id"], _span_text(entity))
        else:
            spans.append(span)
    kept, dropped = non_overlapping(
        [{"start": s.start_char, "end": s.end_char, "label": s.label_, "span": s} for s in spans]
    )
    doc.ents = [k["span"] for k in kept]
    for d in dropped:
        losses.add(
            f"entity span(s) {loss_kind(d, kept)}, not in Doc.ents (kept in doc.spans['entities'])",
            row["id"],
            _span_text({**d, "text": text[d["start"] : d["end"]]}),
        )
    doc.spans["entities"] = [Span(doc, s.start, s.end, label=s.label_) for s in spans]
    doc.cats = {label: float(label == row["stance"]) for label in labels}
    if labels and row["stance"] is None:
        losses.add("sentence(s) with an unresolved stance: doc.cats all 0.0", row["id"])
    doc.user_data["id"] = row["id"]
    doc.user_data["article_id"] = row["article_id"]
    return doc


def _spacy(rows: list[dict], path: Path, losses: _Losses, labels: list[str]) -> None:
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    vocab = Vocab()
    docs = DocBin(store_user_data=True)
    for row in rows:
        docs.add(_doc(vocab, row, labels, losses))
    path.write_bytes(docs.to_bytes())


def _jsonl(rows: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")


def _require_spacy() -> None:
    try:
        import spacy  # noqa: F401
    except ImportError:
        raise BuilderError("--format spacy needs spaCy: pip install spacy") from None


# The half of the scheme a format holds nothing without (spaCy and jsonl hold either half).
NEEDS = {"conll": "entities", "semeval": "stance"}


def _check_scheme_holds(source: Path, fmt: str, stance_names: list[str]) -> None:
    """Refuse a format that needs the half of the scheme the dataset in `source` leaves out (stance-only,
    entities-only), in one line."""
    import pyarrow.parquet as pq

    needed = NEEDS.get(fmt)
    paths = sorted(source.glob(parquet_pattern("*")))
    if needed is None or not paths:
        return
    has = bool(stance_names) if needed == "stance" else "ner_tags" in pq.read_schema(paths[0]).names
    if not has:
        other = "conll, spacy or jsonl" if needed == "stance" else "semeval, spacy or jsonl"
        raise BuilderError(
            f"--format {fmt} needs {needed}, and the dataset in {source} has none (its scheme labels "
            f"{'entities' if needed == 'stance' else 'stance'} only): export it as {other}"
        )


def export_dataset(
    project: Project,
    fmt: str,
    output: Path | None = None,
    version: str | None = None,
    stance_map: dict[str, str] | None = None,
) -> ExportResult:
    """Write the built dataset (or release `version`) in format `fmt` into the folder `output` (one file per
    split and export-report.json); `output` may only replace an earlier `builder export` output."""
    from builder.jsonio import staged_folder
    from builder.outputs import check_output_folder, write_marker

    if fmt not in FORMATS:
        raise BuilderError(f"unknown export format {fmt!r}: one of {', '.join(FORMATS)}")
    if stance_map and fmt != "semeval":  # never ignored silently: the user meant it for something
        raise BuilderError(f"--stance-map is for --format semeval; --format {fmt} keeps the stance label names")
    if fmt == "spacy":
        _require_spacy()
    source = source_folder(project, version)
    labels = stance_labels(source)
    _check_scheme_holds(source, fmt, labels)
    mapping = stance_mapping(labels, stance_map) if fmt == "semeval" else None
    given = Path(output) if output is not None else default_output(project, fmt, version)
    folder = check_output_folder(given, project, commands=(EXPORT_COMMAND,))
    result = ExportResult(folder, source, stance_map=mapping)
    losses = _Losses()

    def recheck() -> None:
        check_output_folder(given, project, commands=(EXPORT_COMMAND,))

    with staged_folder(given, folder, recheck) as staging:
        for split, rows in read_rows(source):
            path = staging / f"{split}.{SUFFIX[fmt]}"
            if fmt == "conll":
                _conll(rows, path, losses)
            elif fmt == "semeval":
                _semeval(rows, path, losses, mapping)
            elif fmt == "spacy":
                _spacy(rows, path, losses, labels)
            else:
                _jsonl(rows, path)
            result.rows[split] = len(rows)
            result.files.append(folder / path.name)
        if not result.rows:
            raise BuilderError(f"{source}: no Parquet rows to export")
        report = {
            "format": fmt,
            "source": str(source),
            "sentences": {split: result.rows.get(split, 0) for split in SPLITS},  # an empty split says 0
            "not_held": losses.report(),
            **({"stance_map": mapping} if mapping else {}),
        }
        (staging / REPORT).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        write_marker(staging, EXPORT_COMMAND)
    result.notes = losses.notes(fmt, str(folder / REPORT))
    if fmt == "conll" and labels:  # an entities-only dataset has no stance to point to
        result.notes.append("conll: entity tags only; the stance is in the semeval, spacy and jsonl exports")
    return result
