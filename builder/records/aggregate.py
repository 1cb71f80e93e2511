"""From validated tasks to dataset records: one per sentence, aggregated and with every annotation.

Aggregation (docs/researchers.md, "How labels are aggregated"):
- an annotation marked ground truth in Label Studio (the star) wins, stance and entities; of several,
  the majority of their stances (a tie among them leaves it unresolved);
- `[annotation] aggregation = "majority"` (the default): the stance is the majority of submitted
  annotations, a tie stays unresolved (None);
- entity spans (`resolve_entities`, dataset format 3): the candidates are the annotators' spans
  (start, end, label), each supported by the annotators who marked exactly it; a candidate's rivals
  are the other candidates that share a character with it (the same extent with another label, a
  crossing or a nested span) and the annotators who marked nothing there. A candidate is kept when
  its support strictly beats each rival's and reaches `entity_agreement` of the sentence's annotators:
  `unanimous` when every annotator marked it, else `majority`. So `entities` holds one label per
  extent and no overlapping spans, and with two annotators a span needs both. A candidate that is
  not kept and that no rival beats is *unresolved*: listed in `unresolved_entities` (and in
  `entities`, status `unresolved`, where `[annotation] keep_unresolved_entities` says so), counted
  in the report, listed by `builder review`; one a rival beats is outvoted (in `annotations` only);
- `"dawid-skene"`: annotators are weighted by their reliability, estimated over the whole snapshot
  by the Dawid-Skene EM (builder.records.reliability), with gold answers and ground truth clamped;
  the stance is the most probable label among those the task's annotators gave (a tie in
  probability stays unresolved; the model never puts in a label nobody chose), and a span's support
  is the summed reliability of the annotators who marked it (the same rule, weighted);
- with ground truth, the entities are the spans every ground-truth annotation marked (status
  `ground_truth`: an adjudicator's decision, nested spans included), the others unresolved;
- dataset formats 1 and 2 (releases built before format 3, rebuilt as they were): a span is kept
  when at least `entity_agreement` of the annotators marked it, whatever else they marked
  (`aggregate_entities`); ground truth's spans are the first ground-truth annotation's;
- `stance_distribution`: the share of each stance among the annotations (majority), the model's
  posterior (Dawid-Skene); with ground truth, the shares among the ground-truth annotations (one-hot
  when they agree);
- gold questions (tasks whose sentence is in `[quality] gold`) never become records: they are
  counted (`gold questions` in the report) and, with Dawid-Skene, anchor the estimates.
"""

from __future__ import annotations

import operator
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Mapping

from builder.model import (
    DATASET_FORMAT,
    GROUND_TRUTH,
    MAJORITY,
    NONE,
    STANCE,
    TIE,
    UNANIMOUS,
    UNRESOLVED,
    record_keys,
)
from builder.project import Project

DAWID_SKENE = "dawid-skene"
GOLD_QUESTIONS = "gold questions"  # the report's count of gold tasks left out of the records
UNRESOLVED_ENTITIES = "unresolved entity spans"  # the report's count of spans the vote could not decide
RESOLVED_FORMAT = 3  # the dataset format from which entities are resolved (`resolve_entities`)
DISTRIBUTION_DIGITS = 6  # float32 holds about 7
EPSILON = 1e-9  # summed float weights that differ by less are equal


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
    """The spans marked by at least `share` of the annotators (each counted with its weight, 1 by default),
    whatever else they marked: dataset formats 1 and 2's rule, kept to rebuild their releases as they were."""
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


def _overlap(a: tuple, b: tuple) -> bool:
    """Whether spans (start, end, ...) `a` and `b` share a character."""
    return a[0] < b[1] and b[0] < a[1]


