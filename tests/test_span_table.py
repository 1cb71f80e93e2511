"""builder.records.span_table's vectorised sufficient statistics equal the per-sentence loops they replace
(tests/reference_evidence.py, the code before issue 28.7's vectorising) on random records: overlapping and
nested spans, repeated spans, labels outside the scheme, sentences with 1 to 4 annotations, no stance."""

from __future__ import annotations

import numpy as np
import pytest

from builder.records import evidence, span_table, unitizing
from builder.records.span_table import SpanTable, pairs_within

from . import reference_evidence as reference

ENTITY = ["PER", "ORG", "LOC"]
STANCE = ["favor", "against", "neutral"]


def _records(seed: int, sentences: int = 300) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(sentences):
        length = int(rng.integers(0, 60))
        annotations = []
        for _ in range(int(rng.choice([1, 2, 3, 3, 3, 4]))):
            entities = []
            for _ in range(int(rng.integers(0, 6)) if length > 1 else 0):
                start = int(rng.integers(0, length - 1))
                end = int(rng.integers(start + 1, min(length, start + 1 + int(rng.integers(1, 20))) + 1))
                label = str(rng.choice([*ENTITY, "MISC"], p=[0.4, 0.25, 0.25, 0.1]))
                entities.append({"start": start, "end": end, "label": label})
                if rng.random() < 0.1:  # the same span again (a set: counts once)
                    entities.append(dict(entities[-1]))
            stance = None if rng.random() < 0.1 else str(rng.choice(STANCE))
            annotations.append({"entities": entities, "stance": stance})
        records.append({"text": "x" * length, "annotations": annotations})
    return records


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_statistics_equal_the_loops(seed):
    records = _records(seed)
    table = SpanTable(records, ENTITY, STANCE)
    assert np.array_equal(evidence.stance_counts(table, STANCE), reference.stance_counts(records, STANCE))
    features, pairs = span_table.span_f1_features(table)
    assert (features.tolist(), pairs) == tuple(
        x.tolist() if hasattr(x, "tolist") else x for x in reference.span_f1_features(records, ENTITY)
    )
    assert unitizing.disagreement_breakdown(table) == reference.disagreement_breakdown(records)
    m, sentences = reference.modal_sentences(records)
    loop = reference.LoopUnitizingData(sentences, ENTITY, m)
    loop.totals_of = loop.features.astype(np.float64)  # what UnitizingData.disagreements reads
    rows = np.flatnonzero(table.annotations == m)
    for ours in (unitizing.UnitizingData(sentences, ENTITY, m), unitizing.UnitizingData.from_table(table, m, rows)):
        assert (ours.n, ours.width, ours.m) == (loop.n, loop.width, loop.m)
        assert np.array_equal(ours.features, loop.features)
        for mine, theirs in zip(ours.unit_histograms + ours.gap_histograms, loop.unit_histograms + loop.gap_histograms):
            assert mine.has_canonical_format and theirs.has_canonical_format
            assert np.array_equal(mine.indptr, theirs.indptr) and np.array_equal(mine.indices, theirs.indices)
            assert np.array_equal(mine.data, theirs.data)
        weights = np.ones((1, loop.n), dtype=np.int64)
        assert all(
            np.array_equal(a, b)
            for a, b in zip(ours.disagreements(weights), unitizing.UnitizingData.disagreements(loop, weights))
        )


def test_join_chunks_cover_every_pair_once():
    starts = np.array([0, 3, 4, 9, 11])
    expected = [(i, j) for a, b in zip(starts, [3, 4, 9, 11, 12]) for i in range(a, b) for j in range(a, b)]
    for limit in (1, 5, 30, 1000):
        got = [pair for i, j in pairs_within(starts, 12, limit) for pair in zip(i.tolist(), j.tolist())]
        assert got == expected, limit


def test_empty_records():
    table = SpanTable([], ENTITY, STANCE)
    assert evidence.stance_counts(table, STANCE).shape == (0, 3)
    assert span_table.span_f1_features(table)[0].shape == (0, 6)
    assert unitizing.disagreement_breakdown(table)["disagreements"] == 0
    assert unitizing.unitizing_alpha(table, ENTITY)["sentences"] == 0
