"""From validated tasks to dataset records: one per sentence, aggregated and with every annotation.

Aggregation (README, "How labels are aggregated"):
- an annotation marked ground truth in Label Studio (the star) wins, stance and entities;
  several ground-truth annotations that disagree on stance leave it unresolved;
- otherwise the stance is the majority of submitted annotations; a tie stays unresolved (None);
- an entity span (start, end, label) is kept when at least `annotation.entity_agreement` of the
  task's annotators marked exactly that span with that label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from builder.model import GROUND_TRUTH, MAJORITY, NONE, STANCE, TIE, UNANIMOUS
from builder.project import Project


def _labels_of(annotation: dict) -> tuple[str, list[dict]]:
    stance, entities = None, []
    for item in annotation["result"]:
        if item["from_name"] == STANCE:
            stance = item["value"]["choices"][0]
        else:
            value = item["value"]
            entities.append(
                {"start": value["start"], "end": value["end"], "label": value["labels"][0], "text": value["text"]}
            )
    entities.sort(key=lambda e: (e["start"], e["end"], e["label"]))
    return stance, entities


def aggregate_stance(stances: list[str]) -> tuple[str | None, str]:
    """(stance, status): unanimous, majority, tie or none."""
    if not stances:
        return None, NONE
    counts = Counter(stances).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None, TIE
    return counts[0][0], UNANIMOUS if len(counts) == 1 else MAJORITY


def aggregate_entities(per_annotator: list[list[dict]], share: float) -> list[dict]:
    votes: Counter = Counter()
    spans: dict = {}
    for entities in per_annotator:
        for entity in entities:
            key = (entity["start"], entity["end"], entity["label"])
            votes[key] += 1
            spans[key] = entity
    needed = share * len(per_annotator)
    return [spans[key] for key in sorted(votes) if votes[key] >= needed - 1e-9]


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
    individual.sort(key=lambda a: a["annotator"])
    truth = [a for a in individual if a["ground_truth"]]
    if truth:
        stance, status = aggregate_stance([a["stance"] for a in truth])
        status = GROUND_TRUTH if stance is not None else status
        entities = (
            truth[0]["entities"] if stance is not None else aggregate_entities([a["entities"] for a in truth], 1.0)
        )
    else:
        stance, status = aggregate_stance([a["stance"] for a in individual])
        entities = aggregate_entities([a["entities"] for a in individual], project.entity_agreement)
    agreeing = (
        sum(1 for a in individual if a["stance"] == stance)
        if stance is not None
        else max(Counter(a["stance"] for a in individual).values())
    )
    return {
        "id": data["sentence_id"],
        "article_id": data["article_id"],
        "sentence_index": data["sentence_index"],
        "text": data["text"],
        "target": data.get("target") or project.target,
        "stance": stance,
        "stance_status": status,
        "entities": entities,
        "annotations": individual,
        "num_annotators": len(individual),
        "agreement": round(agreeing / len(individual), 4) if len(individual) > 1 else None,
    }


def to_records(tasks: Iterable[dict], project: Project) -> Iterator[dict]:
    """The library stage: one record per validated task."""
    for task in tasks:
        yield task_to_record(task, project)
