"""Rebuild the claims example from ../shared/corpora/claim_stance.jsonl (IBM Debater Claim Stance, CC BY-SA 3.0).

    python examples/claims/make_claims.py

Writes, in examples/claims/:
- sample/claims.jsonl: a sample of the corpus's claims (MOTIONS motions, CLAIMS_PER_MOTION claims each, in
  corpus order), one article per claim in builder's JSONL input format, its motion as the article's `target`;
- annotations/snapshot.jsonl: the corpus's own stance label of each claim as a pulled task would hold it (one
  annotation by the account in annotators.json, PRO as favor, CON as against), which `builder run` replays into
  Label Studio. These labels are IBM's annotators', never new annotation; the card's sources say so.

The claims are Wikipedia sentences under CC BY-SA 3.0: the sample is shared alike, with attribution in
builder.toml's `[[dataset.sources]]` (hence in the dataset card).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[2] / "shared" / "corpora" / "claim_stance.jsonl"
MOTIONS = 8
CLAIMS_PER_MOTION = 12
STANCE = {"PRO": "favor", "CON": "against"}
ANNOTATOR = "annotator-1b3d5f7a9c0e"  # the pseudonym of the corpus's labels (annotators.json)


def sample(rows: list[dict]) -> list[dict]:
    """The first CLAIMS_PER_MOTION claims of each of the first MOTIONS motions, in corpus order."""
    motions: dict[int, list[dict]] = {}
    for row in rows:
        if row["topic_id"] in motions or len(motions) < MOTIONS:
            claims = motions.setdefault(row["topic_id"], [])
            if len(claims) < CLAIMS_PER_MOTION:
                claims.append(row)
    return [row for claims in motions.values() for row in claims]


def main(corpus: Path = CORPUS) -> None:
    sys.path.insert(0, str(HERE.parents[1]))
    from builder.project import load_project
    from builder.sentences.splitting import split_files

    rows = sample([json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()])
    articles = [{"id": r["id"], "text": r["text"], "target": r["target"]} for r in rows]
    (HERE / "sample").mkdir(exist_ok=True)
    (HERE / "sample" / "claims.jsonl").write_text(
        "".join(json.dumps(a, ensure_ascii=False, sort_keys=True) + "\n" for a in articles), encoding="utf-8"
    )
    stance = {r["id"]: STANCE[r["stance_orig"]] for r in rows}
    project = load_project(HERE / "builder.toml")
    with tempfile.TemporaryDirectory() as work:
        split = split_files([HERE / "sample"], Path(work) / "sentences.jsonl", project)
        sentences = [json.loads(line) for line in split.sentences_path.read_text(encoding="utf-8").splitlines()]
    tasks = []
    for task_id, sentence in enumerate((s for s in sentences if not s.get("set_aside")), 1):
        data = {("sentence_id" if key == "id" else key): value for key, value in sentence.items()}
        data.pop("set_aside", None)
        result = [
            {
                "from_name": "stance",
                "to_name": "sentence",
                "type": "choices",
                "value": {"choices": [stance[sentence["article_id"]]]},
            }
        ]
        annotation = {
            "annotator": ANNOTATOR,
            "ground_truth": False,
            "id": task_id,
            "lead_time": None,
            "result": result,
            "was_cancelled": False,
        }
        tasks.append({"annotations": [annotation], "data": data, "predictions": [], "task_id": task_id})
    (HERE / "annotations").mkdir(exist_ok=True)
    (HERE / "annotations" / "snapshot.jsonl").write_text(
        "".join(json.dumps(t, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n" for t in tasks),
        encoding="utf-8",
    )
    print(f"{len(articles)} claims of {len({r['topic_id'] for r in rows})} motions; {len(tasks)} labelled sentences")


if __name__ == "__main__":
    main(*(Path(arg) for arg in sys.argv[1:]))
