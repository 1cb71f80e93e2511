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

import numpy as np

from builder.records.intervals import RESAMPLES, SEED, figure, percentile_interval, weight_chunks
from builder.records.span_table import SpanTable, disagreement_counts, unitizing_statistics

# Per sentence and label: observed numerator, Σ l(l-1)(2l-1)/3, units, Σ l(l-1), sentence length
_DO, _F, _UNITS, _LL1, _LENGTH = range(5)


class UnitizingData:
    """Per-sentence sufficient statistics of uα for each label, for the point estimate and the bootstrap
    (computed by builder.records.span_table.unitizing_statistics, vectorised)."""

    def __init__(self, sentences: list[tuple[int, list[list[tuple[int, int, str]]]]], labels: list[str], m: int):
        index = {label: i for i, label in enumerate(labels)}
        spans = [
            (row, a, start, end, index.get(label, len(labels)))
            for row, (_, marked) in enumerate(sentences)
            for a, one in enumerate(marked)
            for start, end, label in one
        ]
        columns = np.asarray(spans, dtype=np.int64).reshape(len(spans), 5).T
        lengths = np.fromiter((length for length, _ in sentences), dtype=np.int64, count=len(sentences))
        self._fill(lengths, m, labels, *columns)

    @classmethod
    def from_table(cls, table: SpanTable, m: int, rows: np.ndarray) -> UnitizingData:
        """The statistics of the sentences `rows` (records of `table`, each with m annotations), in that order."""
        data = cls.__new__(cls)
        row_of = np.full(len(table.annotations), -1, dtype=np.int64)
        row_of[rows] = np.arange(len(rows), dtype=np.int64)
        mine = row_of[table.record] >= 0
        data._fill(
            table.lengths[rows],
            m,
            table.entity_labels,
            row_of[table.record[mine]],
            table.position[mine],
            table.start[mine],
            table.end[mine],
            table.label[mine],
        )
        return data

    def _fill(self, lengths, m, labels, row, position, start, end, label) -> None:
        from scipy.sparse import csr_matrix

        self.labels, self.m, self.n = labels, m, len(lengths)
        self.width = int(lengths.max(initial=0)) + 1
        self.features, units, gaps_ = unitizing_statistics(lengths, m, row, position, start, end, label, len(labels))

        def histogram(rows, sizes, counts):
            return csr_matrix((counts, (rows, sizes)), shape=(self.n, self.width))

        self.totals_of = self.features.astype(np.float64)  # what a weight matrix multiplies (exact: integers)
        self.unit_histograms = [histogram(*one) for one in units]
        self.gap_histograms = [histogram(*one) for one in gaps_]

    def disagreements(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(D_o, D_e), each (labels, b), for b weight rows over the sentences (each row one resample)."""
        m = self.m
        sizes = np.arange(self.width, dtype=float)
        observed = np.zeros((len(self.labels), len(weights)))
        expected = np.zeros((len(self.labels), len(weights)))
        by_sentence = np.ascontiguousarray(weights.T, dtype=np.float64)  # (n, b), once for every product
        for c in range(len(self.labels)):
            totals = weights @ self.totals_of[c]  # (b, 5)
            length = totals[:, _LENGTH]
            units_by_size = np.asarray((self.unit_histograms[c].T @ by_sentence).T, dtype=float)  # (b, width)
            gaps_by_size = np.asarray((self.gap_histograms[c].T @ by_sentence).T, dtype=float)
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


def unitizing_alpha(records, labels: list[str], resamples: int = RESAMPLES, seed: int = SEED) -> dict:
    """uα per label and overall with 95% bootstrap intervals over sentences, and the n they rest on: the
    sentences with the most common number m of annotations (2 or more; ties: the larger number).
    `records`: the records or their builder.records.span_table.SpanTable (built with these labels)."""
    table = SpanTable.of(records, labels)
    sizes = table.annotations[table.annotations >= 2]
    m = 0
    if len(sizes):
        values, counts = np.unique(sizes, return_counts=True)
        m = int(max(zip(counts, values))[1])
    rows = np.flatnonzero(table.annotations == m) if m else np.zeros(0, dtype=np.int64)
    result: dict = {"sentences": len(rows), "annotators_per_sentence": m}
    if not len(rows):
        result["overall"] = figure(None, 0, (None, None))
        result["per_label"] = {label: {**figure(None, 0, (None, None)), "units": 0} for label in labels}
        return result
    data = UnitizingData.from_table(table, m, rows)
    per_label, overall = alphas(*data.disagreements(np.ones((1, data.n), dtype=np.int64)))
    samples_label, samples_overall = [], []
    for weights in weight_chunks(data.n, resamples, seed):
        a, b = alphas(*data.disagreements(weights))
        samples_label.append(a)
        samples_overall.append(b)
    boot_label = np.concatenate(samples_label, axis=1)
    boot_overall = np.concatenate(samples_overall)
    n = len(rows)  # each figure rests on the sentences resampled (`units`: the spans of a label)
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


def disagreement_breakdown(records) -> dict:
    """What the span disagreements between two annotators of a sentence are. For every pair of annotations,
    each span of one that the other lacks exactly (same start, end and label) counts once, as `boundary`
    (the other has an overlapping span of the same label), `label` (the same start and end with another
    label), `boundary_and_label` (only an overlapping span of another label) or `missing` (nothing overlaps).
    `records`: the records or their builder.records.span_table.SpanTable (counted by `disagreement_counts`)."""
    counts = dict(zip(DISAGREEMENT_KINDS, disagreement_counts(SpanTable.of(records, []))))
    total = sum(counts.values())
    return {
        "disagreements": total,
        "counts": counts,
        "shares": {k: (round(v / total, 4) if total else None) for k, v in counts.items()},
    }
