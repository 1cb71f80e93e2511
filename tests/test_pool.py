"""`builder predict SENTENCES -o OUT`: the trained model over a pool of sentences, offline, in any executor."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from builder.cli import cli
from builder.errors import BuilderError
from builder.learn.pool import predict_pool
from builder.learn.train import train_model
from builder.learn.trained import load_model
from builder.model import prediction_for
from builder.sentences.splitting import read_sentences, split_files

from .conftest import ROOT, SAMPLE, make_project, require_ray


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """A project trained on the bundled snapshot, and the sample's sentences as the pool."""
    root = tmp_path_factory.mktemp("pool") / "project"
    project = make_project(root, "pool", snapshot=ROOT / "annotations" / "snapshot.jsonl")
    result = train_model(project)
    sentences = root / "work" / "sentences.jsonl"
    split_files([SAMPLE], sentences, project)
    return project, result.folder, sentences


def test_each_sentence_gets_the_prediction_push_would_attach_read_with_its_article(pool, tmp_path):
    project, folder, sentences = pool
    result = predict_pool(folder, sentences, tmp_path / "p.jsonl", project)
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    pushed = read_sentences(sentences)
    assert [r["id"] for r in lines] == [s["id"] for s in pushed] and result.sentences == len(pushed) == 65
    model = load_model(folder, project)
    contexts = model.article_contexts([s["text"] for s in pushed], [s["article_id"] for s in pushed])
    for record, sentence in zip(lines, pushed):
        context = contexts[sentence["article_id"]]
        expected = prediction_for(model, sentence["text"], context)
        assert record["predictions"] == ([expected] if expected else [])
        assert record["uncertainty"] == model.uncertainty(sentence["text"], context=context)
        assert record["model_version"] == model.model_version == result.model_version
    assert result.with_proposals == sum(1 for r in lines if r["predictions"])


def test_workers_write_the_same_bytes_as_one_process(pool, tmp_path, monkeypatch):
    project, folder, sentences = pool
    monkeypatch.setattr("builder.learn.pool.CHUNK_SENTENCES", 5)  # many chunks of whole articles
    predict_pool(folder, sentences, tmp_path / "one.jsonl", project)
    predict_pool(folder, sentences, tmp_path / "two.jsonl", project, workers=2)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Data's own settings, not builder's
def test_engine_ray_writes_the_same_bytes_as_one_process(pool, tmp_path, monkeypatch):
    """`builder predict --engine ray` as typed: the command starts a local Ray (2 CPUs), maps the chunks
    there, stops it, and writes what one process writes, and says the same."""
    require_ray()
    project, folder, sentences = pool
    monkeypatch.chdir(project.root)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr("builder.learn.pool.CHUNK_SENTENCES", 5)  # many chunks: many Ray tasks, in order
    runs = {}
    for name, extra in (("one", []), ("ray", ["--engine", "ray", "--workers", "2"])):
        out = tmp_path / name / "p.jsonl"
        out.parent.mkdir()
        done = CliRunner().invoke(cli, ["predict", str(sentences), "-o", str(out), *extra])
        assert done.exit_code == 0, done.output
        runs[name] = (done.output.replace(str(out), "OUT"), out.read_bytes())
    assert runs["ray"] == runs["one"] and runs["one"][1].count(b"\n") == 65
    import ray

    assert not ray.is_initialized()  # the Ray it started is stopped


def test_the_output_never_replaces_an_input_and_is_never_read_as_articles(pool, tmp_path):
    project, folder, sentences = pool
    before = sentences.read_bytes()
    with pytest.raises(BuilderError, match="refusing to overwrite"):
        predict_pool(folder, sentences, sentences, project)
    assert sentences.read_bytes() == before
    out = tmp_path / "p.jsonl"
    predict_pool(folder, sentences, out, project)
    predict_pool(folder, sentences, out, project)  # its own output is replaced
    split = split_files([out], tmp_path / "s.jsonl", project)  # named: a builder output is refused as articles
    assert not split.written and "prediction records" in split.report.errors()[0].detail


def test_the_cli_predicts_a_pool_and_refuses_half_a_request(pool, tmp_path, monkeypatch):
    project, folder, sentences = pool
    monkeypatch.chdir(project.root)
    runner = CliRunner()
    out = tmp_path / "p.jsonl"
    done = runner.invoke(cli, ["predict", str(sentences), "-o", str(out), "--workers", "2"])
    assert done.exit_code == 0, done.output
    assert "predict: 65 sentences" in done.output and out.is_file()
    alone = runner.invoke(cli, ["predict", str(sentences)])
    assert alone.exit_code == 2 and "give both SENTENCES and -o OUT" in alone.output
    other = runner.invoke(cli, ["predict", str(sentences), "-o", str(out), "--predictor", "gazetteer"])
    assert other.exit_code == 2 and "model or model:FOLDER" in other.output
    missing = runner.invoke(cli, ["predict", str(sentences), "-o", str(out), "--predictor", f"model:{tmp_path}/none"])
    assert missing.exit_code == 1 and "Traceback" not in missing.output
