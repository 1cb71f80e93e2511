"""Annotator reliability: the Dawid-Skene model, fitted by EM, vectorised with numpy.

Dawid and Skene (1979), "Maximum Likelihood Estimation of Observer Error-Rates Using the EM Algorithm",
Applied Statistics 28(1), 20-28. Each task has a true label drawn from `priors`; each worker answers
label l on a task whose true label is k with probability `confusion[worker, k, l]`, independently of
the other workers. EM alternates:

- M-step: priors = mean posterior over the tasks not clamped; confusion[w, k, l] = expected number
  of times w answered l on a task of true label k, plus pseudo-counts (a Dirichlet prior), row-normalised:
  `smoothing` in every cell, so that a worker seen on a handful of tasks is not certain to be always
  right or always wrong, and `diagonal` more on the diagonal, so that a worker whom nobody else
  checks (a single annotator) keeps the benefit of the doubt instead of drifting to "random";
  both are negligible beside a few dozen answers;
- E-step: posterior[t, k] proportional to priors[k] * prod over t's answers of confusion[w, k, l]
  (in log space).

It starts from the soft majority vote (each task's share of answers per label, the paper's own
start) and stops when no posterior moves by more than `tol`, or after `max_iter` iterations. Tasks
whose answer is `known` (gold questions, ground truth) stay clamped to it: they anchor the workers'
confusion matrices. Everything is a sum over the answer arrays (`numpy.bincount`), so memory and
time are linear in the number of answers, and the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

DEFAULT_SMOOTHING = 0.01  # pseudo-count in every confusion cell
DEFAULT_DIAGONAL = 0.5  # and on the diagonal: a weak prior that annotators answer right more often than not
DEFAULT_MAX_ITER = 100
DEFAULT_TOL = 1e-5


@dataclass
class DawidSkeneFit:
    """The fitted model.

    posteriors: (n_tasks, n_labels), each row sums to 1 (a task without answers gets the priors);
    confusion: (n_workers, n_labels, n_labels), confusion[w, k, l] = P(w answers l | true label k);
    priors: (n_labels,); reliability: (n_workers,), the estimated probability that the worker answers
    right on the tasks they did (expected share of their answers equal to the true label; 1/n_labels
    for a worker with no answers); iterations: EM iterations run; converged: whether `tol` was met.
    """

    posteriors: np.ndarray
    confusion: np.ndarray
    priors: np.ndarray
    reliability: np.ndarray
    iterations: int
    converged: bool


def _as_index(values, name: str, bound: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional array")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers")
    array = array.astype(np.intp, copy=False)
    if array.size and (array.min() < 0 or array.max() >= bound):
        raise ValueError(f"{name} must lie in 0..{bound - 1}")
    return array


def dawid_skene(
    tasks,
    workers,
    labels,
    n_tasks: int,
    n_workers: int,
    n_labels: int,
    known: Mapping[int, int] | tuple | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    smoothing: float = DEFAULT_SMOOTHING,
    diagonal: float = DEFAULT_DIAGONAL,
) -> DawidSkeneFit:
    """Fit Dawid-Skene to answers given as three equal-length integer arrays (one row per answer).

    `tasks[i]` is the task index (0..n_tasks-1) of answer i, `workers[i]` who gave it, `labels[i]` the
    label index answered. `known` maps task index -> label index for tasks whose label is known
    (gold questions, ground truth), as a mapping or a pair of equal-length arrays; they are clamped
    to it throughout. `smoothing=0, diagonal=0` is
    the paper's plain maximum likelihood.
    """
    if n_labels < 1:
        raise ValueError("n_labels must be at least 1")
    tasks = _as_index(tasks, "tasks", n_tasks)
    workers = _as_index(workers, "workers", n_workers)
    labels = _as_index(labels, "labels", n_labels)
    if not len(tasks) == len(workers) == len(labels):
        raise ValueError("tasks, workers and labels must have the same length")
    K = n_labels

    clamped = np.zeros(n_tasks, dtype=bool)
    clamp = np.zeros((0, K))
    known_tasks = np.zeros(0, dtype=np.intp)
    if known is not None and len(known):
        if isinstance(known, Mapping):
            keys = np.fromiter(known.keys(), dtype=np.int64, count=len(known))
            values = np.fromiter(known.values(), dtype=np.int64, count=len(known))
        else:  # a pair of arrays (task indices, label indices): no dict for a million known tasks
            keys, values = known
        known_tasks = _as_index(keys, "known tasks", n_tasks)
        known_labels = _as_index(values, "known labels", n_labels)
        if len(known_tasks) != len(known_labels):
            raise ValueError("known task and label arrays must have the same length")
        clamped[known_tasks] = True
        clamp = np.zeros((len(known_tasks), K))
        clamp[np.arange(len(known_tasks)), known_labels] = 1.0
    free = ~clamped

    # Label-major (n_labels, n_tasks) inside, so that every gather and sum runs over a contiguous row.
    # The start: the soft majority vote (tasks without answers start uniform).
    post = np.empty((K, n_tasks))
    for k in range(K):
        post[k] = np.bincount(tasks, weights=(labels == k).astype(float), minlength=n_tasks)
    totals = post.sum(axis=0)
    post[:, totals == 0] = 1.0
    post /= post.sum(axis=0)
    post[:, known_tasks] = clamp.T

    cell = workers * K + labels  # (worker, answered label) of each answer
    iterations, converged = 0, False
    while True:
        counts, confusion, priors = _m_step(post, tasks, cell, free, n_workers, K, smoothing, diagonal)
        if converged or iterations >= max_iter:
            break
        iterations += 1
        # E-step, in log space: log priors[k] + the sum of log confusion[w, k, l] over the task's answers
        with np.errstate(divide="ignore"):
            log_confusion = np.log(confusion).transpose(1, 0, 2).reshape(K, n_workers * K)  # [k, cell]
            log_post = np.repeat(np.log(priors)[:, None], n_tasks, axis=1)
        for k in range(K):
            log_post[k] += np.bincount(tasks, weights=log_confusion[k][cell], minlength=n_tasks)
        new = _normalise(log_post, priors)
        new[:, known_tasks] = clamp.T
        converged = n_tasks == 0 or float(np.abs(new - post).max()) <= tol
        post = new

    # counts: expected answers per (worker, true label, answered label) under the final posteriors
    right = np.einsum("wkk->w", counts)
    given = counts.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        reliability = (right + (smoothing + diagonal) * K) / (given + (smoothing * K + diagonal) * K)
    reliability = np.where(given > 0, reliability, 1.0 / K)
    return DawidSkeneFit(np.ascontiguousarray(post.T), confusion, priors, reliability, iterations, converged)


def _m_step(post, tasks, cell, free, n_workers: int, K: int, smoothing: float, diagonal: float):
    """(expected counts, confusion matrices, priors) from the current label-major posteriors."""
    counts = np.empty((n_workers, K, K))  # [worker, true label, answered label]
    for k in range(K):
        counts[:, k, :] = np.bincount(cell, weights=post[k][tasks], minlength=n_workers * K).reshape(n_workers, K)
    source = post[:, free] if free.any() else post
    priors = source.mean(axis=1) if source.shape[1] else np.full(K, 1.0 / K)
    smoothed = counts + smoothing
    smoothed[:, np.arange(K), np.arange(K)] += diagonal
    totals = smoothed.sum(axis=2, keepdims=True)
    confusion = np.where(totals > 0, smoothed / np.where(totals > 0, totals, 1.0), 1.0 / K)
    return counts, confusion, priors


def _normalise(log_post: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Label-major log-probabilities -> probabilities; a task with no finite entry (impossible
    evidence under an unsmoothed model) falls back to the priors."""
    top = log_post.max(axis=0)
    finite = np.isfinite(top)
    log_post -= np.where(finite, top, 0.0)
    with np.errstate(invalid="ignore"):
        post = np.exp(log_post, out=log_post)
    post[:, ~finite] = priors[:, None]
    post /= post.sum(axis=0)
    return post


def most_likely(posteriors: np.ndarray, tie: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """(label index per task, whether it is a tie): the top posterior, a tie when the runner-up is within `tie`."""
    best = posteriors.argmax(axis=1)
    if posteriors.shape[1] < 2:
        return best, np.zeros(len(best), dtype=bool)
    top2 = np.partition(posteriors, -2, axis=1)[:, -2:]
    return best, (top2[:, 1] - top2[:, 0]) <= tie
