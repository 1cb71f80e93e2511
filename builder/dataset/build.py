"""Building the Hugging Face dataset folder: typed features, Parquet shards per split, a card.

Parquet is written with pyarrow directly, using the schema of the `datasets` features, so the
files carry the features in their metadata and `load_dataset` restores the ClassLabels.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from builder.dataset.bio import spans_to_bio
from builder.dataset.splits import SENTENCE_SHARES, SPLITS, assign_splits, parquet_name, uneven_splits
from builder.errors import BuilderError, InputError
from builder.jsonio import paused_gc, sha256_file
from builder.model import DATASET_FORMAT, UNRESOLVED, features
from builder.project import Project
from builder.pseudonyms import is_pseudonym
from builder.records.from_snapshot import validate_snapshot

BATCH_ROWS = 10_000
AGREEMENT_IN_CARD_LIMIT = 100_000


@dataclass
class BuildFacts:
    """What the card reports; also returned to callers."""

    splits: dict = field(default_factory=dict)
    counts: dict = field(
        default_factory=lambda: defaultdict(
            lambda: {"stance": Counter(), "entities": Counter(), "records": 0, "articles": set()}
        )
    )
    overlaps: list = field(default_factory=list)
    records: list = field(default_factory=list)  # kept only for small datasets (agreement examples)
    split_facts: dict = field(default_factory=dict)
    annotators: set = field(default_factory=set)
    validation: object = None
    snapshot_hash: str = ""
    dataset_format: int = DATASET_FORMAT
    quality: dict | None = None  # builder.records.quality.quality_summary of the snapshot; None: not measured
    predictions: dict | None = None  # builder.dataset.card.prediction_counts of the snapshot; None: not noted
    splitter: dict | None = None  # {name, summary}: the splitter as a release's manifest records it (format 8)
    labelled_under: dict | None = None  # the config and guidelines hashes a rebuilt release's manifest records
    current_splitter: bool = True  # the card names this builder's splitter; False: lines+segtok/1 (before format 5)
    croissant: bool = False  # croissant.json is written beside the card (manifest format 5 on)
    # Croissant 1.1 with provenance, the card's data statement and `machine-generated` (manifest format 9 on)
    research_notes: bool = False
    accepted_suggestions: list = field(default_factory=list)  # builder.dataset.label_provenance rows (format 9)
    text_lengths: dict | None = None  # builder.dataset.data_statement.text_lengths (format 9)
    agreement: tuple | None = None  # builder.dataset.card.agreement_of, once computed
    split_method: str = SENTENCE_SHARES  # builder.dataset.splits: ARTICLE_HASH to rebuild a release before format 6
    frozen_test: int = 0  # articles the earlier releases' test files hold (kept in test if still in the snapshot)
    uneven: list = field(default_factory=list)  # builder.dataset.splits.uneven_splits: one line per uneven split
    evidence: bool = False  # the card's "Agreement evidence" section (manifest format 9 on)
    evidence_figures: dict | None = None  # builder.dataset.evidence_card.evidence_of, once computed
    quality_figures: list = field(default_factory=list)  # builder.records.quality.quality_figures of the snapshot
    # every figure of the card's Agreement and Quality control sections with its 95% interval and n (format 10 on)
    intervals: bool = False
    # (target, stance) -> sentences, of a stance-only scheme (whose card states each target as its own population)
    by_target: Counter = field(default_factory=Counter)

    @property
    def gold_questions(self) -> int:
        """Gold questions the snapshot held, left out of the dataset."""
        return getattr(self.validation, "gold", 0) or 0


def _snapshot_readers(
    project: Project, gold: dict, dataset_format: int, notes_predictions: bool, research_notes: bool = False
):
    """What the build learns from the snapshot besides its records, as `validate_snapshot` readers: fed by
    validation's one read of the snapshot. The quality frames and the control arms (format 2 on), the
    pre-annotations (`notes_predictions`), the suggestions accepted unchanged (`research_notes`)."""
    from builder.dataset.card import predictions_reader
    from builder.records.quality import frames_reader
    from builder.records.steering import arms_reader, recorded_withheld

    def readers() -> list:
        made = []
        if dataset_format >= 2:
            made += [frames_reader(project, gold), arms_reader(project, gold, recorded_withheld(project))]
        if notes_predictions:
            made.append(predictions_reader())
        if research_notes:
            from builder.dataset.label_provenance import accepted_suggestions_reader

            made.append(accepted_suggestions_reader(gold))
        return made

    return readers


def _quality_summary(project: Project, frames, arms, figures: list | None = None, intervals: bool = False) -> dict:
    """Per-annotator gold accuracy and anchoring for the card and the manifest, from the snapshot's quality
    frames and control arms (`_snapshot_readers`):
    {"annotators": n, "gold_accuracy": [sorted, pseudonyms left out], "anchoring_rate": x|None, "flagged": n};
    `figures`, when given, is extended with builder.records.quality_intervals.quality_figures (the pooled
    figures with their intervals, for the card's evidence section) of the same report; `intervals` (manifest
    format 10 on) adds builder.records.quality_intervals.summary_figures (each figure's interval and n)."""
    from builder.records.quality import quality_summary, report_from_frames
    from builder.records.quality_intervals import quality_figures
    from builder.records.steering import summary_of_arms

    report = report_from_frames(frames, project, intervals=False)
    summary = quality_summary(report)
    steering = summary_of_arms(arms, project, intervals)
    if steering is not None:  # only a snapshot with a control arm: older releases rebuild as they were
        summary["suggestion_arms"] = steering
    if figures is not None:
        figures.extend(quality_figures(report))
    if intervals:
        from builder.records.quality_intervals import summary_figures

        summary.update(summary_figures(report))
    return summary


def _plain_json(value):
    """`value` with numpy scalars and arrays (as pandas gives them) turned into plain JSON values."""
    import json

    def plain(o):
        if hasattr(o, "tolist"):
            return o.tolist()
        raise TypeError(f"{type(o).__name__} is not JSON")

    return None if value is None else json.loads(json.dumps(value, default=plain))


def _names_type(feature):
    """The Arrow type of `feature` with every ClassLabel held as its name (a string)."""
    import pyarrow as pa
    from datasets import ClassLabel, List

    if isinstance(feature, ClassLabel):
        return pa.string()
    if isinstance(feature, dict):
        return pa.struct([(key, _names_type(value)) for key, value in feature.items()])
    if isinstance(feature, List):
        return pa.list_(_names_type(feature.feature))
    return feature.pa_type


def _names_to_ids(array, feature, column: str):
    """`array` (ClassLabels as names) -> the same values with ClassLabel ids; a missing name is -1."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from datasets import ClassLabel, List

    if isinstance(feature, ClassLabel):
        ids = pc.index_in(array, value_set=pa.array(feature.names))
        if ids.null_count != array.null_count:
            unknown = sorted(set(pc.filter(array, pc.and_(pc.is_null(ids), pc.is_valid(array))).to_pylist()))
            raise BuilderError(f"{column}: label(s) {unknown} are not in the label scheme; validate the records first")
        return pc.fill_null(ids.cast(pa.int64()), -1)
    if isinstance(feature, dict):
        children = [_names_to_ids(array.field(key), value, f"{column}.{key}") for key, value in feature.items()]
        return pa.StructArray.from_arrays(
            children, names=list(feature), mask=array.is_null() if array.null_count else None
        )
    if isinstance(feature, List):
        values = _names_to_ids(array.values, feature.feature, column)
        return pa.ListArray.from_arrays(array.offsets, values, mask=array.is_null() if array.null_count else None)
    return array


class Encoder:
    """Validated records (labels as names) -> Arrow columns (ClassLabel ids, tokens, BIO tags).

    Per record, Python only derives tokens and tags and appends references to the record's own
    values; label names become ids column by column in Arrow.
    """

    NAMED = ("stance", "entities", "unresolved_entities", "annotations")  # ClassLabel names until encoded
    DERIVED = ("tokens", "ner_tags")

    def __init__(self, project: Project, dataset_format: int = DATASET_FORMAT) -> None:
        self.features = features(project, dataset_format)
        self.schema = self.features.arrow_schema
        self.names = self.schema.names
        self.tag_ids = {v: i for i, v in enumerate(project.bio_tags)}
        self.types = {
            name: _names_type(self.features[name]) if name in self.NAMED else self.schema.field(name).type
            for name in self.names
        }
        self.pseudonyms: set[str] = set()  # annotator names already checked
        # unresolved spans a project keeps in `entities` are no part of the BIO view (resolved spans only)
        self.keep_unresolved = project.keep_unresolved_entities
        self.stored = [name for name in self.names if name not in self.DERIVED]  # taken from the record as is

    def new_columns(self) -> dict[str, list]:
        return {name: [] for name in self.names}

    def add(self, record: dict, columns: dict[str, list]) -> list[dict]:
        """Append `record` to `columns`; return the spans the BIO view cannot hold (overlaps, with their kind).

        An annotator that is not a pseudonym is a BuilderError naming the record, never the name.
        """
        for annotation in record["annotations"]:
            name = annotation["annotator"]
            if not (isinstance(name, str) and name in self.pseudonyms):
                if not is_pseudonym(name):
                    raise BuilderError(f"{record['id']}: an annotator is not a pseudonym; validate the records first")
                self.pseudonyms.add(name)
        for name in self.stored:
            columns[name].append(record[name])
        if "ner_tags" not in columns:  # a stance-only scheme: no entities, no BIO view
            return []
        spans = record["entities"]
        if self.keep_unresolved:
            spans = [span for span in spans if span.get("status") != UNRESOLVED]
        try:
            tokens, tags, dropped = spans_to_bio(record["text"], spans, self.tag_ids)
        except KeyError as exc:  # a tag the scheme does not have
            raise BuilderError(
                f"{record['id']}: entity label {exc.args[0][2:]!r} is not in the label scheme; "
                "validate the records first"
            ) from None
        columns["tokens"].append(tokens)
        columns["ner_tags"].append(tags)
        return dropped

    def table(self, columns: dict[str, list]):
        """A `pyarrow.Table` in the dataset's schema from appended columns."""
        return self.encode(self.names_batch(columns))

    def names_batch(self, columns: dict[str, list]):
        """Appended columns as a `pyarrow.RecordBatch`, ClassLabels still as names (`encode` makes them ids)."""
        import pyarrow as pa

        return pa.RecordBatch.from_arrays(
            [pa.array(columns[name], type=self.types[name]) for name in self.names], self.names
        )

    def encode(self, names):
        """A table or batch of `names_batch` -> a `pyarrow.Table` in the dataset's schema."""
        import pyarrow as pa

        arrays = []
        for name in self.names:
            array = names.column(name)
            if isinstance(array, pa.ChunkedArray):
                array = array.combine_chunks()
            if name in self.NAMED:
                array = _names_to_ids(array, self.features[name], name)
            arrays.append(array)
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def __getstate__(self) -> dict:
        """What a worker process needs to `add` and make `names_batch`: not the `datasets` features (slow to import)."""
        return {key: value for key, value in self.__dict__.items() if key != "features"}


def build_dataset(
    project: Project,
    snapshot: Path,
    output: Path,
    frozen_test: set[str] | frozenset = frozenset(),
    version: str | None = None,
    strict: bool = False,
    command: str = "builder build",
    dataset_format: int = DATASET_FORMAT,
    notes_predictions: bool = True,
    current_splitter: bool = True,
    splitter: dict | None = None,
    labelled_under: dict | None = None,
    croissant: bool = True,
    research_notes: bool = True,
    near_duplicates: bool = True,
    split_method: str = SENTENCE_SHARES,
    evidence: bool = True,
    intervals: bool = True,
) -> BuildFacts:
    """Validate `snapshot`, then write `output` (Parquet per split + README card) atomically.

    Splits: `frozen_test` articles stay in test; `build`, `run` and `release` build through
    `builder.dataset.release.build_project_dataset`, which passes the test articles of the project's
    releases, so they and `export` of the build put every article in the same split. `split_method` is
    builder.dataset.splits' SENTENCE_SHARES (ARTICLE_HASH to rebuild a release from before manifest
    format 6). A split empty or far off its share is a line in `facts.uneven`.

    `output` may only replace a previous builder output (`builder.outputs`); the new folder gets the
    marker naming `command`. With `version` (a release), `output` must be new or empty and gets no
    marker: releases are written once and never replaced. A failed write (disk full...) is one
    line, and the previous `output` is kept. `dataset_format` is the shape of the dataset written
    (`builder.model.DATASET_FORMAT`; an older one to rebuild an older release as it was);
    `notes_predictions`: the card says which predictors' model versions pre-annotated the tasks (False
    to rebuild a release from before manifest format 4 as it was); `current_splitter`: the card names
    this builder's splitter (False: `lines+segtok/1`); `near_duplicates`: near-identical articles share a
    split (`builder.dataset.splits.NearDuplicates`); `croissant`: croissant.json is written (each False
    to rebuild a release from before manifest format 5 as it was); `research_notes`: croissant.json is
    Croissant 1.1 with provenance and the card has a data statement; `evidence`: the card has its "Agreement
    evidence" section (intervals, AC1, unitizing alpha, diagnostics) (each False to rebuild a release from
    before manifest format 9 as it was); `intervals`: the figures of the card's Agreement and Quality control
    sections carry their 95% interval and n too (False to rebuild a release from before format 10 as it was).
    Gold questions never reach it: validation leaves them out and counts them (`facts.gold_questions`).
    """
    from builder.jsonio import staged_folder
    from builder.outputs import DATASET_COMMANDS, check_output_folder, write_marker

    given = Path(output)
    output = check_output_folder(given, project, fresh=version is not None, commands=DATASET_COMMANDS)

    def recheck() -> None:
        check_output_folder(given, project, fresh=version is not None, commands=DATASET_COMMANDS)

    with staged_folder(given, output, recheck) as staging:
        records_path = staging / "records.jsonl"
        from builder.gold.answers import project_gold

        gold = project_gold(project)  # read once: validation and the quality summary share it
        readers = _snapshot_readers(project, gold, dataset_format, notes_predictions, research_notes)
        result = validate_snapshot(project, snapshot, records_path, dataset_format, gold, readers)
        read, result.read = iter(result.read), []  # in the order `readers` made them
        quality = (next(read), next(read)) if dataset_format >= 2 else None
        predictions = next(read) if notes_predictions else None
        accepted = next(read) if research_notes else []
        del read
        if strict and result.report.errors():
            raise BuilderError(
                f"{snapshot}: validation found {len(result.report.errors())} problems; "
                "run `builder validate` and fix them first"
            )
        if result.records == 0:  # no Parquet file could be written: `load_dataset` would fail on the folder
            raise BuilderError(
                f"{snapshot}: no sentence to build a dataset of ({result.tasks_in} tasks: {result.gold} gold "
                f"questions, {result.quarantined} quarantined); annotate and `builder pull` first"
            )
        quality_figures: list = []
        if quality is not None:  # summed up now: the frames need not be held while the dataset is written
            quality = _plain_json(_quality_summary(project, *quality, quality_figures, intervals and evidence))
        with paused_gc():
            facts = write_dataset(
                project,
                records_path,
                staging,
                frozen_test,
                version,
                result.snapshot_sha256,
                dataset_format,
                near_duplicates=near_duplicates,
                split_method=split_method,
            )
        facts.frozen_test = len(frozen_test)
        facts.uneven = uneven_splits(facts.split_facts["sentences"], project.split_proportions)
        facts.validation = result
        facts.current_splitter = current_splitter
        facts.splitter = splitter
        facts.labelled_under = labelled_under
        facts.quality = quality
        facts.quality_figures = quality_figures
        facts.evidence = evidence
        facts.intervals = intervals and evidence
        if isinstance(predictions, InputError):  # a line that is not JSON: the pre-annotations cannot be told
            raise predictions
        facts.predictions = predictions
        records_path.unlink()
        from builder.dataset.card import write_card

        facts.croissant = croissant
        facts.research_notes = research_notes
        if research_notes:
            from builder.dataset.data_statement import text_lengths
            from builder.dataset.label_provenance import write_accepted_suggestions

            facts.accepted_suggestions = write_accepted_suggestions(staging, accepted)
            facts.text_lengths = text_lengths(staging)
        write_card(project, staging, facts, version)
        if croissant:
            from builder.dataset.croissant import write_croissant

            write_croissant(project, staging, facts, version)
        if version is None:
            write_marker(staging, command, snapshot=_snapshot_fact(project, snapshot, facts.snapshot_hash))
    return facts


def _snapshot_fact(project: Project, snapshot: Path, sha256: str) -> dict:
    """The snapshot a build read, as its marker records it: the path (relative to the project folder when inside)."""
    path = Path(snapshot).resolve()
    root = project.root.resolve()
    return {"path": str(path.relative_to(root)) if path.is_relative_to(root) else str(path), "sha256": sha256}


class BuiltFrom(NamedTuple):
    """The snapshot a built dataset came from (`path`), and whether that file still holds those bytes (`current`)."""

    path: Path
    current: bool
    recorded: bool  # False: the folder names none (a release, a Hub copy, an older build): the project's snapshot


def dataset_snapshot(project: Project, folder: str | Path) -> BuiltFrom:
    """The snapshot the dataset in `folder` was built from, as `builder build`/`run` recorded it in the folder's
    marker: what the notebook's annotators' table reads, so it describes the same annotations as the dataset.
    A folder without one (a release, a Hub copy, an older build) gives the project's annotations/snapshot.jsonl."""
    from builder.outputs import read_marker

    marker = read_marker(Path(folder)) if Path(folder).is_dir() else None
    fact = (marker or {}).get("snapshot")
    if not isinstance(fact, dict) or not isinstance(fact.get("path"), str):
        return BuiltFrom(project.snapshot_path, True, False)
    path = Path(fact["path"]) if Path(fact["path"]).is_absolute() else project.root / fact["path"]
    current = path.is_file() and sha256_file(path) == fact.get("sha256")
    return BuiltFrom(path, current, True)


def uneven_warnings(project: Project, facts: BuildFacts) -> list[str]:
    """A `warning:` line per built split that is empty or far off its share, unless `[splits] allow_uneven`."""
    if project.allow_uneven_splits:
        return []
    return [
        f"warning: {line}; `builder release` refuses this unless `[splits] allow_uneven = true` in {project.source}"
        for line in facts.uneven
    ]


def write_dataset(
    project: Project,
    records_path: Path,
    folder: Path,
    frozen_test=frozenset(),
    version: str | None = None,
    snapshot_hash: str = "",
    dataset_format: int = DATASET_FORMAT,
    notes_predictions: bool = True,
    near_duplicates: bool = True,
    split_method: str = SENTENCE_SHARES,
    evidence: bool = True,
) -> BuildFacts:
    """Parquet shards per split under `folder/data` from validated records (read once).

    The records are encoded (tokens, BIO tags, Arrow columns) chunk by chunk, in two worker processes
    for a large file, and spooled as Arrow to an anonymous temporary file while the splits are
    assigned; the spool is then dealt out to the splits in the records' order, `BATCH_ROWS` rows per
    row group, so the files are the same however the work was cut. `near_duplicates`: near-identical
    articles share a split (threshold from the project file); `split_method`: builder.dataset.splits'.
    """
    import tempfile

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    facts = BuildFacts()
    facts.snapshot_hash = snapshot_hash
    facts.dataset_format = dataset_format
    facts.split_method = split_method
    encoder = Encoder(project, dataset_format)
    with tempfile.TemporaryFile(dir=folder) as spool:  # anonymous: nothing is left behind, however this ends
        spooler = None
        total = 0
        small: list = []  # the batches so far, while there are at most AGREEMENT_IN_CARD_LIMIT records

        def sentences():
            nonlocal spooler, total
            for batch, overlaps in _encoded_chunks(encoder, Path(records_path)):
                spooler = spooler or pa.ipc.new_stream(spool, batch.schema)
                spooler.write_batch(batch)
                facts.overlaps.extend(overlaps)
                total += batch.num_rows
                if total <= AGREEMENT_IN_CARD_LIMIT:  # made into records at the end, if it is still small
                    kept = ("stance", "annotations", "text", "target" if not project.has_entities else "")
                    small.append(batch.select([c for c in kept if c in batch.schema.names]))
                else:
                    small.clear()
                yield from zip(batch.column("article_id").to_pylist(), batch.column("text").to_pylist())

        splits, facts.split_facts = assign_splits(
            sentences(),
            project.split_proportions,
            frozen_test,
            salt=project.name,
            near_duplicate_threshold=project.near_duplicate_threshold if near_duplicates else None,
            method=split_method,
        )
        facts.splits = splits
        for batch in small:
            # A scheme without stance or entities: its half reads as unanswered (no stance, no span), so the card's
            # figures are computed alike and it states only its own half's.
            no_stance = [None] * batch.num_rows if "stance" not in batch.schema.names else None
            annotations_of = batch.column("annotations").to_pylist()
            if not (project.has_stance and project.has_entities):
                annotations_of = [[{"stance": None, "entities": [], **a} for a in one] for one in annotations_of]
            facts.records.extend(
                {"stance": stance, "annotations": annotations, "text": text}  # text: unitizing alpha's lengths
                for stance, annotations, text in zip(
                    no_stance or batch.column("stance").to_pylist(),
                    annotations_of,
                    batch.column("text").to_pylist(),
                )
            )
            if "target" in batch.schema.names:  # a stance-only scheme: agreement per target in the card
                added = facts.records[len(facts.records) - batch.num_rows :]
                for record, target in zip(added, batch.column("target").to_pylist()):
                    record["target"] = target
        (folder / "data").mkdir(exist_ok=True)
        writers = {s: pq.ParquetWriter(folder / parquet_name(s), encoder.schema, compression="zstd") for s in SPLITS}
        pending: dict[str, list] = {s: [] for s in SPLITS}  # batches of names not written yet, per split
        waiting = dict.fromkeys(SPLITS, 0)

        def flush(split: str, rows: int) -> None:
            table = pa.Table.from_batches(pending[split])
            part = table.slice(0, rows)
            _count(facts, facts.counts[split], part)
            writers[split].write_table(encoder.encode(part))
            pending[split] = table.slice(rows).to_batches()
            waiting[split] -= rows

        if spooler is not None:
            spooler.close()
            spool.seek(0)
            article_ids = pa.array(list(splits), pa.string())
            codes = pa.array([SPLITS.index(split) for split in splits.values()], pa.int8())
            for batch in pa.ipc.open_stream(spool):
                batch_codes = pc.take(codes, pc.index_in(batch.column("article_id"), value_set=article_ids))
                for code, split in enumerate(SPLITS):
                    part = batch.filter(pc.equal(batch_codes, code))
                    if part.num_rows:
                        pending[split].append(part)
                        waiting[split] += part.num_rows
                        while waiting[split] >= BATCH_ROWS:
                            flush(split, BATCH_ROWS)
        for split, writer in writers.items():
            if waiting[split]:
                flush(split, waiting[split])
            writer.close()
    for split in SPLITS:  # an empty split has no file: the card's configs list only present ones
        if facts.counts[split]["records"] == 0:
            (folder / parquet_name(split)).unlink()
    return facts


def _count(facts: BuildFacts, counts: dict, names) -> None:
    """Add a table of `Encoder.names_batch` rows to a split's counts (and the annotators to `facts`)."""
    import pyarrow.compute as pc

    counts["records"] += names.num_rows
    counts["articles"].update(names.column("article_id").to_pylist())
    columns = names.schema.names  # a stance-only or entities-only scheme's counts leave the other half empty
    if "stance" in columns:
        counts["stance"].update("(unresolved)" if s is None else s for s in names.column("stance").to_pylist())
        if "ner_tags" not in columns:  # stance only: each target's own counts
            targets, stances = names.column("target").to_pylist(), names.column("stance").to_pylist()
            facts.by_target.update((t, "(unresolved)" if s is None else s) for t, s in zip(targets, stances))
    if "entities" in columns:
        entities = pc.list_flatten(names.column("entities"))
        counts["entities"].update(pc.struct_field(entities, "label").to_pylist())
    annotations = pc.list_flatten(names.column("annotations"))
    facts.annotators.update(pc.struct_field(annotations, "annotator").to_pylist())


PARALLEL_MIN_BYTES = 32 << 20  # records files from this size are encoded by two worker processes
CHUNK_BYTES = 4 << 20  # what one worker encodes at a time


def _encoded_chunks(encoder: Encoder, path: Path):
    """(names batch, overlaps) per chunk of the records file, in order: in this process for a small file,
    else in two worker processes (a few chunks in flight). Errors name the file and line as `read_jsonl` does."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot open ({exc.strerror})") from None
    bounds = _chunk_bounds(path, size, CHUNK_BYTES)
    jobs = [(encoder, str(path), start, end) for start, end in zip(bounds, bounds[1:])]
    lines = 0
    if size < PARALLEL_MIN_BYTES or (os.cpu_count() or 1) < 2:
        results = map(_encode_chunk, jobs)
    else:
        results = _in_workers(_encode_chunk, jobs, workers=2)
    for result in results:
        if isinstance(result, _BadLine):
            raise InputError(f"{path}:{lines + result.number}: {result.detail}")
        batch, overlaps, chunk_lines = result
        lines += chunk_lines
        yield batch, overlaps


def _in_workers(function, jobs: list, workers: int):
    """`map(function, jobs)` in `workers` Python processes of builder's own (not multiprocessing's, which
    would run the caller's main script again), in order, two jobs in flight per worker."""
    import pickle
    import subprocess
    import sys

    import builder

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(builder.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-c", "from builder.dataset.build import _serve; _serve()"]
    procs = []
    try:
        for _ in range(min(workers, len(jobs))):
            procs.append(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env))

        def send(index: int) -> None:
            worker = procs[index % len(procs)].stdin
            pickle.dump((function, jobs[index]), worker, protocol=pickle.HIGHEST_PROTOCOL)
            worker.flush()

        ahead = 2 * len(procs)
        for index in range(min(ahead, len(jobs))):
            send(index)
        for index in range(len(jobs)):
            try:
                status, value = pickle.load(procs[index % len(procs)].stdout)
            except EOFError:
                raise BuilderError("a build worker process ended unexpectedly (out of memory?)") from None
            if index + ahead < len(jobs):
                send(index + ahead)  # the same worker: index + ahead = index (mod workers)
            if status == "error":
                raise value
            yield value
    finally:
        for proc in procs:
            proc.stdin.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()


def _serve() -> None:
    """A build worker: (function, job) pickled on stdin, ("ok", result) or ("error", exception) on stdout."""
    import gc
    import pickle
    import sys

    gc.disable()  # records are acyclic: the collector would only slow the work down
    jobs, results = sys.stdin.buffer, os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not corrupt the results
    while True:
        try:
            function, job = pickle.load(jobs)
        except EOFError:
            return
        try:
            answer = ("ok", function(job))
        except Exception as exc:  # sent back to be raised by the caller, as in one process
            answer = ("error", exc)
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an exception that cannot be pickled: its text
            data = pickle.dumps(("error", BuilderError(f"build worker: {answer[1]!r}")))
        results.write(data)
        results.flush()


def _chunk_bounds(path: Path, size: int, chunk: int) -> list[int]:
    """Offsets cutting the file into pieces of about `chunk` bytes, each at the start of a line."""
    bounds = [0]
    with open(path, "rb") as handle:
        while bounds[-1] + chunk < size:
            handle.seek(bounds[-1] + chunk)
            handle.readline()
            if handle.tell() >= size:
                break
            bounds.append(handle.tell())
    bounds.append(size)
    return bounds


@dataclass
class _BadLine:
    number: int  # within the chunk, from 1
    detail: str


def _encode_chunk(job: tuple):
    """(names batch, overlaps, lines) of one piece of the records file; a `_BadLine` for a line that is not
    a JSON object. BuilderError for a record the encoder refuses."""
    import orjson

    encoder, path, start, end = job
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    columns = encoder.new_columns()
    overlaps = []
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, 1):
        if not line or line.isspace():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            try:  # orjson's message as `read_jsonl` gives it, for the line with its newline
                orjson.loads(line + b"\n" if number < len(lines) or data.endswith(b"\n") else line)
            except orjson.JSONDecodeError as exc:
                return _BadLine(number, f"not valid JSON ({exc})")
        if not isinstance(record, dict):
            return _BadLine(number, f"expected a JSON object, got {type(record).__name__}")
        for span in encoder.add(record, columns):
            overlaps.append({"id": record["id"], **span})
    return encoder.names_batch(columns), overlaps, len(lines)
