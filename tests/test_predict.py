"""The model in the loop on the real Label Studio: scored predictions on push, `builder predict` after a retrain
(only unannotated tasks change, annotations never), `--select uncertain|random|file --limit N`; and the choosing
alone, fast.

The model comes from the `models` fixture: builder.learn's `train_model` on the sample's snapshot when that
package is there, else `StandInModel`, a deterministic stand-in that follows the model contract (predict with
region scores, score, uncertainty, uncertainties). Expectations are computed from the model's own answers,
so the tests hold for either.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.dataset.release import MANIFEST_FORMAT
from builder.errors import ConfigError
from builder.labelstudio.client import Connection, task_pages
from builder.labelstudio.predictions import builder_made, refresh_predictions
from builder.labelstudio.push import Selection, choose_random, choose_uncertain, push_sentences
from builder.model import STANCE
from builder.preannotate import GazetteerPredictor, region
from builder.sentences.segmenter import sentence_id
from tests.conftest import ROOT, cli_env, make_project, run_cli
from tests.test_gold_push import gold_project

SNAPSHOT = ROOT / "annotations" / "snapshot.jsonl"
PLACES = {"Moscow": "LOC", "Pyongyang": "LOC", "Kim": "PER", "Putin": "PER", "Kremlin": "ORG"}


class StandInModel:
    """Follows builder.learn.trained.LearnedModel's contract, deterministically from the text alone."""

    name = "model"

    def __init__(self, version: str) -> None:
        self.model_version = f"builder-standin/1+{hashlib.sha256(version.encode()).hexdigest()[:12]}"
        self.bias = int(version)  # another "training" scores differently

    def predict(self, text: str) -> list[dict]:
        out = []
        for surface, label in PLACES.items():
            start = text.find(surface)
            if start >= 0:
                out.append({**region(start, start + len(surface), surface, label), "score": 0.9 - 0.01 * self.bias})
        if "welcomed" in text:
            out.append(
                {
                    "id": "stance",
                    "from_name": STANCE,
                    "to_name": "sentence",
                    "type": "choices",
                    "value": {"choices": ["favor"]},
                    "score": 0.85,
                }
            )
        return out

    def score(self, text: str) -> float:
        scores = [r["score"] for r in self.predict(text)]
        return sum(scores) / len(scores) if scores else 0.0

    def uncertainty(self, text: str) -> float:
        if "perhaps" in text.lower():
            return 0.9 - 0.001 * (len(text) % 50)
        return (len(text) * 7 + self.bias) % 40 / 100  # below 0.4

    def uncertainties(self, texts: list[str]) -> list[float]:
        return [self.uncertainty(t) for t in texts]


@pytest.fixture
def models(tmp_path):
    """Two versions of the model, as after a training and a retraining: the real one when builder.learn is there."""
    try:
        from builder.learn.train import train_model
        from builder.learn.trained import load_model
    except ImportError:
        return StandInModel("1"), StandInModel("2")
    project = make_project(tmp_path / "trainer", "Trainer", snapshot=SNAPSHOT)
    first = train_model(project, project.snapshot_path, tmp_path / "model-1", seed=0)
    second = train_model(project, project.snapshot_path, tmp_path / "model-2", seed=1)
    loaded = (
        load_model(Path(getattr(first, "folder", tmp_path / "model-1"))),
        load_model(Path(getattr(second, "folder", tmp_path / "model-2"))),
    )
    for model in loaded:  # the 65-sentence sample promises no precision (train suggests nothing of a kind then):
        for key in ("span", "stance"):  # these tests are about moving predictions, so each kind is proposed
            if model.thresholds.get(key, 0.5) is None:
                model.thresholds[key] = 0.5
    return loaded


def sentences(n: int, per_article: int = 5, prefix: str = "a") -> list[dict]:
    """`n` sentences in `builder split`'s shape; every third one hedges ("perhaps"), some name places."""
    out = []
    for i in range(n):
        article, index = f"{prefix}-{i // per_article}", i % per_article
        hedge = "Perhaps " if i % 3 == 0 else ""
        text = f"{hedge}Sentence {i}{'x' * (i % 7)} says that Moscow welcomed Kim in Pyongyang."
        out.append(
            {
                "id": sentence_id(article, text),
                "article_id": article,
                "article_title": f"Article {i // per_article}",
                "sentence_index": index,
                "occurrence": 0,
                "text": text,
                "start": 100 * index,
                "end": 100 * index + len(text),
                "prev_text": "",
                "next_text": "",
            }
        )
    return out


