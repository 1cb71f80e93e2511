"""Make `gum_s_types.json`: GUM's sentence type (`# s_type`) and block kinds of every gold sentence of the
24 GUM news articles (../shared/corpora/gum_news.jsonl) and the 19 interviews (gum_interview.jsonl), in order.

What a set-aside span really was: GUM counts a heading, a dateline or a photo credit as a sentence of its
own (s_type `frag`, mostly in a `head` or `figure` block), so the gold sentence spans alone cannot say
whether a line builder sets aside was a real sentence; the type can (`decl`, `q`, `wh`, `imp`, ... are).

Source: the GUM corpus V11, github.com/amir-zeldes/gum commit 72ce5ac14978a324c2fd18d49484e65292cbe316,
files `dep/GUM_news_*.conllu` and `dep/GUM_interview_*.conllu`; annotations CC BY 4.0 (Zeldes 2017, "The
GUM Corpus", Language Resources and Evaluation 51(3)).

    python tests/data/make_gum_s_types.py PATH/TO/gum/dep > tests/data/gum_s_types.json
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def sentence_types(conllu: Path) -> list[list[str]]:
    """[s_type, "block kinds"] per sentence; block kinds are the open `# newpar_block` kinds, e.g. "sp p"."""
    found: list[list[str]] = []
    blocks = ""
    for line in conllu.read_text(encoding="utf-8").splitlines():
        if line.startswith("# newpar_block = "):
            blocks = " ".join(re.findall(r"(?:^|\| )(\w+)", line[len("# newpar_block = ") :]))
        elif line.startswith("# s_type = "):
            found.append([line[len("# s_type = ") :], blocks])
    return found


def main(folder: str) -> None:
    files = sorted(Path(folder).glob("GUM_news_*.conllu")) + sorted(Path(folder).glob("GUM_interview_*.conllu"))
    types = {path.stem: sentence_types(path) for path in files}
    print(json.dumps(types, ensure_ascii=False, separators=(",", ":"), sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
