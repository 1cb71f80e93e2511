"""builder.learn and `builder train`: the model trained on the project's own labels (no Label Studio)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from builder.cli import cli
from builder.errors import BuilderError
from builder.learn.features import is_all_caps, is_headline_like
from builder.learn.train import (
    Z_ONE_SIDED_95,
    Example,
    choose_threshold,
    dev_sample,
    fit_model,
    train_model,
    wilson_interval,
)
from builder.learn.trained import MANIFEST, ModelError, default_model_dir, load_model
from builder.model import prediction_for
from builder.preannotate import make_predictor

from .conftest import ROOT, make_project
from .test_outputs import small_disk  # noqa: F401 -- the fixture: a 1 MiB tmpfs

SNAPSHOT = ROOT / "annotations" / "snapshot.jsonl"
PEOPLE = ["Anna Berg", "Ivan Petrov", "Kim Yong", "Maria Lopez", "John Smith", "Li Wei", "Omar Haddad", "Sara Holm"]
PLACES = ["Moscow", "Pyongyang", "Seoul", "Berlin", "Paris", "Tokyo", "Cairo", "Lima"]
GROUPS = ["United Nations", "Red Cross", "World Bank", "NATO", "Interpol", "UNESCO"]
TEMPLATES = [
    ("{p} met {q} in {l} on Monday.", "neutral"),
    ("Officials of the {o} said {p} would travel to {l}.", "neutral"),
    ("{p} welcomed the deal and praised the new partnership.", "favor"),
    ("{p} condemned the pact and warned of grave danger in {l}.", "against"),
    ("In {l}, the {o} warned that the agreement was reckless.", "against"),
    ("The {o} welcomed progress, {p} said in {l}.", "favor"),
]


def synthetic(articles: int = 24, seed: int = 0) -> list[Example]:
    """Sentences from templates with their entity spans and stance: learnable, not trivially so."""
    rng = random.Random(seed)
    examples = []
    for a in range(articles):
        for i in range(8):
            template, stance = rng.choice(TEMPLATES)
            values = {
                "p": rng.choice(PEOPLE),
                "q": rng.choice(PEOPLE),
                "l": rng.choice(PLACES),
                "o": rng.choice(GROUPS),
            }
            text, spans = "", []
            for piece in template.replace("{", "\0{").replace("}", "}\0").split("\0"):
                if piece.startswith("{"):
                    value = values[piece[1:-1]]
                    label = {"p": "PER", "q": "PER", "l": "LOC", "o": "ORG"}[piece[1:-1]]
                    spans.append({"start": len(text), "end": len(text) + len(value), "label": label})
                    text += value
                else:
                    text += piece
            examples.append(Example(f"s{a}-{i}", f"article-{a:02d}", text, tuple(spans), stance, "the pact"))
    return examples


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    """A project with the repository's scheme and bundled snapshot, trained once into its default folder."""
    root = tmp_path_factory.mktemp("learn") / "project"
    project = make_project(root, "learn", snapshot=SNAPSHOT)
    return project, train_model(project)


def test_train_on_the_bundled_snapshot_and_predict_through_the_predictor(bundled):
    project, result = bundled
    assert result.folder == default_model_dir(project).resolve()
    manifest = json.loads((result.folder / MANIFEST).read_text())
    assert manifest["model_version"] == result.model_version and result.model_version.startswith("builder-crf/3+")
    assert manifest["label_scheme_sha256"] == project.scheme_hash()
    assert manifest["training"]["sentences"] == 65 and manifest["training_data_sha256"]
    assert set(manifest["files"]) == {"entities.crfsuite", "memory.json", "stance.json"}
    model = make_predictor("model", project.snapshot_path, project.entity_values, project)
    assert model.model_version == result.model_version
    text = "Officials in Moscow said the talks with North Korea would go on."
    prediction = prediction_for(model, text)
    assert prediction is None or (
        prediction["model_version"] == result.model_version
        and 0 <= prediction["score"] <= 1
        and all(0 <= item["score"] <= 1 for item in prediction["result"])
    )
    assert 0 <= model.uncertainty(text) <= 1 and model.uncertainties([text, text]) == [model.uncertainty(text)] * 2


