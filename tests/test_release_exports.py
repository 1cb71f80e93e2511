"""Exporting a release: named by its version never a path, with its own stance labels, and a `--stance-map`
given twice or for another format refused."""

from __future__ import annotations

import pytest

from builder.dataset.export import export_dataset
from builder.dataset.release import read_manifest
from builder.errors import BuilderError

from .conftest import ROOT, make_project


@pytest.mark.parametrize("version", ["../releases/1.0.0", "1.0.0/../1.0.0", "./1.0.0", str(ROOT / "releases/1.0.0")])
def test_a_release_is_named_by_its_version_never_a_path(version, tmp_path):
    """`builder export --version ../releases/1.0.0` exported, into dist/<name>-../releases/1.0.0-jsonl."""
    project = make_project(tmp_path / "project", "paths")
    (tmp_path / "project" / "releases").symlink_to(ROOT / "releases")
    with pytest.raises(BuilderError, match=r"no release .*\(releases: 1\.0\.0, 1\.1\.0\)"):
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
