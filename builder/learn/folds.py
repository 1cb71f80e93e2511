"""The dev folds of `builder train` and where its fits run.

Dev is by article: the articles are dealt into folds by a hash of their id (`dev_folds`), and a fold's model is
fitted on the other folds' sentences, at most `dev_max_sentences` of them (`dev_sample`). The fits of one
training (each dev fold's, and the final model's, which needs nothing from dev) do not depend on each other, so
`in_parallel` runs them in worker processes forked from this one (they read the training data from memory, no
copy is sent), and gathers their results in the order of the jobs: the model's bytes do not depend on how many
workers ran them, nor on which finished first.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable

from builder.errors import BuilderError

# fewer labelled sentences than this: the fits take less than a second or two, and run in this process
PARALLEL_MIN_SENTENCES = 500


def dev_sample(train: list, cap: int | None, seed: int) -> list:
    """The sentences a dev fold's model is fitted on: all of `train`, or with more than `cap` (the setting
    `dev_max_sentences`, None: no cap) whole articles in the order of a hash of their id salted with the seed,
    as many as fit in `cap` (at least one), in `train`'s order. Below the cap nothing changes."""
    if cap is None or len(train) <= cap:
        return train
    sizes = Counter(e.article_id for e in train)
    order = sorted(sizes, key=lambda a: hashlib.sha256(f"builder-dev-sample/{seed}\x00{a}".encode()).hexdigest())
    kept: set[str] = set()
    total = 0
    for article in order:
        if kept and total + sizes[article] > cap:
            continue
        kept.add(article)
        total += sizes[article]
    return [e for e in train if e.article_id in kept]


def dev_folds(article_ids: list[str], folds: int, seed: int) -> dict[str, int]:
    """The dev fold of each article, from a hash of its id salted with the seed; round-robin over the hash
    order, so with fewer articles than folds each article is a fold of its own. Empty for one article."""
    ids = sorted(set(article_ids), key=lambda a: hashlib.sha256(f"builder-train/{seed}\x00{a}".encode()).hexdigest())
    if len(ids) < 2:
        return {}
    k = min(folds, len(ids))
    return {a: i % k for i, a in enumerate(ids)}


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def fit_workers(sentences: int, jobs: int, workers: int | None = None) -> int:
    """How many processes run a training's `jobs` fits: `workers` when given, else the available cores when
    there are `PARALLEL_MIN_SENTENCES` labelled sentences or more (1 below: this process); never more than
    the jobs, and 1 where processes cannot be forked (or this is a daemon process, which may have none)."""
    if workers is None:
        workers = available_cores() if sentences >= PARALLEL_MIN_SENTENCES else 1
    if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        return 1
    return max(1, min(workers, jobs))


_WORK: tuple[Callable, list] | None = None  # what forked workers run: (function, jobs), read from memory


def _run(index: int):
    function, jobs = _WORK
    return function(jobs[index])


def in_parallel(function: Callable, jobs: list, workers: int) -> list:
    """`[function(job) for job in jobs]`, in `workers` processes forked from this one when more than 1
    (`function` and `jobs` are inherited, not pickled; the results are pickled back), handed to the workers
    in the order of `jobs` (put the longest first). An exception raised by a job is raised here."""
    global _WORK
    if workers <= 1 or len(jobs) <= 1:
        return [function(job) for job in jobs]
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    _WORK = (function, jobs)
    try:
        # fork: the workers start at the first submit, with `_WORK` set
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_run, index) for index in range(len(jobs))]
            return [future.result() for future in futures]
    except BrokenProcessPool:
        raise BuilderError("a training worker process died (out of memory? killed?); nothing was written") from None
    finally:
        _WORK = None