def test_two_trainings_give_byte_identical_folders_and_the_same_predictions(bundled, tmp_path):
    project, first = bundled
    second = train_model(project, output=tmp_path / "again")
    assert files_of(first.folder) == files_of(second.folder)
    assert second.model_version == first.model_version
    a, b = load_model(first.folder, project), load_model(second.folder, project)
    texts = [json.loads(line)["data"]["text"] for line in SNAPSHOT.read_text().splitlines()]
    assert [a.predict(t) for t in texts] == [b.predict(t) for t in texts]
    assert a.uncertainties(texts) == b.uncertainties(texts)


def test_the_version_changes_with_the_data_and_the_settings(tmp_path):
    examples = synthetic(8)
    versions = []
    for name, data, settings, seed in (
        ("base", examples, {}, 0),
        ("same", list(examples), {}, 0),
        ("data", examples[:-1], {}, 0),
        ("settings", examples, {"c1": 0.1}, 0),
        ("seed", examples, {}, 1),
    ):
        (tmp_path / name).mkdir()
        result = fit_model(data, tmp_path / name, entity_labels=["PER", "LOC", "ORG"], settings=settings, seed=seed)
        versions.append(result.model_version)
    assert versions[0] == versions[1] and len(set(versions)) == 4


def test_a_dev_cap_fits_dev_models_on_whole_articles_and_changes_nothing_below_it():
    examples = synthetic()  # 24 articles of 8 sentences
    assert dev_sample(examples, None, 0) is examples and dev_sample(examples, len(examples), 0) is examples
    sample = dev_sample(examples, 50, 0)
    assert len(sample) == 48 and sample == dev_sample(list(examples), 50, 0)
    kept = {e.article_id for e in sample}
    assert sample == [e for e in examples if e.article_id in kept]  # whole articles, in the data's order
    assert {e.article_id for e in dev_sample(examples, 50, 1)} != kept  # the seed salts the choice
    assert len(dev_sample(examples, 3, 0)) == 8  # at least one article


def test_fits_in_worker_processes_give_the_same_bytes_as_in_one(tmp_path):
    """The dev folds' fits and the final one run in forked workers (issue 29: wall time on 2 cores); their
    results are gathered in the folds' order, so the folder does not depend on the workers."""
    examples = synthetic()
    folders = {}
    for workers in (1, 2, 3):
        folders[workers] = tmp_path / str(workers)
        folders[workers].mkdir()
        fit_model(examples, folders[workers], entity_labels=["PER", "LOC", "ORG"], workers=workers)
    assert files_of(folders[1]) == files_of(folders[2]) == files_of(folders[3])
    assert {".crfsuite" in name for name in files_of(folders[2])} == {True, False}  # nothing else left behind


def test_how_many_workers_fit():
    from builder.learn.folds import PARALLEL_MIN_SENTENCES, available_cores, fit_workers

    assert fit_workers(PARALLEL_MIN_SENTENCES - 1, 5) == 1  # small: in this process
    assert fit_workers(PARALLEL_MIN_SENTENCES, 5) == min(available_cores(), 5)
    assert fit_workers(10, 5, workers=2) == 2 and fit_workers(10, 1, workers=2) == 1 and fit_workers(10, 5, 0) == 1
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:  # a daemon process may start none
        assert pool.map(_workers_in_a_daemon, [2]) == [1]


def _workers_in_a_daemon(workers: int) -> int:
    from builder.learn.folds import fit_workers

    return fit_workers(10, 5, workers)


def test_an_error_in_a_worker_is_raised_in_the_caller():
    from builder.learn.folds import in_parallel

    assert in_parallel(abs, [-3, 2, -1], 2) == [3, 2, 1]
    with pytest.raises(OSError, match="No space left") as error:
        in_parallel(_no_space, [0, 1], 2)
    assert error.value.errno == 28


