"""Leak-free, deterministic splits by article, whose sentence counts keep the configured shares.

- all sentences of an article are in one split;
- articles that share a sentence text (wire copy, boilerplate that slipped through) are put in
  one split, and so are articles whose text is near-identical (a wire story republished with a
  changed headline, an edited line, paragraphs in another order): `NearDuplicates`, Jaccard index of
  their word shingles >= the project's `[splits] near_duplicate_threshold`;
- `frozen_test`: articles that were in a previous release's test split stay in test (their group too).

Two methods, named in the card and (manifest format 6 on) in the manifest, so a release is rebuilt
with the one it was cut with:

- `SENTENCE_SHARES` (every new build and release): the groups of articles above, in the order of a hash
  of their first article id salted with the dataset name, are cut into train, validation and test
  where the running count of sentences comes closest to each share (`_cut_by_sentences`). Each split is
  then within half a group (train, test) or one group (validation) of its share of the sentences,
  whatever the articles' sizes; adding articles moves only existing ones next to a cut.
- `ARTICLE_HASH` (releases before manifest format 6): each article's split from the hash of its id
  alone (`hash_split`), a group taking the most held-out split of its members (test > validation >
  train). Shares are then kept in articles on average only, not in sentences: 5 articles gave 27/29/9
  sentences for 0.6/0.2/0.2.

`uneven_splits` names a split that is empty or more than `UNEVEN_POINTS` off its share: `builder build`
warns, the card says so, and `builder release` refuses unless `[splits] allow_uneven = true`.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Iterable

SPLITS = ("train", "validation", "test")
_PRECEDENCE = {"train": 0, "validation": 1, "test": 2}
ARTICLE_HASH = "article-hash/1"
SENTENCE_SHARES = "sentence-shares/1"
SPLIT_METHODS = (ARTICLE_HASH, SENTENCE_SHARES)
UNEVEN_POINTS = 0.10  # a split whose share of the sentences is further than this from its share is uneven


def _hash_value(article_id: str, salt: str) -> float:
    """A uniform number in [0, 1) from (salt, article id): stable, independent per dataset."""
    return int(hashlib.sha256(f"{salt}\x00{article_id}".encode()).hexdigest()[:12], 16) / float(16**12)


def hash_split(article_id: str, proportions: dict[str, float], salt: str = "") -> str:
    """train, validation or test from a hash of (salt, article id): uniform, stable, independent per dataset."""
    value = _hash_value(article_id, salt)
    if value < proportions["train"]:
        return "train"
    if value < proportions["train"] + proportions["validation"]:
        return "validation"
    return "test"


class _Groups:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def members(self, articles: Iterable[str]) -> list[list[str]]:
        """The groups of `articles`, each sorted."""
        found: dict[str, list[str]] = {}
        for article_id in articles:
            found.setdefault(self.find(article_id), []).append(article_id)
        return [sorted(group) for group in found.values()]


def _by_hash(groups: list[list[str]], frozen: set[str], proportions: dict, salt: str) -> dict[str, str]:
    """ARTICLE_HASH: each group takes the most held-out of its members' own splits (frozen ones: test)."""
    splits: dict[str, str] = {}
    for group in groups:
        own = ("test" if a in frozen else hash_split(a, proportions, salt) for a in group)
        chosen = max(own, key=_PRECEDENCE.__getitem__)
        splits.update(dict.fromkeys(group, chosen))
    return splits


def sentence_targets(proportions: dict, total: int, frozen: int) -> dict[str, float]:
    """The sentences each split should get of `total`, `frozen` of which must be in test: the shares, unless
    the frozen test sentences alone exceed test's share; then test holds just them and train and validation
    share the rest in the ratio of their shares."""
    test = max(proportions["test"] * total, float(frozen))
    rest = total - test
    held = proportions["train"] + proportions["validation"]
    train = rest * proportions["train"] / held if held else 0.0
    return {"train": train, "validation": rest - train, "test": test}


