"""95% intervals for agreement and quality figures: a seeded bootstrap over sentences, vectorised.

Why a bootstrap: α, κ, AC1, unitizing α and span F1 have no analytic interval that holds for
any number of annotators per sentence; resampling whole sentences keeps the annotations of one
sentence together, which is what the figures are computed over. Why seeded: the card must be
byte-for-byte reproducible, so the same data always gives the same interval. Why bounded: a fixed
number of resamples (`RESAMPLES`), drawn `CHUNK` at a time as integer weight matrices (how often
each sentence is drawn), so memory stays at `CHUNK` x sentences integers and time is linear in the
number of sentences; a figure whose sufficient statistics are sums over sentences (all of ours) is
then a matrix product per chunk, never a Python loop per resample.

Proportions (gold accuracy, anchoring, agreement with the aggregate) use the analytic Wilson
interval instead (builder.records.quality.wilson_interval).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RESAMPLES = 200  # enough for a 95% percentile interval to 2 decimals; bounded so a build stays fast
SEED = 28  # fixed: the same data always gives the same interval
CHUNK = 25  # resamples drawn at once (memory: CHUNK x units integers)
LEVEL = 0.95


def weight_chunks(units: int, resamples: int = RESAMPLES, seed: int = SEED):
    """Bootstrap weights, `CHUNK` resamples at a time: (chunk, units) float64 arrays (exact for counts), each
    row how often each unit was drawn in one resample of `units` draws with replacement. Deterministic for a
    given seed; the draws for the last (units, resamples, seed) are kept (one byte a count), since every
    figure of a build resamples the same sentences."""
    global _cached
    key = (units, resamples, seed)
    if _cached is None or _cached[0] != key:
        rng = np.random.default_rng(seed)
        rows = []
        for done in range(0, resamples, CHUNK):
            size = min(CHUNK, resamples - done)
            draws = rng.integers(0, units, size=(size, units)) + (np.arange(size) * units)[:, None]
            counts = np.bincount(draws.ravel(), minlength=size * units).reshape(size, units)
            rows.append(np.minimum(counts, 255).astype(np.uint8))  # a unit drawn 256+ times of n: never in practice
        _cached = (key, np.concatenate(rows) if rows else np.zeros((0, units), dtype=np.uint8))
    weights = _cached[1]
    for done in range(0, resamples, CHUNK):
        yield weights[done : done + CHUNK].astype(np.float64)  # counts: exact in float64, and BLAS is fast


_cached: tuple | None = None


def bootstrap(
    features: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float | None, float | None]:
    """The percentile interval (low, high) of `statistic` over resampled units.

    `features` is (units, d): per-unit sufficient statistics; `statistic` maps (b, d) totals (one row
    per resample) to b values (NaN where undefined). None, None when there is no unit or no resample
    gives a defined value."""
    features = np.asarray(features, dtype=np.float64)  # sums of integer features stay exact (below 2**53)
    if features.ndim == 1:
        features = features[:, None]
    if not len(features):
        return None, None
    values = []
    for weights in weight_chunks(len(features), resamples, seed):
        values.append(np.asarray(statistic(weights @ features), dtype=float))
    return percentile_interval(np.concatenate(values))


def resampled_totals(features: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, d) float64: `features` (units, d) summed over each resample, the same draws as `bootstrap`'s,
    for several statistics of the same features (each row-wise: `percentile_interval(statistic(totals))` is
    `bootstrap(features, statistic)`); None where there is no unit."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim == 1:
        features = features[:, None]
    if not len(features):
        return None
    return np.concatenate([weights @ features for weights in weight_chunks(len(features), resamples, seed)])


def interval_of(totals: np.ndarray | None, statistic: Callable[[np.ndarray], np.ndarray]) -> tuple:
    """`bootstrap`'s interval from `resampled_totals`."""
    if totals is None:
        return None, None
    return percentile_interval(np.asarray(statistic(totals), dtype=float))


def percentile_interval(values: np.ndarray) -> tuple[float | None, float | None]:
    """(low, high): the 2.5th and 97.5th percentiles of the defined values, or None, None."""
    values = values[np.isfinite(values)]
    if not len(values):
        return None, None
    tail = (1 - LEVEL) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


Z95 = 1.959963984540054  # the standard normal quantile of 0.975


def wilson_interval(successes, trials, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval (low, high) of successes/trials, element-wise; NaN where trials is 0."""
    k, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return centre - half, centre + half


def figure(value: float | None, n: int, interval: tuple, places: int = 4) -> dict:
    """A figure as the card and the reports give it: value, 95% interval and the n it rests on."""

    def rounded(x):
        return None if x is None or not np.isfinite(x) else round(float(x), places)

    return {"value": rounded(value), "low": rounded(interval[0]), "high": rounded(interval[1]), "n": int(n)}
