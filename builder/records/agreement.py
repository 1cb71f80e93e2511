"""Inter-annotator agreement: Krippendorff's alpha and Fleiss' kappa for stance, pairwise span F1."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable


def stance_agreement(records: Iterable[dict], labels: list[str]) -> dict:
    """Alpha (nominal, any number of annotators per sentence) and kappa (sentences with the modal count)."""
    import numpy as np

    units = [[a["stance"] for a in r["annotations"] if a["stance"] is not None] for r in records]
    units = [u for u in units if len(u) >= 2]
    result = {
        "units": len(units),
        "ratings": sum(map(len, units)),
        "krippendorff_alpha": None,
        "fleiss_kappa": None,
        "fleiss_units": 0,
    }
    if not units:
        return result
    index = {label: i for i, label in enumerate(labels)}
    width = max(map(len, units))
    matrix = np.full((width, len(units)), np.nan)
    for column, unit in enumerate(units):
        for row, value in enumerate(unit):
            matrix[row, column] = index[value]
    import krippendorff

    if len({v for u in units for v in u}) > 1:
        result["krippendorff_alpha"] = round(
            float(
                krippendorff.alpha(
                    reliability_data=matrix, level_of_measurement="nominal", value_domain=list(range(len(labels)))
                )
            ),
            4,
        )
    else:
        result["krippendorff_alpha"] = 1.0
    modal = Counter(map(len, units)).most_common(1)[0][0]
    same = [u for u in units if len(u) == modal]
    table = np.array([[Counter(u)[label] for label in labels] for u in same])
    from statsmodels.stats.inter_rater import fleiss_kappa

    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = float(fleiss_kappa(table, method="fleiss"))
    result["fleiss_kappa"] = round(kappa, 4) if np.isfinite(kappa) else None
    result["fleiss_units"] = len(same)
    return result


def span_agreement(records: Iterable[dict], labels: list[str]) -> dict:
    """Pairwise exact-match span F1 (start, end, label) between annotators of the same sentence."""
    tp: Counter = Counter()
    size: Counter = Counter()
    pairs = 0
    for record in records:
        spans = [{(e["start"], e["end"], e["label"]) for e in a["entities"]} for a in record["annotations"]]
        for left, right in itertools.combinations(spans, 2):
            pairs += 1
            for label in labels:
                a = {s for s in left if s[2] == label}
                b = {s for s in right if s[2] == label}
                tp[label] += len(a & b)
                size[label] += len(a) + len(b)
    per_label = {label: (round(2 * tp[label] / size[label], 4) if size[label] else None) for label in labels}
    total = sum(size.values())
    return {
        "pairs": pairs,
        "f1": round(2 * sum(tp.values()) / total, 4) if total else None,
        "per_label": per_label,
        "spans": {label: size[label] for label in labels},
    }


def label_counts(records: Iterable[dict]) -> dict:
    stance: Counter = Counter()
    entities: Counter = Counter()
    status: Counter = Counter()
    for record in records:
        stance[record["stance"] if record["stance"] is not None else "(unresolved)"] += 1
        status[record["stance_status"]] += 1
        for entity in record["entities"]:
            entities[entity["label"]] += 1
    return {
        "stance": dict(sorted(stance.items())),
        "stance_status": dict(sorted(status.items())),
        "entities": dict(sorted(entities.items())),
    }


def annotator_counts(records: Iterable[dict]) -> dict:
    counts: dict = defaultdict(int)
    for record in records:
        for annotation in record["annotations"]:
            counts[annotation["annotator"]] += 1
    return dict(sorted(counts.items()))
