"""From validated tasks to dataset records: one per sentence, aggregated and with every annotation.

Aggregation (README, "How labels are aggregated"):
- an annotation marked ground truth in Label Studio (the star) wins, stance and entities; of several,
  the majority of their stances (a tie among them leaves it unresolved);
- `[annotation] aggregation = "majority"` (the default): the stance is the majority of submitted
  annotations, a tie stays unresolved (None); an entity span (start, end, label) is kept when at
  least `annotation.entity_agreement` of the task's annotators marked exactly that span with that label;
- `"dawid-skene"`: annotators are weighted by their reliability, estimated over the whole snapshot
  by the Dawid-Skene EM (builder.records.reliability), with gold answers and ground truth clamped;
  the stance is the most probable label among those the task's annotators gave (a tie in
  probability stays unresolved; the model never puts in a label nobody chose), and a span is kept
  when the reliability-weighted share of the task's annotators that marked it reaches
  `entity_agreement`;
- `stance_distribution`: the share of each stance among the annotations (majority), the model's
  posterior (Dawid-Skene); with ground truth, the shares among the ground-truth annotations (one-hot
  when they agree);
- gold questions (tasks whose sentence is in `[quality] gold`) never become records: they are
  counted (`gold questions` in the report) and, with Dawid-Skene, anchor the estimates.
"""

from __future__ import annotations

import tempfile
from array import array
from collections.abc import Iterable, Iterator, Mapping

from builder.model import GROUND_TRUTH, MAJORITY, NONE, STANCE, TIE, UNANIMOUS
from builder.project import Project

DAWID_SKENE = "dawid-skene"
GOLD_QUESTIONS = "gold questions"  # the report's count of gold tasks left out of the records
DISTRIBUTION_DIGITS = 6  # float32 holds about 7


def _labels_of(annotation: dict) -> tuple[str, list[dict]]:
    stance, entities = None, []
    for item in annotation["result"]:
        value = item["value"]
        if item["from_name"] == STANCE:
            stance = value["choices"][0]
        else:
            entities.append(
                {"start": value["start"], "end": value["end"], "label": value["labels"][0], "text": value["text"]}
            )
    if len(entities) > 1:
        entities.sort(key=_span_key)
    return stance, entities


def _span_key(entity: dict) -> tuple:
    return entity["start"], entity["end"], entity["label"]


def aggregate_stance(stances: list[str]) -> tuple[str | None, str]:
    """(stance, status): unanimous, majority, tie or none."""
    if not stances:
        return None, NONE
    counts: dict = {}
    for stance in stances:
        counts[stance] = counts.get(stance, 0) + 1
    if len(counts) == 1:
        return stances[0], UNANIMOUS
    top = max(counts.values())
    winners = [stance for stance, n in counts.items() if n == top]
    return (None, TIE) if len(winners) > 1 else (winners[0], MAJORITY)


def aggregate_entities(per_annotator: list[list[dict]], share: float, weights: list[float] | None = None) -> list[dict]:
    """The spans marked by at least `share` of the annotators (each counted with its weight, 1 by default)."""
    weights = weights or [1.0] * len(per_annotator)
    votes: dict = {}
    spans: dict = {}
    for entities, weight in zip(per_annotator, weights):
        for entity in entities:
            key = (entity["start"], entity["end"], entity["label"])
            votes[key] = votes.get(key, 0) + weight
            spans[key] = entity
    needed = share * sum(weights) - 1e-9
    return [spans[key] for key in sorted(votes) if votes[key] >= needed]


def stance_shares(stances: list[str], labels: list[str]) -> list[float]:
    """The share of each label (in `labels`' order) among `stances`."""
    counts = dict.fromkeys(labels, 0)
    for stance in stances:
        if stance in counts:
            counts[stance] += 1
    total = sum(counts.values())
    return [round(counts[label] / total, DISTRIBUTION_DIGITS) if total else 0.0 for label in labels]


def task_to_record(task: dict, project: Project) -> dict:
    data = task["data"]
    individual = []
    for annotation in task["annotations"]:
        stance, entities = _labels_of(annotation)
        individual.append(
            {
                "annotator": annotation["annotator"],
                "stance": stance,
                "entities": entities,
                "lead_time": annotation.get("lead_time"),
                "ground_truth": bool(annotation.get("ground_truth")),
            }
        )
    if len(individual) > 1:
        individual.sort(key=_by_annotator)
    truth = [a for a in individual if a["ground_truth"]]
    if truth:
        stance, status = aggregate_stance([a["stance"] for a in truth])
        status = GROUND_TRUTH if stance is not None else status
        entities = (
            truth[0]["entities"] if stance is not None else aggregate_entities([a["entities"] for a in truth], 1.0)
        )
        distribution = stance_shares([a["stance"] for a in truth], project.stance_values)
    else:
        stances = [a["stance"] for a in individual]
        stance, status = aggregate_stance(stances)
        entities = aggregate_entities([a["entities"] for a in individual], project.entity_agreement)
        distribution = stance_shares(stances, project.stance_values)
    return {
        "id": data["sentence_id"],
        "article_id": data["article_id"],
        "sentence_index": data["sentence_index"],
        "text": data["text"],
        "target": data.get("target") or project.target,
        "stance": stance,
        "stance_status": status,
        "stance_distribution": distribution,
        "entities": entities,
        "annotations": individual,
        "num_annotators": len(individual),
        "agreement": _agreement(individual, stance),
    }