def _no_space(job):
    import errno
    import os

    if job:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return job


def test_thresholds_chosen_on_dev_keep_the_lower_bound_of_precision_at_0_8(tmp_path):
    result = fit_model(synthetic(), tmp_path, entity_labels=["PER", "LOC", "ORG"])
    notes = result.metrics["threshold_notes"]
    assert notes["span"] == "chosen on dev" and notes["stance"] == "chosen on dev"
    for key, kind in (("proposed_spans", "span"), ("proposed_stance", "stance")):
        shown, promised = result.metrics[key], result.metrics["promised"][kind]
        assert shown["shown"] > 0 and shown["precision"] >= 0.8, (key, shown)
        assert promised["rule"] == "wilson-lower-one-sided-95/1" and promised["n"] == shown["shown"]
        assert wilson_interval(shown["right"], shown["shown"], Z_ONE_SIDED_95)[0] >= 0.8, promised
        # the interval reported is the two-sided 95% one, around the promised precision
        low, high = wilson_interval(shown["right"], shown["shown"])
        assert promised["interval"] == [round(low, 4), round(high, 4)] and low <= promised["precision"] <= high
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["metrics"]["promised"] == result.metrics["promised"]
    assert manifest["settings"]["threshold_rule"] == "wilson-lower-one-sided-95/1"
    # the rule itself: the cut saving the most actions among those whose one-sided 95% lower bound is 0.8
    # or more; a point estimate of 0.8 on five proposals promises nothing (its interval reaches down to 0.38)
    scored = [(0.99, True), (0.95, True), (0.9, False), (0.85, True), (0.8, True), (0.7, False), (0.6, False)]
    assert choose_threshold(scored, 0.8) == (None, {"shown": 0, "right": 0})
    assert 0.37 < wilson_interval(4, 5)[0] < 0.38 and wilson_interval(0, 0) == (0.0, 1.0)
    many = [(1 - i / 100, i % 10 != 9) for i in range(60)] + [(0.3, False)] * 20  # 9 right of 10, then wrong
    threshold, shown = choose_threshold(many, 0.8)
    assert threshold == pytest.approx(0.42) and shown == {"shown": 59, "right": 54}
    assert wilson_interval(54, 60, Z_ONE_SIDED_95)[0] >= 0.8  # one more wrong qualifies but saves less
    assert choose_threshold(many, 0.8, above=0.9)[0] is None  # not above the baseline: nothing suggested
    # "precision >= 0.8 with 95% confidence" is one-sided: 32 right of 35 qualifies (lower bound 0.80+, where
    # the two-sided 95% interval's lower end, 0.78, would promise nothing and suggest nothing)
    blocks = [(1 - i / 200, i % 9 != 8) for i in range(36)] + [(0.3, False)] * 20  # 8 right, then 1 wrong
    assert choose_threshold(blocks, 0.8) == (pytest.approx(0.83), {"shown": 35, "right": 32})
    assert wilson_interval(32, 35)[0] < 0.8 <= wilson_interval(32, 35, Z_ONE_SIDED_95)[0]


def test_a_dev_too_small_to_promise_suggests_nothing_and_says_so(tmp_path):
    examples = synthetic(2)
    result = fit_model(examples[:3] + examples[8:11], tmp_path, entity_labels=["PER", "LOC", "ORG"])
    # an unmeasured threshold promises nothing a researcher could check: nothing is suggested until dev is larger
    assert result.thresholds["span"] is None and result.thresholds["stance"] is None
    assert result.metrics["threshold_notes"]["span"].startswith("dev too small")
    assert "no spans suggested" in result.metrics["threshold_notes"]["span"]
    assert "no stance suggested" in result.metrics["threshold_notes"]["stance"]
    assert result.metrics["promised"] == {"span": None, "stance": None}
    model = load_model(tmp_path)
    assert prediction_for(model, examples[0].text) is None


