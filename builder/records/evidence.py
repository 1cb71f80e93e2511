"""Agreement evidence for a dataset paper: every figure with its 95% interval and n, Gwet's AC1 beside α and κ,
Krippendorff's unitizing α beside the pairwise span F1, what the span disagreements are, and diagnostics.

The figures of builder.records.agreement (α, κ, exact-span F1) are recomputed here from per-sentence
sufficient statistics, so the bootstrap over sentences (builder.records.intervals) can resample them;
builder.records.agreement itself is left as it is, because releases of earlier manifest formats state it.

Gwet's AC1 (Gwet 2008, "Computing inter-rater reliability and its variance in the presence of high
agreement", BJMSP 61, 29-48), for any number of raters per sentence as irrCAC's `gwet.ac1.raw` computes it:
p_a = mean over sentences with 2+ ratings of Σ_k r_k (r_k - 1) / (r (r - 1)); π_k = mean over rated
sentences of r_k / r; p_e = Σ_k π_k (1 - π_k) / (q - 1); AC1 = (p_a - p_e) / (1 - p_e). Its chance
agreement shrinks as one label dominates, where κ's and α's grows: with a skewed label distribution
κ and α can be low while annotators almost always agree (the prevalence paradox, Feinstein and Cicchetti
1990), and AC1 is the one to read beside them. AC2 needs ordered labels; builder's stance labels are
nominal (the scheme declares no order), so AC2 is not computed.
"""

from __future__ import annotations

import numpy as np

from builder.records import span_table
from builder.records.intervals import RESAMPLES, SEED, bootstrap, figure, interval_of, resampled_totals
from builder.records.span_table import SpanTable
from builder.records.unitizing import disagreement_breakdown, unitizing_alpha

MIN_ITEMS = 30  # fewer sentences (or spans) under a figure: too few for it to say much
DOMINANT_SHARE = 0.75  # one label holding this share of the ratings or spans dominates
BOUNDARY_MAJORITY = 0.5  # boundary disagreements above this share of all span disagreements: mostly boundaries


def stance_counts(records, labels: list[str]) -> np.ndarray:
    """(sentences, labels) int64: how many annotators gave each stance, for sentences with 1+ stance.
    `records`: the records or their builder.records.span_table.SpanTable (built with these stance labels)."""
    return span_table.stance_counts(SpanTable.of(records, [], labels, spans=False), len(labels))


def gwet_ac1(counts: np.ndarray) -> np.ndarray:
    """Gwet's AC1 of each row of `totals`-style input: `counts` is (b, units, q) or (units, q) rating counts."""
    return _ac1_terms(counts)[0]


def _ac1_terms(counts: np.ndarray):
    counts = np.asarray(counts, dtype=float)
    q = counts.shape[-1]
    raters = counts.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pairs = (counts * (counts - 1)).sum(axis=-1) / (raters * (raters - 1))
        pa = np.where(raters >= 2, pairs, 0).sum(axis=-1) / (raters >= 2).sum(axis=-1)
        pi = (counts / np.where(raters > 0, raters, 1)[..., None]).sum(axis=-2) / (raters > 0).sum(axis=-1)[..., None]
        pe = (pi * (1 - pi)).sum(axis=-1) / (q - 1)
        return (pa - pe) / (1 - pe), pa, pe


def _stance_features(counts: np.ndarray) -> np.ndarray:
    """Per sentence, the sums AC1, α and κ are ratios of (columns; all sums over sentences):
    [rated, compared, pair share (AC1 p_a), r_k / r per label (AC1 π), coincidence diagonal Σ r_k (r_k-1)/(r-1)
    (α), r_k of compared sentences per label (α and κ margins), ratings of compared sentences]."""
    raters = counts.sum(axis=1).astype(float)
    compared = raters >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        same = (counts * (counts - 1)).sum(axis=1)
        share = np.where(compared, same / (raters * (raters - 1)), 0.0)
        diagonal = np.where(compared, same / (raters - 1), 0.0)
        proportions = counts / np.where(raters > 0, raters, 1)[:, None]
    return np.column_stack(
        [
            np.ones(len(counts)),
            compared.astype(float),
            share,
            proportions,
            diagonal,
            counts * compared[:, None],
            raters * compared,
        ]
    )


