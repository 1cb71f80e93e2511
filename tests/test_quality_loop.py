"""Quality control on the real Label Studio, with simulated annotators as separate accounts.

Four accounts annotate every one of 300 tasks (240 sentences and the 60 gold questions `builder push`
mixed in): two accurate annotators (right on exactly 95% of the tasks), a careless one (70%) and one
answering at random. Then `builder pull`, `builder quality` and two builds, majority and Dawid-Skene.
"""

from __future__ import annotations

import json
import random

import pytest

from builder.sentences.segmenter import sentence_id

from .conftest import cli_env, make_project, run_cli

LABELS = ["favor", "against", "neutral"]
ARTICLES, PER_ARTICLE, GOLD_ARTICLES = 20, 12, 5
SIMULATED = {"accurate-a": 0.95, "accurate-b": 0.95, "careless": 0.70, "random": None}


def _sentences(prefix: str, articles: int) -> list[dict]:
    sentences = []
    for a in range(articles):
        texts = [
            f"Officials in article {prefix}{a} said thing {i} about the talks in Moscow." for i in range(PER_ARTICLE)
        ]
        offset = 0
        for i, text in enumerate(texts):
            sentences.append(
                {
                    "id": sentence_id(f"{prefix}-article-{a:02d}", text, 0),  # as `builder split` makes it
                    "article_id": f"{prefix}-article-{a:02d}",
                    "article_title": f"Article {prefix}{a}",
                    "sentence_index": i,
                    "occurrence": 0,
                    "text": text,
                    "prev_text": texts[i - 1] if i else "",
                    "next_text": texts[i + 1] if i + 1 < len(texts) else "",
                    "start": offset,
                    "end": offset + len(text),
                }
            )
            offset += len(text) + 1
    return sentences


def _answers(rate: float | None, truth: dict[str, str], gold: set[str], rng: random.Random) -> dict[str, str]:
    """Each sentence id -> this annotator's stance: wrong on exactly (1 - rate) of the gold questions and of
    the other sentences (the simulated rate holds on both), or at random."""
    if rate is None:
        return {i: rng.choice(LABELS) for i in sorted(truth)}
    wrong: set[str] = set()
    for part in (sorted(gold), sorted(set(truth) - gold)):
        wrong |= set(rng.sample(part, round((1 - rate) * len(part))))
    return {i: rng.choice([x for x in LABELS if x != truth[i]]) if i in wrong else truth[i] for i in sorted(truth)}


@pytest.fixture(scope="module")
def annotated(ls_server, tmp_path_factory):
    """A project folder whose Label Studio project the four simulated annotators have labelled, pulled."""
    from builder.jsonio import write_jsonl
    from builder.labelstudio.client import Connection
    from builder.labelstudio.push import push_sentences
    from builder.labelstudio.users import annotator_connection
    from builder.project import load_project

    admin = Connection(ls_server.url, ls_server.token, "environment")
    folder = tmp_path_factory.mktemp("quality-loop")
    rng = random.Random(13)
    sentences, gold = _sentences("n", ARTICLES), _sentences("q", GOLD_ARTICLES)
    truth = {s["id"]: rng.choice(LABELS) for s in sentences + gold}
    write_jsonl(folder / "gold.jsonl", [{**g, "stance": truth[g["id"]], "entities": []} for g in gold])
    write_jsonl(folder / "sentences.jsonl", sentences)
    project = make_project(folder, "quality loop")
    text = project.source.read_text(encoding="utf-8").replace(
        "annotators_per_sentence = 2", "annotators_per_sentence = 4"
    )
    text += '\n[quality]\ngold = "gold.jsonl"\ngold_rate = 0.2\nmin_gold_accuracy = 0.8\n'
    project.source.write_text(text, encoding="utf-8")
    project = load_project(project.source)
    pushed = push_sentences(admin, project, folder / "sentences.jsonl", predictor=None, progress=False)
    assert (pushed.created, pushed.gold) == (240, 60)

    tasks = [
        (t.id, t.data["sentence_id"]) for t in admin.client().tasks.list(project=_project_id(admin), page_size=500)
    ]
    assert len(tasks) == 300
    project_id = _project_id(admin)
    for name, rate in SIMULATED.items():
        answers = _answers(rate, truth, {g["id"] for g in gold}, rng)
        me = annotator_connection(admin, f"{name}@quality.example.org", f"pw-{name}-{rng.random()}")
        _annotate_in_bulk(admin, me, project_id, name, [(task_id, answers[sentence]) for task_id, sentence in tasks])
    _post(admin, "api/dm/actions", {"selectedItems": {"all": True, "excluded": []}},
          {"id": "delete_tasks_predictions", "project": project_id})  # fmt: skip
    env = cli_env(admin)
    pulled = run_cli("pull", cwd=folder, env=env)
    assert pulled.returncode == 0, pulled.stderr
    return folder, env, truth, {g["id"] for g in gold}


