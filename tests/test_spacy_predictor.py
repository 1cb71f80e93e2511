"""`--predictor spacy:NAME_OR_PATH`: pipelines the test builds with spaCy and saves with `nlp.to_disk`, loaded by the
real loading code (builder.preannotate.SpacyPredictor through make_predictor), and its one-line refusals."""

from __future__ import annotations

import random

import pytest
import spacy  # in the test extra: missing, these tests fail rather than skip (pip install -e '.[test]')
from click.testing import CliRunner

from builder.cli import cli
from builder.errors import ConfigError
from builder.model import prediction_for
from builder.preannotate import make_predictor

LABELS = ["PER", "ORG", "LOC", "MISC"]
TEXT = "Kim Jong Un met Vladimir Putin in Moscow, and Rosatom signed with the Widget Guild."


def ruler_pipeline(folder, patterns):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(patterns)
    nlp.meta["name"] = "ruler"
    nlp.to_disk(folder)
    return folder


PATTERNS = [
    {"label": "PERSON", "pattern": "Kim Jong Un"},
    {"label": "PER", "pattern": "Vladimir Putin"},
    {"label": "GPE", "pattern": "Moscow"},
    {"label": "ORG", "pattern": "Rosatom"},
    {"label": "GUILD", "pattern": "Widget Guild"},  # neither the scheme's nor a known name: dropped
]


def test_a_saved_pipeline_is_loaded_and_its_labels_mapped_to_the_scheme(tmp_path):
    folder = ruler_pipeline(tmp_path / "ruler", PATTERNS)
    predictor = make_predictor(f"spacy:{folder}", tmp_path / "no-snapshot.jsonl", LABELS)
    spans = [(r["value"]["text"], r["value"]["labels"][0]) for r in predictor.predict(TEXT)]
    assert spans == [("Kim Jong Un", "PER"), ("Vladimir Putin", "PER"), ("Moscow", "LOC"), ("Rosatom", "ORG")]
    for item in predictor.predict(TEXT):
        value = item["value"]
        assert TEXT[value["start"] : value["end"]] == value["text"]
    prediction = prediction_for(predictor, TEXT)
    assert prediction["model_version"] == predictor.model_version
    assert predictor.model_version.startswith("spacy/en_ruler-0.0.0+") and str(tmp_path) not in predictor.model_version
    # the same files: the same version; saved again with another pattern: another version
    assert make_predictor(f"spacy:{folder}", tmp_path / "x", LABELS).model_version == predictor.model_version
    ruler_pipeline(folder, [*PATTERNS, {"label": "LOC", "pattern": "Pyongyang"}])
    assert make_predictor(f"spacy:{folder}", tmp_path / "x", LABELS).model_version != predictor.model_version


def test_a_label_the_scheme_has_is_kept_even_when_spacy_would_rename_it(tmp_path):
    folder = ruler_pipeline(tmp_path / "custom", [{"label": "WEAPON", "pattern": "Hwasong-18"}])
    predictor = make_predictor(f"spacy:{folder}", tmp_path / "x", [*LABELS, "WEAPON"])
    assert [r["value"]["labels"] for r in predictor.predict("They tested a Hwasong-18 again.")] == [["WEAPON"]]


def test_a_tiny_trained_ner_saved_to_disk_predicts_through_the_loader(tmp_path):
    from spacy.training import Example

    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    data = [
        ("Putin visited Pyongyang on Tuesday.", [(0, 5, "PERSON"), (14, 23, "GPE")]),
        ("Kim travelled to Moscow by train.", [(0, 3, "PERSON"), (17, 23, "GPE")]),
        ("Putin and Kim met in Vladivostok.", [(0, 5, "PERSON"), (10, 13, "PERSON"), (21, 32, "GPE")]),
        ("Officials in Moscow said little.", [(13, 19, "GPE")]),
    ]
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in data]
    random.seed(0)
    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(40):
        random.shuffle(examples)
        nlp.update(examples, sgd=optimizer, drop=0.0)
    folder = tmp_path / "tiny-ner"
    nlp.to_disk(folder)

    predictor = make_predictor(f"spacy:{folder}", tmp_path / "x", LABELS)
    found = {(r["value"]["text"], r["value"]["labels"][0]) for r in predictor.predict(data[0][0])}
    assert found == {("Putin", "PER"), ("Pyongyang", "LOC")}


@pytest.mark.parametrize(
    "what, needle",
    [
        ("missing", "cannot load ([E050] Can't find model"),
        ("empty", "cannot load ("),
        ("no-ner", "the pipeline has no entity recognizer (its components: sentencizer)"),
        ("", "name an installed pipeline"),
    ],
)
def test_what_cannot_be_loaded_is_one_line_naming_it(tmp_path, what, needle):
    spec = str(tmp_path / what) if what else ""
    if what == "empty":
        (tmp_path / what).mkdir()
    if what == "no-ner":
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        nlp.to_disk(tmp_path / what)
    with pytest.raises(ConfigError) as caught:
        make_predictor(f"spacy:{spec}", tmp_path / "x", LABELS)
    message = str(caught.value)
    assert message.startswith(f"predictor spacy:{spec}: ") and needle in message and "\n" not in message


def test_push_with_a_pipeline_that_is_not_there_is_one_error_line(tmp_path, monkeypatch):
    from tests.conftest import SAMPLE, make_project

    make_project(tmp_path / "p", "spacy errors")
    monkeypatch.chdir(tmp_path / "p")
    env = {"LABEL_STUDIO_URL": "http://127.0.0.1:9", "LABEL_STUDIO_API_KEY": "x" * 40}
    assert CliRunner().invoke(cli, ["split", str(SAMPLE), "-o", "s.jsonl"]).exit_code == 0
    done = CliRunner().invoke(cli, ["push", "s.jsonl", "--predictor", f"spacy:{tmp_path / 'none'}"], env=env)
    assert done.exit_code == 1 and done.stderr.startswith(f"error: predictor spacy:{tmp_path / 'none'}: cannot load")
    assert len(done.stderr.splitlines()) == 1