def read_with_articles(model, tasks: list[dict]):
    """(predict, score) of a task's text as push and predict read it: with its article's other sentences among
    `tasks` (one import batch, one page), for a model that reads article context; the stand-in reads none."""
    make = getattr(model, "article_contexts", None)
    if make is None:
        return (lambda task: model.predict(task["data"]["text"])), (lambda task: model.score(task["data"]["text"]))
    contexts = make([t["data"]["text"] for t in tasks], [t["data"]["article_id"] for t in tasks])

    def predict(task):
        return model.predict(task["data"]["text"], context=contexts[task["data"]["article_id"]])

    def score(task):
        return model.score(task["data"]["text"], context=contexts[task["data"]["article_id"]])

    return predict, score


def uncertainties_of(model, stream: list[dict]) -> list[float]:
    """What push ranks by: each sentence's uncertainty, read with its article's sentences when the model can."""
    if hasattr(model, "article_contexts"):
        return model.uncertainties([s["text"] for s in stream], [s["article_id"] for s in stream])
    return model.uncertainties([s["text"] for s in stream])


def listed(connection: Connection, project_id: int) -> list[dict]:
    params = {"fields": "all", "include": "id,data,predictions,annotations,total_annotations,cancelled_annotations"}
    return [t for page in task_pages(connection, project_id, params, "listing") for t in page]


def project_version(connection: Connection, project_id: int) -> str:
    return connection.http().request(f"api/projects/{project_id}", method="GET").json()["model_version"]


# --- choosing, without Label Studio -----------------------------------------------------------------


def test_uncertain_takes_the_least_certain_round_robin_over_articles():
    scores = {"a1": 0.9, "a2": 0.8, "a3": 0.7, "b1": 0.5, "b2": 0.45, "c1": 0.1, "c2": 0.1}

    class Scores:
        def uncertainties(self, texts):
            return [scores[t] for t in texts]

    candidates = [{"id": k, "article_id": k[0], "text": k} for k in scores]
    # the most uncertain of each article first (a1, b1, c1), then the second of each (a2, b2, c2), ...
    assert list(choose_uncertain(candidates, Scores(), 3)) == ["a1", "b1", "c1"]
    assert list(choose_uncertain(candidates, Scores(), 5)) == ["a1", "b1", "c1", "a2", "b2"]
    assert choose_uncertain(candidates, Scores(), 100) == scores  # all of them, with their uncertainty
    # ties go to the sentence earlier in the file
    tied = [{"id": f"s{i}", "article_id": "x", "text": "c1"} for i in range(4)]
    assert list(choose_uncertain(tied, Scores(), 2)) == ["s0", "s1"]


def test_uncertain_scores_in_batches_and_a_batch_of_one_gives_the_same(monkeypatch):
    import builder.labelstudio.push as push

    model = StandInModel("1")
    candidates = sentences(50, 4)
    whole = choose_uncertain(candidates, model, 12)
    monkeypatch.setattr(push, "SCORE_BATCH", 1)
    assert choose_uncertain(candidates, model, 12) == whole
    hedged = {s["id"] for s in candidates if s["text"].startswith("Perhaps")}
    assert set(whole) <= hedged  # 17 hedged sentences over 13 articles: the 12 chosen are all hedged


def test_random_is_seeded_deterministic_and_uniform_enough():
    candidates = sentences(200)
    first = choose_random(candidates, 20, seed=0)
    assert first == choose_random(iter(candidates), 20, seed=0) and len(first) == 20
    assert first != choose_random(candidates, 20, seed=1)
    assert choose_random(candidates[:5], 20, seed=0) == {s["id"] for s in candidates[:5]}
    hits = [0] * 200
    for seed in range(300):
        for sid in choose_random(candidates, 20, seed):
            hits[next(i for i, s in enumerate(candidates) if s["id"] == sid)] += 1
    assert min(hits[:100]) > 5 and min(hits[100:]) > 5  # late sentences are as likely as early ones


def test_a_selection_refuses_what_it_cannot_do():
    with pytest.raises(ConfigError, match="--select uncertain needs --limit N"):
        Selection("uncertain")
    with pytest.raises(ConfigError, match="--limit must be at least 1"):
        Selection("file", 0)
    with pytest.raises(ConfigError, match="unknown selection 'best'"):
        Selection("best", 3)
    nowhere = Connection("http://127.0.0.1:9", "x" * 40, "environment")
    with pytest.raises(ConfigError, match="does not measure uncertainty"):  # before anything is sent
        push_sentences(nowhere, None, sentences(3), GazetteerPredictor({}), select=Selection("uncertain", 2))


