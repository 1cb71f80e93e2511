"""Corpus scale: many input shards, Parquet input, --workers N and --engine ray give the single process's bytes."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builder.errors import BuilderError
from builder.sentences import articles as articles_module
from builder.sentences.articles import InputFile, jsonl_shards
from builder.sentences.splitting import split_files

from .conftest import ROOT, SAMPLE, require_ray, run_cli
from .test_jsonl_shards import _messy_jsonl

WORDS = "the council said on Monday that talks with Seoul and Moscow would resume after a long pause in trade".split()


def _article(rng: random.Random, number: int) -> dict:
    sentences = []
    for _ in range(rng.randint(2, 9)):
        words = rng.choices(WORDS, k=rng.randint(5, 14))
        sentences.append(" ".join(words).capitalize() + rng.choice([".", ".", "?", '," Mr. Kim said.']))
    paragraphs = [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]
    if number % 7 == 0:
        paragraphs.insert(1, "Support independent journalism: please consider making a donation.")
    return {
        "id": f"a{rng.randrange(10**6):06d}-{number}",
        "title": f"Talks resume, day {number}",
        "text": "\n\n".join(paragraphs),
    }


def _corpus(folder, shards: int = 5, per_shard: int = 12):
    """JSONL shards, .txt files and a Parquet file of several row groups, with bad lines and rows among them."""
    rng = random.Random(16)
    folder.mkdir()
    number = 0
    for shard in range(shards):
        lines = []
        for _ in range(per_shard):
            number += 1
            lines.append(json.dumps(_article(rng, number)))
        if shard == 1:
            lines.insert(3, "{not json")
            lines.insert(5, json.dumps({"id": "no-text"}))
            lines.append(json.dumps({"id": "long", "text": "A body. Another one.", "title": "T" * 300}))
        if shard == 3:
            lines.append(lines[0])  # a duplicate id, in a later shard than its first
        (folder / f"part-{shard:05d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for n in range(3):
        (folder / f"story-{n}.txt").write_text(
            f"Headline {n}\n\nFirst sentence here. And a second.\n", encoding="utf-8"
        )
    rows = [_article(rng, 1000 + n) for n in range(40)]
    rows[9]["text"] = None  # a null text: one row rejected, named by its row number
    rows[22]["id"] = rows[2]["id"]  # a duplicate id inside the Parquet file, across row groups
    table = pa.table(
        {
            "id": [row["id"] for row in rows],
            "text": [row["text"] for row in rows],
            "title": [row["title"] for row in rows],
            "section": ["world"] * len(rows),
        }
    )
    pq.write_table(table, folder / "crawl.parquet", row_group_size=8)
    return folder


def _outputs(out):
    report = json.loads(out.with_suffix(".report.json").read_text(encoding="utf-8"))
    return out.read_bytes(), out.with_name(out.stem + ".articles.jsonl").read_bytes(), report


def _split(corpus, out, project, **options):
    return split_files([corpus], out, project, report_path=out.with_suffix(".report.json"), **options)


def test_workers_give_the_single_process_bytes_and_report(tmp_path, project):
    corpus = _corpus(tmp_path / "corpus")
    one = _split(corpus, tmp_path / "one" / "s.jsonl", project)
    two = _split(corpus, tmp_path / "two" / "s.jsonl", project, workers=2)
    assert _outputs(tmp_path / "one" / "s.jsonl") == _outputs(tmp_path / "two" / "s.jsonl")
    assert (one.articles, one.sentences) == (two.articles, two.sentences)
    report = one.report.as_dict()
    # everything reported, in reading order: files in order, each file's problems in its own order
    wheres = [(p["reason"], p["where"]) for p in report["problems"] if p["reason"] != "boilerplate"]
    assert wheres == [
        ("bad field", f"{corpus}/crawl.parquet:row 10"),
        ("duplicate article id", f"{corpus}/crawl.parquet:row 23"),
        ("invalid json", f"{corpus}/part-00001.jsonl:4"),
        ("missing field", f"{corpus}/part-00001.jsonl:6"),
        ("long title", f"{corpus}/part-00001.jsonl:15"),
        ("duplicate article id", f"{corpus}/part-00003.jsonl:13"),
    ]
    boilerplate = [p for p in report["problems"] if p["reason"] == "boilerplate"]
    assert boilerplate and all(p["rule"] == "appeal-heading" for p in boilerplate)
    assert f"{corpus}/crawl.parquet:row 30, line 3" in [p["where"] for p in boilerplate]
    articles = [json.loads(line) for line in (tmp_path / "one" / "s.articles.jsonl").read_text().splitlines()]
    parquet = [a for a in articles if a["source"]["file"].endswith(".parquet")]
    assert len(parquet) == 38 and parquet[0]["metadata"] == {"section": "world"}
    assert len(articles) == one.articles == 5 * 12 + 1 + 3 + 38  # the duplicate and the bad ones left out


def test_cli_workers_same_stderr_and_files(tmp_path):
    corpus = _corpus(tmp_path / "corpus", shards=3, per_shard=6)
    runs = {}
    for name, extra in (("one", []), ("two", ["--workers", "2"])):
        out = tmp_path / name / "s.jsonl"
        result = run_cli("split", corpus, "-o", out, *extra, cwd=ROOT)
        assert result.returncode == 1  # inputs were rejected; the valid articles are written
        runs[name] = (result.stderr.replace(str(out), "OUT"), out.read_bytes())
    assert runs["one"] == runs["two"]
    assert f"rejected: {corpus}/part-00001.jsonl:4: not valid JSON" in runs["one"][0]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Data's own settings, not builder's
def test_ray_gives_the_single_process_bytes_and_report(tmp_path, project, monkeypatch):
    ray = require_ray()
    corpus = _corpus(tmp_path / "corpus", shards=3, per_shard=8)
    _messy_jsonl(corpus / "whole-crawl.jsonl")  # cut into line shards on Ray, read whole by the single process
    _split(corpus, tmp_path / "one" / "s.jsonl", project)
    monkeypatch.setattr(articles_module, "JSONL_SHARD_BYTES", 1500)
    assert len(jsonl_shards(InputFile(corpus / "whole-crawl.jsonl", False))) >= 8
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        _split(corpus, tmp_path / "ray" / "s.jsonl", project, executor="ray", workers=2)
        _split(SAMPLE, tmp_path / "sample-ray" / "s.jsonl", project, executor="ray")
    finally:
        ray.shutdown()
    assert _outputs(tmp_path / "one" / "s.jsonl") == _outputs(tmp_path / "ray" / "s.jsonl")
    _split(SAMPLE, tmp_path / "sample" / "s.jsonl", project)
    assert _outputs(tmp_path / "sample" / "s.jsonl") == _outputs(tmp_path / "sample-ray" / "s.jsonl")


def test_ray_missing_is_one_line_naming_the_extra(monkeypatch, tmp_path, project):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as without the extra
    with pytest.raises(BuilderError, match=r"^--engine ray needs Ray Data: pip install 'builder\[ray\]'$"):
        split_files([SAMPLE], tmp_path / "s.jsonl", project, executor="ray")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"id": ["a", "b"], "text": [1, 2]}, "column 'text' must hold strings, not int64"),
        ({"id": [1.5, 2.5], "text": ["x.", "y."]}, "column 'id' must hold strings or integers, not double"),
        ({"id": ["a", "b"], "text": ["x.", "y."], "url": [1, 2]}, "column 'url' must hold strings, not int64"),
        (
            {"id": ["a", "b"], "text": ["x.", "y."], "raw": [b"\x00", b"\x01"]},
            "column 'raw' of type binary cannot be kept as article metadata (JSON)",
        ),
    ],
)
def test_bad_parquet_is_one_line_naming_file_and_column(tmp_path, columns, message):
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table(columns), bad, row_group_size=1)  # two row groups: two shards, one line all the same
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"id": "g", "text": "A good article. It is kept."}) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "s.jsonl"
    for extra in ([], ["--workers", "2"]) if "'text'" in message else ([],):
        result = run_cli("split", bad, good, "-o", out, *extra, cwd=ROOT)
        assert result.returncode == 1
        rejected = [line for line in result.stderr.splitlines() if line.startswith("rejected:")]
        assert rejected == [f"rejected: {bad}: {message}"]
        assert "Traceback" not in result.stderr
        assert [json.loads(line)["article_id"] for line in out.read_text().splitlines()] == ["g", "g"]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"id": ["a", "b"], "body": ["x.", "y."]},
            "no column 'text'; the columns are id, body; map it with --text-field or [input] text_field",
        ),
        ({"text": ["x.", "y."]}, "no column 'id'; the columns are text; map it with --id-field or [input] id_field"),
    ],
)
def test_parquet_without_id_or_text_column_is_one_line_and_nothing_is_written(tmp_path, columns, message):
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table(columns), bad, row_group_size=1)  # two row groups: two shards, one line all the same
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"id": "g", "text": "A good article. It is kept."}) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "s.jsonl"
    for extra in ([], ["--workers", "2"]):
        result = run_cli("split", bad, good, "-o", out, *extra, cwd=ROOT)
        assert result.returncode == 1
        rejected = [line for line in result.stderr.splitlines() if line.startswith("rejected:")]
        assert rejected == [f"rejected: {bad}: {message}"]
        assert "dropped 2 missing field" in result.stderr and not out.exists()


def test_not_parquet_and_builder_datasets(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.parquet").write_bytes(b"PAR1 not really")
    dataset = folder / "train-00000-of-00001.parquet"
    pq.write_table(pa.table({"id": ["s"], "article_id": ["a"], "sentence_index": [0], "text": ["x."]}), dataset)
    pq.write_table(pa.table({"id": [7], "text": ["Seven is an integer id. Kept as a string."]}), folder / "ok.parquet")
    out = tmp_path / "out" / "s.jsonl"
    result = run_cli("split", folder, "-o", out, cwd=ROOT)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(
        line.startswith(f"rejected: {folder / 'broken.parquet'}: not a readable Parquet file (") for line in lines
    )
    assert f"skipped: {dataset}: builder output (dataset records), not articles" in lines
    assert {json.loads(line)["article_id"] for line in out.read_text().splitlines()} == {"7"}
    named = run_cli("split", dataset, "-o", out, cwd=ROOT)
    assert f"rejected: {dataset}: builder output (dataset records), not articles: not read" in named.stderr


def test_workers_from_a_script_without_a_main_guard(tmp_path):
    """A plain script calling split_files(workers=2) works: workers are not started by re-importing it."""
    script = tmp_path / "split_corpus.py"
    out = tmp_path / "out" / "s.jsonl"
    script.write_text(
        "from builder.project import load_project\n"
        "from builder.sentences.splitting import split_files\n"
        f"project = load_project({str(ROOT / 'builder.toml')!r})\n"
        f"result = split_files([{str(SAMPLE)!r}], {str(out)!r}, project, workers=2)\n"
        "print(result.sentences)\n",
        encoding="utf-8",
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0 and out.exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_cli_engine_ray_starts_and_stops_a_local_ray_and_says_the_same(tmp_path):
    require_ray()
    corpus = _corpus(tmp_path / "corpus", shards=2, per_shard=4)
    runs = {}
    for name, extra in (("one", []), ("ray", ["--engine", "ray", "--workers", "2"])):
        out = tmp_path / name / "s.jsonl"
        env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
        result = run_cli("split", corpus, "-o", out, *extra, cwd=ROOT, env=env)
        runs[name] = (result.returncode, result.stderr.replace(str(out), "OUT"), out.read_bytes())
    assert runs["one"] == runs["ray"]  # nothing of Ray's on stderr: the report's lines only
