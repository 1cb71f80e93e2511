"""The agreement evidence's sufficient statistics as builder computed them before issue 28.7's vectorising: one
Python loop per sentence (builder.records.unitizing and builder.records.evidence up to that change), kept as
the reference tests/test_span_table.py compares builder.records.span_table with."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable

import numpy as np

_DO, _F, _UNITS, _LL1, _LENGTH = range(5)
DISAGREEMENT_KINDS = ("boundary", "label", "boundary_and_label", "missing")


def merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans of one label by one annotator, overlapping ones merged, sorted."""
    out: list[list[int]] = []
    for start, end in sorted(spans):
        if out and start < out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def gaps(units: list[tuple[int, int]], length: int) -> list[int]:
    """Lengths of the gaps between sorted, non-overlapping `units` in a text of `length` characters."""
    out, position = [], 0
    for start, end in units:
        if start > position:
            out.append(start - position)
        position = max(position, end)
    if length > position:
        out.append(length - position)
    return out


def pair_disagreement(left: list[tuple[int, int]], right: list[tuple[int, int]]) -> int:
    """Σ δ² over the overlapping segments of two annotators' units of one label (one order of the pair)."""
    total = 0
    hit_right = [False] * len(right)
    for start, end in left:
        hit = False
        for k, (other_start, other_end) in enumerate(right):
            if other_start < end and start < other_end:
                total += (start - other_start) ** 2 + (end - other_end) ** 2
                hit = hit_right[k] = True
        if not hit:  # inside a gap of the other annotator
            total += (end - start) ** 2
    total += sum((e - s) ** 2 for (s, e), hit in zip(right, hit_right) if not hit)
    return total


class LoopUnitizingData:
    """Per-sentence sufficient statistics of uα for each label, for the point estimate and the bootstrap."""

    def __init__(self, sentences: list[tuple[int, list[list[tuple[int, int, str]]]]], labels: list[str], m: int):
        self.labels, self.m, self.n = labels, m, len(sentences)
        self.features = np.zeros((len(labels), len(sentences), 5), dtype=np.int64)
        longest = max((length for length, _ in sentences), default=0)
        self.width = longest + 1
        unit_rows: list[list[int]] = [[] for _ in labels]
        unit_lengths: list[list[int]] = [[] for _ in labels]
        gap_rows: list[list[int]] = [[] for _ in labels]
        gap_lengths: list[list[int]] = [[] for _ in labels]
        present = np.zeros((len(labels), len(sentences)), dtype=bool)
        index = {label: i for i, label in enumerate(labels)}
        lengths = np.fromiter((length for length, _ in sentences), dtype=np.int64, count=len(sentences))
        self.features[:, :, _LENGTH] = lengths
        for row, (length, marked) in enumerate(sentences):
            per_label: dict[int, list[list[tuple[int, int]]]] = {}
            for a, spans in enumerate(marked):
                for start, end, label in spans:
                    if label in index and end > start:
                        per_label.setdefault(index[label], [[] for _ in marked])[a].append((start, end))
            for c, by_annotator in per_label.items():  # a label nobody marked here: one gap each, added below
                present[c, row] = True
                if all(len(spans) <= 1 for spans in by_annotator):  # the usual case, the same sums, faster
                    self._single_units(c, row, length, by_annotator, unit_rows, unit_lengths, gap_rows, gap_lengths)
                    continue
                units = [merged(spans) if len(spans) > 1 else spans for spans in by_annotator]
                f = u = ll1 = 0
                for one in units:
                    for start, end in one:
                        size = end - start
                        f += size * (size - 1) * (2 * size - 1) // 3
                        u += 1
                        ll1 += size * (size - 1)
                        unit_rows[c].append(row)
                        unit_lengths[c].append(size)
                    for size in gaps(one, length):
                        gap_rows[c].append(row)
                        gap_lengths[c].append(size)
                observed = sum(pair_disagreement(x, y) for x, y in itertools.combinations(units, 2))
                self.features[c, row, :_LENGTH] = (2 * observed, f, u, ll1)
        from scipy.sparse import csr_matrix

        def histogram(rows, sizes, absent=None):
            rows, sizes = np.asarray(rows, dtype=np.int64), np.asarray(sizes, dtype=np.int64)
            data = np.ones(len(rows), dtype=np.int64)
            if absent is not None:  # m whole-sentence gaps in each sentence without the label (summed by csr)
                rows = np.concatenate([rows, absent])
                sizes = np.concatenate([sizes, lengths[absent]])
                data = np.concatenate([data, np.full(len(absent), m, dtype=np.int64)])
            return csr_matrix((data, (rows, sizes)), shape=(self.n, self.width))

        self.unit_histograms = [histogram(unit_rows[c], unit_lengths[c]) for c in range(len(labels))]
        self.gap_histograms = [
            histogram(gap_rows[c], gap_lengths[c], np.flatnonzero(~present[c] & (lengths > 0)))
            for c in range(len(labels))
        ]

    def _single_units(self, c, row, length, by_annotator, unit_rows, unit_lengths, gap_rows, gap_lengths) -> None:
        """`__init__`'s sums for one sentence and label where each annotator marked at most one span of it:
        the gaps are before and after the span, and two annotators' spans overlap or are each in the other's gap."""
        f = u = ll1 = 0
        for spans in by_annotator:
            if not spans:
                if length > 0:
                    gap_rows[c].append(row)
                    gap_lengths[c].append(length)
                continue
            start, end = spans[0]
            size = end - start
            f += size * (size - 1) * (2 * size - 1) // 3
            u += 1
            ll1 += size * (size - 1)
            unit_rows[c].append(row)
            unit_lengths[c].append(size)
            if start > 0:
                gap_rows[c].append(row)
                gap_lengths[c].append(start)
            if length > end:
                gap_rows[c].append(row)
                gap_lengths[c].append(length - end)
        observed = 0
        for left, right in itertools.combinations(by_annotator, 2):
            if left and right:
                (start, end), (other_start, other_end) = left[0], right[0]
                if other_start < end and start < other_end:
                    observed += (start - other_start) ** 2 + (end - other_end) ** 2
                else:
                    observed += (end - start) ** 2 + (other_end - other_start) ** 2
            elif left or right:
                start, end = (left or right)[0]
                observed += (end - start) ** 2
        self.features[c, row, :_LENGTH] = (2 * observed, f, u, ll1)


