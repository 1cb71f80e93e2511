"""Names must match their pattern to the end: a final newline in builder.toml's labels, hotkeys, colours,
dataset name and language, or in a release manifest's fields, is refused."""

from __future__ import annotations

import re
import tomllib

import pytest

from builder.dataset.release import load_manifest
from builder.errors import BuilderError, ConfigError
from builder.project import project_from_dict

from .conftest import ROOT


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
