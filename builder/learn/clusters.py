"""Word clusters learned from the project's sentences, labelled or not (issue 29): features of a word the
labelled sentences never showed the tagger, from the company it keeps in the text pushed for labelling.

Each word (as written: "Paris" and "paris" apart) frequent enough is described by the words just before and
after it (each side apart) as positive pointwise mutual information (PPMI, the contexts' distribution
smoothed by `CONTEXT_SMOOTHING`), reduced by a truncated SVD and clustered by k-means into the finest of the
granularities asked for; the coarser ones join those clusters by Ward's agglomeration of their centres, so a
coarse cluster holds whole fine ones (as Brown clusters' prefixes do). Everything is seeded and computed in
one thread: the same sentences give the same clusters, byte for byte.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from builder.learn.features import TOKEN

MIN_COUNT = 3  # a word seen fewer times gets no cluster
MAX_WORDS = 20_000  # the most frequent words clustered
CONTEXT_WORDS = 1_000  # the most frequent words used as contexts (each side)
DIMENSIONS = 50
CONTEXT_SMOOTHING = 0.75
WINDOW = 1  # contexts this many tokens away or fewer (2, and lower-cased words: fewer actions saved)


def word_clusters(texts: Iterable[str], granularities: list[int], seed: int = 0) -> dict[str, list[int]]:
    """{word: [its cluster at each granularity, coarsest first]} for the frequent words of
    `texts`; {} when there are too few words to cluster."""
    import numpy as np
    from scipy import sparse
    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.decomposition import TruncatedSVD
    from threadpoolctl import threadpool_limits

    granularities = sorted(set(granularities))
    if not granularities:
        return {}
    sentences = [TOKEN.findall(text) for text in texts]
    counts = Counter(t for s in sentences for t in s)
    ranked = sorted((w for w, n in counts.items() if n >= MIN_COUNT), key=lambda w: (-counts[w], w))[:MAX_WORDS]
    if len(ranked) < 2 * granularities[-1]:
        return {}
    index = {w: i for i, w in enumerate(ranked)}
    pad = [-1] * WINDOW  # sentences never touch: no pair crosses a boundary
    size = sum(len(s) + WINDOW for s in sentences)
    flat = np.fromiter((index.get(t, -2) for s in sentences for t in (*s, *pad)), dtype=np.int64, count=size)
    rows, cols = [], []
    for distance in range(1, WINDOW + 1):
        left, right = flat[:-distance], flat[distance:]
        # right context of the left word; left context of the right word; each side and distance its columns
        for word, context, slot in ((left, right, 2 * distance - 2), (right, left, 2 * distance - 1)):
            keep = (word >= 0) & (context >= 0) & (context < CONTEXT_WORDS)
            rows.append(word[keep])
            cols.append(context[keep] + slot * CONTEXT_WORDS)
    row, col = np.concatenate(rows), np.concatenate(cols)
    shape = (len(ranked), 2 * WINDOW * CONTEXT_WORDS)
    matrix = sparse.coo_matrix((np.ones(len(row)), (row, col)), shape=shape).tocsr()
    matrix.sum_duplicates()
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