SUBJECTS = ["The minister", "A spokesman", "The committee", "Officials", "The envoy", "Residents", "The agency"]
VERBS = ["said", "noted", "reported", "told reporters", "stated", "explained", "added", "wrote"]
FACTS = [
    "the talks would resume in spring",
    "the budget was under review",
    "the schedule had changed",
    "the meeting lasted two hours",
    "the figures were published on Friday",
    "the delegation had arrived",
    "the plan covered three regions",
    "the vote was postponed",
]


def interviews(seed: int = 0) -> list[Example]:
    """192 interview sentences, about 85% of them neutral, with a weak signal: a quarter of the others say so."""
    rng = random.Random(seed)
    examples = []
    for a in range(24):
        for i in range(8):
            stance = "neutral" if rng.random() < 0.83 else rng.choice(["favor", "against"])
            text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} that {rng.choice(FACTS)}."
            if stance != "neutral" and rng.random() < 0.25:
                text = text[:-1] + (", a welcome step." if stance == "favor" else ", a grave mistake.")
            examples.append(Example(f"i{a}-{i}", f"interview-{a:02d}", text, (), stance, "the pact"))
    return examples


def test_a_stance_model_no_better_than_always_neutral_suggests_no_stance_and_says_why(tmp_path):
    """Issue 24: on interview sentences, mostly neutral, `train` printed "stance accuracy 0.93" (what always
    answering "neutral" scores) and kept a threshold, so every new task came with "neutral" pre-selected."""
    examples = interviews()
    assert len(examples) == 192 and 0.8 < sum(e.stance == "neutral" for e in examples) / len(examples) < 0.9
    result = fit_model(examples, tmp_path, entity_labels=["PER"])
    assert result.thresholds["stance"] is None and result.metrics["promised"]["stance"] is None
    from builder.cli import train_report

    baseline = result.metrics["baselines"]["stance"]
    assert baseline["label"] == "neutral" and baseline["accuracy"] >= result.metrics["stance_accuracy"] - 0.02
    lines = train_report(result.metrics, result.thresholds)
    accuracy = next(line for line in lines if "stance accuracy" in line)
    assert f"{result.metrics['stance_accuracy']:.2f}" in accuracy and "always 'neutral'" in accuracy, accuracy
    assert f"{baseline['accuracy']:.2f}" in accuracy, accuracy
    why = next(line for line in lines if line.startswith("threshold stance:"))
    assert why.startswith("threshold stance:  none: ") and "no stance suggested" in why, why
    model = load_model(tmp_path)
    assert all(item["type"] != "choices" for e in examples for item in model.predict(e.text, target=e.target))
    assert all(prediction_for(model, e.text) is None for e in examples)  # a push attaches nothing: no "neutral"


def test_headline_like_and_all_capitals_sentences_get_only_sure_entities(tmp_path):
    assert is_all_caps("KIM MEETS PUTIN IN MOSCOW") and not is_all_caps("Kim meets Putin in Moscow.")
    assert is_headline_like("Hundreds dead in Hajj stampede") and is_headline_like("KIM MEETS PUTIN IN MOSCOW.")
    assert not is_headline_like("Ivan Petrov met Anna Berg in Moscow on Monday.")
    fit_model(synthetic(), tmp_path, entity_labels=["PER", "LOC", "ORG"])
    model = load_model(tmp_path)
    model.thresholds["span"] = 0.0  # every span the tagger finds, however unsure
    sentences = ["Ivan Petrov met Anna Berg in Moscow on Monday.", "Zork Quimby met Anna Berg in Blorf"]
    for sentence in sentences:
        for text in (sentence, sentence.upper()):
            spans = [item for item in model.predict(text) if item["type"] == "labels"]
            if is_headline_like(text):
                assert all(item["score"] >= model.thresholds["headline_span"] for item in spans), (text, spans)
    spans, _, headline = model.entity_spans(sentences[1])
    assert headline and any(span[3] < 0.95 for span in spans), "the test needs a headline span the model is unsure of"
    proposed = [item for item in model.predict(sentences[1]) if item["type"] == "labels"]
    assert len(proposed) < len(spans)