def resolve_entities(
    per_annotator: list[list[dict]],
    share: float,
    weights: list[float] | None = None,
    keep_unresolved: bool = False,
) -> tuple[list[dict], list[dict]]:
    """(entities, unresolved) of a sentence from each annotator's spans (sorted by (start, end, label)).

    A candidate span (start, end, label) is supported by the annotators who marked exactly it (each with
    its weight, 1 by default); its rivals are every other candidate sharing a character with it and the
    annotators who marked nothing overlapping it. It is kept when its support strictly beats each rival's
    and reaches `share` of the summed weights: status `unanimous` when every annotator marked it, else
    `majority`; no two kept spans can then overlap. A candidate not kept that no rival beats is
    unresolved (returned in `unresolved`, and in `entities` with status `unresolved` when
    `keep_unresolved`); one a rival beats is outvoted. Both lists are sorted by (start, end, label).
    """
    weights = weights or [1.0] * len(per_annotator)
    support: dict = {}
    markers: dict = {}
    spans: dict = {}
    for entities, weight in zip(per_annotator, weights):
        for entity in entities:
            key = (entity["start"], entity["end"], entity["label"])
            support[key] = support.get(key, 0) + weight
            markers[key] = markers.get(key, 0) + 1
            spans[key] = entity
    if not support:
        return [], []
    keys = sorted(support)
    needed = share * sum(weights) - EPSILON
    everyone = len(per_annotator)
    kept: list[dict] = []
    unresolved: list[dict] = []
    for key in keys:
        rivals = [support[other] for other in keys if other != key and _overlap(key, other)]
        unmarked = sum(
            weight
            for entities, weight in zip(per_annotator, weights)
            if not any(_overlap(key, (e["start"], e["end"])) for e in entities)
        )
        strongest = max(rivals, default=0.0)
        strongest = max(strongest, unmarked)
        votes = support[key]
        entity = spans[key]
        span = {"start": key[0], "end": key[1], "label": key[2], "text": entity["text"]}
        if votes >= needed and votes > strongest + EPSILON:
            kept.append({**span, "status": UNANIMOUS if markers[key] == everyone else MAJORITY})
        elif votes >= strongest - EPSILON:
            unresolved.append(span)
    if keep_unresolved and unresolved:
        kept = sorted([*kept, *({**span, "status": UNRESOLVED} for span in unresolved)], key=_span_key)
    return kept, unresolved


def adjudicated_entities(per_annotator: list[list[dict]]) -> tuple[list[dict], list[dict]]:
    """(entities, unresolved) from ground-truth annotations: the spans all of them marked (an adjudicator's
    decision, overlapping ones included), status `ground_truth`; the spans only some marked are unresolved."""
    counts: dict = {}
    spans: dict = {}
    for entities in per_annotator:
        for entity in entities:
            key = (entity["start"], entity["end"], entity["label"])
            counts[key] = counts.get(key, 0) + 1
            spans.setdefault(key, entity)
    kept, unresolved = [], []
    for key in sorted(counts):
        span = {"start": key[0], "end": key[1], "label": key[2], "text": spans[key]["text"]}
        if counts[key] == len(per_annotator):
            kept.append({**span, "status": GROUND_TRUTH})
        else:
            unresolved.append(span)
    return kept, unresolved


def stance_shares(stances: list[str], labels: list[str]) -> list[float]:
    """The share of each label (in `labels`' order) among `stances`."""
    counts = dict.fromkeys(labels, 0)
    for stance in stances:
        if stance in counts:
            counts[stance] += 1
    total = sum(counts.values())
    return [round(counts[label] / total, DISTRIBUTION_DIGITS) if total else 0.0 for label in labels]


def task_to_record(task: dict, project: Project, dataset_format: int = DATASET_FORMAT) -> dict:
    """The record of a validated task, as dataset format `dataset_format` has it (entities resolved from 3 on)."""
    return RecordMaker(project, dataset_format).from_task(task)