def _by_sentences(
    groups: list[list[str]], sizes: dict[str, int], frozen: set[str], proportions: dict, salt: str
) -> dict[str, str]:
    """SENTENCE_SHARES: groups holding a frozen article go to test; the others, ordered by a salted hash of
    their first article id, are cut where the running sentence count comes closest to each target.

    A group goes to train while the middle of its sentences lies before the train target, then to
    validation while it lies before train + validation, then to test. So the cut falls on whichever group
    boundary is closest to each target: a split's count misses its target by at most half the group at each
    of its cuts (one group for validation, which has two). Ties sort by the article id, so the result does not
    depend on the order the sentences came in."""
    splits: dict[str, str] = {}
    free: list[tuple[float, str, list[str], int]] = []
    forced = 0
    for group in groups:
        size = sum(sizes[a] for a in group)
        if frozen.intersection(group):
            splits.update(dict.fromkeys(group, "test"))
            forced += size
        else:
            free.append((_hash_value(group[0], salt), group[0], group, size))
    free.sort(key=lambda item: item[:2])
    targets = sentence_targets(proportions, sum(sizes.values()), forced)
    cut_train = targets["train"]
    cut_validation = targets["train"] + targets["validation"]
    position = 0
    for _, _, group, size in free:
        middle = position + size / 2
        split = "train" if middle < cut_train else "validation" if middle < cut_validation else "test"
        splits.update(dict.fromkeys(group, split))
        position += size
    return splits


def assign_splits(
    sentences: Iterable[tuple[str, str]],
    proportions: dict[str, float],
    frozen_test: Iterable[str] = (),
    salt: str = "",
    near_duplicate_threshold: float | None = None,
    method: str = SENTENCE_SHARES,
) -> tuple[dict[str, str], dict]:
    """Split of every article from (article_id, sentence_text) pairs (one per sentence); and facts for the card.

    `method`: SENTENCE_SHARES (new builds and releases) or ARTICLE_HASH (to rebuild a release from before
    manifest format 6). The facts: `split_method`, `articles`, `sentences` (per split), `shared_text_groups`,
    `articles_moved_to_keep_shared_text_together` (against the split each would have alone),
    `frozen_test_articles`; with `near_duplicate_threshold`, near-identical articles (`NearDuplicates`) are
    grouped too, and the facts add `near_duplicate_threshold`, `near_duplicate_groups` and
    `articles_moved_to_keep_near_duplicates_together` (against the split by shared text alone).
    """
    if method not in SPLIT_METHODS:
        raise ValueError(f"unknown split method {method!r} (known: {', '.join(SPLIT_METHODS)})")
    groups = _Groups()
    sizes: dict[str, int] = {}
    near = None if near_duplicate_threshold is None else NearDuplicates()
    first_article_of_text: dict[bytes, str] = {}
    for article_id, text in sentences:
        groups.find(article_id)
        sizes[article_id] = sizes.get(article_id, 0) + 1
        key = hashlib.blake2b(" ".join(text.split()).lower().encode("utf-8"), digest_size=12).digest()
        other = first_article_of_text.setdefault(key, article_id)
        if other != article_id:
            groups.union(article_id, other)
        if near is not None:
            near.add(article_id, text)
    frozen = set(frozen_test)

    def decide(grouped: list[list[str]]) -> dict[str, str]:
        if method == ARTICLE_HASH:
            return _by_hash(grouped, frozen, proportions, salt)
        return _by_sentences(grouped, sizes, frozen, proportions, salt)

    by_text = groups.members(sizes)
    alone = decide([[a] for a in sizes])
    splits = decide(by_text)
    facts = {
        "split_method": method,
        "articles": len(splits),
        "shared_text_groups": sum(1 for g in by_text if len(g) > 1),
        "articles_moved_to_keep_shared_text_together": sum(1 for a, split in splits.items() if split != alone[a]),
        "frozen_test_articles": len(frozen & set(splits)),
    }
    if near is not None:
        found = near.groups(near_duplicate_threshold)
        for group in found:
            for article_id in group[1:]:
                groups.union(group[0], article_id)
        by_text_alone = splits
        splits = decide(groups.members(sizes))
        facts["near_duplicate_threshold"] = near_duplicate_threshold
        facts["near_duplicate_groups"] = len(found)
        facts["articles_moved_to_keep_near_duplicates_together"] = sum(
            1 for a, split in splits.items() if split != by_text_alone[a]
        )
    counts = dict.fromkeys(SPLITS, 0)
    for article_id, split in splits.items():
        counts[split] += sizes[article_id]
    facts["sentences"] = counts
    return splits, facts