def one_line(error: BaseException, *needles: str) -> str:
    message = str(error)
    assert "\n" not in message and isinstance(error, BuilderError), message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def test_missing_corrupt_and_other_scheme_model_folders_are_one_line_errors(bundled, tmp_path):
    project, result = bundled
    with pytest.raises(ModelError) as missing:
        load_model(tmp_path / "nowhere", project)
    one_line(missing.value, str(tmp_path / "nowhere"), "no such folder", "builder train")
    with pytest.raises(ModelError) as plain:
        load_model(tmp_path, project)
    one_line(plain.value, "not a builder model folder")

    def copy(name: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for file, data in files_of(result.folder).items():
            (folder / file).write_bytes(data)
        return folder

    broken = copy("manifest")
    (broken / MANIFEST).write_text("{not json", encoding="utf-8")
    one_line(pytest.raises(ModelError, load_model, broken, project).value, str(broken), "unreadable")
    changed = copy("changed")
    (changed / "entities.crfsuite").write_bytes(b"garbage")
    one_line(pytest.raises(ModelError, load_model, changed, project).value, "entities.crfsuite", "sha256")
    gone = copy("gone")
    (gone / "stance.json").unlink()
    one_line(pytest.raises(ModelError, load_model, gone, project).value, "cannot read stance.json")
    text = (
        (Path(project.source))
        .read_text(encoding="utf-8")
        .replace('target = "Russia and North Korea expanding military cooperation"', 'target = "another target"')
    )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "builder.toml").write_text(text, encoding="utf-8")
    from builder.project import load_project

    other = load_project(tmp_path / "other" / "builder.toml")
    with pytest.raises(ModelError) as scheme:
        make_predictor(f"model:{result.folder}", other.snapshot_path, other.entity_values, other)
    one_line(scheme.value, "another label scheme", "builder train")