def _post(connection, path: str, body, params: dict | None = None) -> None:
    import orjson

    response = connection.http().request(
        path, method="POST", params=params, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (200, 201), response.text


def _annotate_in_bulk(admin, annotator, project_id: int, name: str, answers: list[tuple[int, str]]) -> None:
    """`annotator`'s stance answer on each task, in two requests rather than one per task (the fixture's time): the
    answers imported as predictions of a model version of their own, which the annotator's account turns into
    its annotations (Label Studio's "predictions to annotations" action: completed by that account). The
    fixture deletes the predictions once every annotator has answered, so the snapshot holds only annotations."""
    version = f"simulated-{name}"
    predictions = [
        {"task": task_id, "model_version": version, "score": 1.0,
         "result": [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}}]}
        for task_id, stance in answers
    ]  # fmt: skip
    _post(admin, f"api/projects/{project_id}/import/predictions", predictions)
    _post(annotator, "api/dm/actions", {"selectedItems": {"all": True, "excluded": []}, "model_version": version},
          {"id": "predictions_to_annotations", "project": project_id})  # fmt: skip


def _project_id(connection) -> int:
    return next(p.id for p in connection.client().projects.list() if p.title == "quality loop")


def test_the_report_ranks_the_simulated_annotators_and_measures_their_gold_accuracy(annotated):
    folder, env, _, _ = annotated
    ran = run_cli("quality", "--format", "json", cwd=folder, env=env)
    assert ran.returncode == 0, ran.stderr
    rows = json.loads(ran.stdout)
    assert len(rows) == 4 and all(row["gold_answers"] == 60 for row in rows)
    ranked = sorted(rows, key=lambda row: row["gold_accuracy"], reverse=True)
    accuracies = [row["gold_accuracy"] for row in ranked]
    assert accuracies[0] >= accuracies[1] > accuracies[2] > accuracies[3]
    for got, simulated in zip(accuracies, [0.95, 0.95, 0.70, 1 / 3], strict=True):
        assert abs(got - simulated) <= 0.07, (accuracies, simulated)
    assert [row["flagged"] for row in ranked] == [False, False, True, True]
    assert "4 annotators; 2 below min_gold_accuracy 0.8" in ran.stderr, ran.stderr


def _built(folder, env, aggregation: str) -> dict:
    """Sentence id -> (stance name or None, {annotator: stance name}, stance_distribution) of a fresh build."""
    import datasets

    source = folder / "builder.toml"
    text = source.read_text(encoding="utf-8").replace('aggregation = "dawid-skene"\n', "")
    if aggregation != "majority":
        text = text.replace(
            "annotators_per_sentence = 4", f'annotators_per_sentence = 4\naggregation = "{aggregation}"'
        )
    source.write_text(text, encoding="utf-8")
    out = folder / f"dist-{aggregation}"
    ran = run_cli("build", "-o", out, cwd=folder, env=env)
    assert ran.returncode == 0, ran.stderr
    assert "60 gold questions in the snapshot, left out" in ran.stdout
    loaded = datasets.load_dataset(str(out))
    # The simulated articles share a template: near-duplicates by their word shingles, they form one group in
    # one split (which split, the test does not care).
    names = next(iter(loaded.values())).features["stance"].names

    def name(code: int) -> str | None:
        return names[code] if code >= 0 else None

    return {
        row["id"]: (
            name(row["stance"]),
            {a["annotator"]: name(a["stance"]) for a in row["annotations"]},
            row["stance_distribution"],
        )
        for split in loaded.values()
        for row in split
    }


def test_dawid_skene_is_closer_to_the_truth_and_no_gold_question_reaches_the_dataset(annotated):
    folder, env, truth, gold_ids = annotated
    majority, modelled = _built(folder, env, "majority"), _built(folder, env, "dawid-skene")
    assert set(majority) == set(modelled) and len(majority) == 240
    assert not set(majority) & gold_ids
    right = {
        "majority": sum(stance == truth[i] for i, (stance, _, _) in majority.items()),
        "dawid-skene": sum(stance == truth[i] for i, (stance, _, _) in modelled.items()),
    }
    assert right["dawid-skene"] > right["majority"], right
    for stance, _, distribution in modelled.values():
        assert len(distribution) == 3 and distribution[LABELS.index(stance)] == max(distribution)


def test_a_spammer_cannot_push_a_label_past_two_accurate_annotators(annotated):
    folder, env, _, _ = annotated
    modelled = _built(folder, env, "dawid-skene")
    rows = json.loads(run_cli("quality", "--format", "json", cwd=folder, env=env).stdout)
    by_accuracy = sorted(rows, key=lambda r: r["gold_accuracy"], reverse=True)
    accurate = [r["annotator"] for r in by_accuracy[:2]]
    agreeing = 0
    for sentence, (stance, labels, _) in modelled.items():
        assert len(labels) == 4
        if labels[accurate[0]] == labels[accurate[1]]:
            agreeing += 1
            assert stance == labels[accurate[0]], sentence
    assert agreeing > 200  # two annotators right on 95% agree on most sentences