def uneven_splits(sentences: dict[str, int], proportions: dict[str, float]) -> list[str]:
    """One line per split that is empty (with a share above 0) or more than UNEVEN_POINTS off its share of the
    sentences, naming its count and share: what `builder build` warns of, the card states and `builder release`
    refuses unless `[splits] allow_uneven = true`."""
    total = sum(sentences.values())
    lines = []
    for split in SPLITS:
        count, share = sentences.get(split, 0), proportions[split]
        actual = count / total if total else 0.0
        empty = count == 0 and share > 0
        if empty or abs(actual - share) > UNEVEN_POINTS + 1e-9:
            lines.append(
                f"split {split} holds {count} of {total} sentences ({actual:.0%}) against its share of {share:.0%} "
                + ("(empty)" if empty else f"(more than {UNEVEN_POINTS * 100:g} points off)")
            )
    return lines


# --- near-duplicate articles -------------------------------------------------------------------

SHINGLE_WORDS = 3  # an article's shingles: runs of 3 words inside each of its sentences
NUM_PERM = 64  # MinHash permutations (datasketch, affine32 scheme)
MINHASH_SEED = 1
CANDIDATE_RECALL = 0.999  # LSH bands are chosen so that a pair at the threshold is a candidate with this probability
_WORD = re.compile(r"\w+")
# A candidate pair (same LSH bucket) whose MinHash estimate is this far below the threshold is dropped unchecked:
# with 64 permutations the estimate's standard deviation is at most 0.0625, so a pair at the threshold survives
# with probability > 0.9999.
_ESTIMATE_MARGIN = 0.25
# In a bucket, each article is paired with the next _WINDOW in id order: a bucket of many articles sharing
# boilerplate would otherwise cost the square of its size.
_WINDOW = 64
_BATCH_SENTENCES = 20_000  # sentences held before they are turned into shingles and signatures
# bytes.translate table: ASCII letters lower-cased, digits and _ kept (the ASCII of `\\w`), NUL (a sentence's end)
# and non-ASCII bytes kept, the rest a space
_ASCII_WORDS = bytes(
    c + 32 if 65 <= c <= 90 else c if (48 <= c <= 57 or 97 <= c <= 122 or c in (0, 95) or c >= 128) else 32
    for c in range(256)
)
_MIX = 0x9E3779B97F4A7C15


