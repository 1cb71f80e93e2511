"""Inputs a careful user could give that broke what was added in the issue 15 session (found by trying)."""

from __future__ import annotations

import re
import tomllib

import pytest

from builder.dataset.export import export_dataset
from builder.dataset.release import load_manifest, read_manifest
from builder.errors import BuilderError, ConfigError
from builder.project import project_from_dict

from .conftest import ROOT, make_project


def raw_default() -> dict:
    return tomllib.loads((ROOT / "builder.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda raw: raw["stance"]["labels"][0].update(value="favor\n"), "stance.labels[0].value"),
        (lambda raw: raw["entities"]["labels"][0].update(value="PER\n"), "entities.labels[0].value"),
        (lambda raw: raw["entities"]["labels"][0].update(hotkey="p\n"), "entities.labels[0].hotkey"),
        (lambda raw: raw["entities"]["labels"][0].update(color="#e4572e\n"), "entities.labels[0].color"),
        (lambda raw: raw["dataset"].update(name="my-dataset\n"), "dataset.name"),
        (lambda raw: raw["dataset"].update(language="en\n"), "dataset.language"),
    ],
)
def test_a_final_newline_does_not_pass_a_pattern(mutate, where, tmp_path):
    """JSON Schema's `$` is the end of the string; Python's `re` also matches it before a final newline, so
    a label 'PER\\n' passed `^[A-Z][A-Z_]*$` and broke the CoNLL export (a tag line 'B-PER' then a blank line
    inside a sentence), Label Studio's config and the dataset folder's name."""
    raw = raw_default()
    mutate(raw)
    with pytest.raises(ConfigError, match=re.escape(where) + ": .* does not match"):
        project_from_dict(raw, tmp_path / "builder.toml")


def test_a_manifest_field_with_a_final_newline_is_refused(tmp_path):
    manifest = (ROOT / "releases" / "1.0.0" / "manifest.json").read_text(encoding="utf-8")
    digest = next(line for line in manifest.splitlines() if '"sha256"' in line or ".parquet" in line)
    value = digest.rsplit('"', 2)[1]
    path = tmp_path / "manifest.json"
    path.write_text(manifest.replace(f'"{value}"', f'"{value}\\n"', 1), encoding="utf-8")
    with pytest.raises(BuilderError, match="not a release manifest"):
        load_manifest(path)


@pytest.mark.parametrize("version", ["../releases/1.0.0", "1.0.0/../1.0.0", "./1.0.0", str(ROOT / "releases/1.0.0")])
def test_a_release_is_named_by_its_version_never_a_path(version, tmp_path):
    """`builder export --version ../releases/1.0.0` exported, into dist/<name>-../releases/1.0.0-jsonl."""
    project = make_project(tmp_path / "project", "paths")
    (tmp_path / "project" / "releases").symlink_to(ROOT / "releases")
    with pytest.raises(BuilderError, match=r"no release .*\(releases: 1\.0\.0\)"):
        read_manifest(project, version)
    with pytest.raises(BuilderError, match="no release"):
        export_dataset(project, "jsonl", version=version)
    assert not (tmp_path / "project" / "dist").exists()


def test_a_release_exports_with_its_own_stance_labels(tmp_path):
    """A release keeps the stance labels it was built with; exporting it after builder.toml renamed one
    ('favor' -> 'support') was a KeyError traceback in semeval and, in spacy, doc.cats keyed by the new names
    (every 'favor' sentence all 0.0, unreported)."""
    import csv

    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    project = make_project(tmp_path / "project", "renamed")
    toml = project.source.read_text(encoding="utf-8").replace('value = "favor"', 'value = "support"')
    project.source.write_text(toml, encoding="utf-8")
    (tmp_path / "project" / "releases").symlink_to(ROOT / "releases")
    from builder.project import load_project

    project = load_project(project.source)
    assert project.stance_values[0] == "support"

    semeval = export_dataset(project, "semeval", tmp_path / "tsv", version="1.0.0")
    assert semeval.stance_map == {"favor": "FAVOR", "against": "AGAINST", "neutral": "NONE"}
    stances = []
    for path in semeval.files:
        with open(path, encoding="utf-8", newline="") as handle:
            stances += [row["Stance"] for row in csv.DictReader(handle, delimiter="\t")]
    assert {"FAVOR", "AGAINST", "NONE"} <= set(stances)

    export_dataset(project, "spacy", tmp_path / "docs", version="1.0.0")
    docs = [
        doc
        for path in sorted((tmp_path / "docs").glob("*.spacy"))
        for doc in DocBin().from_bytes(path.read_bytes()).get_docs(Vocab())
    ]
    assert all(set(doc.cats) == {"favor", "against", "neutral"} for doc in docs)
    assert any(doc.cats["favor"] == 1.0 for doc in docs)