def test_train_refuses_a_folder_that_is_not_a_model_and_leaves_nothing_behind(bundled, tmp_path):
    project, _ = bundled
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(BuilderError, match="was not written by builder"):
        train_model(project, output=mine)
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "data.parquet").write_bytes(b"x")
    from builder.outputs import write_marker

    write_marker(dataset, "builder build")
    with pytest.raises(BuilderError, match="not a model"):
        train_model(project, output=dataset)
    assert (mine / "notes.txt").read_text() == "keep me" and (dataset / "data.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "mine"]  # no staging folder left


def test_builder_train_prints_the_dev_figures_thresholds_folder_and_version(tmp_path, monkeypatch):
    root = tmp_path / "project"
    make_project(root, "train cli", snapshot=SNAPSHOT)
    monkeypatch.chdir(root)
    monkeypatch.delenv("BUILDER_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["train", "-o", "models/current"])
    assert result.exit_code == 0, result.output
    for needle in (
        "precision",
        "recall",
        "f1",
        "stance accuracy",
        "threshold span",
        "threshold stance",
        "model_version",
        "baseline",
        "(gazetteer)",
        "(always ",
        "learned from: ",  # what it learned from and where it will be weak (issue 29 point 5)
        "unlabelled sentences",
        "  spans: PER ",
        "  weak: ",
    ):
        assert needle in result.stdout, (needle, result.stdout)
    assert str((root / "models" / "current").resolve()) in result.stdout
    again = CliRunner().invoke(cli, ["train", "-o", "models/current"])  # its own earlier output is replaced
    assert again.exit_code == 0 and again.stdout == result.stdout


@pytest.mark.parametrize(
    "edit",
    [
        {"thresholds": None},
        {"thresholds": ["span"]},
        {"thresholds": {"span": "0.5", "stance": 0.5, "headline_span": 0.95}},
        {"thresholds": {"span": 0.5, "stance": 0.5}},
        {"files": ["entities.crfsuite"]},
        {"files": None},
        {"model_version": 5},
        {"model_version": ""},
    ],
)
def test_a_hand_edited_manifest_is_a_one_line_error(bundled, tmp_path, edit):
    """manifest.json has no checksum of its own: its fields are checked before use, never a traceback mid-push."""
    import shutil

    from builder.learn.trained import ModelError, load_model

    folder = tmp_path / "edited"
    shutil.copytree(bundled[1].folder, folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    (folder / "manifest.json").write_text(json.dumps({**manifest, **edit}), encoding="utf-8")
    with pytest.raises(ModelError, match="manifest.json: "):
        load_model(folder)


def test_the_default_model_folder_is_inside_a_private_builder_folder(tmp_path):
    root = tmp_path / "fresh"
    project = make_project(root, "learn", snapshot=SNAPSHOT)
    train_model(project)
    assert (root / ".builder").stat().st_mode & 0o777 == 0o700
    assert (root / ".builder" / ".gitignore").is_file()


def test_what_validation_leaves_out_is_counted(tmp_path):
    root = tmp_path / "odd"
    project = make_project(root, "learn", snapshot=SNAPSHOT)
    with open(project.snapshot_path, "ab") as handle:
        handle.write(b"\xff not a task\n")
    result = train_model(project, output=tmp_path / "model")
    assert result.left_out == 1


# --- name lists and the article a sentence comes from -------------------------------------------------


def test_name_lists_come_from_the_installed_data_packages():
    from builder.learn import lexicons

    assert {"ahmed", "maria", "john"} <= lexicons.first_names()
    assert {"president", "senator", "minister"} <= lexicons.titles()
    tokens = ["He", "flew", "from", "New", "York", "to", "Saudi", "Arabia", "and", "Ouagadougou", "."]
    assert lexicons.place_tags(tokens) == [None, None, None, "B", "I", None, "B", "I", None, "B", None]


def test_a_sentence_is_read_with_the_names_its_article_writes_elsewhere():
    """'Mohamed' opening a sentence is a surname when the article wrote 'Ahmed Mohamed'; a word the article
    also writes in lower case is likely a common word."""
    from builder.learn.features import NO_CONTEXT, ArticleContext, token_features

    context = ArticleContext(["Police arrested Ahmed Mohamed in Irving.", "The clock was seized by police."])
    words = ["Mohamed", "said", "Police", "were", "wrong"]
    with_context = token_features(words, [None] * 5, frozenset(), False, context)
    alone = token_features(words, [None] * 5, frozenset(), False, NO_CONTEXT)
    assert {"dsur", "dcap", "dname"} <= set(with_context[0]) and not {"dsur", "dcap", "dname"} & set(alone[0])
    assert "dlow" in with_context[2] and "dlow" not in alone[2]


def test_predictions_pass_the_article_context_to_a_model_that_reads_one(bundled):
    """push and predict read each sentence with its article's other sentences: `article_contexts` groups them,
    `prediction_for` hands the context on, and a predictor without contexts is called as before."""
    from builder.preannotate import GazetteerPredictor, article_contexts

    project, result = bundled
    model = load_model(result.folder, project)
    model.thresholds["span"] = 0.0
    sentences = [("a", "Ahmed Mohamed built a clock."), ("a", "Mohamed was arrested."), ("b", "Mohamed left.")]
    contexts = article_contexts(model, sentences)
    assert set(contexts) == {"a", "b"} and "Mohamed" in contexts["a"].surnames - contexts["b"].surnames
    with_a = prediction_for(model, "Mohamed was arrested.", contexts["a"])
    expected = model.predict("Mohamed was arrested.", context=contexts["a"])
    assert (with_a or {}).get("result", []) == expected
    gazetteer = GazetteerPredictor({"Mohamed": "PER"})
    assert article_contexts(gazetteer, sentences) is None
    assert prediction_for(gazetteer, "Mohamed was arrested.")["result"][0]["value"]["text"] == "Mohamed"


@pytest.mark.parametrize(
    "surface, kind, expected",
    [
        ("U.S. President Donald Trump's", "person", "Donald Trump"),
        ("Facebook co-founder Mark Zuckerberg", "person", "Mark Zuckerberg"),
        ("actor Jason Beghe", "person", "Jason Beghe"),
        ("Wong Kwok-kin of the FTU", "person", "Wong Kwok-kin"),
        ("Adler Planetarium in Chicago, Illinois", "place", "Adler Planetarium"),
        ("Korean People's Army", "organization", "Korean People's Army"),
        ("the Church of Scientology", "organization", "Church of Scientology"),
        ("We", "organization", None),
        ("President", "person", None),
    ],
)
def test_gold_names_follow_the_guidelines(surface, kind, expected):
    """The bench's and the sample's gold: GUM's noun-phrase mentions cut to the name the guidelines mark."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_sample", ROOT / "examples" / "make_sample.py")
    make_sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_sample)
    meta = {
        "identity": "X",
        "proper": len(surface.split()) > 1,
        "head_upos": ["PROPN"] if surface != "We" else ["PRON"],
    }
    span = make_sample.named_span(100, 100 + len(surface), surface, meta, kind)
    assert (span[2] if span else None) == expected
    if span:
        assert surface[span[0] - 100 : span[1] - 100] == expected


# --- a full disk: one line, the previous model kept, nothing cut short left ----------------------------

# `builder train` as it runs where the system has no memfd: crfsuite writes its file into the output's folder
WITHOUT_MEMFD = (
    "import os, runpy, sys; del os.memfd_create; sys.argv[0] = 'builder'; "
    "runpy.run_module('builder', run_name='__main__')"
)


@pytest.mark.parametrize(
    ("free", "memfd"), [(0, True), (100_000, True), (100_000, False)], ids=["full", "100kB", "100kB-file-beside"]
)
def test_train_on_a_nearly_full_disk_is_one_line_and_keeps_the_previous_model(
    bundled,
    small_disk,  # noqa: F811
    tmp_path,
    free,
    memfd,
):
    """crfsuite ignores failed writes: on main, a model cut short was read back (a traceback, or exit 139 at
    100 kB free) and a staging folder with the cut file was left. Every write of the folder is checked now."""
    import os
    import shutil
    import subprocess
    import sys

    from .test_outputs import one_line_error

    if not small_disk.mounted:
        pytest.skip("needs a tmpfs (root)")
    project, trained = bundled
    root = project.root
    output = small_disk.folder / "model"
    shutil.copytree(trained.folder, output)  # an earlier `builder train` output
    before = small_disk.tree()
    small_disk.fill()
    filler = small_disk.folder / "filler"
    os.truncate(filler, max(0, filler.stat().st_size - free))
    args = ["train", "-o", str(output)]
    if memfd:
        result = small_disk.run(*args, cwd=root)
    else:
        command = [sys.executable, "-c", WITHOUT_MEMFD, *args]
        result = subprocess.run(command, capture_output=True, text=True, cwd=root, check=False)
    one_line_error(result, f"cannot write {output} (", f"the previous {output} was kept")
    assert small_disk.tree() == before  # the previous model, byte for byte
    assert small_disk.files() == ["model"]  # no staging folder, no file cut short
    assert load_model(output).model_version == json.loads((output / MANIFEST).read_text())["model_version"]


def test_a_crf_model_cut_short_is_recognised_before_crfsuite_reads_it(bundled):
    from builder.learn.train import crf_model_problem
    from builder.learn.trained import ENTITY_FILE

    _, result = bundled
    whole = (Path(result.folder) / ENTITY_FILE).read_bytes()
    assert crf_model_problem(whole) is None
    for cut in (0, 40, 4096, len(whole) // 2, len(whole) - 1):
        assert crf_model_problem(whole[:cut]) is not None, cut
    header_kept = whole[:4] + (len(whole) // 2).to_bytes(4, "little") + whole[8 : len(whole) // 2]
    assert "its header says" in crf_model_problem(header_kept)  # the size fixed up, the parts past the end
    assert crf_model_problem(b"\0" * len(whole)) == "no crfsuite header"