def modal_sentences(records: Iterable[dict]) -> tuple[int, list]:
    """(m, sentences): the sentences with the most common number of annotations (2 or more; ties: the larger
    number), each as (length, [spans of each annotation as (start, end, label)])."""
    sentences = [
        (len(r["text"]), [[(e["start"], e["end"], e["label"]) for e in a["entities"]] for a in r["annotations"]])
        for r in records
        if len(r["annotations"]) >= 2
    ]
    if not sentences:
        return 0, []
    counts = Counter(len(a) for _, a in sentences)
    m = max(counts, key=lambda k: (counts[k], k))
    return m, [s for s in sentences if len(s[1]) == m]


def disagreement_breakdown(records: Iterable[dict]) -> dict:
    """What the span disagreements between two annotators of a sentence are. For every pair of annotations,
    each span of one that the other lacks exactly (same start, end and label) counts once, as `boundary`
    (the other has an overlapping span of the same label), `label` (the same start and end with another
    label), `boundary_and_label` (only an overlapping span of another label) or `missing` (nothing overlaps)."""
    counts = dict.fromkeys(DISAGREEMENT_KINDS, 0)
    for record in records:
        spans = [{(e["start"], e["end"], e["label"]) for e in a["entities"]} for a in record["annotations"]]
        for left, right in itertools.combinations(spans, 2):
            for own, other in ((left, right), (right, left)):
                for span in own - other:
                    counts[_kind(span, other)] += 1
    total = sum(counts.values())
    return {
        "disagreements": total,
        "counts": counts,
        "shares": {k: (round(v / total, 4) if total else None) for k, v in counts.items()},
    }


def _kind(span: tuple[int, int, str], other: set) -> str:
    start, end, label = span
    overlapping = [s for s in other if s[0] < end and start < s[1]]
    if any(s[0] == start and s[1] == end for s in overlapping):
        return "label"
    if any(s[2] == label for s in overlapping):
        return "boundary"
    return "boundary_and_label" if overlapping else "missing"


def stance_counts(records: Iterable[dict], labels: list[str]) -> np.ndarray:
    """(sentences, labels) int64: how many annotators gave each stance, for sentences with 1+ stance."""
    index = {label: i for i, label in enumerate(labels)}
    rows = []
    for record in records:
        row = [0] * len(labels)
        for annotation in record["annotations"]:
            if annotation["stance"] is not None:
                row[index[annotation["stance"]]] += 1
        if any(row):
            rows.append(row)
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), len(labels))


def span_f1_features(records: list[dict], labels: list[str]):
    """The per-sentence [matched, sizes] columns span_f1_evidence bootstraps, and the pairs."""
    import itertools

    index = {label: i for i, label in enumerate(labels)}
    rows = []
    pairs = 0
    for record in records:
        k = len(record["annotations"])
        if k < 2:
            continue
        spans = [{(e["start"], e["end"], e["label"]) for e in a["entities"]} for a in record["annotations"]]
        row = [0] * (2 * len(labels))
        pairs += k * (k - 1) // 2
        for one in spans:  # each annotation's spans count once in each of its k - 1 pairs' sizes
            for s in one:
                i = index.get(s[2])
                if i is not None:
                    row[2 * i + 1] += k - 1
        for left, right in itertools.combinations(spans, 2):
            for s in left & right:
                i = index.get(s[2])
                if i is not None:
                    row[2 * i] += 1
        rows.append(row)
    features = np.asarray(rows, dtype=np.int64).reshape(len(rows), 2 * len(labels))
    return features, pairs
