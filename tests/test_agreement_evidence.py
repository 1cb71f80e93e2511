"""Agreement evidence (issue 28, points 1-4): unitizing alpha and Gwet's AC1 checked against published worked
examples, every figure with a reproducible 95% interval and its n, the span disagreement breakdown, the
diagnostics, and where they reach: the card (manifest format 9 on), `builder stats`, `builder quality`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from builder.records.evidence import agreement_evidence, gwet_ac1
from builder.records.unitizing import UnitizingData, alphas, disagreement_breakdown


def _point(sentences, labels, m):
    data = UnitizingData(sentences, labels, m)
    observed, expected = data.disagreements(np.ones((1, data.n), dtype=np.int64))
    per_label, overall = alphas(observed, expected)
    return observed[:, 0], expected[:, 0], per_label[:, 0], overall[0]


def test_unitizing_alpha_matches_krippendorff_2004_worked_example():
    """Krippendorff (2004), Content Analysis, 2nd ed., p. 254: a continuum 150-450, two observers, categories
    c and k; |c uα = 0.7286 (D_o 0.0144, D_e 0.0532), |k uα = 1 (D_e 0.0490), uα = 0.8591."""

    def unit(begin, length, label):
        return (begin - 150, begin - 150 + length, label)

    first = [unit(225, 70, "c"), unit(370, 30, "c"), unit(180, 60, "k"), unit(300, 50, "k")]
    second = [unit(220, 80, "c"), unit(355, 20, "c"), unit(400, 20, "c"), unit(180, 60, "k"), unit(300, 50, "k")]
    observed, expected, per_label, overall = _point([(300, [first, second])], ["c", "k"], 2)
    assert observed == pytest.approx([0.0144, 0.0], abs=1e-4)
    assert expected == pytest.approx([0.0532, 0.0490], abs=1e-4)
    assert per_label == pytest.approx([0.7286, 1.0], abs=1e-4)
    assert overall == pytest.approx(0.8591, abs=5e-4)  # the book's rounding of its intermediate figures


def test_unitizing_alpha_matches_krippendorff_1995_worked_example():
    """Krippendorff (1995), Sociological Methodology 25, p. 57: four pairs of observers on a 24-unit continuum
    (A Bertha/Bill, B John/Jill, C Gerret/Gill, D Heather/Hill); observed disagreements as published, and
    the alphas of the continuum stretched long enough for the expected disagreement to converge."""
    example = {
        "A": ([(2, 8), (14, 6)], [(4, 4), (15, 2)]),
        "B": ([(0, 18)], [(0, 2), (2, 1), (3, 1), (4, 1), (5, 1), (6, 3), (9, 1)]),
        "C": ([(2, 6), (10, 2), (14, 4), (20, 2)], [(0, 2), (4, 4), (10, 4), (16, 2), (20, 2)]),
        "D": ([(0, 2), (2, 8), (10, 4), (14, 6), (20, 4)], [(0, 4), (4, 4), (8, 7), (15, 2), (17, 7)]),
    }
    published = {"A": (0.03125, 0.553), "B": (2.26736, -0.926), "C": (0.02777, 0.679), "D": (0.38715, 0.066)}
    for label, (first, second) in example.items():

        def spans(units, stretch):
            return [(b * stretch, (b + n) * stretch, label) for b, n in units]

        observed, _, _, _ = _point([(24, [spans(first, 1), spans(second, 1)])], [label], 2)
        assert observed[0] == pytest.approx(published[label][0], abs=1e-5), label
        stretch = 50_000
        _, _, per_label, _ = _point([(24 * stretch, [spans(first, stretch), spans(second, stretch)])], [label], 2)
        assert per_label[0] == pytest.approx(published[label][1], abs=0.02), label


def _stance_records(table, labels):
    records = []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            for _ in range(count):
                records.append(
                    {
                        "text": "A sentence.",
                        "annotations": [
                            {"stance": labels[i], "entities": []},
                            {"stance": labels[j], "entities": []},
                        ],
                    }
                )
    return records


def test_gwet_ac1_alpha_and_kappa_match_irrcac_worked_example():
    """irrCAC's documented example (Gwet 2014; the package's overview vignette): cont3x3abstractors gives
    Gwet's AC1 0.8493305, Krippendorff's alpha 0.7972585 and Scott's pi 0.7962397 (Fleiss' kappa for two raters)."""
    table = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]
    labels = ["ectopic", "aiu", "niu"]
    stance = agreement_evidence(_stance_records(table, labels), labels, ["PER"])["stance"]
    assert stance["gwet_ac1"]["value"] == pytest.approx(0.8493305, abs=1e-4)
    assert stance["krippendorff_alpha"]["value"] == pytest.approx(0.7972585, abs=1e-4)
    assert stance["fleiss_kappa"]["value"] == pytest.approx(0.7962397, abs=1e-4)
    assert stance["gwet_ac1"]["n"] == stance["krippendorff_alpha"]["n"] == 100
    counts = np.array([[1 if k in (i, j) and i == j else 0 for k in range(3)] for i in range(3) for j in range(3)])
    assert np.isfinite(gwet_ac1(counts * 2))
    assert "not applicable" in stance["ac2"]


def test_prevalence_paradox_is_diagnosed_and_ac1_stays_high():
    """90 of 100 sentences both 'neutral', a few disagreements: kappa and alpha fall, AC1 does not, and the
    diagnostics say to read AC1."""
    labels = ["favor", "neutral", "against"]
    records = _stance_records([[1, 4, 0], [5, 90, 0], [0, 0, 0]], labels)
    evidence = agreement_evidence(records, labels, ["PER"])
    stance = evidence["stance"]
    assert stance["krippendorff_alpha"]["value"] < 0.2 < 0.8 < stance["gwet_ac1"]["value"]
    kinds = {(d["kind"], d["figure"]) for d in evidence["diagnostics"]}
    assert ("label_dominates", "stance") in kinds
    assert any("Gwet's AC1" in d["message"] for d in evidence["diagnostics"])


def test_every_figure_has_a_reproducible_interval_and_n():
    rng = np.random.default_rng(3)
    labels, entity_labels = ["favor", "neutral", "against"], ["PER", "ORG"]
    records = []
    for _ in range(300):
        truth = rng.integers(0, 3)
        start = int(rng.integers(0, 30))
        annotations = []
        for _ in range(3):
            stance = labels[truth if rng.random() < 0.8 else rng.integers(0, 3)]
            shift = int(rng.integers(0, 2))
            annotations.append(
                {"stance": stance, "entities": [{"start": start + shift, "end": start + 6, "label": "PER"}]}
            )
        records.append({"text": "x" * 60, "annotations": annotations})
    first = agreement_evidence(records, labels, entity_labels)
    again = agreement_evidence(records, labels, entity_labels)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    figures = [
        first["stance"]["krippendorff_alpha"],
        first["stance"]["gwet_ac1"],
        first["stance"]["fleiss_kappa"],
        first["span_f1"]["f1"],
        first["span_f1"]["per_label"]["PER"],
        first["unitizing_alpha"]["overall"],
        first["unitizing_alpha"]["per_label"]["PER"],
    ]
    for f in figures:
        assert f["low"] <= f["value"] <= f["high"], f
        assert f["high"] - f["low"] < 0.3
    assert first["stance"]["gwet_ac1"]["n"] == 300 and first["unitizing_alpha"]["sentences"] == 300
    # more data, narrower interval
    narrow = agreement_evidence(records * 4, labels, entity_labels)["stance"]["gwet_ac1"]
    assert narrow["high"] - narrow["low"] < figures[1]["high"] - figures[1]["low"]


def test_span_disagreements_are_told_apart_and_boundaries_diagnosed():
    def annotation(*spans):
        return {"stance": "neutral", "entities": [{"start": s, "end": e, "label": lab} for s, e, lab in spans]}

    records = [
        {"text": "x" * 40, "annotations": [annotation((0, 5, "PER")), annotation((0, 6, "PER"))]},  # 2 boundary
        {"text": "x" * 40, "annotations": [annotation((0, 5, "PER")), annotation((0, 5, "ORG"))]},  # 2 label
        {"text": "x" * 40, "annotations": [annotation((0, 5, "PER")), annotation((1, 5, "ORG"))]},  # 2 both
        {"text": "x" * 40, "annotations": [annotation((0, 5, "PER")), annotation()]},  # 1 missing
        {"text": "x" * 40, "annotations": [annotation((10, 15, "PER")), annotation((10, 15, "PER"))]},  # agree
    ]
    breakdown = disagreement_breakdown(records)
    assert breakdown["counts"] == {"boundary": 2, "label": 2, "boundary_and_label": 2, "missing": 1}
    mostly = records[:1] * 5 + records[3:]
    evidence = agreement_evidence(mostly, ["neutral", "favor"], ["PER", "ORG"])
    kinds = {d["kind"] for d in evidence["diagnostics"]}
    assert "mostly_boundaries" in kinds and "too_few_items" in kinds
    # unitizing alpha penalises an off-by-one boundary less than a missing span
    near = agreement_evidence(records[:1] * 40 + records[4:] * 40, ["neutral"], ["PER"])
    missing = agreement_evidence(records[3:4] * 40 + records[4:] * 40, ["neutral"], ["PER"])
    assert near["unitizing_alpha"]["overall"]["value"] > missing["unitizing_alpha"]["overall"]["value"]


SNAPSHOT = __import__("pathlib").Path(__file__).resolve().parents[1] / "annotations" / "snapshot.jsonl"


def test_card_of_a_new_build_has_the_evidence_section_and_an_older_format_does_not(project, tmp_path):
    from builder.dataset.build import build_dataset

    build_dataset(project, SNAPSHOT, tmp_path / "new")
    card = (tmp_path / "new" / "README.md").read_text(encoding="utf-8")
    section = card[card.index("## Agreement evidence") : card.index("## How it was made")]
    assert "| measure | value | 95% interval | n |" in section
    for name in ("Gwet's AC1 (nominal), stance", "Krippendorff's unitizing alpha, entities (all labels)"):
        line = next(x for x in section.splitlines() if x.startswith(f"| {name} |"))
        value, interval, n = (cell.strip() for cell in line.strip("|").split("|")[1:])
        low, high = (float(x) for x in interval.split("–"))
        assert low <= float(value) <= high and "sentences" in n
    assert "prevalence paradox" in section and "Diagnostics:" in section
    build_dataset(project, SNAPSHOT, tmp_path / "again")
    assert (tmp_path / "again" / "README.md").read_bytes() == card.encode("utf-8")
    build_dataset(project, SNAPSHOT, tmp_path / "old", evidence=False)
    assert "## Agreement evidence" not in (tmp_path / "old" / "README.md").read_text(encoding="utf-8")


def test_stats_and_quality_report_carry_intervals_and_diagnostics(project):
    from builder.records.from_snapshot import dataset_statistics
    from builder.records.quality import annotator_report, render

    figures = dataset_statistics(project, SNAPSHOT)
    evidence = figures["agreement_evidence"]
    assert {"value", "low", "high", "n"} <= set(evidence["stance"]["gwet_ac1"])
    assert "overall" in evidence["unitizing_alpha"] and "counts" in evidence["span_disagreements"]
    assert isinstance(figures["diagnostics"], dict)
    rows = json.loads(render(annotator_report(SNAPSHOT, project), "json"))
    for row in rows:
        pairs = (
            ("agreement_with_aggregate", "aggregate_compared"),
            ("anchoring", "pre_annotated"),
            ("kappa", "kappa_tasks"),
        )
        for figure, n in pairs:
            assert n in row and f"{figure}_low" in row and f"{figure}_high" in row
            if row[figure] is not None and row[n]:
                assert row[f"{figure}_low"] <= row[figure] <= row[f"{figure}_high"], (figure, row)
    assert any(row["kappa_low"] is not None for row in rows)
