"""Building the Hugging Face dataset folder: typed features, Parquet shards per split, a card.

Parquet is written with pyarrow directly, using the schema of the `datasets` features, so the
files carry the features in their metadata and `load_dataset` restores the ClassLabels.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from builder.dataset.bio import spans_to_bio
from builder.dataset.splits import SPLITS, assign_splits, parquet_name
from builder.errors import BuilderError
from builder.jsonio import paused_gc, read_jsonl, sha256_file
from builder.model import DATASET_FORMAT, features
from builder.project import Project
from builder.pseudonyms import is_pseudonym
from builder.records.stage import validate_snapshot

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
    current_splitter: bool = True  # the card names this builder's splitter; False: lines+segtok/1 (before format 5)
    croissant: bool = False  # croissant.json is written beside the card (manifest format 5 on)
    agreement: tuple | None = None  # builder.dataset.card.agreement_of, once computed

    @property
    def gold_questions(self) -> int:
        """Gold questions the snapshot held, left out of the dataset."""
        return getattr(self.validation, "gold", 0) or 0


def _quality_summary(project: Project, snapshot: Path) -> dict | None:
    """Per-annotator gold accuracy and anchoring for the card and the manifest:
    {"annotators": n, "gold_accuracy": [sorted, pseudonyms left out], "anchoring_rate": x|None, "flagged": n}."""
    from builder.records.gold import project_gold
    from builder.records.quality import annotator_report, quality_summary

    return quality_summary(annotator_report(snapshot, project, project_gold(project)))


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

    NAMED = ("stance", "entities", "annotations")  # columns that hold ClassLabel names until encoded
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
        self.stored = [name for name in self.names if name not in self.DERIVED]  # taken from the record as is

    def new_columns(self) -> dict[str, list]:
        return {name: [] for name in self.names}

    def add(self, record: dict, columns: dict[str, list]) -> list[dict]:
        """Append `record` to `columns`; return the spans the BIO view cannot hold (overlaps).

        An annotator that is not a pseudonym is a BuilderError naming the record, never the name.
        """
        for annotation in record["annotations"]:
            name = annotation["annotator"]
            if not (isinstance(name, str) and name in self.pseudonyms):
                if not is_pseudonym(name):
                    raise BuilderError(f"{record['id']}: an annotator is not a pseudonym; validate the records first")
                self.pseudonyms.add(name)
        try:
            tokens, tags, dropped = spans_to_bio(record["text"], record["entities"], self.tag_ids)
        except KeyError as exc:  # a tag the scheme does not have
            raise BuilderError(
                f"{record['id']}: entity label {exc.args[0][2:]!r} is not in the label scheme; "
                "validate the records first"
            ) from None
        for name in self.stored:
            columns[name].append(record[name])
        columns["tokens"].append(tokens)
        columns["ner_tags"].append(tags)
        return dropped

    def table(self, columns: dict[str, list]):
        """A `pyarrow.Table` in the dataset's schema from appended columns."""
        import pyarrow as pa

        arrays = []
        for name in self.names:
            array = pa.array(columns[name], type=self.types[name])
            if name in self.NAMED:
                array = _names_to_ids(array, self.features[name], name)
            arrays.append(array)
        return pa.Table.from_arrays(arrays, schema=self.schema)


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
    croissant: bool = True,
) -> BuildFacts:
    """Validate `snapshot`, then write `output` (Parquet per split + README card) atomically.

    `output` may only replace a previous builder output (`builder.outputs`); the new folder gets the
    marker naming `command`. With `version` (a release), `output` must be new or empty and gets no
    marker: releases are written once and never replaced. A failed write (disk full...) is one
    line, and the previous `output` is kept. `dataset_format` is the shape of the dataset written
    (`builder.model.DATASET_FORMAT`; an older one to rebuild an older release as it was);
    `notes_predictions`: the card says which predictors' model versions pre-annotated the tasks (False
    to rebuild a release from before manifest format 4 as it was); `current_splitter`: the card names
    this builder's splitter (False: `lines+segtok/1`, to rebuild a release from before manifest format 5
    as it was). Gold
    questions never reach it: validation leaves them out and counts them (`facts.gold_questions`).
    """
    from builder.jsonio import staged_folder
    from builder.outputs import DATASET_COMMANDS, check_output_folder, write_marker

    given = Path(output)
    output = check_output_folder(given, project, fresh=version is not None, commands=DATASET_COMMANDS)

    def recheck() -> None:
        check_output_folder(given, project, fresh=version is not None, commands=DATASET_COMMANDS)

    with staged_folder(given, output, recheck) as staging:
        records_path = staging / "records.jsonl"
        result = validate_snapshot(project, snapshot, records_path)
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
        with paused_gc():
            facts = write_dataset(
                project, records_path, staging, frozen_test, version, sha256_file(snapshot), dataset_format
            )
        facts.validation = result
        facts.current_splitter = current_splitter
        if dataset_format >= 2:
            facts.quality = _plain_json(_quality_summary(project, snapshot))
        if notes_predictions:
            from builder.dataset.card import prediction_counts

            facts.predictions = prediction_counts(snapshot)
        records_path.unlink()
        from builder.dataset.card import write_card

        facts.croissant = croissant
        write_card(project, staging, facts, version)
        if croissant:
            from builder.dataset.croissant import write_croissant

            write_croissant(project, staging, facts, version)
        if version is None:
            write_marker(staging, command)
    return facts


