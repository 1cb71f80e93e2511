"""The build bench's one-pass snapshot generator writes what the old two passes wrote (bench_validate.generate,
then the suggestions and the gold file added by re-reading it), and its cache is keyed by size."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_build_snapshot

    yield bench_build_snapshot
    sys.modules.pop("bench_build_snapshot", None)


def _two_passes(folder: Path, tasks: int) -> None:
    from bench_validate import generate

    snapshot = folder / "first.jsonl"
    generate(snapshot, tasks, annotators=3)
    with (
        open(snapshot, "rb") as lines,
        open(folder / "snapshot.jsonl", "wb") as out,
        open(folder / "gold.jsonl", "wb") as gold,
    ):
        for n, line in enumerate(lines):
            task = orjson.loads(line)
            data = task["data"]
            if n % 50 == 0:
                answer = {"stance": "neutral", "entities": [], "id": data["sentence_id"]}
                keep = ("article_id", "sentence_index", "text", "start", "end")
                gold.write(orjson.dumps({**{k: data[k] for k in keep}, **answer}) + b"\n")
            else:
                task["predictions"] = [{"model_version": "builder-crf/2+x", "score": 0.9, "result": []}]
            out.write(orjson.dumps(task, option=orjson.OPT_SORT_KEYS) + b"\n")


def test_one_pass_generator_equals_two_passes(bench, tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    _two_passes(tmp_path / "old", 230)
    bench.generate_snapshot(tmp_path / "new", 230)
    for name in ("snapshot.jsonl", "gold.jsonl"):
        assert (tmp_path / "new" / name).read_bytes() == (tmp_path / "old" / name).read_bytes()


def test_snapshot_cache_is_keyed_and_reused(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "CACHE", tmp_path / "cache")
    project = bench.make_project(tmp_path / "p", 120)
    cached = bench.cached_snapshot(120)
    assert cached.name == f"snapshot-120x3-g{bench.GENERATOR}"
    assert (tmp_path / "p" / "annotations" / "snapshot.jsonl").resolve() == cached / "snapshot.jsonl"
    stamp = (cached / "snapshot.jsonl").stat().st_mtime_ns
    bench.make_project(tmp_path / "q", 120)  # not generated again
    assert (cached / "snapshot.jsonl").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [cached.name]  # no half-written folder
    assert 'gold = "gold.jsonl"' in project.read_text(encoding="utf-8")
