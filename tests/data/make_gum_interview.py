"""Make `gum_interview.jsonl`: GUM's Wikinews interviews with gold sentences, the held-out text of the
`rules` splitter's F1 gate (its rules were drawn from errors on all 24 GUM news articles, never on these).

Source: the GUM corpus V11, github.com/amir-zeldes/gum commit 72ce5ac14978a324c2fd18d49484e65292cbe316 (the
commit of ../shared/corpora/gum_news.jsonl), files `dep/GUM_interview_*.conllu`. Text CC BY 2.5 (Wikinews),
annotations CC BY 4.0 (Zeldes 2017, "The GUM Corpus", Language Resources and Evaluation 51(3)).

The text is rebuilt as ../shared/corpora/gum_news.jsonl was: sentences (`# text`) joined by a space within
a block, each block (`# newpar`, and the sentence count of its `# newpar_block`) on its own line. Run on
GUM's `dep/GUM_news_*.conllu` this gives gum_news.jsonl's text, sentences and paragraphs exactly.

    python tests/data/make_gum_interview.py PATH/TO/gum/dep > tests/data/gum_interview.jsonl
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def blocks(conllu: Path) -> tuple[dict, list[list[str]]]:
    """The document's metadata and its sentences, grouped in blocks (lines of the text)."""
    meta: dict = {}
    found: list[list[str]] = []
    room = None  # sentences the current block still holds, by its `# newpar_block` count
    for line in conllu.read_text(encoding="utf-8").splitlines():
        if line.startswith("# meta::"):
            key, _, value = line[len("# meta::") :].partition(" = ")
            meta[key] = value
        elif line.startswith("# newdoc id = "):
            meta["doc_id"] = line[len("# newdoc id = ") :]
        elif line == "# newpar" or line.startswith("# newpar "):
            found.append([])
            room = None
        elif line.startswith("# newpar_block = "):
            room = min(int(n) for n in re.findall(r"\((\d+) s\)", line))
        elif line.startswith("# text = "):
            if not found or room == 0:
                found.append([])
                room = None
            found[-1].append(line[len("# text = ") :])
            room = None if room is None else room - 1
    return meta, [block for block in found if block]


def document(conllu: Path) -> dict:
    meta, lines = blocks(conllu)
    text, sentences, paragraphs = "", [], []
    for block in lines:
        text += "\n" if text else ""
        start = len(text)
        for number, sentence in enumerate(block):
            text += " " if number else ""
            sentences.append([len(text), len(text) + len(sentence)])
            text += sentence
        paragraphs.append([start, len(text)])
    return {
        "doc_id": meta["doc_id"],
        "title": meta.get("title", ""),
        "genre": meta.get("genre", ""),
        "source_url": meta.get("sourceURL", ""),
        "date_created": meta.get("dateCreated", ""),
        "license": "text CC BY 2.5 (Wikinews); annotations CC BY 4.0 (GUM)",
        "text": text,
        "sentences": sentences,
        "paragraphs": paragraphs,
    }


def main() -> None:
    folder = Path(sys.argv[1])
    for conllu in sorted(folder.glob("GUM_interview_*.conllu")):
        sys.stdout.write(json.dumps(document(conllu), ensure_ascii=False, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
