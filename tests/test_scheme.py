"""The project file: validation with messages naming the key, defaults, and agreement with the schema."""

from __future__ import annotations

import tomllib

import pytest

from builder.errors import ConfigError
from builder.project import default_project_file, load_project, project_from_dict
from builder.resources import load_schema

from .conftest import ROOT


def raw_default() -> dict:
    return tomllib.loads(default_project_file().read_text(encoding="utf-8"))


def test_bundled_default_is_used_when_no_project_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    project = load_project()
    assert project.source == default_project_file()
    assert project.stance_values == ["favor", "against", "neutral"]
    assert project.entity_values == ["PER", "ORG", "LOC", "MISC"]


def test_repository_project_file_is_found_from_a_subfolder(monkeypatch):
    monkeypatch.chdir(ROOT / "tests")
    assert load_project().source == ROOT / "builder.toml"


def test_schema_default_and_repository_file_agree():
    """Every key the schema knows is in the bundled default, and both project files validate."""
    schema = load_schema("config")
    default = raw_default()
    assert set(schema["required"]) <= set(default)
    assert set(default) <= set(schema["properties"])
    for section, spec in schema["properties"].items():
        if section in default and "properties" in spec:
            assert set(default[section]) <= set(spec["properties"]), section
            assert set(spec.get("required", [])) <= set(default[section]), section
    stance_label_keys = set(schema["$defs"]["stanceLabel"]["properties"])
    entity_label_keys = set(schema["$defs"]["entityLabel"]["properties"])
    assert all(set(label) == stance_label_keys for label in default["stance"]["labels"])
    assert all(set(label) == entity_label_keys for label in default["entities"]["labels"])
    load_project(default_project_file())
    load_project(ROOT / "builder.toml")


def test_guidelines_file_exists_and_names_every_label(project):
    text = project.guidelines()
    for value in project.stance_values + project.entity_values:
        assert f"**{value}**" in text


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda raw: raw["stance"].pop("target"), "stance: 'target' is a required property"),
        (lambda raw: raw["stance"]["labels"][1].update(hotkey="F1"), "stance.labels[1].hotkey:"),
        (lambda raw: raw["entities"]["labels"][0].update(color="red"), "entities.labels[0].color:"),
        (lambda raw: raw["annotation"].update(annotators_per_sentence=0), "annotation.annotators_per_sentence:"),
        (lambda raw: raw["dataset"].update(colour="x"), "dataset: Additional properties are not allowed ('colour'"),
        (
            lambda raw: raw["entities"]["labels"][1].update(value="PER"),
            "entities.labels[1].value: 'PER' is declared twice",
        ),
        (
            lambda raw: raw["entities"]["labels"][0].update(hotkey="1"),
            "entities.labels[0].hotkey: '1' is already the hotkey of stance.labels[0]",
        ),
        (lambda raw: raw["splits"].update(train=0.5), "splits: proportions add up to"),
    ],
)
def test_invalid_project_file_names_the_key(mutate, expected, tmp_path):
    raw = raw_default()
    mutate(raw)
    with pytest.raises(ConfigError) as error:
        project_from_dict(raw, tmp_path / "builder.toml")
    assert expected in str(error.value)
    assert str(tmp_path / "builder.toml") in str(error.value)


def test_unreadable_project_file(tmp_path):
    bad = tmp_path / "builder.toml"
    bad.write_text("[dataset\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_project(bad)
    with pytest.raises(ConfigError, match="project file not found"):
        load_project(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "setting, where",
    [
        ("[quality]\nmin_gold_accuracy = nan", "quality.min_gold_accuracy"),
        ('[quality]\ngold = "g.jsonl"\ngold_rate = nan', "quality.gold_rate"),
        ("[splits]\ntrain = nan\nvalidation = 0.5\ntest = 0.5", "splits.train"),
        ("[splits]\ntrain = inf\nvalidation = 0.5\ntest = 0.5", "splits.train"),
    ],
)
def test_nan_and_inf_are_refused_with_the_key(tmp_path, setting, where):
    """TOML allows nan and inf, and JSON Schema's bounds let NaN through: a nan setting would flag nobody,
    add no gold question or split nothing, silently."""
    text = (ROOT / "builder.toml").read_text(encoding="utf-8")
    text = text.replace("[splits]\ntrain = 0.6\nvalidation = 0.2\ntest = 0.2\n", "") + "\n" + setting + "\n"
    path = tmp_path / "builder.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{where}: must be a finite number"):
        load_project(path)
    text = (ROOT / "builder.toml").read_text(encoding="utf-8")
    text = text.replace("entity_agreement = 0.5", "entity_agreement = nan")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="annotation.entity_agreement: must be a finite number"):
        load_project(path)