def _by_annotator(annotation: dict) -> str:
    return annotation["annotator"]


def _agreement(individual: list[dict], stance: str | None) -> float | None:
    """The share of annotators agreeing with the aggregated stance (with the largest group when unresolved)."""
    if len(individual) < 2:
        return None
    if stance is not None:
        agreeing = sum(1 for a in individual if a["stance"] == stance)
    else:
        counts: dict = {}
        for a in individual:
            counts[a["stance"]] = counts.get(a["stance"], 0) + 1
        agreeing = max(counts.values())
    return round(agreeing / len(individual), 4)


def to_records(tasks: Iterable[dict], project: Project, gold: Mapping | None = None, report=None) -> Iterator[dict]:
    """The library stage: one record per validated task, gold questions left out (counted in `report`).

    With `project.aggregation == "dawid-skene"` the tasks are read once to fit the model (their
    majority records spooled to an anonymous temporary file, the answers kept as integer arrays)
    and the records are then streamed from the spool with the model's labels.
    """
    gold = gold or {}
    if project.aggregation == DAWID_SKENE:
        yield from _dawid_skene_records(tasks, project, gold, report)
        return
    for task in tasks:
        if task["data"]["sentence_id"] in gold:
            _count_gold(report)
            continue
        yield task_to_record(task, project)


def _count_gold(report) -> None:
    if report is not None:
        report.keep(GOLD_QUESTIONS)


def _dawid_skene_records(tasks: Iterable[dict], project: Project, gold: Mapping, report) -> Iterator[dict]:
    import numpy as np
    import orjson

    from builder.records.reliability import dawid_skene

    labels = project.stance_values
    label_index = {label: i for i, label in enumerate(labels)}
    workers: dict[str, int] = {}
    answer_task, answer_worker, answer_label = array("q"), array("q"), array("q")
    known_task, known_label = array("q"), array("q")  # gold answers and ground truth, clamped
    spooled = array("q")  # the task index of each spooled record, in order
    with tempfile.TemporaryFile() as spool:  # anonymous: nothing is left behind, however this ends
        n_tasks = 0
        for task in tasks:
            record = task_to_record(task, project)
            index = n_tasks
            n_tasks += 1
            for annotation in record["annotations"]:
                answer_task.append(index)
                answer_worker.append(workers.setdefault(annotation["annotator"], len(workers)))
                answer_label.append(label_index[annotation["stance"]])
            answer = gold.get(record["id"])
            if answer is not None:
                known_task.append(index)
                known_label.append(label_index[answer.stance])
                _count_gold(report)
                continue
            if record["stance_status"] == GROUND_TRUTH:
                known_task.append(index)
                known_label.append(label_index[record["stance"]])
            spool.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
            spooled.append(index)
        fit = dawid_skene(
            np.frombuffer(answer_task, dtype=np.int64),
            np.frombuffer(answer_worker, dtype=np.int64),
            np.frombuffer(answer_label, dtype=np.int64),
            n_tasks,
            len(workers),
            len(labels),
            known=(np.frombuffer(known_task, dtype=np.int64), np.frombuffer(known_label, dtype=np.int64)),
        )
        del answer_task, answer_worker, answer_label
        reliability = {name: float(fit.reliability[i]) for name, i in workers.items()}
        spool.seek(0)
        for line, index in zip(spool, spooled):
            record = orjson.loads(line)
            yield _reweighted(record, project, fit.posteriors[index], reliability)


def _reweighted(record: dict, project: Project, posterior, reliability: dict) -> dict:
    """A majority record with Dawid-Skene's stance, distribution and weighted entity vote (ground truth kept)."""
    individual = record["annotations"]
    if not individual or any(a["ground_truth"] for a in individual):
        return record
    # The most probable stance among those the sentence's annotators gave: the model weighs them, it never
    # puts in a label nobody chose (one annotator who errs the same way on gold keeps their own answer).
    labels = project.stance_values
    given = sorted({labels.index(a["stance"]) for a in individual}, key=lambda i: -posterior[i])
    best = given[0]
    tie = len(given) > 1 and posterior[given[0]] - posterior[given[1]] <= 1e-9
    stance = None if tie else labels[best]
    if stance is None:
        status = TIE
    else:
        status = UNANIMOUS if all(a["stance"] == stance for a in individual) else MAJORITY
    record["stance"] = stance
    record["stance_status"] = status
    record["stance_distribution"] = [round(float(p), DISTRIBUTION_DIGITS) for p in posterior]
    record["entities"] = aggregate_entities(
        [a["entities"] for a in individual],
        project.entity_agreement,
        [reliability[a["annotator"]] for a in individual],
    )
    record["agreement"] = _agreement(individual, stance)
    return record
