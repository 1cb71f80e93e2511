"""95% intervals and n for the per-annotator figures of `builder quality` that are not plain shares (Cohen's
kappa with the other annotators), and the pooled quality figures of the card with their Wilson intervals.

Kappa: a seeded bootstrap over tasks (builder.records.intervals' resamples and seed), each resample one
weighted count of the annotator-pair contingency tables (`numpy.bincount`), so time is linear in the
pairs of answers per resample; it is computed by `builder quality`, not by `builder build` (whose card
gives pooled figures only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from builder.records.intervals import RESAMPLES, SEED, figure, percentile_interval, wilson_interval


def answer_pairs(
    task: np.ndarray, annotator: np.ndarray, stance: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The answers sorted by task (task, annotator, stance), and the index pairs (a, b) of two answers by
    different annotators on one task, each unordered pair once: the answers 1, 2, ... places apart within a
    task, one numpy pass per distance (up to the largest number of answers on one task), never all pairs at once."""
    order = np.argsort(task, kind="stable")
    task, annotator, stance = task[order], annotator[order].astype(np.int64), stance[order].astype(np.int64)
    pairs = []
    for distance in range(1, int(np.bincount(task).max(initial=0))):
        same = np.flatnonzero(task[distance:] == task[:-distance])
        if not len(same):
            break
        a, b = same, same + distance
        other = annotator[a] != annotator[b]
        pairs.append((a[other], b[other]))
    return task, annotator, stance, pairs


