"""write_dataset reads the records once, in chunks, in two worker processes for a large file: the same
files, facts and errors however the work is cut."""

from __future__ import annotations

import orjson
import pyarrow.parquet as pq
import pytest

from builder.dataset import build
from builder.dataset.build import write_dataset
from builder.dataset.splits import SPLITS, parquet_name
from builder.errors import BuilderError, InputError
from builder.jsonio import read_jsonl

STANCES = ["favor", "against", "neutral"]


def record(i: int) -> dict:
    text = f"Minister Ri Chang Dae met Sergei Shoigu in Moscow on day {i} to discuss cooperation."
    entities = [
        {"start": 9, "end": 21, "label": "PER", "text": "Ri Chang Dae"},
        {"start": 26, "end": 39, "label": "PER", "text": "Sergei Shoigu"},
        {"start": 43, "end": 49, "label": "LOC", "text": "Moscow"},
    ]
    if i % 11 == 0:  # nested in a longer span (two starred annotations): reported, kept in `entities`
        entities.insert(0, {"start": 9, "end": 11, "label": "ORG", "text": "Ri"})
    resolved = [{**span, "status": "ground_truth" if i % 11 == 0 else "majority"} for span in entities]
    annotations = [
        {
            "annotator": f"annotator-{a:012x}",
            "stance": STANCES[(i + a) % 3],
            "entities": entities[1:] if a else entities,
            "lead_time": 1.5 * a,
            "ground_truth": False,
        }
        for a in range(1 + i % 3)
    ]
    return {
        "id": f"s{i:06d}",
        "article_id": f"article-{i // 7:04d}",
        "sentence_index": i % 7,
        "text": text,
        "target": "t",
        "stance": STANCES[i % 3] if i % 5 else None,
        "stance_status": "majority" if i % 5 else "tie",
        "stance_distribution": [0.5, 0.5, 0.0],
        "entities": resolved,
        "unresolved_entities": [],
        "annotations": annotations,
        "num_annotators": len(annotations),
        "agreement": 0.5,
    }


@pytest.fixture
def records(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_bytes(b"".join(orjson.dumps(record(i), option=orjson.OPT_SORT_KEYS) + b"\n" for i in range(1500)))
    return path


def in_workers(monkeypatch, batch_rows=50):
    monkeypatch.setattr(build, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(build, "CHUNK_BYTES", 20_000)  # ~25 chunks: rows of one row group come from several
    monkeypatch.setattr(build, "BATCH_ROWS", batch_rows)


def test_workers_write_the_same_files_and_facts_as_one_process(project, records, tmp_path, monkeypatch):
    monkeypatch.setattr(build, "BATCH_ROWS", 50)
    (tmp_path / "one").mkdir()
    one = write_dataset(project, records, tmp_path / "one")
    in_workers(monkeypatch)
    (tmp_path / "two").mkdir()
    two = write_dataset(project, records, tmp_path / "two")
    for split in SPLITS:
        assert (tmp_path / "one" / parquet_name(split)).read_bytes() == (
            tmp_path / "two" / parquet_name(split)
        ).read_bytes()
    assert sorted(p.name for p in (tmp_path / "two").rglob("*")) == sorted(
        p.name for p in (tmp_path / "one").rglob("*")
    )
    assert (one.splits, one.split_facts, one.counts, one.overlaps) == (
        two.splits,
        two.split_facts,
        two.counts,
        two.overlaps,
    )
    assert one.records == two.records and len(one.records) == 1500
    assert len(one.overlaps) == 137 and one.annotators == two.annotators and len(two.annotators) == 3


def test_rows_keep_the_records_order_in_row_groups_of_batch_rows(project, records, tmp_path, monkeypatch):
    in_workers(monkeypatch, batch_rows=40)
    facts = write_dataset(project, records, tmp_path)
    order = [record(i)["id"] for i in range(1500)]
    for split in SPLITS:
        parquet = pq.ParquetFile(tmp_path / parquet_name(split))
        sizes = [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)]
        assert sizes[:-1] == [40] * (len(sizes) - 1) and 0 < sizes[-1] <= 40
        ids = parquet.read(columns=["id"]).column("id").to_pylist()
        assert ids == [i for i in order if facts.splits[f"article-{int(i[1:]) // 7:04d}"] == split]
        assert facts.counts[split]["records"] == len(ids)
    stances = sum(facts.counts[s]["stance"]["(unresolved)"] for s in SPLITS)
    assert stances == 300 and sum(facts.counts[s]["entities"]["LOC"] for s in SPLITS) == 1500


def test_a_broken_line_is_named_by_its_line_in_the_whole_file(project, records, tmp_path, monkeypatch):
    lines = records.read_bytes().split(b"\n")
    lines[1200] = lines[1200][:50]
    records.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError) as one:
        write_dataset(project, records, tmp_path)
    in_workers(monkeypatch)
    with pytest.raises(InputError) as two:
        write_dataset(project, records, tmp_path)
    with pytest.raises(InputError) as read:
        list(read_jsonl(records))
    assert str(one.value) == str(two.value) == str(read.value)
    assert f"{records}:1201: not valid JSON (" in str(two.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl"]  # no spool, no shard left


def test_a_worker_refusing_a_record_raises_as_one_process_would(project, records, tmp_path, monkeypatch):
    lines = records.read_bytes().split(b"\n")
    bad = orjson.loads(lines[900])
    bad["annotations"][0]["annotator"] = "kim.jong@example.com"
    lines[900] = orjson.dumps(bad)
    records.write_bytes(b"\n".join(lines))
    in_workers(monkeypatch)
    with pytest.raises(BuilderError, match="s000900: an annotator is not a pseudonym") as caught:
        write_dataset(project, records, tmp_path)
    assert "kim.jong" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl"]