class RecordMaker:
    """A sentence's record from its annotations: the one place the aggregation rule is written.

    `task_to_record` (a validated task) and validation's fast path (`builder.records.validate`, a task decoded
    straight from its JSON line) both make their records with `record`, so a rule changed here changes
    both. What the project fixes (labels, the entity share, the dataset format) is read once per maker, and
    the stance columns are remembered per tuple of stances: a snapshot has few of them.
    """

    SUMMARIES = 10_000  # tuples of stances remembered at most (a hostile snapshot cannot grow it further)

    def __init__(self, project: Project, dataset_format: int = DATASET_FORMAT) -> None:
        self.stance_values = project.stance_values
        self.share = project.entity_agreement
        self.keep_unresolved = project.keep_unresolved_entities
        self.target = project.target
        self.resolved = dataset_format >= RESOLVED_FORMAT
        self._summaries: dict[tuple, tuple] = {}
        # A scheme without stance or entities: its records and annotations hold only its own half's keys
        # (builder.model.record_keys); None for a both-scheme project, whose records are made as they always were.
        self.partial = None
        if not (project.has_stance and project.has_entities):
            self.partial = record_keys(project, dataset_format)

    def from_task(self, task: dict) -> dict:
        """The record of a validated task."""
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
        return self.record(
            individual,
            data["sentence_id"],
            data["article_id"],
            data["sentence_index"],
            data["text"],
            data.get("target"),
        )

    def record(
        self,
        individual: list[dict],
        sentence_id: str,
        article_id: str,
        sentence_index: int,
        text: str,
        target: str | None,
    ) -> dict:
        """The record of a sentence from its annotations' entries (`annotator`, `stance`, `entities` sorted by
        (start, end, label), `lead_time`, `ground_truth`), in any order: sorted here by annotator, in place."""
        if len(individual) > 1:
            individual.sort(key=_by_annotator)
        truth = [a for a in individual if a["ground_truth"]]
        unresolved: list[dict] = []
        if truth:
            stance, status = aggregate_stance([a["stance"] for a in truth])
            status = GROUND_TRUTH if stance is not None else status
            if self.resolved:
                entities, unresolved = adjudicated_entities([a["entities"] for a in truth])
            else:
                entities = (
                    truth[0]["entities"]
                    if stance is not None
                    else aggregate_entities([a["entities"] for a in truth], 1.0)
                )
            distribution = stance_shares([a["stance"] for a in truth], self.stance_values)
            agreement = _agreement(individual, stance)
        else:
            stances = tuple([a["stance"] for a in individual])
            summary = self._summaries.get(stances) or self._stance_summary(stances)
            stance, status, shares, agreement = summary
            distribution = list(shares)
            if self.resolved:
                entities, unresolved = resolve_entities(
                    [a["entities"] for a in individual], self.share, keep_unresolved=self.keep_unresolved
                )
            else:
                entities = aggregate_entities([a["entities"] for a in individual], self.share)
        record = {
            "id": sentence_id,
            "article_id": article_id,
            "sentence_index": sentence_index,
            "text": text,
            "target": target or self.target,
            "stance": stance,
            "stance_status": status,
            "stance_distribution": distribution,
            "entities": entities,
            "unresolved_entities": unresolved,
            "annotations": individual,
            "num_annotators": len(individual),
            "agreement": agreement,
        }
        if not self.resolved:
            del record["unresolved_entities"]
        if self.partial is not None:
            keys, annotation_keys = self.partial
            record = {key: record[key] for key in keys}
            record["annotations"] = [{key: a[key] for key in annotation_keys} for a in individual]
        return record

    def _stance_summary(self, stances: tuple) -> tuple:
        """(stance, status, distribution, agreement) of a sentence whose annotators, none ground truth, chose
        `stances`, remembered (`record` looks it up first)."""
        stance, status = aggregate_stance(list(stances))
        individual = [{"stance": one} for one in stances]
        shares = tuple(stance_shares(list(stances), self.stance_values))
        summary = stance, status, shares, _agreement(individual, stance)
        if len(self._summaries) < self.SUMMARIES:
            self._summaries[stances] = summary
        return summary


_by_annotator = operator.itemgetter("annotator")


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


def to_records(
    tasks: Iterable[dict],
    project: Project,
    gold: Mapping | None = None,
    report=None,
    dataset_format: int = DATASET_FORMAT,
) -> Iterator[dict]:
    """The library stage: one record per validated task (as `dataset_format` has it), gold questions left out
    (counted in `report`).

    With `project.aggregation == "dawid-skene"` the tasks are read once to fit the model (their
    majority records spooled to an anonymous temporary file, the answers kept as integer arrays)
    and the records are then streamed from the spool with the model's labels.
    """
    gold = gold or {}
    if project.aggregation == DAWID_SKENE and project.has_stance:  # Dawid-Skene weighs stance answers only
        yield from _dawid_skene_records(tasks, project, gold, report, dataset_format)
        return
    make = RecordMaker(project, dataset_format).from_task
    for task in tasks:
        if task["data"]["sentence_id"] in gold:
            _count_gold(report)
            continue
        yield make(task)


def _count_gold(report) -> None:
    if report is not None:
        report.keep(GOLD_QUESTIONS)


def _dawid_skene_records(
    tasks: Iterable[dict], project: Project, gold: Mapping, report, dataset_format: int
) -> Iterator[dict]:
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
        make = RecordMaker(project, dataset_format).from_task
        for task in tasks:
            record = make(task)
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
    weights = [reliability[a["annotator"]] for a in individual]
    if "unresolved_entities" in record:  # dataset format 3 on
        record["entities"], record["unresolved_entities"] = resolve_entities(
            [a["entities"] for a in individual], project.entity_agreement, weights, project.keep_unresolved_entities
        )
    else:
        record["entities"] = aggregate_entities([a["entities"] for a in individual], project.entity_agreement, weights)
    record["agreement"] = _agreement(individual, stance)
    return record