def test_builder_replaces_only_the_predictions_builder_made():
    assert builder_made("builder-gazetteer/1+abcd") and builder_made("builder-crf/1+0123456789ab")
    assert builder_made("spacy/en_core_web_sm-3.8.0")
    assert not builder_made("my-backend") and not builder_made("") and not builder_made(None)
    assert not builder_made("builder-crf") and not builder_made("undefined")


# --- on the real Label Studio ------------------------------------------------------------------------


def test_push_with_the_model_gives_scored_predictions_of_its_version(ls, tmp_path, models, sample_sentences):
    model, _ = models
    project = make_project(tmp_path / "p", "Model predictions", snapshot=SNAPSHOT)
    _, sample = sample_sentences
    pushed = push_sentences(ls, project, sample + sentences(10), model)
    labelled = [s for s in sample if not s["set_aside"]]  # the sample's date lines are never pushed (issue 27)
    assert pushed.created == len(labelled) + 10 and pushed.model_version == model.model_version
    tasks = listed(ls, pushed.project_id)
    predicted = [t for t in tasks if t["predictions"]]
    assert predicted, "the model proposed nothing on the sample it was trained on"
    predict, score = read_with_articles(model, tasks)  # one import batch: every article whole
    for task in predicted:
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == model.model_version
        assert prediction["score"] == pytest.approx(score(task))
        assert prediction["result"] == json.loads(json.dumps(predict(task)))
        for item in prediction["result"]:
            assert 0 <= item["score"] <= 1
    expected = {t["data"]["sentence_id"] for t in tasks if predict(t)}
    assert {t["data"]["sentence_id"] for t in predicted} == expected
    # Label Studio shows annotators only the project's model version: the push set it
    assert project_version(ls, pushed.project_id) == model.model_version


