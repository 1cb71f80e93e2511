"""The agreement evidence's per-sentence sufficient statistics from one flat table of spans, vectorised.

builder.records.evidence and builder.records.unitizing state their figures as sums over sentences of small
integer statistics (stance counts, exact-span matches, unitizing alpha's observed disagreement and unit
and gap lengths, the span disagreement kinds). Built with a Python loop per sentence, they were most of
what issue 28's evidence adds to a build (bench/bench_build_snapshot.py --evidence-off); here the records
are read once into arrays (`SpanTable`) and every statistic is a sort, a grouped sum or a self-join of
the spans within a sentence, in bounded chunks. All integers, so the figures are the same to the bit
(tests/test_span_table.py checks them against the per-sentence loops on random data).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

JOIN_ROWS = 1 << 19  # span pairs formed at once by `pairs_within` (memory: a few arrays of this many int64)


class SpanTable:
    """The records flattened once: per record its number of annotations and text length; per annotation its
    record and stance; per entity span its record, annotation (global and position in its record), start,
    end and label code (the entity labels first, in order, then any other label in order of appearance).
    `spans` False: the stances only (records without text or entities, as builder.records.steering's)."""

    def __init__(
        self,
        records: Iterable[dict],
        entity_labels: list[str],
        stance_labels: list[str] | None = None,
        spans: bool = True,
    ):
        from itertools import chain
        from operator import itemgetter

        records = records if isinstance(records, list) else list(records)
        codes = _Codes((label, i) for i, label in enumerate(entity_labels))
        marked = list(map(itemgetter("annotations"), records))
        self.entity_labels = list(entity_labels)
        self.annotations = np.fromiter(map(len, marked), dtype=np.int64, count=len(marked))
        every = list(chain.from_iterable(marked))  # the annotations, record after record
        self.annotation_record = np.repeat(np.arange(len(marked), dtype=np.int64), self.annotations)
        self.stances = np.zeros(0, dtype=np.int64)
        if stance_labels is not None:
            index = {label: i for i, label in enumerate(stance_labels)}
            index[None] = -1
            stances = map(index.__getitem__, map(itemgetter("stance"), every))
            self.stances = np.fromiter(stances, dtype=np.int64, count=len(every))
        self.lengths = np.zeros(len(marked), dtype=np.int64)
        counts = np.zeros(len(every), dtype=np.int64)
        if spans:
            self.lengths = np.fromiter(map(len, map(itemgetter("text"), records)), dtype=np.int64, count=len(marked))
            entities = list(map(itemgetter("entities"), every))
            counts = np.fromiter(map(len, entities), dtype=np.int64, count=len(entities))
        total = int(counts.sum())

        def column(values) -> np.ndarray:  # one field of every span, read straight into an array
            return np.fromiter(values, dtype=np.int64, count=total)

        flat = chain.from_iterable(entities) if spans else ()
        self.start = column(map(itemgetter("start"), flat))
        flat = chain.from_iterable(entities) if spans else ()
        self.end = column(map(itemgetter("end"), flat))
        flat = chain.from_iterable(entities) if spans else ()
        # labels outside the scheme get the next codes, in order of appearance (`_Codes`)
        self.label = column(map(codes.__getitem__, map(itemgetter("label"), flat)))
        first = np.cumsum(self.annotations) - self.annotations  # each record's first annotation
        self.annotation = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        self.record = self.annotation_record[self.annotation]
        self.position = self.annotation - first[self.record]
        self.labels = list(codes)

    @classmethod
    def of(cls, records, entity_labels: list[str], stance_labels: list[str] | None = None, spans: bool = True):
        """`records` itself when it is already a table (with the stances when they are asked for), else its table."""
        if isinstance(records, SpanTable):
            assert not entity_labels or records.entity_labels == list(entity_labels), "a table of other labels"
            assert stance_labels is None or len(records.stances) == len(records.annotation_record), "no stances"
            return records
        return cls(records, entity_labels, stance_labels, spans)

    def distinct(self) -> np.ndarray:
        """Indices of the spans, one per (annotation, start, end, label) (an annotation's spans are a set),
        sorted by record, annotation, start, end, label."""
        order = np.lexsort((self.label, self.end, self.start, self.annotation))
        keep = np.ones(len(order), dtype=bool)
        if len(order):
            keep[1:] = (
                (np.diff(self.annotation[order]) != 0)
                | (np.diff(self.start[order]) != 0)
                | (np.diff(self.end[order]) != 0)
                | (np.diff(self.label[order]) != 0)
            )
        return order[keep]


class _Codes(dict):
    """Label codes: a label not yet coded gets the next code when it is first looked up."""

    def __missing__(self, label: str) -> int:
        self[label] = code = len(self)
        return code


def runs(*keys: np.ndarray) -> np.ndarray:
    """Start indices of the runs of equal consecutive (keys...) rows (the arrays sorted by them)."""
    n = len(keys[0])
    if not n:
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


def pairs_within(starts: np.ndarray, total: int, limit: int = JOIN_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every ordered pair (i, j), i == j included, of rows in the same group, where groups are the runs
    beginning at `starts` of `total` rows: index arrays (i, j) in chunks of about `limit` pairs, whole groups
    each, i ascending and j ascending within each i."""
    sizes = np.diff(np.append(starts, total))
    if not len(sizes):
        return
    cumulative = np.cumsum(sizes * sizes)
    first = 0
    while first < len(sizes):
        done = cumulative[first - 1] if first else 0
        last = max(int(np.searchsorted(cumulative, done + limit, side="right")), first + 1)
        n, offsets = sizes[first:last], starts[first:last]
        rows = np.repeat(n, n)  # each row of these groups, its group's size
        i = np.repeat(np.arange(offsets[0], offsets[-1] + n[-1], dtype=np.int64), rows)
        block = np.cumsum(rows) - rows  # where each i's pairs begin
        j = np.repeat(np.repeat(offsets, n), rows) + np.arange(len(i), dtype=np.int64) - np.repeat(block, rows)
        yield i, j
        first = last


def grouped_sum(keys: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """int64 sums of `values` by integer `keys` in [0, size): exact (no float weights)."""
    out = np.zeros(size, dtype=np.int64)
    if len(keys):
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        begin = runs(sorted_keys)
        out[sorted_keys[begin]] = np.add.reduceat(values[order].astype(np.int64), begin)
    return out


def stance_counts(table: SpanTable, q: int) -> np.ndarray:
    """(sentences, q) int64: how many annotators gave each stance, for the sentences with 1+ stance."""
    rated = table.stances >= 0
    keys = table.annotation_record[rated] * q + table.stances[rated]
    counts = np.bincount(keys, minlength=len(table.annotations) * q).reshape(len(table.annotations), q)
    return counts[counts.any(axis=1)].astype(np.int64)


def span_f1_features(table: SpanTable) -> tuple[np.ndarray, int]:
    """((sentences with 2+ annotations, 2 x entity labels) int64 [matched pairs, span sizes] per label, pairs)."""
    q = len(table.entity_labels)
    compared = table.annotations >= 2
    pairs = int((table.annotations * (table.annotations - 1) // 2)[compared].sum())
    keep = table.distinct()
    keep = keep[(table.label[keep] < q) & compared[table.record[keep]]]
    record, label = table.record[keep], table.label[keep]
    n = len(table.annotations)
    features = np.zeros((n, 2 * q), dtype=np.int64)
    # each annotation's spans count once in each of its k - 1 pairs' sizes
    features[:, 1::2] = grouped_sum(record * q + label, table.annotations[record] - 1, n * q).reshape(n, q)
    # a span c annotations of the sentence share: c (c - 1) / 2 matched pairs
    order = np.lexsort((table.end[keep], table.start[keep], label, record))
    begin = runs(record[order], label[order], table.start[keep][order], table.end[keep][order])
    shared = np.diff(np.append(begin, len(order)))
    same = order[begin]
    features[:, 0::2] = grouped_sum(record[same] * q + label[same], shared * (shared - 1) // 2, n * q).reshape(n, q)
    return features[compared], pairs


def disagreement_counts(table: SpanTable) -> tuple[int, int, int, int]:
    """(boundary, label, boundary_and_label, missing): builder.records.unitizing.disagreement_breakdown's counts.
    For each distinct span s of an annotation and each other annotation B of its sentence where B lacks s."""
    keep = table.distinct()  # sorted by record, annotation
    record, annotation = table.record[keep], table.annotation[keep]
    start, end, label = table.start[keep], table.end[keep], table.label[keep]
    others = table.annotations[record] - 1
    boundary = label_only = both = 0
    unmatched_total = int(others.sum())  # (s, B) pairs; those with an exact match leave, the rest have a kind
    for i, j in pairs_within(runs(record), len(keep)):
        other = annotation[i] != annotation[j]
        i, j = i[other], j[other]
        overlap = (start[j] < end[i]) & (start[i] < end[j])
        bounds = (start[i] == start[j]) & (end[i] == end[j])
        exact = bounds & (label[i] == label[j])
        same_label = overlap & (label[i] == label[j])
        # one row per (s, B): i ascending, B's spans contiguous within each i
        begin = runs(i, annotation[j])
        if not len(begin):
            continue
        has_exact = np.logical_or.reduceat(exact, begin)
        has_bounds = np.logical_or.reduceat(overlap & bounds, begin) & ~has_exact
        has_label = np.logical_or.reduceat(same_label, begin) & ~has_exact & ~has_bounds
        has_overlap = np.logical_or.reduceat(overlap, begin) & ~has_exact & ~has_bounds & ~has_label
        unmatched_total -= int(has_exact.sum())
        label_only += int(has_bounds.sum())
        boundary += int(has_label.sum())
        both += int(has_overlap.sum())
    return boundary, label_only, both, unmatched_total - boundary - label_only - both


def unitizing_statistics(
    lengths: np.ndarray,
    m: int,
    row: np.ndarray,
    position: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    label: np.ndarray,
    q: int,
) -> tuple[np.ndarray, list, list]:
    """builder.records.unitizing.UnitizingData's statistics: features (q, n, 5) [2 D_o numerator, Σ l(l-1)(2l-1)/3,
    units, Σ l(l-1), length] and, per label, (rows, sizes, counts) of the units' and of the gaps' lengths.

    `lengths`: the n sentences' lengths; the spans: sentence `row`, annotator `position` (of m), start, end,
    label code (those >= q, or empty, are ignored). One annotator's overlapping spans of a label are merged."""
    n = len(lengths)
    features = np.zeros((q, n, 5), dtype=np.int64)
    features[:, :, 4] = lengths
    keep = (label < q) & (end > start)
    row, position, start, end, label = row[keep], position[keep], start[keep], end[keep], label[keep]
    order = np.lexsort((end, start, position, row, label))
    row, position, start, end, label = row[order], position[order], start[order], end[order], label[order]
    # merge: a span starting before the furthest end so far of its (label, sentence, annotator) joins that unit
    group = runs(label, row, position)
    rank = np.repeat(np.arange(len(group), dtype=np.int64), np.diff(np.append(group, len(row))))
    step = int(end.max(initial=0)) + 1
    reach = np.maximum.accumulate(rank * step + end)
    new = np.ones(len(row), dtype=bool)
    if len(row):
        new[1:] = (rank[1:] != rank[:-1]) | (rank[1:] * step + start[1:] >= reach[:-1])
    begin = np.flatnonzero(new)
    u_start, u_end = start[begin], reach[np.append(begin[1:], len(row))[: len(begin)] - 1] - rank[begin] * step
    u_row, u_position, u_label = row[begin], position[begin], label[begin]
    size = u_end - u_start
    cell = u_label * n + u_row
    features[:, :, 1] = grouped_sum(cell, size * (size - 1) * (2 * size - 1) // 3, q * n).reshape(q, n)
    features[:, :, 2] = grouped_sum(cell, np.ones(len(cell), dtype=np.int64), q * n).reshape(q, n)
    features[:, :, 3] = grouped_sum(cell, size * (size - 1), q * n).reshape(q, n)
    # gaps: before each unit (after the previous one of its annotator), after the last, and a whole sentence
    # for each annotator without a unit of the label in it
    first = np.ones(len(u_row), dtype=bool)
    last = np.ones(len(u_row), dtype=bool)
    if len(u_row):
        same = (u_label[1:] == u_label[:-1]) & (u_row[1:] == u_row[:-1]) & (u_position[1:] == u_position[:-1])
        first[1:] = ~same
        last[:-1] = ~same
    before = u_start - np.where(first, 0, np.roll(u_end, 1))
    after = lengths[u_row] - u_end
    annotators = np.zeros(q * n, dtype=np.int64)
    marked = runs(u_label, u_row, u_position)  # one per (label, sentence, annotator) with a unit
    np.add.at(annotators, cell[marked], 1)
    empty = m - annotators.reshape(q, n)
    units, gap_cells = [], []
    for c in range(q):
        mine = u_label == c
        units.append((u_row[mine], size[mine], np.ones(int(mine.sum()), dtype=np.int64)))
        gap_row = [u_row[mine & (before > 0)], u_row[mine & last & (after > 0)]]
        gap_size = [before[mine & (before > 0)], after[mine & last & (after > 0)]]
        whole = np.flatnonzero((empty[c] > 0) & (lengths > 0))
        rows_ = np.concatenate([*gap_row, whole])
        sizes_ = np.concatenate([*gap_size, lengths[whole]])
        counts = np.concatenate([np.ones(len(rows_) - len(whole), dtype=np.int64), empty[c][whole]])
        gap_cells.append((rows_, sizes_, counts))
    # observed disagreement: over ordered pairs of annotators, each overlapping pair of units (δ² of its
    # begins and ends), and twice each unit's length² for every other annotator with no unit overlapping it
    observed = np.zeros(q * n, dtype=np.int64)
    hits = np.zeros(len(u_row), dtype=np.int64)  # per unit: the other annotators with a unit overlapping it
    for i, j in pairs_within(runs(u_label, u_row), len(u_row)):
        other = u_position[i] != u_position[j]
        i, j = i[other], j[other]
        overlap = (u_start[j] < u_end[i]) & (u_start[i] < u_end[j])
        i, j = i[overlap], j[overlap]
        delta = (u_start[i] - u_start[j]) ** 2 + (u_end[i] - u_end[j]) ** 2
        observed += grouped_sum(cell[i], delta, q * n)
        touched = runs(i, u_position[j])  # one per (unit, other annotator) with an overlap
        hits += np.bincount(i[touched], minlength=len(u_row))
    observed += grouped_sum(cell, 2 * (m - 1 - hits) * size * size, q * n)
    features[:, :, 0] = observed.reshape(q, n)
    return features, units, gap_cells