def kappa_intervals(
    task: np.ndarray, annotator: np.ndarray, stance: np.ndarray, n: int, n_labels: int, resamples: int = RESAMPLES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, tasks) per annotator: the 95% bootstrap interval of builder.records.quality's kappa (Cohen's
    kappa with each other annotator, averaged weighted by shared tasks) and the tasks it rests on (those
    shared with another annotator); NaN where undefined."""
    low, high = np.full(n, np.nan), np.full(n, np.nan)
    task, annotator, stance, pairs = answer_pairs(task, annotator, stance)
    parts = []
    for a, b in pairs:
        parts += [(task[a], annotator[a], annotator[b], stance[a], stance[b])]
        parts += [(task[a], annotator[b], annotator[a], stance[b], stance[a])]
    if not parts:
        return low, high, np.zeros(n, dtype=np.int64)
    pair_task, first, second, x, y = (np.concatenate(column) for column in zip(*parts))
    shared_tasks, pair_task = np.unique(pair_task, return_inverse=True)
    tasks = np.zeros(n, dtype=np.int64)
    for who in range(n):  # tasks each annotator shares with someone: the n of their kappa
        tasks[who] = len(np.unique(pair_task[first == who]))
    pairs, pair = np.unique(first * n + second, return_inverse=True)
    k2 = n_labels * n_labels
    cell = pair * k2 + x * n_labels + y
    who = pairs // n
    rng = np.random.default_rng(SEED)
    draws = np.empty((resamples, n))
    for r in range(resamples):
        weights = np.bincount(rng.integers(0, len(shared_tasks), len(shared_tasks)), minlength=len(shared_tasks))
        tables = np.bincount(cell, weights=weights[pair_task], minlength=len(pairs) * k2)
        draws[r] = _kappa_from_tables(tables.reshape(len(pairs), n_labels, n_labels), who, n)
    for a in range(n):
        low[a], high[a] = (np.nan if v is None else v for v in percentile_interval(draws[:, a]))
    return low, high, tasks


def _kappa_from_tables(tables: np.ndarray, who: np.ndarray, n: int) -> np.ndarray:
    shared = tables.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = np.trace(tables, axis1=1, axis2=2) / shared
        chance = (tables.sum(axis=2) * tables.sum(axis=1)).sum(axis=1) / shared**2
        kappa = (observed - chance) / (1 - chance)
    valid = np.isfinite(kappa) & (shared > 0)
    total = np.bincount(who[valid], weights=(kappa * shared)[valid], minlength=n)
    weight = np.bincount(who[valid], weights=shared[valid], minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(weight > 0, total / np.where(weight > 0, weight, 1), np.nan)


def span_f1_intervals(
    task: np.ndarray, annotator: np.ndarray, per_row: dict, on_gold: np.ndarray, n: int, resamples: int = RESAMPLES
) -> list[np.ndarray]:
    """[exact low, exact high, overlap low, overlap high] per annotator: 95% bootstrap intervals over the gold
    questions of the gold span F1s (`task`, `annotator`: the answers on gold questions; `per_row`: their span
    counts per annotation row, builder.records.quality._span_f1)."""
    out = [np.full(n, np.nan) for _ in range(4)]
    if not len(task):
        return out
    counts = {name: np.asarray(values)[on_gold].astype(float) for name, values in per_row.items()}
    questions, question = np.unique(task, return_inverse=True)
    rng = np.random.default_rng(SEED)
    exact, overlap = np.empty((resamples, n)), np.empty((resamples, n))
    for r in range(resamples):
        weights = np.bincount(rng.integers(0, len(questions), len(questions)), minlength=len(questions))[question]
        sums = {name: np.bincount(annotator, weights=weights * values, minlength=n) for name, values in counts.items()}
        with np.errstate(divide="ignore", invalid="ignore"):
            defined = sums["own"] + sums["gold"] > 0
            exact[r] = np.where(defined, 2 * sums["matched"] / (sums["own"] + sums["gold"]), np.nan)
            precision = np.nan_to_num(sums["own_hit"] / sums["own"])
            recall = np.nan_to_num(sums["gold_hit"] / sums["gold"])
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
            overlap[r] = np.where(defined, f1, np.nan)
    for a in range(n):
        for i, draws in enumerate((exact, overlap)):
            low, high = percentile_interval(draws[:, a])
            out[2 * i][a], out[2 * i + 1][a] = (np.nan if low is None else low), (np.nan if high is None else high)
    return out


def quality_figures(report: pd.DataFrame) -> list[tuple[str, dict, str]]:
    """The card's quality figures with their 95% Wilson intervals and n (manifest format 9 on), pooled over
    annotators (no pseudonyms): gold accuracy, agreement with the aggregated stance, anchoring rate."""
    out = []
    for name, share, trials, unit in (
        ("gold accuracy (stance), all annotators", "gold_accuracy", "gold_answers", "gold answers"),
        ("agreement with the aggregated stance", "agreement_with_aggregate", "aggregate_compared", "answers compared"),
        ("anchoring rate (pre-annotated spans kept unchanged)", "anchoring", "pre_annotated", "pre-annotated spans"),
    ):
        hits = report[share].to_numpy(dtype=float) * report[trials].to_numpy(dtype=float)
        k = float(np.nansum(hits)) if len(report) else 0.0
        n = int(report[trials].sum()) if len(report) else 0
        if n:
            low, high = wilson_interval(round(k), n)
            out.append((name, figure(k / n, n, (float(low), float(high)), places=3), f"{n} {unit}"))
    return out


def summary_figures(report: pd.DataFrame) -> dict:
    """What the card's Quality control section and the manifest's `quality` add from manifest format 10 on, no
    pseudonyms: each annotator's gold accuracy with its 95% Wilson interval and n (sorted by value, then n), and
    the pooled anchoring rate with its interval and n (the pre-annotated spans shown)."""
    accuracies = []
    for share, low, high, n in report[
        ["gold_accuracy", "gold_accuracy_low", "gold_accuracy_high", "gold_answers"]
    ].itertuples(index=False):
        if n:
            accuracies.append(figure(share, n, (low, high), places=3))
    accuracies.sort(key=lambda f: (f["value"], f["n"], f["low"], f["high"]))
    seen = int(report["pre_annotated"].sum()) if len(report) else 0
    anchoring = figure(None, 0, (None, None), places=3)
    if seen:
        kept = round(float(np.nansum(report["anchoring"].to_numpy(dtype=float) * report["pre_annotated"].to_numpy())))
        low, high = wilson_interval(kept, seen)
        anchoring = figure(kept / seen, seen, (float(low), float(high)), places=3)
    return {"gold_accuracy_figures": accuracies, "anchoring": anchoring}
