"""A corpus whose fields have other names: `split --id-field ...`, the `[input]` table, one line per unmapped file."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import run_cli

FIELDS = ["doc_id", "text", "source_url", "date_created"]
MAP_FLAGS = ["--id-field", "doc_id", "--url-field", "source_url", "--published-field", "date_created"]


def interview_corpus(folder, n: int = 19):
    """Lines as the interview corpus of issue 27 had them: doc_id, text, source_url, date_created."""
    path = folder / "articles.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            record = {
                "doc_id": f"interview-{i:02d}",
                "text": f"Interview {i}\nThe minister said the law works well. Critics in town {i} disagreed.",
                "source_url": f"https://example.org/interviews/{i}",
                "date_created": f"2024-03-{i + 1:02d}",
            }
            handle.write(json.dumps(record) + "\n")
    return path


def project_file(folder, input_table: str = "") -> object:
    """A project made by `builder init`, with `input_table` (TOML lines) added."""
    done = run_cli("init", folder / "project", "--yes")
    assert done.returncode == 0, done.stderr
    config = folder / "project" / "builder.toml"
    if input_table:
        config.write_text(config.read_text(encoding="utf-8") + "\n[input]\n" + input_table, encoding="utf-8")
    return config


def articles(path):
    return [json.loads(line) for line in path.with_name(path.stem + ".articles.jsonl").read_text().splitlines()]


def test_unmapped_corpus_is_one_line_naming_its_fields_and_writes_nothing(tmp_path):
    corpus = interview_corpus(tmp_path)
    out = tmp_path / "work" / "sentences.jsonl"
    done = run_cli("split", corpus, "-o", out)
    assert done.returncode == 1
    rejected = [line for line in done.stderr.splitlines() if line.startswith("rejected:")]
    assert rejected == [
        f"rejected: {corpus}: no field 'id' in any record; the records have doc_id, text, source_url, date_created; "
        "map it with --id-field or [input] id_field"
    ]
    assert "dropped 19 missing field" in done.stderr  # every record still counted
    assert "wrote nothing" in done.stderr
    assert not out.exists() and not out.with_name("sentences.articles.jsonl").exists()


def test_unmapped_file_writes_nothing_even_beside_a_good_one(tmp_path):
    corpus = interview_corpus(tmp_path)
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"id": "g", "text": "A good article has one sentence here."}) + "\n")
    out = tmp_path / "sentences.jsonl"
    done = run_cli("split", corpus, good, "-o", out)
    assert done.returncode == 1 and "lack a required field in every record" in done.stderr
    assert not out.exists()


def test_a_record_missing_a_field_others_have_is_still_its_own_line(tmp_path):
    corpus = tmp_path / "mixed.jsonl"
    corpus.write_text(
        json.dumps({"id": "a", "text": "One sentence that is fine."}) + "\n" + json.dumps({"text": "No id."}) + "\n"
    )
    done = run_cli("split", corpus, "-o", tmp_path / "s.jsonl")
    assert done.returncode == 1
    assert f"rejected: {corpus}:2: missing required field 'id'" in done.stderr
    assert (tmp_path / "s.jsonl").exists()  # the valid article is written, as before


def test_flags_map_the_interview_corpus_and_the_map_is_recorded(tmp_path):
    corpus = interview_corpus(tmp_path)
    out = tmp_path / "work" / "sentences.jsonl"
    done = run_cli("split", corpus, "-o", out, *MAP_FLAGS)
    assert done.returncode == 0, done.stderr
    read = articles(out)
    assert len(read) == 19
    first = read[0]
    assert first["id"] == "interview-00"
    assert first["url"] == "https://example.org/interviews/0" and first["published"] == "2024-03-01"
    assert first["metadata"] == {}  # the mapped keys are fields now, not metadata
    assert first["source"]["fields"] == {"id": "doc_id", "published": "date_created", "url": "source_url"}
    sentences = [json.loads(line) for line in out.read_text().splitlines()]
    assert {s["article_id"] for s in sentences} == {f"interview-{i:02d}" for i in range(19)}


def test_input_table_maps_fields(tmp_path):
    corpus = interview_corpus(tmp_path)
    config = project_file(tmp_path, 'id_field = "doc_id"\nurl_field = "source_url"\npublished_field = "date_created"\n')
    out = tmp_path / "s.jsonl"
    done = run_cli("--config", config, "split", corpus, "-o", out)
    assert done.returncode == 0, done.stderr
    first = articles(out)[0]
    assert first["id"] == "interview-00" and first["url"] == "https://example.org/interviews/0"
    assert first["source"]["fields"] == {"id": "doc_id", "published": "date_created", "url": "source_url"}


def test_flag_overrides_the_input_table(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"doc_id": "a", "key": "b", "text": "The one sentence of this article."}) + "\n")
    config = project_file(tmp_path, 'id_field = "doc_id"\n')
    out = tmp_path / "s.jsonl"
    assert run_cli("--config", config, "split", corpus, "-o", out).returncode == 0
    assert articles(out)[0]["id"] == "a"
    done = run_cli("--config", config, "split", corpus, "-o", out, "--id-field", "key")
    assert done.returncode == 0, done.stderr
    first = articles(out)[0]
    assert first["id"] == "b" and first["metadata"] == {"doc_id": "a"}
    assert first["source"]["fields"] == {"id": "key"}


def test_init_writes_the_input_table_commented(tmp_path):
    config = project_file(tmp_path)
    text = config.read_text(encoding="utf-8")
    assert "# [input]" in text and '# id_field = "doc_id"' in text
    # uncommented, the example table is a valid project file
    uncommented = text.replace("# [input]", "[input]")
    for key in ("id", "text", "title", "url", "published", "target"):
        uncommented = uncommented.replace(f"# {key}_field =", f"{key}_field =")
    import tomllib

    from builder.project import project_from_dict

    assert project_from_dict(tomllib.loads(uncommented), config).input_fields["id"] == "doc_id"


def test_one_key_for_two_fields_is_refused(tmp_path):
    corpus = interview_corpus(tmp_path, 2)
    done = run_cli("split", corpus, "-o", tmp_path / "s.jsonl", "--url-field", "text")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: input field 'text' is mapped to both url and text: map each to its own field"
    ]
    config = project_file(tmp_path, 'id_field = "doc_id"\nurl_field = "doc_id"\n')
    done = run_cli("--config", config, "split", corpus, "-o", tmp_path / "s.jsonl")
    assert done.returncode == 1 and "input: 'doc_id' is given as both" in done.stderr


@pytest.mark.parametrize("mapped", [False, True])
def test_parquet_columns_map_too(tmp_path, mapped):
    path = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"doc_id": ["a", "b"], "body": ["First sentence here.", "Second one here."]}), path)
    flags = ["--id-field", "doc_id", "--text-field", "body"] if mapped else []
    out = tmp_path / "s.jsonl"
    done = run_cli("split", path, "-o", out, *flags)
    if mapped:
        assert done.returncode == 0, done.stderr
        assert [a["id"] for a in articles(out)] == ["a", "b"]
    else:
        assert done.returncode == 1 and not out.exists()
        assert f"rejected: {path}: no column 'id' or 'text'; the columns are doc_id, body; map them with " in (
            done.stderr
        )


def test_a_file_cut_into_shards_is_still_one_line(tmp_path, monkeypatch, project):
    import builder.sentences.articles as articles_module
    from builder.sentences.splitting import split_files

    monkeypatch.setattr(articles_module, "JSONL_SHARD_BYTES", 300)  # 19 lines of ~200 bytes: many shards
    corpus = interview_corpus(tmp_path)
    assert len(articles_module.jsonl_shards(articles_module.InputFile(corpus, True))) > 3
    result = split_files([corpus], tmp_path / "s.jsonl", project)
    assert not result.written and result.refused
    [problem] = result.report.errors()
    assert problem.where == str(corpus) and problem.detail.startswith("no field 'id' in any record")
    assert result.report.dropped() == {"missing field": 19}