PATHOLOGICAL_LINES = {
    "bangs": "Stop" + "!" * 50_000 + " now.",
    "dots": "." * 50_000,
    "dots then quotes": "." * 25_000 + "'" * 25_000 + " a",
    "question marks": "?" * 50_000 + "The end.",
    "ellipses": "\u2026" * 50_000,
}


@pytest.mark.parametrize("name", PATHOLOGICAL_LINES)
def test_rules_splitter_is_linear_in_a_run_of_end_punctuation(name):
    """`_END` was tried again from every character of a run of end punctuation with no space after it, each
    try scanning the rest of the run: 20,000 '!' took 4 s, 50,000 about 25 s (now milliseconds)."""
    import time

    from builder.sentences.segmenter import split_article

    text = PATHOLOGICAL_LINES[name]
    started = time.process_time()
    sentences = split_article({"id": "a", "text": text})
    assert time.process_time() - started < 2.0
    assert sentences and all(text[s["start"] : s["end"]] == s["text"] for s in sentences)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from builder.learn.train import train_model
    from builder.learn.trained import load_model

    root = tmp_path_factory.mktemp("hostile-model") / "project"
    project = make_project(root, "hostile-model", snapshot=ROOT / "annotations" / "snapshot.jsonl")
    return load_model(train_model(project).folder, project)


ODD_TEXTS = ["...", "!!! ???", "\u200b", "-", "O'Neil-Smith-Jones", "\u6211\u7231\u4f60\u3002", "Kim " * 300, "A-"]


def test_model_reads_odd_sentences_and_article_ids(trained):
    """Empty article ids, texts of punctuation only, and sentences without an article id give a score, not
    an exception; `choose_uncertain` read `article_id` with .get to score and with [] to rank (a KeyError)."""
    from builder.labelstudio.push import choose_uncertain
    from builder.model import prediction_for
    from builder.preannotate import article_contexts

    contexts = article_contexts(trained, [("", t) for t in ODD_TEXTS] + [("a", t) for t in ODD_TEXTS])
    assert set(contexts) == {"", "a"}
    for text in ODD_TEXTS:
        prediction_for(trained, text, contexts[""])
        assert 0 <= trained.uncertainty(text, context=contexts["a"]) <= 1
    candidates = [{"id": f"s{i}", "text": t} for i, t in enumerate(ODD_TEXTS)]  # no article id at all
    candidates.append({"id": "e", "text": "Kim met Putin.", "article_id": ""})
    assert set(choose_uncertain(candidates, trained, len(candidates))) == {c["id"] for c in candidates}


def test_model_refuses_texts_and_article_ids_of_different_lengths(trained):
    """A text without its article id was dropped silently by zip: uncertainties(['a'], []) == []."""
    with pytest.raises(ValueError):
        trained.uncertainties(["Kim met Putin.", "He left."], ["a"])
    with pytest.raises(ValueError):
        trained.article_contexts(["Kim met Putin."], ["a", "b"])


def test_stance_map_given_twice_or_for_another_format_is_refused(tmp_path):
    """`--stance-map favor=FAVOR,favor=NONE` exported favor as NONE (the last pair won, unsaid), and
    `--format conll --stance-map ...` ignored the mapping without a word."""
    from click.testing import CliRunner

    from builder.cli import cli

    project = make_project(tmp_path / "project", "stance-map")
    base = ["--config", str(project.source), "export", "-o", str(tmp_path / "out")]
    twice = CliRunner().invoke(cli, [*base, "--format", "semeval", "--stance-map", "favor=FAVOR,favor=NONE"])
    assert twice.exit_code == 2 and "favor given more than once" in twice.stderr
    with pytest.raises(BuilderError, match="--stance-map is for --format semeval"):
        export_dataset(project, "conll", tmp_path / "out", stance_map={"favor": "NONE"})
    assert not (tmp_path / "out").exists()
