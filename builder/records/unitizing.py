"""Chance-corrected span agreement: Krippendorff's unitizing alpha (uα), per label and overall, and what the
span disagreements are (boundaries, labels, missing spans).

Krippendorff (1995), "On the reliability of unitizing continuous data", Sociological Methodology 25, 47-76;
Krippendorff (2004), Content Analysis, 2nd ed., section 12.4. For one label c, each annotator's text is
a sequence of units (spans of c) and gaps. The observed disagreement sums, over ordered pairs of
annotators, the squared distance of every pair of overlapping segments: two overlapping units differ by
(begin difference)² + (end difference)²; a unit lying in the other's gap counts its length squared;
D_o = Σ / (m (m-1) L²). The expected disagreement is that of all the ways the same units and gaps could
have been placed on the continuum:

    D_e = (2 / L) [ (N_c - 1) Σ_u l_u (l_u - 1)(2 l_u - 1) / 3 + Σ_u l_u² Σ_{gaps g ≥ l_u} (g - l_u + 1) ]
          / (m L (m L - 1) - Σ_u l_u (l_u - 1))

and |cuα = 1 - D_o / D_e; the overall uα is 1 - Σ_c D_o / Σ_c D_e. Checked against Krippendorff's (2004,
p. 254) worked example in tests/test_agreement_evidence.py.

How builder applies it: the continuum is the sentences with the most common number of annotations m
(every annotator of the formula must have unitized all of it), one after another, and a gap never runs
across a sentence's end (a span cannot), so every sum is a sum over sentences and the bootstrap over
sentences (builder.records.intervals) resamples them. Overlapping spans of one label by one annotator
are merged first (the formula assumes they do not overlap).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable

import numpy as np

from builder.records.intervals import RESAMPLES, SEED, figure, percentile_interval, weight_chunks

# Per sentence and label: observed numerator, Σ l(l-1)(2l-1)/3, units, Σ l(l-1), sentence length
_DO, _F, _UNITS, _LL1, _LENGTH = range(5)


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


class UnitizingData:
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

    def disagreements(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(D_o, D_e), each (labels, b), for b weight rows over the sentences (each row one resample)."""
        m = self.m
        sizes = np.arange(self.width, dtype=float)
        observed = np.zeros((len(self.labels), len(weights)))
        expected = np.zeros((len(self.labels), len(weights)))
        for c in range(len(self.labels)):
            totals = (weights @ self.features[c]).astype(float)  # (b, 5)
            length = totals[:, _LENGTH]
            units_by_size = np.asarray((self.unit_histograms[c].T @ weights.T).T, dtype=float)  # (b, width)
            gaps_by_size = np.asarray((self.gap_histograms[c].T @ weights.T).T, dtype=float)
            gaps_from = np.cumsum(gaps_by_size[:, ::-1], axis=1)[:, ::-1]  # gaps of length >= l
            gap_sum_from = np.cumsum((gaps_by_size * sizes)[:, ::-1], axis=1)[:, ::-1]
            placements = gap_sum_from - (sizes - 1) * gaps_from  # Σ_{g >= l} (g - l + 1)
            cross = (units_by_size * sizes**2 * placements).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                observed[c] = totals[:, _DO] / (m * (m - 1) * length**2)
                denominator = m * length * (m * length - 1) - totals[:, _LL1]
                expected[c] = (2 / length) * ((totals[:, _UNITS] - 1) * totals[:, _F] + cross) / denominator
        return np.nan_to_num(observed), np.nan_to_num(expected)


def alphas(observed: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per-label uα (labels, b), overall uα (b,)): NaN where the expected disagreement is 0 (no unit at all)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        per_label = np.where(expected > 0, 1 - observed / np.where(expected > 0, expected, 1), np.nan)
        total = expected.sum(axis=0)
        overall = np.where(total > 0, 1 - observed.sum(axis=0) / np.where(total > 0, total, 1), np.nan)
    return per_label, overall


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


def unitizing_alpha(records: Iterable[dict], labels: list[str], resamples: int = RESAMPLES, seed: int = SEED) -> dict:
    """uα per label and overall with 95% bootstrap intervals over sentences, and the n they rest on."""
    m, sentences = modal_sentences(records)
    result: dict = {"sentences": len(sentences), "annotators_per_sentence": m}
    if not sentences:
        result["overall"] = figure(None, 0, (None, None))
        result["per_label"] = {label: {**figure(None, 0, (None, None)), "units": 0} for label in labels}
        return result
    data = UnitizingData(sentences, labels, m)
    per_label, overall = alphas(*data.disagreements(np.ones((1, data.n), dtype=np.int64)))
    samples_label, samples_overall = [], []
    for weights in weight_chunks(data.n, resamples, seed):
        a, b = alphas(*data.disagreements(weights))
        samples_label.append(a)
        samples_overall.append(b)
    boot_label = np.concatenate(samples_label, axis=1)
    boot_overall = np.concatenate(samples_overall)
    n = len(sentences)  # each figure rests on the sentences resampled (`units`: the spans of a label)
    result["overall"] = figure(overall[0], n, percentile_interval(boot_overall))
    result["per_label"] = {
        label: {
            **figure(per_label[c, 0], n, percentile_interval(boot_label[c])),
            "units": int(data.features[c, :, _UNITS].sum()),
        }
        for c, label in enumerate(labels)
    }
    return result


DISAGREEMENT_KINDS = ("boundary", "label", "boundary_and_label", "missing")


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
