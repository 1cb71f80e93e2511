"""Make the bundled sample's annotations through a real Label Studio round trip.

    builder server start && python examples/annotate_sample.py

Splits examples/sample, pushes it, then annotates through the API as three accounts that signed
up through the invite link: for the seed article, annotator1 and annotator2 with the labels in
examples/seed_labels.json; for the GUM articles, gum-gold with GUM's gold named entities
(examples/gum_gold_entities.jsonl, made by make_sample.py) and stance `neutral`. Finally pulls
the project into annotations/snapshot.jsonl.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from builder.jsonio import read_jsonl
from builder.labelstudio.annotator_names import pseudonymizer_for
from builder.labelstudio.client import resolve_connection
from builder.labelstudio.pull import pull
from builder.labelstudio.push import push_sentences
from builder.labelstudio.replay import replay
from builder.model import STANCE
from builder.preannotate import GazetteerPredictor, region
from builder.project import load_project
from builder.sentences.splitting import split_files

HERE = Path(__file__).resolve().parent
SEED_ARTICLE = "ri-chang-dae-moscow"


def stance_item(value: str) -> dict:
    return {"from_name": STANCE, "to_name": "sentence", "type": "choices", "value": {"choices": [value]}}


def lead_time(text: str, annotator: int) -> float:
    """Deterministic, plausible seconds spent: reading time plus labelling."""
    return round(4.0 + len(text) / 18 + 2.5 * annotator, 1)


def main() -> None:
    project = load_project()
    connection = resolve_connection(project.root)
    accounts = json.loads((HERE / "sample-annotators.json").read_text(encoding="utf-8"))["accounts"]
    labels = json.loads((HERE / "seed_labels.json").read_text(encoding="utf-8"))
    gold = {d["article_id"]: d["entities"] for d in read_jsonl(HERE / "gum_gold_entities.jsonl")}
    pseudonym = pseudonymizer_for(project, project.snapshot_path, print)  # the project's key

    with tempfile.TemporaryDirectory() as tmp:
        result = split_files([HERE / "sample"], Path(tmp) / "sentences.jsonl", project)
        sentences = list(read_jsonl(result.sentences_path))
    pushed = push_sentences(connection, project, sentences, predictor=None)

    tasks = []
    for sentence in sentences:
        annotations = []
        if sentence["article_id"] == SEED_ARTICLE:
            for number, (email, given) in enumerate(
                zip(labels["annotators"], labels["sentences"][str(sentence["sentence_index"])]), 1
            ):
                spans = GazetteerPredictor(given["entities"]).predict(sentence["text"])
                annotations.append(
                    {
                        "annotator": pseudonym(email),
                        "result": spans + [stance_item(given["stance"])],
                        "lead_time": lead_time(sentence["text"], number),
                    }
                )
        else:
            spans = [
                region(e["start"] - sentence["start"], e["end"] - sentence["start"], e["text"], e["label"])
                for e in gold[sentence["article_id"]]
                if sentence["start"] <= e["start"] and e["end"] <= sentence["end"]
            ]
            annotations.append(
                {
                    "annotator": pseudonym("gum-gold@builder.local"),
                    "result": spans + [stance_item("neutral")],
                    "lead_time": lead_time(sentence["text"], 0),
                }
            )
        tasks.append({"data": {"sentence_id": sentence["id"]}, "annotations": annotations})
    replayed = replay(connection, pushed.project_id, project.name, tasks, accounts, pseudonym)
    print(f"annotations created {replayed.created}, already there {replayed.already_there}")
    pulled = pull(connection, project)
    print(f"pulled {pulled.written} annotated tasks into {pulled.path}")


if __name__ == "__main__":
    main()
