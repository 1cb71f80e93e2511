"""GUM's genres as gum_news.jsonl is shaped: the text, gold sentences and entity mentions of every document,
read from the GUM corpus's own git repository (never copied into this one).

Source: the GUM corpus V11, github.com/amir-zeldes/gum (commit 72ce5ac14978a324c2fd18d49484e65292cbe316 was
the commit of ../shared/corpora/gum_news.jsonl), files `dep/GUM_<genre>_*.conllu`. Licence: the text of each
genre is its source's (Wikinews, Wikivoyage, wikiHow, Wikipedia: CC BY(-SA); others as GUM's README says),
annotations CC BY 4.0 (Zeldes 2017, "The GUM Corpus", Language Resources and Evaluation 51(3)). So the
converted text lives in a cache folder outside the repository (`CACHE`, default ~/.cache/builder/gum/).

The text is rebuilt as tests/data/make_gum_interview.py rebuilds it (sentences from `# text` joined by a
space within a block, each block on its own line); mentions come from the `Entity=` brackets of the MISC
column (GUM's coreference layer: `(id-etype-infstat-salience-centering-minspan-link[-identity]` opens one,
`id)` closes it), with `identity` (a Wikipedia title or null) and `proper` (every head token of the mention,
one whose syntactic head lies outside it, is a PROPN), as gum_news.jsonl's `entity_meta` has them.
Reddit documents are left out: GUM ships their text as underscores.

    python bench/gum_genres.py [--source GIT_DIR]   # writes the cache and prints what it holds
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

CACHE = Path(os.environ.get("BUILDER_GUM_CACHE", Path.home() / ".cache" / "builder" / "gum"))
GIT_DIRS = (Path("/work/.mirror/amir-zeldes+gum/repo"),)  # where the `fetch` tool leaves a bare copy
SKIPPED_GENRES = ("reddit",)
OPEN = re.compile(r"\((\d+)-([^()]+)")
CLOSE = re.compile(r"^(\d+)\)")


def _git(git_dir: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), *args], check=True, capture_output=True, text=True, encoding="utf-8"
    ).stdout


def parse_entities(value: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The mentions a token's `Entity=` value opens ((id, fields), in order) and the ids it closes; an
    opening followed by ")" opens and closes on this token."""
    opened, closed = [], []
    i = 0
    while i < len(value):
        if value[i] == "(":
            m = OPEN.match(value, i)
            fields = m.group(2)
            i = m.end()
            opened.append((m.group(1), fields))
            if i < len(value) and value[i] == ")":
                closed.append(m.group(1))
                i += 1
        else:
            m = CLOSE.match(value[i:])
            closed.append(m.group(1))
            i += m.end()
    return opened, closed


def document(conllu: str) -> dict:
    """One GUM document (the text of a .conllu file) in gum_news.jsonl's shape."""
    meta: dict = {}
    blocks: list[list[dict]] = []
    room = None
    sentence: dict | None = None
    for line in conllu.splitlines():
        if line.startswith("# meta::"):
            key, _, value = line[len("# meta::") :].partition(" = ")
            meta[key] = value
        elif line.startswith("# newdoc id = "):
            meta["doc_id"] = line[len("# newdoc id = ") :]
        elif line == "# newpar" or line.startswith("# newpar "):
            blocks.append([])
            room = None
        elif line.startswith("# newpar_block = "):
            room = min(int(n) for n in re.findall(r"\((\d+) s\)", line))
        elif line.startswith("# text = "):
            if not blocks or room == 0:
                blocks.append([])
                room = None
            sentence = {"text": line[len("# text = ") :], "tokens": []}
            blocks[-1].append(sentence)
            room = None if room is None else room - 1
        elif line and not line.startswith("#"):
            columns = line.split("\t")
            if "-" in columns[0] or "." in columns[0]:
                continue
            sentence["tokens"].append(columns)
    text, sentences, paragraphs, entities = "", [], [], []
    for block in (b for b in blocks if b):
        text += "\n" if text else ""
        block_start = len(text)
        for number, s in enumerate(block):
            text += " " if number else ""
            offset = len(text)
            sentences.append([offset, offset + len(s["text"])])
            text += s["text"]
            entities += _mentions(s, offset)
        paragraphs.append([block_start, len(text)])
    entities.sort(key=lambda m: (m[0][0], -m[0][1]))
    return {
        "doc_id": meta["doc_id"],
        "title": meta.get("title", ""),
        "genre": meta.get("genre", ""),
        "source_url": meta.get("sourceURL", ""),
        "date_created": meta.get("dateCreated", ""),
        "text": text,
        "sentences": sentences,
        "paragraphs": paragraphs,
        "entities": [m[0] for m in entities],
        "entity_meta": [m[1] for m in entities],
    }