def annotate(connection: Connection, task_id: int, cancelled: bool = False) -> dict:
    result = [] if cancelled else [{"from_name": STANCE, "to_name": "sentence", "type": "choices",
                                    "value": {"choices": ["neutral"]}}]  # fmt: skip
    response = connection.http().request(
        f"api/tasks/{task_id}/annotations/", method="POST", json={"result": result, "was_cancelled": cancelled}
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_predict_after_a_retrain_replaces_predictions_only_where_nobody_annotated(ls, tmp_path, models):
    old, new = models
    project = make_project(tmp_path / "p", "Predict after retrain", snapshot=SNAPSHOT)
    pushed = push_sentences(ls, project, sentences(30), old)
    tasks = {t["data"]["sentence_id"]: t for t in listed(ls, pushed.project_id)}
    with_prediction = [t for t in tasks.values() if t["predictions"]]
    submitted, cancelled, foreign = (t["id"] for t in with_prediction[:3])
    annotations = {submitted: annotate(ls, submitted), cancelled: annotate(ls, cancelled, cancelled=True)}
    response = ls.http().request(
        "api/predictions/", method="POST", json={"task": foreign, "model_version": "someone-elses", "result": []}
    )
    assert response.status_code == 201, response.text
    before = {t["id"]: t for t in listed(ls, pushed.project_id)}

    result = refresh_predictions(ls, project, new)
    after = {t["id"]: t for t in listed(ls, pushed.project_id)}
    assert (result.tasks, result.annotated) == (30, 2)
    for task_id in (submitted, cancelled):  # annotated: exactly as they were, annotations and predictions
        assert after[task_id]["predictions"] == before[task_id]["predictions"]
        assert [a["id"] for a in after[task_id]["annotations"]] == [annotations[task_id]["id"]]
        stored = ls.http().request(f"api/annotations/{annotations[task_id]['id']}/", method="GET").json()
        assert (stored["result"], stored["updated_at"]) == (
            annotations[task_id]["result"],
            annotations[task_id]["updated_at"],
        )
    assert [p["model_version"] for p in after[foreign]["predictions"]].count("someone-elses") == 1  # never ours
    predict, score = read_with_articles(new, list(after.values()))  # one page of tasks: every article whole
    for task_id, task in after.items():
        if task_id in (submitted, cancelled):
            continue
        ours = [p for p in task["predictions"] if p["model_version"] != "someone-elses"]
        proposed = predict(task)
        assert [p["model_version"] for p in ours] == ([new.model_version] if proposed else [])
        if proposed:
            assert ours[0]["result"] == json.loads(json.dumps(proposed))
            assert ours[0]["score"] == pytest.approx(score(task))
    assert result.predicted == sum(1 for t in after.values() if t["id"] not in (submitted, cancelled) and
                                   any(p["model_version"] == new.model_version for p in t["predictions"]))  # fmt: skip
    assert result.foreign == 1 and result.version_set and result.previous_version == old.model_version
    assert project_version(ls, pushed.project_id) == new.model_version

    again = refresh_predictions(ls, project, new)  # the same model version: nothing changes
    assert (again.predicted, again.deleted, again.cleared) == (0, 0, 0)
    assert again.current == result.predicted and again.annotated == 2
    assert {t["id"]: t["predictions"] for t in listed(ls, pushed.project_id)} == {
        i: t["predictions"] for i, t in after.items()
    }


class AnnotatedMeanwhile:
    """`model`, except that its first prediction happens while an annotator submits one task and drafts another:
    what annotators do while `builder predict` runs, between its listing of the tasks and its writes."""

    def __init__(self, model, connection: Connection, annotated: int, drafted: int) -> None:
        self.model, self.connection, self.annotated, self.drafted = model, connection, annotated, drafted
        self.model_version = model.model_version
        self.done = False

    def __getattr__(self, name):
        return getattr(self.model, name)

    def predict(self, text: str, **extra):
        if not self.done:
            self.done = True
            annotate(self.connection, self.annotated)
            draft = {"result": [], "lead_time": 1.0}
            response = self.connection.http().request(f"api/tasks/{self.drafted}/drafts", method="POST", json=draft)
            assert response.status_code == 201, response.text
        return self.model.predict(text, **extra)


def test_a_task_annotated_or_drafted_while_predict_runs_keeps_its_predictions(ls, tmp_path, models):
    """On main, a task annotated after predict listed the tasks had its prediction replaced, and was reported
    among those given new predictions ("never touched" counted only the tasks annotated before)."""
    old, new = models
    project = make_project(tmp_path / "p", "Predict while annotating", snapshot=SNAPSHOT)
    pushed = push_sentences(ls, project, sentences(10), old)
    before = {t["id"]: t for t in listed(ls, pushed.project_id)}
    annotated, drafted = [task_id for task_id, task in before.items() if task["predictions"]][-2:]

    result = refresh_predictions(ls, project, AnnotatedMeanwhile(new, ls, annotated, drafted))
    after = {t["id"]: t for t in listed(ls, pushed.project_id)}
    for task_id in (annotated, drafted):
        assert after[task_id]["predictions"] == before[task_id]["predictions"], (task_id, annotated, drafted, result)
    assert len(after[annotated]["annotations"]) == 1
    assert (result.tasks, result.annotated, result.drafted, result.annotated_meanwhile) == (10, 1, 1, 2)
    changed = [
        i for i in after if i not in (annotated, drafted) and after[i]["predictions"] != before[i]["predictions"]
    ]
    assert result.predicted + result.cleared == len(changed) and result.skipped + len(changed) == 10

    again = refresh_predictions(ls, project, new)  # both stay skipped: annotated, and drafted
    assert (again.annotated, again.drafted, again.annotated_meanwhile) == (1, 1, 0)
    assert {t["id"]: t["predictions"] for t in listed(ls, pushed.project_id)} == {
        i: t["predictions"] for i, t in after.items()
    }


def test_select_uncertain_imports_what_the_model_knows_least_with_gold_mixed_in(ls, tmp_path, models):
    model, _ = models
    stream = sentences(60, 6)
    gold = sentences(6, 3, prefix="g")
    project = gold_project(tmp_path / "p", "Uncertain first", gold, rate=0.1)
    path = tmp_path / "sentences.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in stream), encoding="utf-8")
    scores = dict(zip((s["id"] for s in stream), uncertainties_of(model, stream), strict=True))
    expected = set(choose_uncertain(stream, model, 12))
    # what the test knows: for the stand-in, the hedged sentences; for any model, the top of its own ranking
    least_certain = sorted(scores.values(), reverse=True)[:12]
    assert sum(scores[i] for i in expected) >= sum(least_certain) * 0.5

    first = push_sentences(ls, project, path, model, select=Selection("uncertain", 12))
    tasks = listed(ls, first.project_id)
    ordinary = {t["data"]["sentence_id"] for t in tasks} - {g["id"] for g in gold}
    assert ordinary == expected and first.created == 12 and first.left_out == 48
    if isinstance(model, StandInModel):
        assert all(next(s for s in stream if s["id"] == i)["text"].startswith("Perhaps") for i in ordinary)
    assert first.mean_uncertainty == pytest.approx(sum(scores[i] for i in expected) / 12)
    assert first.gold == 1  # floor(12 * 0.1 / 0.9)
    assert len({stream_article(stream, i) for i in ordinary}) == 10  # spread: every article gets one first

    second = push_sentences(ls, project, path, model, select=Selection("uncertain", 12))
    rest = [s for s in stream if s["id"] not in expected]
    assert second.skipped == 12 and second.created == 12
    now = {t["data"]["sentence_id"] for t in listed(ls, first.project_id)} - {g["id"] for g in gold}
    assert now - ordinary == set(choose_uncertain(rest, model, 12))
    assert first.gold + second.gold == 2  # floor(24 / 9)


def stream_article(stream: list[dict], sid: str) -> str:
    return next(s["article_id"] for s in stream if s["id"] == sid)


def test_select_random_and_file_order_on_the_command_line(ls, tmp_path):
    folder = tmp_path / "cli"
    make_project(folder, "Random and file order", snapshot=SNAPSHOT)
    path = folder / "sentences.jsonl"
    stream = sentences(40, 4)
    path.write_text("".join(json.dumps(s) + "\n" for s in stream), encoding="utf-8")
    env = cli_env(ls)
    done = run_cli("push", path, "--select", "random", "--limit", "7", "--seed", "3", env=env, cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "push: chose 7 new sentences (random, seed 3); 33 new sentences left for a later push" in done.stdout
    project_id = int(done.stdout.split("(id ")[1].split(")")[0])
    chosen = {t["data"]["sentence_id"] for t in listed(ls, project_id)}
    assert chosen == choose_random(stream, 7, 3)
    done = run_cli("push", path, "--limit", "5", env=env, cwd=folder)  # file order: the first 5 not there yet
    assert "push: chose 5 new sentences (file); 28 new sentences left" in done.stdout, done.stdout + done.stderr
    now = {t["data"]["sentence_id"] for t in listed(ls, project_id)}
    assert now - chosen == {s["id"] for s in [s for s in stream if s["id"] not in chosen][:5]}
    # the gazetteer's predictions are what the project shows; predict with it again changes nothing
    again = run_cli("predict", "--predictor", "gazetteer", env=env, cwd=folder)
    assert again.returncode == 0, again.stderr
    assert "predict: 0 tasks got new predictions" in again.stdout
    assert "skipped 12 of 12 tasks: 0 annotated (never touched)" in again.stdout


# --- the dataset card and the release manifest note the pre-annotations ----------------------------------


def snapshot_with_predictions(path: Path) -> Path:
    """The sample's snapshot with predictions: 10 tasks by a model, 5 by the gazetteer, 2 of them by both."""
    tasks = [json.loads(line) for line in SNAPSHOT.read_text(encoding="utf-8").splitlines()]
    model = {"model_version": "builder-crf/1+0123456789ab", "score": 0.8, "result": []}
    gazetteer = {"model_version": "builder-gazetteer/1+cafe0123", "score": None, "result": []}
    for n, task in enumerate(tasks):
        task["predictions"] = ([model] if n < 10 else []) + ([gazetteer] if 8 <= n < 13 else [])
    path.write_text("".join(json.dumps(t, sort_keys=True) + "\n" for t in tasks), encoding="utf-8")
    return path


def test_the_card_and_the_manifest_name_the_model_versions_used_while_labelling(tmp_path):
    from builder.dataset.build import build_dataset
    from builder.dataset.release import build_release_folder, load_manifest
    from builder.dataset.release.verify import _card_problems

    snapshot = snapshot_with_predictions(tmp_path / "snapshot.jsonl")
    project = make_project(tmp_path / "p", "Card notes", snapshot=snapshot)
    facts = build_dataset(project, project.snapshot_path, tmp_path / "built")
    card = (tmp_path / "built" / "README.md").read_text(encoding="utf-8")
    expected = {"tasks": 65, "tasks_with": 13, "model_versions": {"builder-crf/1+0123456789ab": 10,
                                                                  "builder-gazetteer/1+cafe0123": 5}}  # fmt: skip
    assert facts.predictions == expected
    assert (
        "with pre-annotations shown to annotators on 13 of the 65 tasks (`builder-crf/1+0123456789ab`, builder's "
        "model trained on earlier annotations, on 10; `builder-gazetteer/1+cafe0123`, a gazetteer of earlier "
        "annotations, on 5)."
    ) in card
    manifest = build_release_folder(project, "2.0.0", tmp_path / "release")
    assert manifest["manifest_format"] == MANIFEST_FORMAT and manifest["predictions"] == expected
    release_card = (tmp_path / "release" / "README.md").read_text(encoding="utf-8")
    assert _card_problems(load_manifest(tmp_path / "release" / "manifest.json"), release_card) == []
    tampered = {**manifest, "predictions": {**expected, "model_versions": {"builder-crf/1+0123456789ab": 13}}}
    assert _card_problems(tampered, release_card) == [
        "predictions.model_versions: the manifest says {'builder-crf/1+0123456789ab': 13} but the card (README.md) "
        "states {'builder-crf/1+0123456789ab': 10, 'builder-gazetteer/1+cafe0123': 5}"
    ]
    assert _card_problems({**manifest, "predictions": {**expected, "tasks_with": 12}}, release_card) == [
        "predictions.tasks_with: the manifest says 12 but the card (README.md) states '13'"
    ]


def test_a_release_of_an_older_format_is_rebuilt_without_the_note(tmp_path):
    from builder.dataset.release import build_release_folder

    snapshot = snapshot_with_predictions(tmp_path / "snapshot.jsonl")
    project = make_project(tmp_path / "p", "Older format", snapshot=snapshot)
    manifest = build_release_folder(project, "1.5.0", tmp_path / "release", manifest_format=3)
    card = (tmp_path / "release" / "README.md").read_text(encoding="utf-8")
    assert "predictions" not in manifest and "shown to annotators" not in card
    assert "with pre-annotations\n   from a gazetteer of earlier annotations." in card  # format 3's words, as they were
    without = make_project(tmp_path / "q", "No predictions", snapshot=SNAPSHOT)
    build_release_folder(without, "2.0.0", tmp_path / "plain")
    card = (tmp_path / "plain" / "README.md").read_text(encoding="utf-8")
    assert "with pre-annotations shown to annotators on 0 of the 65 tasks." in card


def test_articles_across_batch_and_page_edges_are_read_whole(ls, tmp_path, models, sample_sentences):
    """An import batch and a page of tasks end where an article ends: with batches and pages of 8 tasks and the
    sample's articles of 9 to 16 sentences, every prediction (and its score) is the one made with the whole
    article (the model's proposals differ for 28 of the 65 sample sentences read alone)."""
    old, new = models
    project = make_project(tmp_path / "p", "Whole articles", snapshot=SNAPSHOT)
    _, sample = sample_sentences
    pushed = push_sentences(ls, project, sample, old, batch_size=8)

    def check(model):
        tasks = listed(ls, pushed.project_id)
        predict, score = read_with_articles(model, tasks)  # every article whole
        for task in tasks:
            proposed = predict(task)
            ours = [p for p in task["predictions"] if p["model_version"] == model.model_version]
            assert [p["result"] for p in ours] == ([json.loads(json.dumps(proposed))] if proposed else [])
            if proposed:
                assert ours[0]["score"] == pytest.approx(score(task), rel=1e-9, abs=1e-12)

    check(old)
    result = refresh_predictions(ls, project, new, page_size=8)
    assert result.tasks == sum(1 for s in sample if not s["set_aside"])  # the date lines are never tasks
    check(new)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 6), max_size=9), max_size=8),
    st.integers(1, 10),
)
def test_whole_articles_cuts_only_where_an_article_ends_or_one_is_too_long(pages, limit):
    """Runs of pages' items (each an article id; consecutive ids make an article): nothing lost or reordered,
    at most `limit` items to a run, and a run ends where an article ends unless it holds `limit` items of one
    article (a lone item among them counted: a gold question placed among an article's sentences)."""
    from builder.preannotate import whole_articles

    items = [(article, n) for n, article in enumerate(a for page in pages for a in page)]
    numbered, at = [], 0
    for page in pages:
        numbered.append(items[at : at + len(page)])
        at += len(page)
    runs = list(whole_articles(numbered, lambda item: item[0], limit))
    assert [item for run in runs for item in run] == items
    assert all(runs) and all(len(run) <= limit for run in runs)
    for run, following in zip(runs, runs[1:]):
        if run[-1][0] == following[0][0]:  # an article cut: only after `limit` of its items were held
            assert len(run) == limit and sum(1 for item in run if item[0] == run[-1][0]) >= (limit + 1) // 2
