"""Near-duplicate articles (a wire story republished with a changed headline, an edited line, paragraphs in
another order) share a split: MinHash over word shingles, checked on the exact Jaccard index."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from builder.dataset.card import near_duplicates_text
from builder.dataset.splits import ARTICLE_HASH, NearDuplicates, assign_splits, hash_split
from builder.errors import ConfigError
from builder.project import load_project
from builder.sentences.segmenter import sentence_id, sentence_spans

from .conftest import ROOT, make_project

PROPORTIONS = {"train": 0.6, "validation": 0.2, "test": 0.2}
SALT = "s"
RANK = {"train": 0, "validation": 1, "test": 2}


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


def paragraphs(doc: dict) -> list[str]:
    return [line for line in doc["text"].split("\n") if line.strip()]


def republished(doc: dict) -> dict[str, str]:
    """Variants of a GUM article as another outlet runs it: name -> text."""
    lines = paragraphs(doc)
    body = lines[2:]  # after the headline and the dateline
    longest = max(range(len(body)), key=lambda i: len(body[i]))
    first = sentences(body[longest])[0]
    words = first.split()
    edited = " ".join(words[:2] + ["reportedly", "also"] + words[4:])
    edited_body = body[:longest] + [body[longest].replace(first, edited, 1)] + body[longest + 1 :]
    return {
        "headline": "\n".join(["Wire report: " + lines[0].lower() + " (update)", lines[1], *body]),
        "edited": "\n".join([lines[0], lines[1], *edited_body]),
        "reordered": "\n".join([lines[0], lines[1], *reversed(body)]),
        # copy-edited: every sentence loses its first word, so no sentence text is the original's
        "copy-edited": "\n".join(" ".join(s.split()[1:]) for s in sentences(doc["text"]) if len(s.split()) > 1),
    }


def moving_id(base: str, other_split: str, outranks: bool = True) -> str:
    """An article id whose own split is not `other_split` (and outranks it, or is outranked by it)."""
    for n in range(1000):
        candidate = f"{base}-{n}"
        own = hash_split(candidate, PROPORTIONS, SALT)
        if own != other_split and (RANK[own] > RANK[other_split]) == outranks:
            return candidate
    raise AssertionError("no such id")


def pairs(docs: dict[str, str]) -> list[tuple[str, str]]:
    return [(article_id, s) for article_id, text in docs.items() for s in sentences(text)]


def near(docs: dict[str, str]) -> NearDuplicates:
    found = NearDuplicates()
    for article_id, text in pairs(docs):
        found.add(article_id, text)
    return found


@pytest.fixture(scope="module")
def gum(gum_docs):
    return {doc["doc_id"]: doc["text"] for doc in gum_docs}


@pytest.fixture(scope="module")
def original(gum_docs):
    # an original whose own split is train, so that a variant in another split must move it
    return next(doc for doc in gum_docs if hash_split(doc["doc_id"], PROPORTIONS, SALT) == "train")


def test_republished_variants_of_a_gum_article_land_in_one_split_with_the_original(gum, original):
    variants = republished(original)
    ids = {name: moving_id(f"{original['doc_id']}-{name}", "train") for name in variants}
    docs = {**gum, **{ids[name]: text for name, text in variants.items()}}
    assert near(docs).groups(0.8) == [sorted([original["doc_id"], *ids.values()])]

    # by sentence counts (new builds and releases): the group is in one split
    splits, facts = assign_splits(pairs(docs), PROPORTIONS, salt=SALT, near_duplicate_threshold=0.8)
    group = [original["doc_id"], *ids.values()]
    assert len({splits[a] for a in group}) == 1 and facts["near_duplicate_groups"] == 1
    # by article hash (releases before manifest format 6): the group takes its most held-out member's split
    splits, facts = assign_splits(
        pairs(docs), PROPORTIONS, salt=SALT, near_duplicate_threshold=0.8, method=ARTICLE_HASH
    )
    assert {splits[a] for a in group} == {max((hash_split(a, PROPORTIONS, SALT) for a in group), key=RANK.get)}
    assert splits[original["doc_id"]] != "train"  # the original moved to its variants' split
    assert facts["near_duplicate_groups"] == 1 and facts["near_duplicate_threshold"] == 0.8

    # identical sentences alone group the first three variants, never the copy-edited one (no sentence in common)
    by_text, facts_text = assign_splits(pairs(docs), PROPORTIONS, salt=SALT, method=ARTICLE_HASH)
    # every other article keeps the split it has without near-duplicates (GUM articles share datelines)
    assert all(splits[a] == by_text[a] for a in gum if a != original["doc_id"])
    assert by_text[ids["copy-edited"]] == hash_split(ids["copy-edited"], PROPORTIONS, SALT)
    assert "near_duplicate_groups" not in facts_text
    moved = facts["articles_moved_to_keep_near_duplicates_together"]
    assert moved == sum(1 for a in splits if splits[a] != by_text[a]) and moved >= 1


def test_unrelated_articles_are_not_grouped(gum, project):
    found = near(gum)
    assert found.groups(0.8) == [] and found.groups(0.2) == []
    # news on one topic, in the same words, is still not the same story
    same_topic = {
        f"visit-{i}": " ".join(
            f"Officials said the minister met {person} in {city} on day {i} to discuss {topic}."
            for person, city, topic in [
                ("Sergei Shoigu", "Moscow", "cooperation"),
                ("Kim Jong Un", "Pyongyang", f"trade number {i}"),
                (f"delegate {i}", "Vladivostok", "a rail link"),
            ][: 1 + i % 3]
        )
        + f" The talks lasted {i + 2} hours."
        for i in range(30)
    }
    assert all(len(group) < 30 for group in near(same_topic).groups(0.8))
    # articles without a single word are never near-duplicates of each other
    assert near({"a": "...", "b": "!!!", "c": "--"}).groups(0.5) == []


def test_the_threshold_is_the_exact_jaccard_index_of_word_shingles(original):
    variant = republished(original)["headline"]

    def shingle_set(text):
        out = set()
        for s in sentences(text):
            words = [w.lower() for w in __import__("re").findall(r"\w+", s)]
            out |= {tuple(words[i : i + 3]) for i in range(max(len(words) - 2, 1))}
        return out

    a, b = shingle_set(original["text"]), shingle_set(variant)
    exact = len(a & b) / len(a | b)
    assert 0.8 < exact < 1
    found = near({"original": original["text"], "variant": variant})
    assert found.groups(exact) == [["original", "variant"]]
    assert found.groups(min(1.0, exact + 1e-9)) == []
    with pytest.raises(ValueError):
        found.groups(0)


def test_signatures_are_datasketch_minhashes_of_the_shingles(original):
    from datasketch import MinHash

    found = near({"original": original["text"]})
    shingles = found.shingles("original")
    expected = MinHash(num_perm=64, seed=1, hashfunc=lambda value: value)
    expected.update_batch(shingles.tolist())
    signature = found.signatures()["original"]
    assert (signature.hashvalues == expected.hashvalues).all() and signature.jaccard(expected) == 1.0


def test_groups_do_not_depend_on_sentence_order_batches_or_the_hash_seed(gum, original, monkeypatch):
    docs = {**gum, **{f"copy-{name}": text for name, text in republished(original).items()}}
    ordered = pairs(docs)
    shuffled = ordered[:]
    random.Random(7).shuffle(shuffled)
    first = assign_splits(ordered, PROPORTIONS, salt=SALT, near_duplicate_threshold=0.8)
    assert assign_splits(shuffled, PROPORTIONS, salt=SALT, near_duplicate_threshold=0.8) == first
    import builder.dataset.splits as splits_module

    monkeypatch.setattr(splits_module, "_BATCH_SENTENCES", 7)  # many small batches, an article across several
    assert assign_splits(shuffled, PROPORTIONS, salt=SALT, near_duplicate_threshold=0.8) == first

    script = (
        "import json, sys\n"
        "from builder.dataset.splits import assign_splits\n"
        "pairs = [tuple(p) for p in json.load(sys.stdin)]\n"
        "print(json.dumps(assign_splits(pairs, {'train': 0.6, 'validation': 0.2, 'test': 0.2}, salt='s', "
        "near_duplicate_threshold=0.8), sort_keys=True))\n"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        run = subprocess.run(
            [sys.executable, "-c", script], input=json.dumps(ordered), capture_output=True, text=True, env=env
        )
        assert run.returncode == 0, run.stderr
        outputs.add(run.stdout)
    assert outputs == {json.dumps(json.loads(json.dumps(first)), sort_keys=True) + "\n"}


def test_adding_articles_moves_only_those_that_join_a_group(gum, original):
    """By article hash (releases before manifest format 6; by sentence counts, articles next to a cut move too)."""
    before, _ = assign_splits(pairs(gum), PROPORTIONS, salt=SALT, near_duplicate_threshold=0.8, method=ARTICLE_HASH)
    unrelated = {f"new-{i}": text for i, text in enumerate(gum.values())}  # one sentence from each, reworded
    unrelated = {k: " ".join(sentences(v)[3].split()[::-1]) for k, v in unrelated.items()}
    copy = moving_id(f"{original['doc_id']}-copy", before[original["doc_id"]])
    after, facts = assign_splits(
        pairs({**gum, **unrelated, copy: republished(original)["copy-edited"]}),
        PROPORTIONS,
        salt=SALT,
        near_duplicate_threshold=0.8,
        method=ARTICLE_HASH,
    )
    moved = {a for a in gum if after[a] != before[a]}
    assert moved == {original["doc_id"]} and after[original["doc_id"]] == after[copy]
    assert facts["articles_moved_to_keep_near_duplicates_together"] == 1


def _project_with(tmp_path, splits_lines: str | None):
    folder = tmp_path / "p"
    make_project(folder, "near duplicates")
    toml = folder / "builder.toml"
    text = toml.read_text(encoding="utf-8")
    head, _, rest = text.partition("[splits]\n")
    tail = rest.split("\n[", 1)
    rest = ("\n[" + tail[1]) if len(tail) > 1 else ""
    toml.write_text(
        head + (f"[splits]\n{splits_lines}\n" if splits_lines is not None else "") + rest.lstrip("\n"),
        encoding="utf-8",
    )
    return toml


def test_the_threshold_comes_from_the_project_file(tmp_path, project):
    from builder.dataset.build import build_dataset

    assert project.near_duplicate_threshold == 0.8  # the repository's builder.toml does not set it: the default
    toml = _project_with(tmp_path, "train = 0.6\nvalidation = 0.2\ntest = 0.2\nnear_duplicate_threshold = 0.35")
    loaded = load_project(toml)
    assert loaded.near_duplicate_threshold == 0.35
    assert loaded.split_proportions == {"train": 0.6, "validation": 0.2, "test": 0.2}  # the card and manifest's
    assert load_project(_project_with(tmp_path, None)).near_duplicate_threshold == 0.8
    for bad in ("0", "-0.1", "1.5", '"high"', "nan"):
        _project_with(tmp_path, f"train = 0.6\nvalidation = 0.2\ntest = 0.2\nnear_duplicate_threshold = {bad}")
        with pytest.raises(ConfigError) as caught:
            load_project(toml)
        message = str(caught.value)
        assert message.startswith(f"{toml}: splits.near_duplicate_threshold: ") and "\n" not in message

    _project_with(tmp_path, "train = 0.6\nvalidation = 0.2\ntest = 0.2\nnear_duplicate_threshold = 0.35")
    facts = build_dataset(loaded, ROOT / "annotations" / "snapshot.jsonl", tmp_path / "out")
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert facts.split_facts["near_duplicate_threshold"] == 0.35
    groups = facts.split_facts["near_duplicate_groups"]
    assert f"word 3-shingles at least 0.35,\nfound with MinHash) are kept in one split too ({groups} such" in card
    old = build_dataset(loaded, ROOT / "annotations" / "snapshot.jsonl", tmp_path / "old", near_duplicates=False)
    old_card = (tmp_path / "old" / "README.md").read_text(encoding="utf-8")
    assert "near-duplicate" not in old_card and "near_duplicate_groups" not in old.split_facts
    assert card.replace(near_duplicates_text(facts.split_facts), "") == old_card  # nothing else changed


def test_init_writes_the_default_threshold(tmp_path):
    from builder.scaffold import init_project

    init_project(tmp_path / "new", name="news_stance")
    text = (tmp_path / "new" / "builder.toml").read_text(encoding="utf-8")
    assert "\nnear_duplicate_threshold = 0.8\n" in text
    assert load_project(tmp_path / "new" / "builder.toml").near_duplicate_threshold == 0.8
    bundled = (ROOT / "builder" / "defaults" / "builder.toml").read_text(encoding="utf-8")
    assert "\nnear_duplicate_threshold = 0.8\n" in bundled


def _tasks(articles: dict[str, list[str]]) -> list[dict]:
    """A snapshot: every sentence a task with two neutral annotations."""
    tasks = []
    for article_id, texts in articles.items():
        for index, text in enumerate(texts):
            n = len(tasks)
            annotations = [
                {
                    "id": 10 * n + k,
                    "annotator": f"annotator-{k + 10:08x}",
                    "result": [
                        {
                            "from_name": "stance",
                            "to_name": "sentence",
                            "type": "choices",
                            "value": {"choices": ["neutral"]},
                        }
                    ],
                    "was_cancelled": False,
                    "ground_truth": False,
                    "lead_time": 3.0,
                }
                for k in range(2)
            ]
            data = {
                "sentence_id": sentence_id(article_id, text),
                "article_id": article_id,
                "sentence_index": index,
                "text": text,
                "target": "t",
            }
            tasks.append({"task_id": n, "data": data, "annotations": annotations, "predictions": []})
    return tasks


def test_a_release_keeps_near_duplicates_together_and_its_changelog_names_moved_articles(tmp_path, gum_docs):
    from builder.dataset.release import cut_release, read_manifest

    from .test_release import commit_snapshot, new_repo

    docs = {doc["doc_id"]: [s for s in sentences(doc["text"])][:15] for doc in gum_docs[:8]}
    folder, project = new_repo(tmp_path / "repo", _tasks(docs))
    proportions, salt = project.split_proportions, project.name
    cut_release(project, "1.0.0")
    first = read_manifest(project, "1.0.0")
    assert first["manifest_format"] == 10 and first["split_method"] == "sentence-shares/1"
    split_of = {a: s for s in ("train", "validation", "test") for a in first["splits"][s]["article_ids"]}
    original = next(a for a in docs if split_of[a] != "test")
    copy = f"{original}-copy"
    copy_edited = [" ".join(s.split()[1:]) for s in docs[original]]  # no sentence text in common
    commit_snapshot(folder, _tasks({**docs, copy: copy_edited}))
    result = cut_release(project, "1.1.0")
    second = read_manifest(project, "1.1.0")
    after = {a: s for s in ("train", "validation", "test") for a in second["splits"][s]["article_ids"]}
    assert after[original] == after[copy]
    assert all(after[a] == "test" for a in docs if split_of[a] == "test")  # frozen
    moved = sorted(a for a in docs if after[a] != split_of[a])
    assert moved  # the group's 30 sentences shift the articles after it in the order
    assert f"- articles moved to another split: {len(moved)} (" in result.changelog_entry
    assert all(f"`{a}` {split_of[a]} -> {after[a]}" in result.changelog_entry for a in moved)
    assert result.changelog_entry in (folder / "CHANGELOG.md").read_text(encoding="utf-8")
    card = (folder / "releases" / "1.1.0" / "README.md").read_text(encoding="utf-8")
    assert "are kept in one split too (1 such group(s), " in card and "Split method `sentence-shares/1`" in card
    # a release of manifest format 4 is built as it was: no near-duplicate grouping, no line on the card
    from builder.dataset.release import build_release_folder

    old = build_release_folder(project, "1.1.0", tmp_path / "as-format-4", manifest_format=4)
    old_card = (tmp_path / "as-format-4" / "README.md").read_text(encoding="utf-8")
    assert "near-duplicate" not in old_card and "Split method" not in old_card and "split_method" not in old
    assert old["splits"]["test"]["article_ids"] == sorted(
        {a for a in [*docs, copy] if hash_split(a, proportions, salt) == "test"}
        | set(first["splits"]["test"]["article_ids"])
    )


def test_a_large_family_of_look_alike_articles_is_not_compared_pair_by_pair():
    """3,000 weather reports sharing most of their text (Jaccard about 0.5) fall into the same LSH buckets; each
    is compared with a bounded number of them (all pairs: about 25 s here), and a true copy among them is found."""
    import time

    found = NearDuplicates()
    common = [
        f"The weather service said the forecast for the region calls for mild winds, bulletin {k}." for k in range(6)
    ]

    def report(article_id, i):
        for text in common:
            found.add(article_id, text)
        for k in range(4):
            found.add(article_id, f"In district {i} reading {k} the station {i * 7 + k} measured {i * 13 + k} units.")

    for i in range(3000):
        report(f"w{i:04d}", i)
    report("w1234-copy", 1234)
    began = time.perf_counter()
    assert found.groups(0.8) == [["w1234", "w1234-copy"]]
    assert time.perf_counter() - began < 5
