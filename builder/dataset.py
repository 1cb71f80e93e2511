"""Building the Hugging Face dataset folder: typed features, Parquet shards per split, a card.

Parquet is written with pyarrow directly, using the schema of the `datasets` features, so the
files carry the features in their metadata and `load_dataset` restores the ClassLabels.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from builder.bio import spans_to_bio
from builder.errors import BuilderError
from builder.jsonio import paused_gc, read_jsonl
from builder.pipeline import validate_snapshot
from builder.scheme import Project
from builder.splits import SPLITS, assign_splits

BATCH_ROWS = 10_000
AGREEMENT_IN_CARD_LIMIT = 100_000


def features(project: Project):
    """The dataset's `datasets.Features`, generated from the label scheme."""
    from datasets import ClassLabel, Features, List, Value

    stance = ClassLabel(names=project.stance_values)
    span = {"start": Value("int32"), "end": Value("int32"), "label": ClassLabel(names=project.entity_values), "text": Value("string")}
    return Features(
        {
            "id": Value("string"),
            "article_id": Value("string"),
            "sentence_index": Value("int32"),
            "text": Value("string"),
            "target": Value("string"),
            "stance": stance,
            "stance_status": Value("string"),
            "entities": List(span),
            "tokens": List(Value("string")),
            "ner_tags": List(ClassLabel(names=project.bio_tags)),
            "annotations": List(
                {"annotator": Value("string"), "stance": stance, "entities": List(span), "lead_time": Value("float32"), "ground_truth": Value("bool")}
            ),
            "num_annotators": Value("int32"),
            "agreement": Value("float32"),
        }
    )


@dataclass
class BuildFacts:
    """What the card reports; also returned to callers."""

    splits: dict = field(default_factory=dict)
    counts: dict = field(default_factory=lambda: defaultdict(lambda: {"stance": Counter(), "entities": Counter(), "records": 0, "articles": set()}))
    overlaps: list = field(default_factory=list)
    stance_units: list = field(default_factory=list)
    records: list = field(default_factory=list)  # kept only for small datasets (agreement examples)
    split_facts: dict = field(default_factory=dict)
    annotators: set = field(default_factory=set)
    validation: object = None
    snapshot_hash: str = ""


class Encoder:
    """Record (with string labels) -> row (with ClassLabel ids, tokens and BIO tags)."""

    def __init__(self, project: Project) -> None:
        self.stance = {v: i for i, v in enumerate(project.stance_values)}
        self.entity = {v: i for i, v in enumerate(project.entity_values)}
        self.tag = {v: i for i, v in enumerate(project.bio_tags)}

    def spans(self, spans: list[dict]) -> list[dict]:
        entity = self.entity
        return [{**s, "label": entity[s["label"]]} for s in spans]

    def row(self, record: dict) -> tuple[dict, list[dict]]:
        tokens, tags, dropped = spans_to_bio(record["text"], record["entities"])
        row = {
            "id": record["id"],
            "article_id": record["article_id"],
            "sentence_index": record["sentence_index"],
            "text": record["text"],
            "target": record["target"],
            "stance": self.stance[record["stance"]] if record["stance"] is not None else -1,
            "stance_status": record["stance_status"],
            "entities": self.spans(record["entities"]),
            "tokens": tokens,
            "ner_tags": [self.tag[t] for t in tags],
            "annotations": [
                {"annotator": a["annotator"], "stance": self.stance[a["stance"]] if a["stance"] is not None else -1,
                 "entities": self.spans(a["entities"]), "lead_time": a["lead_time"], "ground_truth": a["ground_truth"]}
                for a in record["annotations"]
            ],
            "num_annotators": record["num_annotators"],
            "agreement": record["agreement"],
        }
        return row, dropped


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_dataset(
    project: Project,
    snapshot: Path,
    output: Path,
    frozen_test: set[str] | frozenset = frozenset(),
    version: str | None = None,
    strict: bool = False,
) -> BuildFacts:
    """Validate `snapshot`, then write `output` (Parquet per split + README card) atomically."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    os.chmod(staging, 0o755)
    try:
        records_path = staging / "records.jsonl"
        result = validate_snapshot(project, snapshot, records_path)
        if strict and result.report.errors():
            raise BuilderError(f"{snapshot}: validation found {len(result.report.errors())} problems; run `builder validate` and fix them first")
        with paused_gc():
            facts = write_dataset(project, records_path, staging, frozen_test, version, sha256_file(snapshot))
        facts.validation = result
        records_path.unlink()
        from builder.card import write_card

        write_card(project, staging, facts, version)
        if output.exists():
            old = output.with_name(f".{output.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(output, old)
            os.replace(staging, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, output)
        return facts
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_dataset(
    project: Project, records_path: Path, folder: Path, frozen_test=frozenset(), version: str | None = None, snapshot_hash: str = ""
) -> BuildFacts:
    """Parquet shards per split under `folder/data` from validated records (streamed twice)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    facts = BuildFacts()
    facts.snapshot_hash = snapshot_hash
    splits, facts.split_facts = assign_splits(((r["article_id"], r["text"]) for r in read_jsonl(records_path)), project.split_proportions, frozen_test, salt=project.name)
    facts.splits = splits
    schema = features(project).arrow_schema
    encoder = Encoder(project)
    (folder / "data").mkdir(exist_ok=True)
    writers = {s: pq.ParquetWriter(folder / "data" / f"{s}-00000-of-00001.parquet", schema, compression="zstd") for s in SPLITS}
    names = schema.names
    # columns, not rows: pa.array per column skips from_pylist's per-row dict walk
    batches: dict[str, dict[str, list]] = {s: {name: [] for name in names} for s in SPLITS}
    sizes = dict.fromkeys(SPLITS, 0)

    def flush(split: str) -> None:
        columns = batches[split]
        arrays = [pa.array(columns[name], type=schema.field(name).type) for name in names]
        writers[split].write_table(pa.Table.from_arrays(arrays, schema=schema))
        batches[split] = {name: [] for name in names}
        sizes[split] = 0

    total = 0
    for record in read_jsonl(records_path):
        total += 1
        split = splits[record["article_id"]]
        row, dropped = encoder.row(record)
        for span in dropped:
            facts.overlaps.append({"id": record["id"], **span})
        columns = batches[split]
        for name in names:
            columns[name].append(row[name])
        sizes[split] += 1
        counts = facts.counts[split]
        counts["records"] += 1
        counts["articles"].add(record["article_id"])
        counts["stance"][record["stance"] if record["stance"] is not None else "(unresolved)"] += 1
        for entity in record["entities"]:
            counts["entities"][entity["label"]] += 1
        for annotation in record["annotations"]:
            facts.annotators.add(annotation["annotator"])
        if total <= AGREEMENT_IN_CARD_LIMIT:
            facts.records.append({"stance": record["stance"], "annotations": [{"stance": a["stance"], "entities": a["entities"]} for a in record["annotations"]]})
        if sizes[split] >= BATCH_ROWS:
            flush(split)
    for split, writer in writers.items():
        if sizes[split]:
            flush(split)
        writer.close()
    if total > AGREEMENT_IN_CARD_LIMIT:
        facts.records = []
    for split in SPLITS:  # an empty split has no file: the card's configs list only present ones
        if facts.counts[split]["records"] == 0:
            (folder / "data" / f"{split}-00000-of-00001.parquet").unlink()
    return facts
