"""Corpus-scale splitting: one process, --workers N and --engine ray on the same generated news-like corpus.

Writes ARTICLES generated articles (default 100,000; deterministic) into SHARDS input shards, half
JSON Lines and half Parquet, then runs `split_files` on them in a fresh Python process per mode:
one process, `--workers N` (processes on this machine) and `--engine ray` (a local Ray started by
the run, its start included in the time); rounds alternate the modes and the fastest of each is
shown. Per mode: millions of characters of article text per second, CPU seconds, the peak memory of
the driver process (VmHWM) and of the whole process tree (resident memory of the driver and every
process it started, summed, sampled every 0.1 s: the workers, and Ray's own processes); and a check
that every mode wrote the same bytes (sentences, articles, report).

The `file-` modes split the same articles written as ONE JSON Lines file: `file-whole` reads it whole
in one process (as builder did before it cut large JSON Lines files), `file-single` cuts it into line
shards (`JSONL_SHARD_BYTES`) read in turn by one process, `file-workers` reads the shards in N
processes. Their outputs name another file, so they are compared with each other (and their
sentences file with the shards' one).

    python bench/bench_corpus.py [--articles 100000] [--shards 16] [--workers 2] [--rounds 1]
                                 [--modes single,workers,ray,file-whole,file-single,file-workers]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import tempfile
from pathlib import Path

from measure import run_child

PLACES = ["SEOUL", "MOSCOW", "PYONGYANG", "WASHINGTON", "BEIJING", "TOKYO", "VLADIVOSTOK", "BRUSSELS"]
AGENCIES = ["Reuters", "AP", "AFP", "Yonhap"]
PEOPLE = ["Kim Jong Un", "Vladimir Putin", "Sergei Shoigu", "Yoon Suk Yeol", "Antony Blinken", "Choe Son Hui"]
TITLES = ["Mr.", "Dr.", "Gen.", "Sen.", "Prof."]
SURNAMES = ["Lee", "Park", "Ivanov", "Smith", "Chen", "Tanaka"]
NOUNS = ["talks", "exercises", "shipments", "sanctions", "missiles", "artillery shells", "satellites", "troops"]
VERBS = ["said", "warned", "confirmed", "denied", "told reporters", "added"]
CLAUSES = [
    "the two countries would expand military cooperation in the coming months",
    "the agreement covered technology transfers and joint drills near the border",
    "officials in the U.S. and Japan were monitoring the situation closely",
    "the shipments had increased by 3.5 percent since Jan. 1, according to estimates",
    "no details of the meeting were released by state media",
    "the visit lasted three days and included a tour of a factory in the Far East",
    "analysts at the Institute for National Security Strategy expected further steps",
    "the U.N. Security Council would discuss the matter on Tuesday",
]
BOILERPLATE = [
    "Support independent journalism: please consider making a donation.",
    "Subscribe to our newsletter for daily updates.",
    "Share this article on social media.",
]


def _sentence(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.25:
        person = rng.choice(PEOPLE)
        return f'"{rng.choice(CLAUSES).capitalize()}," {person} {rng.choice(VERBS)}.'
    if kind < 0.45:
        who = f"{rng.choice(TITLES)} {rng.choice('ABCDJKMS')}. {rng.choice(SURNAMES)}"
        return f"{who} {rng.choice(VERBS)} that {rng.choice(CLAUSES)}."
    if kind < 0.6:
        return f"{rng.choice(NOUNS).capitalize()} were discussed, and {rng.choice(CLAUSES)}."
    if kind < 0.7:
        return f"Was this expected? {rng.choice(CLAUSES).capitalize()}."
    return f"{rng.choice(CLAUSES).capitalize()}, {rng.choice(VERBS)} {rng.choice(PEOPLE)}."


def article(rng: random.Random, number: int) -> dict:
    """One news-like article: headline, dateline, paragraphs, sometimes a photo credit or a boilerplate line."""
    paragraphs = []
    for index in range(rng.randint(4, 12)):
        sentences = [_sentence(rng) for _ in range(rng.randint(1, 4))]
        if index == 0:
            sentences[0] = f"{rng.choice(PLACES)} ({rng.choice(AGENCIES)}) - {sentences[0]}"
        paragraphs.append(" ".join(sentences))
    if rng.random() < 0.2:
        paragraphs.insert(
            rng.randint(1, len(paragraphs)),
            f"Officials meet in {rng.choice(PLACES).title()} Photo: {rng.choice(AGENCIES)}",
        )
    if rng.random() < 0.1:
        paragraphs.append(rng.choice(BOILERPLATE))
    title = f"{rng.choice(PEOPLE)} {rng.choice(VERBS)} {rng.choice(NOUNS)} will continue"
    return {
        "id": f"{rng.getrandbits(48):012x}-{number}",  # random order: the output is sorted by id
        "title": title,
        "text": "\n\n".join(paragraphs),
        "url": f"https://news.example.org/{number}",
        "published": f"2024-{1 + number % 12:02d}-{1 + number % 28:02d}",
    }


def generate(folder: Path, articles: int, shards: int, one_file: Path | None = None) -> int:
    """Write the corpus, shards alternating JSON Lines and Parquet; the number of characters of article text.

    With `one_file`, the same articles are also written there as one JSON Lines file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(16)
    characters = 0
    per_shard = -(-articles // shards)
    whole = open(one_file, "wb") if one_file else None
    try:
        for shard in range(shards):
            rows = [article(rng, n) for n in range(shard * per_shard, min(articles, (shard + 1) * per_shard))]
            characters += sum(len(row["text"]) for row in rows)
            lines = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
            if whole:
                whole.write(lines)
            if shard % 2:
                pq.write_table(pa.Table.from_pylist(rows), folder / f"part-{shard:05d}.parquet", row_group_size=2048)
            else:
                (folder / f"part-{shard:05d}.jsonl").write_bytes(lines)
    finally:
        if whole:
            whole.close()
    return characters


CHILD = """
import json, resource, sys, threading, time
import psutil
from measure import peak_mb
from builder.project import load_project
from builder.sentences.splitting import split_files

corpus, out, mode, workers, config = sys.argv[1:6]
peak = [0.0]
done = threading.Event()

def tree_rss():
    me = psutil.Process()
    total = 0
    for process in [me, *me.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20

def sample():
    while not done.wait(0.1):
        peak[0] = max(peak[0], tree_rss())

threading.Thread(target=sample, daemon=True).start()
n = int(workers)
if mode == "file-whole":  # as before: a JSON Lines file is never cut
    import builder.sentences.articles
    builder.sentences.articles.JSONL_SHARD_BYTES = float("inf")
mode = mode.removeprefix("file-").replace("whole", "single")
options = {"single": {}, "workers": {"workers": n}, "ray": {"executor": "ray", "workers": n}}[mode]
began = time.perf_counter()
result = split_files([corpus], out, load_project(config), report_path=out + ".report.json", **options)
seconds = time.perf_counter() - began
done.set()
children = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = time.process_time() + children.ru_utime + children.ru_stime
print(seconds, peak_mb(), max(peak[0], tree_rss()), result.articles, result.sentences, cpu)
"""


def digest(out: Path, sentences_only: bool = False) -> str:
    sha = hashlib.sha256()
    paths = (out,) if sentences_only else (out, out.with_name(out.stem + ".articles.jsonl"), Path(f"{out}.report.json"))
    for path in paths:
        sha.update(path.read_bytes())
    return sha.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="runs per mode; the fastest is reported")
    parser.add_argument("--modes", default="single,workers,ray,file-whole,file-single,file-workers")
    args = parser.parse_args()
    config = Path(__file__).resolve().parents[1] / "builder.toml"
    modes = args.modes.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        one_file = work / "articles.jsonl" if any(mode.startswith("file-") for mode in modes) else None
        characters = generate(corpus, args.articles, args.shards, one_file)
        print(f"{args.articles:,} articles in {args.shards} shards (JSON Lines and Parquet), {characters:,} characters")
        if one_file:
            print(
                f"file- modes: the same articles as one JSON Lines file of {one_file.stat().st_size / 2**20:,.0f} MiB"
            )
        print(
            f"{'mode':<16} {'seconds':>8} {'M chars/s':>10} {'CPU s':>7} {'driver MB':>10} {'tree MB':>8}"
            f" {'sentences':>10}  output"
        )
        digests: dict[str, str] = {}
        sentence_digests: dict[str, str] = {}
        best: dict[str, tuple] = {}
        for _ in range(args.rounds):  # rounds outside, modes inside: a noisy spell hits every mode alike
            for mode in modes:
                out = work / mode / "sentences.jsonl"
                source = one_file if mode.startswith("file-") else corpus
                seconds, driver, tree, _, sentences, cpu = run_child(CHILD, source, out, mode, args.workers, config)
                row = (float(seconds), float(cpu), float(driver), float(tree), int(sentences))
                best[mode] = row if mode not in best or row[0] < best[mode][0] else best[mode]
                digests[mode] = digest(out)
                sentence_digests[mode] = digest(out, sentences_only=True)
        for mode in modes:
            seconds, cpu, driver, tree, sentences = best[mode]
            label = mode if mode.endswith(("single", "whole")) else f"{mode} {args.workers}"
            print(
                f"{label:<16} {seconds:>8.1f} {characters / seconds / 1e6:>10.2f} {cpu:>7.1f} {driver:>10.0f}"
                f" {tree:>8.0f} {sentences:>10,}  sha256 {digests[mode][:12]}"
            )
        print(
            "CPU s: the driver and the worker processes it waited for (not Ray's own processes); the sha256"
            " covers sentences, articles and report, whose paths name this run's temporary folder"
        )
        groups = {
            "the shards": [mode for mode in modes if not mode.startswith("file-")],
            "one JSON Lines file": [mode for mode in modes if mode.startswith("file-")],
        }
        same = True
        for name, group in groups.items():
            if len(group) > 1:
                alike = len({digests[mode] for mode in group}) == 1
                same = same and alike
                verdict = "yes" if alike else "NO"
                print(f"byte-identical output (sentences, articles, report) across modes on {name}: {verdict}")
        if all(groups.values()):
            alike = len(set(sentence_digests.values())) == 1
            same = same and alike
            print(f"byte-identical sentences file, shards and one file: {'yes' if alike else 'NO'}")
        if not same:
            raise SystemExit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