def _mentions(sentence: dict, offset: int) -> list[tuple[list, dict]]:
    """The mentions of one sentence, character offsets in the document."""
    text, at, positions = sentence["text"], 0, []
    for columns in sentence["tokens"]:
        found = text.find(columns[1], at)
        if found < 0:
            raise ValueError(f"token {columns[1]!r} not in {text!r}")
        positions.append((found, found + len(columns[1])))
        at = found + len(columns[1])
    open_ones: dict[str, list] = {}
    out = []
    for index, columns in enumerate(sentence["tokens"]):
        misc = dict(p.split("=", 1) for p in columns[9].split("|") if "=" in p)
        if "Entity" not in misc:
            continue
        opened, closed = parse_entities(misc["Entity"])
        for mention_id, fields in opened:
            open_ones.setdefault(mention_id, []).append((index, fields))
        for mention_id in closed:
            first, fields = open_ones[mention_id].pop()
            parts = fields.split("-")
            identity = unquote(parts[6]) if len(parts) > 6 else None
            inside = range(first, index + 1)
            heads = [
                sentence["tokens"][i][3]
                for i in inside
                if int(sentence["tokens"][i][6]) - 1 not in inside  # HEAD is 1-based, 0 the root
            ]
            start, end = positions[first][0], positions[index][1]
            out.append(
                (
                    [offset + start, offset + end, parts[0], text[start:end]],
                    {
                        "group": int(mention_id),
                        "identity": identity,
                        "link": parts[5] if len(parts) > 5 else None,
                        "infstat": parts[1],
                        "head_upos": heads,
                        "proper": bool(heads) and all(h == "PROPN" for h in heads),
                    },
                )
            )
    return out


def find_source(source: Path | None = None) -> Path:
    for candidate in [source] if source else GIT_DIRS:
        if candidate and (candidate / "HEAD").exists():
            return candidate
    raise SystemExit(
        "no copy of the GUM repository: clone github.com/amir-zeldes/gum (bare is enough) and pass --gum-source"
    )


def load_genres(source: Path | None = None, cache: Path = CACHE) -> dict[str, list[dict]]:
    """Every GUM genre but reddit: genre -> documents, converted once into `cache` (one JSONL per genre)."""
    done = cache / "DONE"
    if not done.exists():
        git_dir = find_source(source)
        commit = _git(git_dir, "rev-parse", "HEAD").strip()
        print(f"converting GUM genres from {git_dir} (commit {commit}) into {cache}", file=sys.stderr)
        cache.mkdir(parents=True, exist_ok=True)
        names = sorted(n for n in _git(git_dir, "ls-tree", "--name-only", "HEAD:dep").split() if n.startswith("GUM_"))
        by_genre: dict[str, list[dict]] = {}
        for name in names:
            genre = name.split("_")[1]
            if genre in SKIPPED_GENRES:
                continue
            by_genre.setdefault(genre, []).append(document(_git(git_dir, "show", f"HEAD:dep/{name}")))
        for genre, docs in by_genre.items():
            lines = "".join(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n" for d in docs)
            (cache / f"{genre}.jsonl").write_text(lines, encoding="utf-8")
        done.write_text(f"github.com/amir-zeldes/gum {commit}\n", encoding="utf-8")
    return {
        path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for path in sorted(cache.glob("*.jsonl"))
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None)
    args = parser.parse_args()
    for genre, docs in load_genres(args.source).items():
        print(genre, len(docs), sum(len(d["sentences"]) for d in docs))
