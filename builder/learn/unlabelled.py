"""What the project's unlabelled sentences teach the entity tagger (issue 29): word clusters and self-training.

Word clusters (`word_clusters`, setting `word_clusters`): features of a word the labelled sentences never
showed the tagger, from the company it keeps in all the text pushed for labelling. Each word (as written:
"Paris" and "paris" apart) frequent enough is described by the words just before and after it (each side
apart) as positive pointwise mutual information (PPMI, the contexts' distribution smoothed by
`CONTEXT_SMOOTHING`), reduced by a truncated SVD and clustered by k-means into the finest of the
granularities asked for; the coarser ones join those clusters by Ward's agglomeration of their centres, so a
coarse cluster holds whole fine ones (as Brown clusters' prefixes do). Everything is seeded and computed in
one thread: the same sentences give the same clusters, byte for byte.

Self-training (`self_trained`, setting `self_training`): a fitted tagger labels a sample of the unlabelled
sentences; those it is sure of (a name found, every name's score at or above the floor, and so is the tag
marginal of every capitalised word after the first outside them: no name missed) join the labelled ones,
and the tagger is fitted again, once. Each dev fold's model is
self-trained the same way, so the threshold and the precision it promises are those of such models.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

from builder.learn.features import TOKEN

MIN_COUNT = 3  # a word seen fewer times gets no cluster
MAX_WORDS = 20_000  # the most frequent words clustered
CONTEXT_WORDS = 1_000  # the most frequent words used as contexts (each side)
DIMENSIONS = 50
CONTEXT_SMOOTHING = 0.75
WINDOW = 1  # contexts this many tokens away or fewer (2, and lower-cased words: fewer actions saved)


def word_clusters(texts: Iterable[str], settings: dict, seed: int = 0) -> dict[str, list[int]]:
    """{word: [its cluster at each granularity of `settings["word_clusters"]`, coarsest first]} for the
    frequent words of `texts`; {} when there are none to compute or too few words to cluster."""
    import numpy as np
    from scipy import sparse
    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.decomposition import TruncatedSVD
    from threadpoolctl import threadpool_limits

    granularities = sorted(set(settings.get("word_clusters") or ()))
    if not granularities:
        return {}
    # each token as the number of its word in order of first sight (the words once each, not the tokens: 100,000
    # sentences held as token lists took 280 MB), sentences apart by WINDOW of -1: no pair crosses a boundary
    seen: dict[str, int] = {}
    numbers = array("q")
    for text in texts:
        numbers.extend([seen.setdefault(t, len(seen)) for t in TOKEN.findall(text)])
        numbers.extend((-1,) * WINDOW)
    numbered = np.frombuffer(numbers, dtype=np.int64) if numbers else np.zeros(0, dtype=np.int64)
    counts = np.bincount(numbered[numbered >= 0], minlength=len(seen)).tolist()
    words = list(seen)
    frequent = [i for i, n in enumerate(counts) if n >= MIN_COUNT]
    ranked_numbers = sorted(frequent, key=lambda i: (-counts[i], words[i]))[:MAX_WORDS]
    if len(ranked_numbers) < 2 * granularities[-1]:
        return {}
    ranked = [words[i] for i in ranked_numbers]
    index = np.full(len(seen) + 1, -2, dtype=np.int64)  # word number -> rank (-2: not clustered); [-1]: -1
    index[ranked_numbers] = np.arange(len(ranked_numbers))
    index[-1] = -1
    flat = index[numbered]
    shape = (len(ranked), 2 * WINDOW * CONTEXT_WORDS)
    pairs = []  # each (word, context column) as one number, counted by np.unique: no matrix of ones
    for distance in range(1, WINDOW + 1):
        left, right = flat[:-distance], flat[distance:]
        # right context of the left word; left context of the right word; each side and distance its columns
        for word, context, slot in ((left, right, 2 * distance - 2), (right, left, 2 * distance - 1)):
            keep = (word >= 0) & (context >= 0) & (context < CONTEXT_WORDS)
            pairs.append(word[keep] * shape[1] + context[keep] + slot * CONTEXT_WORDS)
    del numbered, flat
    cells, counted = np.unique(np.concatenate(pairs), return_counts=True)
    del pairs
    row, col = np.divmod(cells, shape[1])
    matrix = sparse.csr_matrix((counted.astype(np.float64), (row, col)), shape=shape)
    word_sums = np.asarray(matrix.sum(axis=1)).ravel()
    context_sums = np.asarray(matrix.sum(axis=0)).ravel() ** CONTEXT_SMOOTHING
    coo = matrix.tocoo()
    pmi = np.log(coo.data * context_sums.sum() / (word_sums[coo.row] * context_sums[coo.col]))
    positive = pmi > 0
    ppmi = sparse.csr_matrix((pmi[positive], (coo.row[positive], coo.col[positive])), shape=shape)
    with threadpool_limits(limits=1):
        vectors = TruncatedSVD(DIMENSIONS, algorithm="randomized", random_state=seed).fit_transform(ppmi)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms > 0, norms, 1.0)
        finest = KMeans(granularities[-1], n_init=1, random_state=seed).fit(vectors)
        assigned = [finest.labels_]
        for k in reversed(granularities[:-1]):
            coarse = AgglomerativeClustering(k, linkage="ward").fit(finest.cluster_centers_).labels_
            assigned.insert(0, coarse[finest.labels_])
    return {w: [int(a[i]) for a in assigned] for i, w in enumerate(ranked)}


def prepare(texts: list[str], settings: dict | None, unlabelled: tuple[str, ...], seed: int) -> tuple[dict, tuple]:
    """What a training computes once from its sentences: the word clusters of `texts` (the labelled ones)
    and `unlabelled`, and the sample of unlabelled sentences self-training labels (`settings`: None, neither)."""
    if not settings:
        return {}, ()
    clusters = word_clusters([*texts, *unlabelled], settings, seed)
    return clusters, self_training_sample(unlabelled, seed) if settings.get("self_training") else ()


SELF_TRAINING_SENTENCES = 2_000  # the unlabelled sentences a self-trained tagger labels (a seeded sample)


def self_training_sample(unlabelled: Iterable[str], seed: int) -> tuple[str, ...]:
    """Up to `SELF_TRAINING_SENTENCES` distinct unlabelled sentences, in the order of a hash salted with the seed."""
    import hashlib

    def key(text: str) -> str:
        return hashlib.sha256(f"builder-self-training/{seed}\x00{text}".encode()).hexdigest()

    return tuple(sorted(set(unlabelled), key=key)[:SELF_TRAINING_SENTENCES])


PSEUDO = "\x00unlabelled/"  # the article id of an unlabelled sentence self-training labelled, and its number


def self_trained(fit, files: dict, examples: list, settings: dict, folder, seed: int, unlabelled_lower, prepared):
    """`files`, the model `fit(examples, settings, folder, seed, unlabelled_lower, prepared)` gave; with
    `settings["self_training"]` (a floor) and unlabelled sentences in `prepared.unlabelled`, the files of the
    model fitted again on `examples` and the unlabelled sentences it was sure of (once: a fit that includes
    such sentences is not self-trained again)."""
    floor = settings.get("self_training")
    if not floor or not prepared.unlabelled or (examples and examples[-1].article_id.startswith(PSEUDO)):
        return files
    import dataclasses
    import json

    import pycrfsuite

    from builder.learn.features import ArticleContext, is_headline_like, tokenize
    from builder.learn.trained import ENTITY_FILE, MEMORY_FILE, LearnedModel

    if ENTITY_FILE not in files:
        return files
    tagger = pycrfsuite.Tagger()
    tagger.open_inmemory(files[ENTITY_FILE])  # `files` keeps the bytes crfsuite reads alive while it tags
    probe = {"model_version": "self-training", "thresholds": {"headline_span": 1.0}, "settings": settings}
    model = LearnedModel(folder, probe, tagger, json.loads(files[MEMORY_FILE]), None)
    sure = []
    for k, text in enumerate(prepared.unlabelled):
        tokens = tokenize(text)
        if not tokens or is_headline_like(text):
            continue
        article = f"{PSEUDO}{k}"
        context = prepared.contexts.setdefault(article, ArticleContext([text]))
        spans, confidence = model._tagged(tokens, False, context)
        inside = {i for *_, indices in spans for i in indices}
        doubtful = [
            confidence[i] for i, (t, _, _) in enumerate(tokens) if i not in inside and i > 0 and t[:1].isupper()
        ]
        if spans and min(score for _, _, _, score, _ in spans) >= floor and min(doubtful, default=1.0) >= floor:
            prepared.texts.setdefault(text, (tokens, False))
            entities = tuple({"start": s, "end": e, "label": label} for s, e, label, _, _ in spans)
            sure.append(
                dataclasses.replace(
                    examples[0], id=article, article_id=article, text=text, entities=entities, stance=None, target=""
                )
            )
    return fit([*examples, *sure], settings, folder, seed, unlabelled_lower, prepared) if sure else files