def _rows_per_band(threshold: float) -> int:
    """The most MinHash rows per LSH band that still make a pair at `threshold` a candidate with CANDIDATE_RECALL."""
    best = 1
    for rows in range(1, NUM_PERM + 1):
        if 1 - (1 - threshold**rows) ** (NUM_PERM // rows) >= CANDIDATE_RECALL:
            best = rows
    return best


def _word_hashes(texts: list[str]):
    """The words of `texts` (lower-cased `\\w+`) as 32-bit hashes of their UTF-8 bytes, in order, and the number of
    words of each text (numpy uint32 and int64 arrays).

    ASCII text (most of it) is cut by a byte table, then every word is hashed at once with numpy (a
    polynomial over its bytes); other text is cut by the regex first. Both give the same words."""
    import numpy as np

    texts = [t if t.isascii() else " ".join(_WORD.findall(t.lower())) for t in texts]
    blob = " \x00 ".join(texts)
    if blob.count("\x00") != len(texts) - 1:  # a NUL inside a sentence is no word
        blob = " \x00 ".join(t.replace("\x00", " ") for t in texts)
    data = np.frombuffer((blob + " \x00").encode("utf-8").translate(_ASCII_WORDS), dtype=np.uint8)
    in_word = (data != 32) & (data != 0)
    edges = np.diff(in_word.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    sizes = ends - starts
    lengths = np.bincount(np.searchsorted(np.flatnonzero(data == 0), starts), minlength=len(texts))
    if not len(starts):
        return np.zeros(0, dtype=np.uint32), lengths
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(int(sizes.max()), _MIX, dtype=np.uint64))  # _MIX ** (1 + offset in the word)
        offsets = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        terms = (data[in_word].astype(np.uint64) + np.uint64(1)) * powers[offsets]
        hashes = np.add.reduceat(terms, np.cumsum(sizes) - sizes)
        hashes = hashes * np.uint64(_MIX)
    return ((hashes >> np.uint64(32)) ^ (hashes & np.uint64(0xFFFFFFFF))).astype(np.uint32), lengths


def _fmix32(values):
    """MurmurHash3's 32-bit finalizer, as datasketch's affine32 scheme applies to each input hash."""
    import numpy as np

    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


class NearDuplicates:
    """Articles' word shingles, collected sentence by sentence, and the groups of near-identical articles.

    An article's shingles are the runs of SHINGLE_WORDS lower-cased words (`\\w+`) inside each of its
    sentences (a shorter sentence is one shingle), so sentences or paragraphs in another order leave them
    as they were. Two articles are near-duplicates when the Jaccard index of their shingle sets is at least
    the threshold: candidates are the pairs that share a bucket when the articles' datasketch MinHash
    signatures are banded for the threshold (LSH); a candidate whose MinHash estimate is far below the
    threshold is dropped, and every other one is checked on its exact shingle sets, so no pair under the
    threshold is ever grouped. A pair's outcome depends on the two articles alone (except in a bucket of more
    than _WINDOW articles, where each is compared with its _WINDOW neighbours in id order), so adding
    articles does not change it.
    """

    def __init__(self) -> None:
        import numpy as np
        from datasketch import MinHash

        self.index: dict[str, int] = {}  # article id -> its number
        self._texts: list[str] = []  # sentences not yet shingled
        self._articles = array("I")  # their article numbers
        self._a, self._b = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED, scheme="affine32").permutations
        self._signatures = np.full((1024, NUM_PERM), np.iinfo(np.uint32).max, dtype=np.uint32)
        self._has_shingles = np.zeros(1024, dtype=bool)
        self._batches: list[tuple] = []  # (article numbers, segment starts, sorted shingles) per batch
        self._sets = None  # the lookup `shingles` reads, until the next batch

    def add(self, article_id: str, text: str) -> None:
        """One sentence of `article_id` (an article's sentences may come in any order)."""
        self._articles.append(self.index.setdefault(article_id, len(self.index)))
        self._texts.append(text)
        if len(self._texts) >= _BATCH_SENTENCES:
            self._flush()

    def _flush(self) -> None:
        """Turn the sentences held into shingles (kept, sorted per article) and fold them into the signatures."""
        import numpy as np

        if not self._texts:
            return
        words, lengths = _word_hashes(self._texts)
        articles = np.frombuffer(self._articles, dtype=np.uint32)[lengths > 0]
        lengths = lengths[lengths > 0]
        self._texts, self._articles = [], array("I")
        if not len(lengths):
            return
        ends = np.cumsum(lengths)
        counts = np.maximum(lengths - SHINGLE_WORDS + 1, 1)  # shingles per sentence
        sentence = np.repeat(np.arange(len(lengths)), counts)
        first = np.cumsum(counts) - counts
        position = (ends - lengths)[sentence] + np.arange(len(sentence)) - first[sentence]
        end = ends[sentence]
        padded = np.concatenate([words, np.zeros(SHINGLE_WORDS, dtype=np.uint32)]).astype(np.uint64)
        shingle = np.zeros(len(sentence), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(SHINGLE_WORDS):
                at = position + j
                word = np.where(at < end, padded[np.minimum(at, len(words))], np.uint64(0))
                shingle = (shingle ^ word) * np.uint64(_MIX)
        keys = np.unique((articles[sentence].astype(np.uint64) << np.uint64(32)) | (shingle >> np.uint64(32)))
        owner = (keys >> np.uint64(32)).astype(np.int64)
        shingles = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        starts = np.flatnonzero(np.diff(owner, prepend=-1))
        numbers = owner[starts]
        self._grow(int(numbers[-1]) + 1)
        mixed = _fmix32(shingles)
        minima = np.empty((len(starts), NUM_PERM), dtype=np.uint32)
        for j in range(NUM_PERM):  # datasketch's affine32 permutation a*h+b mod 2**32, then the minimum per article
            minima[:, j] = np.minimum.reduceat(mixed * self._a[j] + self._b[j], starts)
        self._signatures[numbers] = np.minimum(self._signatures[numbers], minima)
        self._has_shingles[numbers] = True
        self._batches.append((numbers, np.append(starts, len(shingles)), shingles))
        self._sets = None

    def _grow(self, size: int) -> None:
        import numpy as np

        if size > len(self._signatures):
            more = max(size, 2 * len(self._signatures)) - len(self._signatures)
            self._signatures = np.vstack(
                [self._signatures, np.full((more, NUM_PERM), np.iinfo(np.uint32).max, dtype=np.uint32)]
            )
            self._has_shingles = np.concatenate([self._has_shingles, np.zeros(more, dtype=bool)])

    def signatures(self) -> dict[str, object]:
        """Each article's MinHash (a datasketch `LeanMinHash`); an article without words has none."""
        from datasketch import LeanMinHash, MinHash

        self._flush()
        out = {}
        for article_id, number in self.index.items():
            if self._has_shingles[number]:
                minhash = MinHash(
                    seed=MINHASH_SEED,
                    hashvalues=self._signatures[number],
                    permutations=(self._a, self._b),
                    scheme="affine32",
                )
                out[article_id] = LeanMinHash(minhash)
        return out

    def shingles(self, article_id: str):
        """The sorted shingle hashes (numpy uint32) of `article_id` (None: it has no word)."""
        self._flush()
        if self._sets is None:
            self._sets = self._shingle_sets()
        return self._sets[self.index[article_id]]

    def _shingle_sets(self):
        """A lookup of article number -> sorted, unique shingle hashes, built once per call (lazily per article)."""
        import numpy as np

        parts: dict[int, list] = {}
        for numbers, bounds, shingles in self._batches:
            for i, number in enumerate(numbers.tolist()):
                parts.setdefault(number, []).append(shingles[bounds[i] : bounds[i + 1]])

        class Sets(dict):
            def __missing__(self, number):
                found = parts.get(number)
                if found is None:
                    return None
                value = found[0] if len(found) == 1 else np.unique(np.concatenate(found))
                self[number] = value
                return value

        return Sets()

    def groups(self, threshold: float) -> list[list[str]]:
        """Groups (2+ articles, sorted; sorted by their first) linked by pairs with Jaccard index >= `threshold`."""
        import numpy as np

        if not 0 < threshold <= 1:
            raise ValueError(f"threshold {threshold} is not in (0, 1]")
        self._flush()
        numbers = np.flatnonzero(self._has_shingles[: len(self.index)])
        if len(numbers) < 2:
            return []
        sets = self._shingle_sets()
        parent = list(range(len(self.index)))

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        ids = list(self.index)
        rank = np.empty(len(ids), dtype=np.int64)  # each article's place in id order: runs are walked in it
        rank[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
        signatures = self._signatures[numbers]
        checked: set[tuple[int, int]] = set()
        rows = _rows_per_band(threshold)
        for band in range(NUM_PERM // rows):
            key = signatures[:, band * rows].astype(np.uint64)
            with np.errstate(over="ignore"):
                for column in range(band * rows + 1, (band + 1) * rows):
                    key = key * np.uint64(_MIX) + signatures[:, column]
            order = np.lexsort((rank[numbers], key))
            ordered = key[order]
            for distance in range(1, _WINDOW + 1):  # pairs in one bucket, `distance` apart in it
                at = np.flatnonzero(ordered[:-distance] == ordered[distance:])
                if not len(at):
                    break
                first, second = order[at], order[at + distance]
                estimate = (signatures[first] == signatures[second]).mean(axis=1)
                keep = estimate >= threshold - _ESTIMATE_MARGIN
                for a, b in zip(numbers[first[keep]].tolist(), numbers[second[keep]].tolist()):
                    if find(a) == find(b) or (a, b) in checked:
                        continue
                    checked.add((a, b))
                    if _jaccard(sets[a], sets[b], threshold) >= threshold:
                        parent[max(find(a), find(b))] = min(find(a), find(b))
        found: dict[int, list[str]] = {}
        for number in numbers.tolist():
            found.setdefault(find(number), []).append(ids[number])
        return sorted((sorted(group) for group in found.values() if len(group) > 1), key=lambda g: g[0])


def _jaccard(a, b, threshold: float = 0.0) -> float:
    """Exact Jaccard index of two sorted, unique arrays (0 early when their sizes alone rule out `threshold`)."""
    import numpy as np

    small, large = sorted((len(a), len(b)))
    if not large or small < threshold * large:
        return 0.0
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)


def parquet_name(split: str) -> str:
    """Where `split` is written, relative to the dataset folder: one shard per split."""
    return f"data/{split}-00000-of-00001.parquet"


def parquet_pattern(split: str) -> str:
    """The shards of `split`, as the card's `data_files` names them (a glob relative to the dataset folder)."""
    return f"data/{split}-*.parquet"