def _stance_statistics(totals: np.ndarray, q: int) -> dict[str, np.ndarray]:
    """AC1 and α (nominal) from summed `_stance_features` (rows: resamples)."""
    rated, compared, share = totals[:, 0], totals[:, 1], totals[:, 2]
    pi = totals[:, 3 : 3 + q] / rated[:, None]
    diagonal = totals[:, 3 + q]
    margins = totals[:, 4 + q : 4 + 2 * q]
    n = totals[:, 4 + 2 * q]
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = share / compared
        pe = (pi * (1 - pi)).sum(axis=1) / (q - 1)
        ac1 = (pa - pe) / (1 - pe)
        observed = 1 - diagonal / n
        expected = 1 - (margins * (margins - 1)).sum(axis=1) / (n * (n - 1))
        alpha = np.where(expected > 0, 1 - observed / np.where(expected > 0, expected, 1), np.nan)
    return {"gwet_ac1": ac1, "krippendorff_alpha": alpha}


def _fleiss_statistic(totals: np.ndarray, m: int) -> np.ndarray:
    """Fleiss' kappa from summed [units, Σ_k r_k (r_k - 1), r_k per label] of sentences with m ratings each."""
    units, same, margins = totals[:, 0], totals[:, 1], totals[:, 2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = same / (units * m * (m - 1))
        p = margins / (units * m)[:, None]
        pe = (p**2).sum(axis=1)
        return np.where(pe < 1, (pa - pe) / (1 - pe), np.nan)


def stance_evidence(records, labels: list[str], resamples: int = RESAMPLES, seed: int = SEED) -> dict:
    """α, κ and AC1 for stance, each with a 95% bootstrap interval over sentences and its n."""
    q = len(labels)
    counts = stance_counts(records, labels)
    compared = counts[counts.sum(axis=1) >= 2]
    features = _stance_features(counts) if len(counts) else np.zeros((0, 5 + 2 * q))
    point = _stance_statistics(features.sum(axis=0, keepdims=True), q) if len(counts) else {}
    result = {}
    totals = resampled_totals(features, resamples, seed)  # once for both figures
    for name in ("krippendorff_alpha", "gwet_ac1"):
        interval = interval_of(totals, lambda t, name=name: _stance_statistics(t, q)[name])
        value = point[name][0] if point and len(compared) else None
        result[name] = figure(value, len(compared), interval)
    result["gwet_ac1"]["rated_sentences"] = len(counts)
    sizes = compared.sum(axis=1)
    if len(compared):
        values, frequency = np.unique(sizes, return_counts=True)
        m = int(max(zip(frequency, values))[1])
        modal = compared[sizes == m]
        fleiss = np.column_stack([np.ones(len(modal)), (modal * (modal - 1)).sum(axis=1), modal]).astype(np.int64)
        value = _fleiss_statistic(fleiss.sum(axis=0, keepdims=True).astype(float), m)[0]
        interval = bootstrap(fleiss, lambda t: _fleiss_statistic(t.astype(float), m), resamples, seed)
        result["fleiss_kappa"] = {**figure(value, len(modal), interval), "annotators_per_sentence": m}
    else:
        result["fleiss_kappa"] = {**figure(None, 0, (None, None)), "annotators_per_sentence": 0}
    ratings = counts.sum(axis=0)
    result["label_shares"] = {
        label: (round(float(ratings[i] / ratings.sum()), 4) if ratings.sum() else None)
        for i, label in enumerate(labels)
    }
    result["ac2"] = "not applicable: the stance labels are nominal (the label scheme declares no order)"
    return result


def span_f1_evidence(records, labels: list[str], resamples: int = RESAMPLES, seed: int = SEED) -> dict:
    """Pairwise exact-span F1, all labels and per label, each with a bootstrap interval over sentences.
    `records`: the records or their builder.records.span_table.SpanTable (built with these labels)."""
    features, pairs = span_table.span_f1_features(SpanTable.of(records, labels))
    rows = features  # one per sentence with 2+ annotations

    def f1(totals: np.ndarray, columns: list[int]) -> np.ndarray:
        matched = totals[:, [2 * c for c in columns]].sum(axis=1).astype(float)
        size = totals[:, [2 * c + 1 for c in columns]].sum(axis=1).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(size > 0, 2 * matched / np.where(size > 0, size, 1), np.nan)

    every = list(range(len(labels)))
    total = features.sum(axis=0, keepdims=True)
    totals = resampled_totals(features, resamples, seed)  # once for every label's figure
    out = {"pairs": pairs}
    out["f1"] = figure(
        f1(total, every)[0] if len(rows) else None, len(rows), interval_of(totals, lambda t: f1(t, every))
    )
    out["per_label"] = {}
    for i, label in enumerate(labels):
        value = f1(total, [i])[0] if len(rows) else None
        interval = interval_of(totals, lambda t, i=i: f1(t, [i]))
        out["per_label"][label] = {
            **figure(value, len(rows), interval),
            "spans": int(total[0, 2 * i + 1]) if len(rows) else 0,
        }
    return out


def agreement_evidence(records: list[dict], stance_labels: list[str], entity_labels: list[str]) -> dict:
    """Everything the card's evidence section and `builder stats` state: stance α, κ and AC1, span F1 and
    unitizing α, each with interval and n; the span disagreement breakdown; and the diagnostics."""
    table = SpanTable(records, entity_labels, stance_labels)  # the records read once, for every figure
    evidence = {
        "stance": stance_evidence(table, stance_labels),
        "span_f1": span_f1_evidence(table, entity_labels),
        "unitizing_alpha": unitizing_alpha(table, entity_labels),
        "span_disagreements": disagreement_breakdown(table),
        "resamples": RESAMPLES,
        "seed": SEED,
    }
    evidence["diagnostics"] = diagnostics(evidence, entity_labels)
    return evidence


def diagnostics(evidence: dict, entity_labels: list[str]) -> list[dict]:
    """INCEpTION-style warnings, each {"kind", "figure", "message"}: too few items under a figure, one label
    dominating (read AC1 for stance), span disagreements mostly on boundaries."""
    found = []

    def add(kind: str, what: str, message: str) -> None:
        found.append({"kind": kind, "figure": what, "message": message})

    stance = evidence["stance"]
    for name, title in (
        ("krippendorff_alpha", "stance alpha"),
        ("gwet_ac1", "stance AC1"),
        ("fleiss_kappa", "stance kappa"),
    ):
        n = stance[name]["n"]
        if n < MIN_ITEMS:
            add(
                "too_few_items",
                title,
                f"{title} rests on {n} sentences (fewer than {MIN_ITEMS}): read its interval, not its value",
            )
    n = evidence["unitizing_alpha"]["sentences"]
    if n < MIN_ITEMS:
        add("too_few_items", "unitizing alpha", f"unitizing alpha rests on {n} sentences (fewer than {MIN_ITEMS})")
    for label in entity_labels:
        units = evidence["unitizing_alpha"]["per_label"][label]["units"]
        if units < MIN_ITEMS:
            add("too_few_items", f"unitizing alpha, {label}", f"{label}: {units} spans (fewer than {MIN_ITEMS})")
    shares = {k: v for k, v in stance["label_shares"].items() if v is not None}
    if shares:
        top = max(shares, key=lambda k: (shares[k], k))
        if shares[top] >= DOMINANT_SHARE:
            add(
                "label_dominates",
                "stance",
                f"'{top}' is {shares[top]:.0%} of the stance ratings: kappa and alpha understate agreement here "
                "(prevalence paradox); read Gwet's AC1 beside them",
            )
    spans = {label: v["spans"] for label, v in evidence["span_f1"]["per_label"].items()}
    if sum(spans.values()):
        top = max(spans, key=lambda k: (spans[k], k))
        share = spans[top] / sum(spans.values())
        if share >= DOMINANT_SHARE and len(spans) > 1:
            add(
                "label_dominates",
                "entities",
                f"'{top}' is {share:.0%} of the annotated spans: the overall span figures are mostly its",
            )
    breakdown = evidence["span_disagreements"]
    if breakdown["disagreements"]:
        boundary = breakdown["shares"]["boundary"]
        if boundary > BOUNDARY_MAJORITY:
            add(
                "mostly_boundaries",
                "entities",
                f"{boundary:.0%} of the span disagreements are on boundaries only (same label, overlapping spans): "
                "the guidelines' span rules, not the labels, are what annotators read differently",
            )
    return found