def write_dataset(
    project: Project,
    records_path: Path,
    folder: Path,
    frozen_test=frozenset(),
    version: str | None = None,
    snapshot_hash: str = "",
    dataset_format: int = DATASET_FORMAT,
    notes_predictions: bool = True,
) -> BuildFacts:
    """Parquet shards per split under `folder/data` from validated records (streamed twice)."""
    import pyarrow.parquet as pq

    facts = BuildFacts()
    facts.snapshot_hash = snapshot_hash
    facts.dataset_format = dataset_format
    splits, facts.split_facts = assign_splits(
        ((r["article_id"], r["text"]) for r in read_jsonl(records_path)),
        project.split_proportions,
        frozen_test,
        salt=project.name,
    )
    facts.splits = splits
    encoder = Encoder(project, dataset_format)
    (folder / "data").mkdir(exist_ok=True)
    writers = {s: pq.ParquetWriter(folder / parquet_name(s), encoder.schema, compression="zstd") for s in SPLITS}
    batches = {s: encoder.new_columns() for s in SPLITS}

    def flush(split: str) -> None:
        columns = batches[split]
        count(facts.counts[split], columns)
        writers[split].write_table(encoder.table(columns))
        batches[split] = encoder.new_columns()

    def count(counts: dict, columns: dict[str, list]) -> None:
        counts["records"] += len(columns["id"])
        counts["articles"].update(columns["article_id"])
        counts["stance"].update("(unresolved)" if stance is None else stance for stance in columns["stance"])
        counts["entities"].update(entity["label"] for entities in columns["entities"] for entity in entities)
        facts.annotators.update(a["annotator"] for annotations in columns["annotations"] for a in annotations)

    total = 0
    for record in read_jsonl(records_path):
        total += 1
        split = splits[record["article_id"]]
        columns = batches[split]
        for span in encoder.add(record, columns):
            facts.overlaps.append({"id": record["id"], **span})
        if total <= AGREEMENT_IN_CARD_LIMIT:
            facts.records.append({"stance": record["stance"], "annotations": record["annotations"]})
        if len(columns["id"]) >= BATCH_ROWS:
            flush(split)
    for split, writer in writers.items():
        if batches[split]["id"]:
            flush(split)
        writer.close()
    if total > AGREEMENT_IN_CARD_LIMIT:
        facts.records = []
    for split in SPLITS:  # an empty split has no file: the card's configs list only present ones
        if facts.counts[split]["records"] == 0:
            (folder / parquet_name(split)).unlink()
    return facts
